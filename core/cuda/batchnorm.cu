// Batch normalisation on CUDA, with the formulas of core/cpu/batchnorm.cpp: one block per channel, sums in
// double.
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

}  // namespace mpncov::cuda
