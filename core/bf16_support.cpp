#include "core/bf16_support.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <atomic>

namespace mpncov {

bool cpu_has_native_bf16() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);  // a bit mask: AMX's includes it
  return (isa & bf16) == bf16;
}

std::string bf16_notice_once(Precision precision, Device device) {
  if (precision != Precision::BFloat16 || !device.is_cpu() || cpu_has_native_bf16()) return "";
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return "";
  return "note: this CPU has no native bfloat16 instructions (AVX512-BF16); oneDNN emulates them for the bfloat16 "
         "layers (same results, slower)";
}

}  // namespace mpncov
