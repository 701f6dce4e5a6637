// The math precision of a net's convolution and linear layers (solver.precision, --precision):
// float32; bfloat16 mixed precision (operands rounded to bfloat16, float32 accumulation, everything else
// float32: core/mixed_ops.h); tf32 (float32 storage, TF32 tensor-core math on a GPU; on the CPU the same
// as float32).
#pragma once
#include <optional>
#include <string>

#include "core/device.h"

namespace mpncov {

enum class Precision { Float32, BFloat16, TF32 };

const char* precision_name(Precision p);          // "float32", "bfloat16", "tf32"
// Also "bf16", "fp32", "f32". parse_precision: nothing for an unknown name; precision_from_name throws
// listing the choices.
std::optional<Precision> parse_precision(const std::string& name);
Precision precision_from_name(const std::string& name);
constexpr const char* kPrecisionChoices = "float32, bfloat16 or tf32";

// Sets the device-wide math switches for a precision: on a CUDA device, TF32 tensor-core convolutions for
// tf32 (and, as before, when MPNCOV_CUDA_TF32=1 asks for them; MPNCOV_CUDA_DETERMINISTIC keeps its say);
// nothing on the CPU. bfloat16 is per layer (Net::set_precision), not a device switch.
void apply_precision(Precision precision, Device device);

}  // namespace mpncov
