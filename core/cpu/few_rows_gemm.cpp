// C = alpha A B^T + beta C for a product with a few rows (2 <= m <= 8) and a large B (n x k, rows of k
// contiguous values): a classifier at a small batch, e.g. mpncov_resnet50's 1000 x 32896 weights (131 MB)
// against 8 images. Such a product is bound by reading B once. OpenBLAS packs B into its panels first and
// then multiplies, and was 2.2x slower than one streaming pass here (bench/RESULTS.md). Here each thread
// takes a range of B's rows, three at a time, against all m rows of A (1 MB at k = 32896: in cache), with
// the next three rows prefetched while these are multiplied; three rows times eight accumulators of 16
// lanes fill the AVX-512 registers. Only where the CPU has AVX-512 (checked once at run time); elsewhere,
// and for the shapes below the thresholds, the caller keeps BLAS.
//
// Each element of C is one dot product summed in a fixed order (16 lanes over k, the tail, then the lanes
// in a fixed tree), whatever m is and whichever thread computes it: a row's result does not depend on the
// other rows in the product, so a net's output for an image is the same at batch 2 to 8.
#include <immintrin.h>

#include <cstdint>

#include "core/cpu/cpu_ops.h"
#include "core/cpu/parallel.h"

namespace mpncov::cpu {
namespace {

constexpr int kRowsB = 3;                         // rows of B per pass: 3 x 8 accumulators + 3 + 1 registers
constexpr int64_t kMinBytes = int64_t{4} << 20;   // B of at least 4 MB: below, BLAS's packing is cheap
constexpr int64_t kMinK = 256;                   // shorter rows: the lane sums and the tail weigh

// The 16 lanes pairwise, in a fixed order (once per dot product: its cost does not matter).
__attribute__((target("avx512f"))) inline float lane_sum(__m512 v) {
  alignas(64) float l[16];
  _mm512_store_ps(l, v);
  for (int width = 8; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) l[i] += l[i + width];
  return l[0];
}

// C rows [0, M), columns [j, j + R) = alpha A B^T + beta C.
template <int M, int R>
__attribute__((target("avx512f"))) void rows_pass(const float* a, int64_t lda, const float* b, int64_t ldb,
                                                  int64_t k, float alpha, float beta, float* c, int64_t ldc,
                                                  int64_t j) {
  __m512 acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < M; ++i) acc[r][i] = _mm512_setzero_ps();
  const float* bj = b + j * ldb;
  const int64_t kv = k / 16 * 16;
  for (int64_t q = 0; q < kv; q += 16) {
    __m512 w[R];
    for (int r = 0; r < R; ++r) {
      w[r] = _mm512_loadu_ps(bj + r * ldb + q);
      _mm_prefetch(reinterpret_cast<const char*>(bj + (r + R) * ldb + q), _MM_HINT_T0);
    }
    for (int i = 0; i < M; ++i) {
      const __m512 x = _mm512_loadu_ps(a + i * lda + q);
      for (int r = 0; r < R; ++r) acc[r][i] = _mm512_fmadd_ps(x, w[r], acc[r][i]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < M; ++i) {
      float tail = 0;
      for (int64_t q = kv; q < k; ++q) tail += a[i * lda + q] * bj[r * ldb + q];
      const float dot = lane_sum(acc[r][i]) + tail;
      float& out = c[i * ldc + j + r];
      out = beta == 0.0f ? alpha * dot : alpha * dot + beta * out;  // beta 0 never reads C (it may hold NaN)
    }
}

template <int M>
__attribute__((target("avx512f"))) void few_rows(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t n,
                                                 int64_t k, float alpha, float beta, float* c, int64_t ldc) {
  // Whole groups of three rows of B per thread; the last task takes the rest one row at a time.
  const int64_t groups = n / kRowsB, tasks = free_threads();
  run_tasks(tasks, true, [&](int64_t t) {
    int64_t g0 = 0, g1 = 0;
    part_range(groups, tasks, t, 1, g0, g1);
    for (int64_t g = g0; g < g1; ++g) rows_pass<M, kRowsB>(a, lda, b, ldb, k, alpha, beta, c, ldc, g * kRowsB);
    if (t == tasks - 1)
      for (int64_t j = groups * kRowsB; j < n; ++j) rows_pass<M, 1>(a, lda, b, ldb, k, alpha, beta, c, ldc, j);
  });
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

}  // namespace

bool few_rows_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                   int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m < 2 || m > 8 || k < kMinK || n * k * static_cast<int64_t>(sizeof(float)) < kMinBytes || !has_avx512())
    return false;
  switch (m) {
    case 2: few_rows<2>(a, lda, b, ldb, n, k, alpha, beta, c, ldc); break;
    case 3: few_rows<3>(a, lda, b, ldb, n, k, alpha, beta, c, ldc); break;
    case 4: few_rows<4>(a, lda, b, ldb, n, k, alpha, beta, c, ldc); break;
    case 5: few_rows<5>(a, lda, b, ldb, n, k, alpha, beta, c, ldc); break;
    case 6: few_rows<6>(a, lda, b, ldb, n, k, alpha, beta, c, ldc); break;
    case 7: few_rows<7>(a, lda, b, ldb, n, k, alpha, beta, c, ldc); break;
    default: few_rows<8>(a, lda, b, ldb, n, k, alpha, beta, c, ldc); break;
  }
  return true;
}

}  // namespace mpncov::cpu
