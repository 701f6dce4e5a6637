// Batched small-matrix ops on CUDA (core/matrix_ops.h), with the formulas of core/cpu/matrix_ops.cpp.
// Elementwise ops: one thread per element over a grid-stride loop. Per-sample or per-row sums (batched
// dot, row means, row norms): one block per row reducing in double through shared memory, in a fixed
// order, so results are deterministic. (square_matmul is ops::gemm on CUDA and has no kernel.)
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_matrix_backend.h"

namespace mpncov::cuda {
namespace {

constexpr int kRowThreads = 256;

// Sum of v over the block's threads, returned to every thread (blockDim.x == kRowThreads).
__device__ double block_sum(double v) {
  __shared__ double partial[kRowThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int s = kRowThreads / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  const double total = partial[0];
  __syncthreads();  // partial may be reused by the caller's next block_sum
  return total;
}

// out_b = alpha p_b x_b + beta q_b I
__global__ void add_identity_kernel(const float* x, float alpha, float beta, float* out, const float* p,
                                    const float* q, int64_t n, int64_t total) {
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t b = i / (n * n), e = i % (n * n);
    const float a = p ? alpha * p[b] : alpha;
    float v = a * x[i];
    if (e / n == e % n) v += q ? beta * q[b] : beta;
    out[i] = v;
  }
}

// out = alpha x + beta (w + sign w^T) + gamma z
__global__ void symmetric_combine_kernel(float alpha, const float* x, float beta, const float* w, float sign,
                                         float gamma, const float* z, float* out, int64_t n, int64_t total) {
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t base = (i / (n * n)) * n * n, e = i % (n * n), r = e / n, c = e % n;
    float v = beta * (w[i] + sign * w[base + c * n + r]);
    if (x) v += alpha * x[i];
    if (z) v += gamma * z[i];
    out[i] = v;
  }
}

// out (B) = trace(x_b): one thread per sample
__global__ void trace_kernel(const float* x, float* out, int64_t batch, int64_t n) {
  MPNCOV_GRID_LOOP(b, batch) {
    double s = 0;
    for (int64_t r = 0; r < n; ++r) s += x[b * n * n + r * n + r];
    out[b] = static_cast<float>(s);
  }
}

// out (B) = <x_b, y_b>: one block per sample
__global__ void batched_dot_kernel(const float* x, const float* y, float* out, int64_t per) {
  const int64_t b = blockIdx.x;
  double s = 0;
  for (int64_t e = threadIdx.x; e < per; e += blockDim.x) s += static_cast<double>(x[b * per + e]) * y[b * per + e];
  s = block_sum(s);
  if (threadIdx.x == 0) out[b] = static_cast<float>(s);
}

__global__ void trace_guard_kernel(const float* trace, float eps, float* used, float* keep, int64_t batch) {
  MPNCOV_GRID_LOOP(b, batch) {
    const bool ok = isfinite(trace[b]) && trace[b] >= eps;
    used[b] = ok ? trace[b] : eps;
    keep[b] = ok ? 1.0f : 0.0f;
  }
}

// out = x - mean of its row: one block per row
__global__ void center_rows_kernel(const float* x, float* out, int64_t cols) {
  const float* xr = x + blockIdx.x * cols;
  float* o = out + blockIdx.x * cols;
  double s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += xr[j];
  const float mean = static_cast<float>(block_sum(s) / static_cast<double>(cols));
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) o[j] = xr[j] - mean;
}

// One thread per element (b, r, c) of the matrix; those with c >= r write their vector entry.
__global__ void triu_gather_kernel(const float* x, const float* scale, float* out, int64_t n, int64_t total) {
  const int64_t k = n * (n + 1) / 2;
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t b = i / (n * n), e = i % (n * n), r = e / n, c = e % n;
    if (c < r) continue;
    out[b * k + r * n - r * (r - 1) / 2 + c - r] = (scale ? scale[b] : 1.0f) * x[i];
  }
}

__global__ void triu_scatter_kernel(const float* g, const float* scale, float* out, int64_t n, bool symmetric,
                                    int64_t total) {
  const int64_t k = n * (n + 1) / 2;
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t b = i / (n * n), e = i % (n * n), r = e / n, c = e % n;
    const float s = scale ? scale[b] : 1.0f;
    const int64_t lo = r < c ? r : c, hi = r < c ? c : r;
    const float v = s * g[b * k + lo * n - lo * (lo - 1) / 2 + hi - lo];
    out[i] = symmetric ? (r == c ? v : 0.5f * v) : (c >= r ? v : 0.0f);
  }
}

__global__ void signed_sqrt_kernel(const float* x, float thresh, float* y, int64_t n) {
  MPNCOV_GRID_LOOP(i, n) {
    const float v = x[i];
    y[i] = static_cast<float>((v > 0.0f) - (v < 0.0f)) * sqrtf(fabsf(v) + thresh);
  }
}

__global__ void signed_sqrt_backward_kernel(const float* x, const float* dy, float thresh, float* dx, int64_t n) {
  MPNCOV_GRID_LOOP(i, n) dx[i] = x[i] != 0.0f ? dy[i] / (2.0f * sqrtf(fabsf(x[i]) + thresh)) : 0.0f;
}

// One block per row.
__global__ void l2_normalize_rows_kernel(const float* x, float eps, float* y, float* norm, int64_t cols) {
  const float* xr = x + blockIdx.x * cols;
  float* yr = y + blockIdx.x * cols;
  double s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += static_cast<double>(xr[j]) * xr[j];
  const float nr = static_cast<float>(sqrt(block_sum(s)));
  if (threadIdx.x == 0) norm[blockIdx.x] = nr;
  const float d = nr > eps ? nr : eps;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = xr[j] / d;
}

__global__ void l2_normalize_rows_backward_kernel(const float* y, const float* norm, const float* dy, float eps,
                                                  float* dx, int64_t cols) {
  const int64_t off = static_cast<int64_t>(blockIdx.x) * cols;
  const float nr = norm[blockIdx.x];
  if (!(nr > eps)) {
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dx[off + j] = dy[off + j] / eps;
    return;
  }
  double s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += static_cast<double>(y[off + j]) * dy[off + j];
  const float dot = static_cast<float>(block_sum(s)), inv = 1.0f / nr;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dx[off + j] = (dy[off + j] - y[off + j] * dot) * inv;
}

unsigned grid_rows(int64_t rows) {
  MPNCOV_CHECK(rows <= INT32_MAX, "too many rows for one launch: ", rows);
  return static_cast<unsigned>(rows);
}

}  // namespace

void add_identity(int device, const float* x, float alpha, float beta, float* out, const float* p, const float* q,
                  int64_t batch, int64_t n) {
  const int64_t total = batch * n * n;
  if (total == 0) return;
  DeviceGuard guard(device);
  add_identity_kernel<<<blocks_for(total), kThreads, 0, context(device).stream()>>>(x, alpha, beta, out, p, q, n,
                                                                                    total);
  CUDA_CHECK_LAUNCH();
}

void symmetric_combine(int device, float alpha, const float* x, float beta, const float* w, int sign, float gamma,
                       const float* z, float* out, int64_t batch, int64_t n) {
  const int64_t total = batch * n * n;
  if (total == 0) return;
  DeviceGuard guard(device);
  symmetric_combine_kernel<<<blocks_for(total), kThreads, 0, context(device).stream()>>>(
      alpha, x, beta, w, static_cast<float>(sign), gamma, z, out, n, total);
  CUDA_CHECK_LAUNCH();
}

void trace(int device, const float* x, float* out, int64_t batch, int64_t n) {
  if (batch == 0) return;
  DeviceGuard guard(device);
  trace_kernel<<<blocks_for(batch, 64), 64, 0, context(device).stream()>>>(x, out, batch, n);
  CUDA_CHECK_LAUNCH();
}

void batched_dot(int device, const float* x, const float* y, float* out, int64_t batch, int64_t per_sample) {
  if (batch == 0) return;
  DeviceGuard guard(device);
  batched_dot_kernel<<<grid_rows(batch), kRowThreads, 0, context(device).stream()>>>(x, y, out, per_sample);
  CUDA_CHECK_LAUNCH();
}

void trace_guard(int device, const float* trace, double eps, float* used, float* keep, int64_t batch) {
  if (batch == 0) return;
  DeviceGuard guard(device);
  trace_guard_kernel<<<blocks_for(batch, 64), 64, 0, context(device).stream()>>>(trace, static_cast<float>(eps),
                                                                                 used, keep, batch);
  CUDA_CHECK_LAUNCH();
}

void center_rows(int device, const float* x, float* out, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  DeviceGuard guard(device);
  center_rows_kernel<<<grid_rows(rows), kRowThreads, 0, context(device).stream()>>>(x, out, cols);
  CUDA_CHECK_LAUNCH();
}

void triu_gather(int device, const float* x, const float* scale, float* out, int64_t batch, int64_t n) {
  const int64_t total = batch * n * n;
  if (total == 0) return;
  DeviceGuard guard(device);
  triu_gather_kernel<<<blocks_for(total), kThreads, 0, context(device).stream()>>>(x, scale, out, n, total);
  CUDA_CHECK_LAUNCH();
}

void triu_scatter(int device, const float* g, const float* scale, float* out, int64_t batch, int64_t n,
                  bool symmetric) {
  const int64_t total = batch * n * n;
  if (total == 0) return;
  DeviceGuard guard(device);
  triu_scatter_kernel<<<blocks_for(total), kThreads, 0, context(device).stream()>>>(g, scale, out, n, symmetric,
                                                                                    total);
  CUDA_CHECK_LAUNCH();
}

void signed_sqrt(int device, const float* x, float thresh, float* y, int64_t count) {
  if (count == 0) return;
  DeviceGuard guard(device);
  signed_sqrt_kernel<<<blocks_for(count), kThreads, 0, context(device).stream()>>>(x, thresh, y, count);
  CUDA_CHECK_LAUNCH();
}

void signed_sqrt_backward(int device, const float* x, const float* dy, float thresh, float* dx, int64_t count) {
  if (count == 0) return;
  DeviceGuard guard(device);
  signed_sqrt_backward_kernel<<<blocks_for(count), kThreads, 0, context(device).stream()>>>(x, dy, thresh, dx,
                                                                                            count);
  CUDA_CHECK_LAUNCH();
}

void l2_normalize_rows(int device, const float* x, float eps, float* y, float* norm, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  DeviceGuard guard(device);
  l2_normalize_rows_kernel<<<grid_rows(rows), kRowThreads, 0, context(device).stream()>>>(x, eps, y, norm, cols);
  CUDA_CHECK_LAUNCH();
}

void l2_normalize_rows_backward(int device, const float* y, const float* norm, const float* dy, float eps,
                                float* dx, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  DeviceGuard guard(device);
  l2_normalize_rows_backward_kernel<<<grid_rows(rows), kRowThreads, 0, context(device).stream()>>>(y, norm, dy, eps,
                                                                                                   dx, cols);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
