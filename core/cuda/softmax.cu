// Softmax cross-entropy on CUDA, with the formulas of core/cpu/softmax.cpp. The loss: one block per row
// writes the row's loss to the workspace, then one block sums the rows in a fixed order (deterministic).
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda/nn_block_reduce.cuh"
#include "core/cuda_nn_backend.h"

namespace mpncov::cuda {
namespace {

// logits (n, k) -> prob (n, k), row_loss (n). Block = row.
__global__ void softmax_ce_rows_kernel(const float* logits, const int64_t* labels, float* prob, double* row_loss,
                                       int64_t k, double smoothing) {
  const int64_t i = blockIdx.x;
  const float* z = logits + i * k;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) mx = fmaxf(mx, z[j]);
  mx = block_max(mx);
  double sum = 0, sum_z = 0;
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    sum += exp(static_cast<double>(z[j]) - mx);
    sum_z += z[j];
  }
  sum = block_sum(sum);
  sum_z = block_sum(sum_z);
  const double log_sum = log(sum) + mx;
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) prob[i * k + j] = static_cast<float>(exp(z[j] - log_sum));
  if (threadIdx.x == 0) {
    const int64_t label = labels[i];
    if (label < 0 || label >= k) {
      row_loss[i] = nan("");
    } else if (smoothing == 0) {  // as the CPU kernel: no uniform term, which a -inf logit makes infinite
      row_loss[i] = log_sum - z[label];
    } else {
      row_loss[i] = (1 - smoothing) * (log_sum - z[label]) + smoothing * (log_sum - sum_z / static_cast<double>(k));
    }
  }
}

__global__ void mean_kernel(const double* rows, float* loss, int64_t n) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += rows[i];
  s = block_sum(s);
  if (threadIdx.x == 0) loss[0] = static_cast<float>(s / static_cast<double>(n));
}

__global__ void softmax_ce_backward_kernel(const float* prob, const int64_t* labels, const float* dloss, float* d,
                                           int64_t n, int64_t k, float off, float on) {
  const float scale = dloss[0] / static_cast<float>(n);
  MPNCOV_GRID_LOOP(idx, n * k) {
    const int64_t i = idx / k, j = idx % k;
    const int64_t label = labels[i];
    if (label < 0 || label >= k) {
      d[idx] = nanf("");
    } else {
      d[idx] = scale * (prob[idx] - off - (j == label ? on : 0.0f));
    }
  }
}

}  // namespace

void softmax_cross_entropy_forward(int device, const float* logits, const int64_t* labels, float* prob, float* loss,
                                   int64_t n, int64_t k, double smoothing) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  if (n == 0) {
    CUDA_CHECK(cudaMemsetAsync(loss, 0xff, sizeof(float), ctx.stream()));  // NaN, as the CPU's 0/0
    return;
  }
  double* rows = static_cast<double*>(ctx.workspace(static_cast<size_t>(n) * sizeof(double)));
  softmax_ce_rows_kernel<<<static_cast<unsigned>(n), kThreads, 0, ctx.stream()>>>(logits, labels, prob, rows, k,
                                                                                   smoothing);
  CUDA_CHECK(cudaGetLastError());
  mean_kernel<<<1, 1024, 0, ctx.stream()>>>(rows, loss, n);
  CUDA_CHECK(cudaGetLastError());
}

void softmax_cross_entropy_backward(int device, const float* prob, const int64_t* labels, const float* dloss,
                                    float* dlogits, int64_t n, int64_t k, double smoothing) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  if (n * k == 0) return;
  softmax_ce_backward_kernel<<<blocks_for(n * k), kThreads, 0, ctx.stream()>>>(
      prob, labels, dloss, dlogits, n, k, static_cast<float>(smoothing / static_cast<double>(k)),
      static_cast<float>(1 - smoothing));
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace mpncov::cuda
