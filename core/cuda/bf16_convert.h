// bfloat16 on CUDA for mixed precision (core/mixed_ops.h): float32 tensors are rounded into temporary
// bfloat16 buffers (round to nearest even, NaN kept: core/half.h's rule, bit for bit) that cuDNN and cuBLAS
// read as CUDNN_DATA_BFLOAT16 / CUDA_R_16BF, and bfloat16 results are widened back to float32.
#pragma once
#include <cstdint>

#include "core/cuda/caching_allocator.h"

namespace mpncov::cuda {

// count bfloat16 values (their bits) on the device's caching allocator, for the length of a call.
class Bf16Buffer {
 public:
  Bf16Buffer(int device, int64_t count) : buffer_(device, static_cast<size_t>(count) * sizeof(uint16_t)) {}
  uint16_t* get() const { return buffer_.as<uint16_t>(); }

 private:
  DeviceBuffer buffer_;
};

// to_bf16 and from_bf16 (the conversions): core/cuda_mixed_backend.h.

}  // namespace mpncov::cuda
