// Small layer helpers on CUDA, as core/cpu/nn_helpers.cpp: relu's backward and channel-range copies (concat).
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_nn_backend.h"

namespace mpncov::cuda {
namespace {

__global__ void relu_backward_kernel(const float* y, const float* dy, float* dx, int64_t n) {
  MPNCOV_GRID_LOOP(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void copy_channels_kernel(const float* src, int64_t src_channels, int64_t src_offset, float* dst,
                                     int64_t dst_channels, int64_t dst_offset, int64_t count, int64_t n,
                                     int64_t inner) {
  const int64_t block = count * inner;
  MPNCOV_GRID_LOOP(i, n * block) {
    const int64_t b = i / block, r = i % block;
    dst[(b * dst_channels + dst_offset) * inner + r] = src[(b * src_channels + src_offset) * inner + r];
  }
}

}  // namespace

void relu_backward(int device, const float* y, const float* dy, float* dx, int64_t n) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, ctx.stream()>>>(y, dy, dx, n);
  CUDA_CHECK(cudaGetLastError());
}

void copy_channels(int device, const float* src, int64_t src_channels, int64_t src_offset, float* dst,
                   int64_t dst_channels, int64_t dst_offset, int64_t count, int64_t n, int64_t inner) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  copy_channels_kernel<<<blocks_for(n * count * inner), kThreads, 0, ctx.stream()>>>(
      src, src_channels, src_offset, dst, dst_channels, dst_offset, count, n, inner);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace mpncov::cuda
