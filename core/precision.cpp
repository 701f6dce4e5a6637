#include "core/precision.h"

#include <cstdlib>
#include <cstring>

#include "core/cuda_backend.h"
#include "core/error.h"

namespace mpncov {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Float32: return "float32";
    case Precision::BFloat16: return "bfloat16";
    case Precision::TF32: return "tf32";
  }
  MPNCOV_FAIL("unknown precision ", static_cast<int>(p));
}

std::optional<Precision> parse_precision(const std::string& n) {
  if (n == "float32" || n == "fp32" || n == "f32") return Precision::Float32;
  if (n == "bfloat16" || n == "bf16") return Precision::BFloat16;
  if (n == "tf32") return Precision::TF32;
  return std::nullopt;
}

Precision precision_from_name(const std::string& n) {
  const std::optional<Precision> p = parse_precision(n);
  MPNCOV_CHECK(p, "unknown precision '", n, "' (expected ", kPrecisionChoices, ")");
  return *p;
}

void apply_precision(Precision precision, Device device) {
  if (!device.is_cuda()) return;
  auto env_on = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::strcmp(v, "0") != 0;  // as core/cuda/cuda_context.cpp reads them
  };
  if constexpr (cuda::kBuilt)
    cuda::set_math(device.index, precision == Precision::TF32 || env_on("MPNCOV_CUDA_TF32"),
                   env_on("MPNCOV_CUDA_DETERMINISTIC"));
  else
    cuda::absent(device);
}

}  // namespace mpncov
