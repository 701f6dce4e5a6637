// Local response normalisation on CUDA, with the formulas of core/cpu/lrn.cpp.
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_nn_backend.h"

namespace mpncov::cuda {
namespace {

// One thread per element of x (n, c, inner).
__global__ void lrn_forward_kernel(const float* x, float* y, float* scale, int64_t n, int64_t c, int64_t inner,
                                   ops::LrnParams p) {
  const int64_t before = p.size / 2, after = (p.size - 1) / 2;
  const float a = static_cast<float>(p.alpha / static_cast<double>(p.size)), k = static_cast<float>(p.k);
  MPNCOV_GRID_LOOP(i, n * c * inner) {
    const int64_t e = i % inner, ch = (i / inner) % c, b = i / (inner * c);
    const float* xb = x + b * c * inner + e;
    float s = 0;
    for (int64_t j = max(ch - before, int64_t(0)); j <= min(ch + after, c - 1); ++j) s += xb[j * inner] * xb[j * inner];
    s = k + a * s;
    scale[i] = s;
    y[i] = x[i] * powf(s, static_cast<float>(-p.beta));
  }
}

__global__ void lrn_backward_kernel(const float* x, const float* y, const float* scale, const float* dy, float* dx,
                                    int64_t n, int64_t c, int64_t inner, ops::LrnParams p) {
  const int64_t before = p.size / 2, after = (p.size - 1) / 2;
  const float f = static_cast<float>(2.0 * p.alpha * p.beta / static_cast<double>(p.size));
  MPNCOV_GRID_LOOP(i, n * c * inner) {
    const int64_t e = i % inner, ch = (i / inner) % c, b = i / (inner * c);
    const int64_t base = b * c * inner + e;
    float acc = 0;
    for (int64_t j = max(ch - after, int64_t(0)); j <= min(ch + before, c - 1); ++j) {
      const int64_t o = base + j * inner;
      acc += dy[o] * y[o] / scale[o];
    }
    dx[i] = dy[i] * powf(scale[i], static_cast<float>(-p.beta)) - f * x[i] * acc;
  }
}

}  // namespace

void lrn_forward(int device, const float* x, float* y, float* scale, int64_t n, int64_t c, int64_t inner,
                 const ops::LrnParams& p) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  lrn_forward_kernel<<<blocks_for(n * c * inner), kThreads, 0, ctx.stream()>>>(x, y, scale, n, c, inner, p);
  CUDA_CHECK(cudaGetLastError());
}

void lrn_backward(int device, const float* x, const float* y, const float* scale, const float* dy, float* dx,
                  int64_t n, int64_t c, int64_t inner, const ops::LrnParams& p) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  lrn_backward_kernel<<<blocks_for(n * c * inner), kThreads, 0, ctx.stream()>>>(x, y, scale, dy, dx, n, c, inner, p);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace mpncov::cuda
