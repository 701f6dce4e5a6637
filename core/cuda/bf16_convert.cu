#include "core/cuda/bf16_convert.h"

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_mixed_backend.h"

namespace mpncov::cuda {
namespace {

// core/half.h's float_to_bf16 on the device.
__device__ __forceinline__ uint16_t bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

__device__ __forceinline__ float bf16_value(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }

__global__ void to_bf16_kernel(const float* x, uint16_t* y, int64_t count) {
  MPNCOV_GRID_LOOP(i, count) y[i] = bf16_bits(x[i]);
}

__global__ void from_bf16_kernel(const uint16_t* x, float* y, int64_t count, bool accumulate) {
  MPNCOV_GRID_LOOP(i, count) y[i] = accumulate ? y[i] + bf16_value(x[i]) : bf16_value(x[i]);
}

__global__ void round_to_bf16_kernel(const float* x, float* y, int64_t count) {
  MPNCOV_GRID_LOOP(i, count) y[i] = bf16_value(bf16_bits(x[i]));
}

}  // namespace

void to_bf16(int device, const float* x, uint16_t* y, int64_t count) {
  if (count == 0) return;
  DeviceGuard guard(device);
  to_bf16_kernel<<<blocks_for(count), kThreads, 0, context(device).stream()>>>(x, y, count);
  CUDA_CHECK_LAUNCH();
}

void from_bf16(int device, const uint16_t* x, float* y, int64_t count, bool accumulate) {
  if (count == 0) return;
  DeviceGuard guard(device);
  from_bf16_kernel<<<blocks_for(count), kThreads, 0, context(device).stream()>>>(x, y, count, accumulate);
  CUDA_CHECK_LAUNCH();
}

void round_to_bf16(int device, const float* x, float* y, int64_t count) {
  if (count == 0) return;
  DeviceGuard guard(device);
  round_to_bf16_kernel<<<blocks_for(count), kThreads, 0, context(device).stream()>>>(x, y, count);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
