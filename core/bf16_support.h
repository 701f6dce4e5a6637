// Whether the CPU runs bfloat16 natively, and the notice when it does not. Where AVX512-BF16 is missing,
// oneDNN converts the bfloat16 operands and multiplies them in float32: the same products summed in float32,
// so the same results as the native kernels up to summation order, only slower.
#pragma once
#include <string>

#include "core/device.h"
#include "core/precision.h"

namespace mpncov {

// Whether this CPU multiplies bfloat16 natively (AVX512-BF16, or AMX), as oneDNN sees it: oneDNN's
// DNNL_MAX_CPU_ISA (e.g. DNNL_MAX_CPU_ISA=AVX512_CORE) caps the instructions it uses, and this answer with them.
bool cpu_has_native_bf16();

// The one-line notice for the caller to print or log, the first time in a process that bfloat16 runs on
// a CPU without native bfloat16; else "".
std::string bf16_notice_once(Precision precision, Device device);

}  // namespace mpncov
