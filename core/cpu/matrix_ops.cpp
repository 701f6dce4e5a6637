// Batched small-matrix ops on the CPU (core/matrix_ops.h). Products go to gemm.cpp: oneDNN's batched
// matmul in float; in double one matrix per thread (single-threaded OpenBLAS inside, which beats threading
// each 256 x 256 product), a single matrix cut into blocks when there are fewer matrices than threads.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/cpu/cpu_ops.h"
#include "core/cpu/matrix_cpu.h"
#include "core/cpu/parallel.h"

namespace mpncov::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // elements below which threads cost more than they save
constexpr int64_t kPanel = 32;             // rows per panel of a triangular product

// Rows [r0, r1) of c = alpha op(a) op(b) + beta c, columns [c0, n).
template <typename T>
void panel(bool ta, bool tb, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
           T beta, T* c, int64_t r0, int64_t r1, int64_t c0) {
  if (k == 0) {
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = c0; j < n; ++j) c[i * n + j] = beta == T(0) ? T(0) : beta * c[i * n + j];
    return;
  }
  // Row r of op(a): row r of a, or column r of a when transposed. Column j of op(b): likewise.
  const T* ap = ta ? a + r0 : a + r0 * lda;
  const T* bp = tb ? b + c0 * ldb : b + c0;
  gemm<T>(ta, tb, r1 - r0, n - c0, k, alpha, ap, lda, 0, bp, ldb, 0, beta, c + r0 * n + c0, n, 0, 1);
}

// The lower triangle mirrors the upper one; row by row, so one matrix still uses every thread.
template <typename T>
void mirror(T* c, int64_t batch, int64_t n, ops::Structure structure) {
  const T sign = structure == ops::Structure::Skew ? T(-1) : T(1);
#pragma omp parallel for if (batch * n * n > kParallelMin)
  for (int64_t row = 0; row < batch * n; ++row) {
    T* ci = c + row / n * n * n;
    const int64_t r = row % n;
    for (int64_t col = 0; col < r; ++col) ci[r * n + col] = sign * ci[col * n + r];
  }
}

// A float triangular product as row strips from the diagonal rightwards, each one batched product
// (gemm.cpp: oneDNN's matmul): four strips of a 256 x 256 product do 5/8 of the full work, and oneDNN's
// kernels keep their speed down to 64-row strips (a stand-alone timing in bench/RESULTS.md: 0.44 ms for
// a batch of eight against 0.65 for the full product). Double products keep 32-row panels on OpenBLAS, one per thread.
void float_strips(bool ta, bool tb, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, int64_t sa,
                  const float* b, int64_t ldb, int64_t sb, float beta, float* c, int64_t batch) {
  const int64_t strips = std::clamp<int64_t>(n / 64, 1, 4);
  for (int64_t s = 0; s < strips; ++s) {
    const int64_t r0 = n * s / strips, r1 = n * (s + 1) / strips;
    const float* as = ta ? a + r0 : a + r0 * lda;
    const float* bs = tb ? b + r0 * ldb : b + r0;
    gemm<float>(ta, tb, r1 - r0, n - r0, k, alpha, as, lda, sa, bs, ldb, sb, beta, c + r0 * n + r0, n, n * n, batch);
  }
}

}  // namespace

template <typename T>
void square_matmul(bool ta, bool tb, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, int64_t sa,
                   const T* b, int64_t ldb, int64_t sb, T beta, T* c, int64_t batch, ops::Structure structure) {
  if (structure == ops::Structure::General)
    return gemm<T>(ta, tb, n, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, n, n * n, batch);
  if constexpr (std::is_same_v<T, float>) {
    float_strips(ta, tb, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, batch);
    return mirror(c, batch, n, structure);
  }
  const int64_t panels = (n + kPanel - 1) / kPanel, tasks = batch * panels;
  auto task = [&](int64_t t) {
    const int64_t i = t / panels, r0 = t % panels * kPanel, r1 = std::min(n, r0 + kPanel);
    panel(ta, tb, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * n * n, r0, r1, r0);
  };
  // One thread per panel (dynamic: the panels shrink) when there are enough; otherwise each panel's
  // product spreads over the threads itself.
  if (free_threads() > 1 && tasks >= free_threads()) {
#pragma omp parallel for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  }
  mirror(c, batch, n, structure);
}

template <typename T>
void add_identity(const T* x, T alpha, T beta, T* out, const T* p, const T* q, int64_t batch, int64_t n) {
#pragma omp parallel for if (batch * n * n > kParallelMin)
  for (int64_t row = 0; row < batch * n; ++row) {  // rows, not matrices: one matrix still uses every thread
    const int64_t i = row / n, r = row % n;
    const T a = p ? alpha * p[i] : alpha, d = q ? beta * q[i] : beta;
    const T* xr = x + row * n;
    T* o = out + row * n;
    for (int64_t e = 0; e < n; ++e) o[e] = a * xr[e];
    o[r] += d;
  }
}

template <typename T>
void symmetric_combine(T alpha, const T* x, T beta, const T* w, int sign, T gamma, const T* z, T* out,
                       int64_t batch, int64_t n) {
  const T s = static_cast<T>(sign);
#pragma omp parallel for if (batch * n * n > kParallelMin)
  for (int64_t i = 0; i < batch * n; ++i) {
    const int64_t b = i / n, r = i % n, base = b * n * n;
    for (int64_t col = 0; col < n; ++col) {
      const int64_t e = base + r * n + col;
      T v = beta * (w[e] + s * w[base + col * n + r]);
      if (x) v += alpha * x[e];
      if (z) v += gamma * z[e];
      out[e] = v;
    }
  }
}

template <typename T>
void trace(const T* x, T* out, int64_t batch, int64_t n) {
  for (int64_t i = 0; i < batch; ++i) {
    double s = 0;
    for (int64_t r = 0; r < n; ++r) s += x[i * n * n + r * n + r];
    out[i] = static_cast<T>(s);
  }
}

template <typename T>
void batched_dot(const T* x, const T* y, T* out, int64_t batch, int64_t per) {
#pragma omp parallel for if (batch * per > kParallelMin)
  for (int64_t i = 0; i < batch; ++i) {
    double s = 0;
    const T* xi = x + i * per;
    const T* yi = y + i * per;
    for (int64_t e = 0; e < per; ++e) s += static_cast<double>(xi[e]) * yi[e];
    out[i] = static_cast<T>(s);
  }
}

template <typename T>
void trace_guard(const T* trace, double eps, T* used, T* keep, int64_t batch) {
  for (int64_t i = 0; i < batch; ++i) {
    const bool ok = std::isfinite(trace[i]) && trace[i] >= static_cast<T>(eps);
    used[i] = ok ? trace[i] : static_cast<T>(eps);
    keep[i] = ok ? T(1) : T(0);
  }
}

template <typename T>
void center_rows(const T* x, T* out, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* o = out + r * cols;
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += xr[j];
    const T mean = static_cast<T>(s / static_cast<double>(cols));
    for (int64_t j = 0; j < cols; ++j) o[j] = xr[j] - mean;
  }
}

template <typename T>
void triu_gather(const T* x, const T* scale, T* out, int64_t batch, int64_t n) {
  const int64_t k = n * (n + 1) / 2;
#pragma omp parallel for if (batch * k > kParallelMin)
  for (int64_t i = 0; i < batch * n; ++i) {
    const int64_t b = i / n, r = i % n;
    const T s = scale ? scale[b] : T(1);
    const T* row = x + b * n * n + r * n;
    T* o = out + b * k + r * n - r * (r - 1) / 2;  // entries (r, r..n-1)
    for (int64_t col = r; col < n; ++col) o[col - r] = s * row[col];
  }
}

template <typename T>
void triu_scatter(const T* g, const T* scale, T* out, int64_t batch, int64_t n, bool symmetric) {
  const int64_t k = n * (n + 1) / 2;
#pragma omp parallel for if (batch * n * n > kParallelMin)
  for (int64_t i = 0; i < batch * n; ++i) {
    const int64_t b = i / n, r = i % n;
    const T s = scale ? scale[b] : T(1);
    const T* gb = g + b * k;
    T* row = out + b * n * n + r * n;
    // Entry (i, j), i <= j, sits at i n - i (i - 1) / 2 + (j - i).
    for (int64_t col = 0; col < n; ++col) {
      if (col >= r) {
        const T v = s * gb[r * n - r * (r - 1) / 2 + col - r];
        row[col] = symmetric && col != r ? T(0.5) * v : v;
      } else {
        row[col] = symmetric ? T(0.5) * s * gb[col * n - col * (col - 1) / 2 + r - col] : T(0);
      }
    }
  }
}

template <typename T>
void signed_sqrt(const T* x, T thresh, T* y, int64_t count) {
#pragma omp parallel for if (count > kParallelMin)
  for (int64_t i = 0; i < count; ++i) {
    const T v = x[i];
    const T sg = T((v > T(0)) - (v < T(0)));
    y[i] = sg * std::sqrt(std::abs(v) + thresh);
  }
}

template <typename T>
void signed_sqrt_backward(const T* x, const T* dy, T thresh, T* dx, int64_t count) {
#pragma omp parallel for if (count > kParallelMin)
  for (int64_t i = 0; i < count; ++i)
    dx[i] = x[i] != T(0) ? dy[i] / (T(2) * std::sqrt(std::abs(x[i]) + thresh)) : T(0);
}

template <typename T>
void l2_normalize_rows(const T* x, T eps, T* y, T* norm, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += static_cast<double>(xr[j]) * xr[j];
    const T nr = static_cast<T>(std::sqrt(s));
    norm[r] = nr;
    const T d = std::max(nr, eps);
    T* yr = y + r * cols;
    for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] / d;
  }
}

template <typename T>
void l2_normalize_rows_backward(const T* y, const T* norm, const T* dy, T eps, T* dx, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T* o = dx + r * cols;
    if (!(norm[r] > eps)) {  // y = x / eps: a plain scaling
      for (int64_t j = 0; j < cols; ++j) o[j] = gr[j] / eps;
      continue;
    }
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += static_cast<double>(yr[j]) * gr[j];
    const T dot = static_cast<T>(s), inv = T(1) / norm[r];
    for (int64_t j = 0; j < cols; ++j) o[j] = (gr[j] - yr[j] * dot) * inv;
  }
}

#define MPNCOV_MATRIX_CPU(T)                                                                                        \
  template void square_matmul<T>(bool, bool, int64_t, int64_t, T, const T*, int64_t, int64_t, const T*, int64_t,     \
                                 int64_t, T, T*, int64_t, ops::Structure);                                           \
  template void add_identity<T>(const T*, T, T, T*, const T*, const T*, int64_t, int64_t);                           \
  template void symmetric_combine<T>(T, const T*, T, const T*, int, T, const T*, T*, int64_t, int64_t);              \
  template void trace<T>(const T*, T*, int64_t, int64_t);                                                            \
  template void batched_dot<T>(const T*, const T*, T*, int64_t, int64_t);                                            \
  template void trace_guard<T>(const T*, double, T*, T*, int64_t);                                                   \
  template void center_rows<T>(const T*, T*, int64_t, int64_t);                                                      \
  template void triu_gather<T>(const T*, const T*, T*, int64_t, int64_t);                                            \
  template void triu_scatter<T>(const T*, const T*, T*, int64_t, int64_t, bool);                                     \
  template void signed_sqrt<T>(const T*, T, T*, int64_t);                                                            \
  template void signed_sqrt_backward<T>(const T*, const T*, T, T*, int64_t);                                         \
  template void l2_normalize_rows<T>(const T*, T, T*, T*, int64_t, int64_t);                                         \
  template void l2_normalize_rows_backward<T>(const T*, const T*, const T*, T, T*, int64_t, int64_t);
MPNCOV_MATRIX_CPU(float)
MPNCOV_MATRIX_CPU(double)
#undef MPNCOV_MATRIX_CPU

}  // namespace mpncov::cpu
