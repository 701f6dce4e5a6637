// Batch normalisation and local response normalisation on CUDA, with the formulas of
// core/cpu/batchnorm.cpp and core/cpu/lrn.cpp. Batch norm: one block per channel, sums in double.
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda/nn_block_reduce.cuh"
#include "core/cuda_nn_backend.h"

namespace mpncov::cuda {
namespace {

constexpr int kBnThreads = 512;

// x (n, c, inner) -> y; mean, invstd (c); running stats updated in training. Block = channel.
__global__ void bn_forward_kernel(const float* x, const float* weight, const float* bias, float* y, float* mean,
                                  float* invstd, float* running_mean, float* running_var, int64_t n, int64_t c,
                                  int64_t inner, bool training, double momentum, double eps) {
  const int64_t ch = blockIdx.x, m = n * inner;
  double mu, inv;
  if (training) {
    double s = 0;
    for (int64_t k = threadIdx.x; k < m; k += blockDim.x) s += x[((k / inner) * c + ch) * inner + k % inner];
    mu = block_sum(s) / static_cast<double>(m);
    double sq = 0;
    for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
      const double d = x[((k / inner) * c + ch) * inner + k % inner] - mu;
      sq += d * d;
    }
    sq = block_sum(sq);
    inv = 1.0 / sqrt(sq / static_cast<double>(m) + eps);
    if (threadIdx.x == 0 && running_mean) {
      running_mean[ch] = static_cast<float>((1 - momentum) * running_mean[ch] + momentum * mu);
      running_var[ch] = static_cast<float>((1 - momentum) * running_var[ch] + momentum * sq / static_cast<double>(m - 1));
    }
  } else {
    mu = running_mean[ch];
    inv = 1.0 / sqrt(static_cast<double>(running_var[ch]) + eps);
  }
  if (threadIdx.x == 0) {
    mean[ch] = static_cast<float>(mu);
    invstd[ch] = static_cast<float>(inv);
  }
  const double a = (weight ? weight[ch] : 1.0) * inv;
  const float sa = static_cast<float>(a), sb = static_cast<float>((bias ? bias[ch] : 0.0) - mu * a);
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
    const int64_t idx = ((k / inner) * c + ch) * inner + k % inner;
    y[idx] = x[idx] * sa + sb;
  }
}

__global__ void bn_backward_kernel(const float* x, const float* dy, const float* weight, const float* mean,
                                   const float* invstd, float* dx, float* dweight, float* dbias, int64_t n, int64_t c,
                                   int64_t inner, bool training) {
  const int64_t ch = blockIdx.x, m = n * inner;
  const double mu = mean[ch], inv = invstd[ch];
  double s_dy = 0, s_dyx = 0;
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
    const int64_t idx = ((k / inner) * c + ch) * inner + k % inner;
    s_dy += dy[idx];
    s_dyx += dy[idx] * (x[idx] - mu);
  }
  s_dy = block_sum(s_dy);
  s_dyx = block_sum(s_dyx) * inv;
  if (threadIdx.x == 0) {
    if (dbias) dbias[ch] += static_cast<float>(s_dy);
    if (dweight) dweight[ch] += static_cast<float>(s_dyx);
  }
  if (!dx) return;
  const double scale = (weight ? weight[ch] : 1.0) * inv;
  const float k1 = training ? static_cast<float>(s_dy / static_cast<double>(m)) : 0.0f;
  const float k2 = training ? static_cast<float>(s_dyx / static_cast<double>(m) * inv) : 0.0f;
  const float sc = static_cast<float>(scale), fmu = static_cast<float>(mu);
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
    const int64_t idx = ((k / inner) * c + ch) * inner + k % inner;
    dx[idx] = sc * (dy[idx] - k1 - (x[idx] - fmu) * k2);
  }
}

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

void batch_norm_forward(int device, const float* x, const float* weight, const float* bias, float* y, float* mean,
                        float* invstd, float* running_mean, float* running_var, int64_t n, int64_t c, int64_t inner,
                        bool training, double momentum, double eps) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  bn_forward_kernel<<<static_cast<unsigned>(c), kBnThreads, 0, ctx.stream()>>>(
      x, weight, bias, y, mean, invstd, running_mean, running_var, n, c, inner, training, momentum, eps);
  CUDA_CHECK(cudaGetLastError());
}

void batch_norm_backward(int device, const float* x, const float* dy, const float* weight, const float* mean,
                         const float* invstd, float* dx, float* dweight, float* dbias, int64_t n, int64_t c,
                         int64_t inner, bool training) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  bn_backward_kernel<<<static_cast<unsigned>(c), kBnThreads, 0, ctx.stream()>>>(x, dy, weight, mean, invstd, dx,
                                                                                 dweight, dbias, n, c, inner, training);
  CUDA_CHECK(cudaGetLastError());
}

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
