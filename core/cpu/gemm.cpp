// GEMM on the CPU through OpenBLAS (row-major CBLAS). A batch of products is cut into tasks that one
// OpenMP team shares (core/cpu/parallel.h), each task one single-threaded BLAS call: whole products when
// there are enough of them, otherwise blocks of each C (columns when C is wider than tall, else rows), so
// a single product, say a batch-1 layer, still uses every thread. Each element of C is one dot product
// whichever block holds it, so the cut does not change the arithmetic.
#include <cblas.h>

#include <numeric>

#include "core/cpu/cpu_ops.h"
#include "core/cpu/parallel.h"

namespace mpncov::cpu {
namespace {

constexpr int64_t kMinTaskWork = int64_t{1} << 17;  // multiply-adds below which a task costs more than it saves
constexpr int64_t kAlign = 16;                       // block boundaries on whole cache lines of C

void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a,
          int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Blocks per product: enough that batch * parts spreads evenly over the threads, none smaller than
// kMinTaskWork multiply-adds or one aligned strip.
int64_t parts_per_product(int64_t m, int64_t n, int64_t k, int64_t batch) {
  const int64_t threads = free_threads();
  if (threads == 1 || batch >= 4 * threads) return 1;  // many products per thread: imbalance is small
  int64_t parts = threads / std::gcd(batch, threads);
  const int64_t strips = (std::max(m, n) + kAlign - 1) / kAlign;
  const int64_t work = m * n * std::max<int64_t>(k, 1);
  return std::max<int64_t>(1, std::min({parts, strips, work / kMinTaskWork}));
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta, T* c, int64_t ldc,
          int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  const int64_t parts = parts_per_product(m, n, k, batch);
  const bool by_columns = n >= m;
  const bool worth = batch * m * n * std::max<int64_t>(k, 1) >= 2 * kMinTaskWork;
  run_tasks(batch * parts, worth, [&](int64_t t) {
    const int64_t i = t / parts;
    int64_t r0 = 0, r1 = m, c0 = 0, c1 = n;
    if (by_columns) part_range(n, parts, t % parts, kAlign, c0, c1);
    else part_range(m, parts, t % parts, kAlign, r0, r1);
    if (r0 >= r1 || c0 >= c1) return;
    T* ci = c + i * stride_c + r0 * ldc + c0;
    if (k == 0) {  // BLAS may not touch C when k = 0; the definition says C = beta * C.
      for (int64_t r = 0; r < r1 - r0; ++r)
        for (int64_t col = 0; col < c1 - c0; ++col)
          ci[r * ldc + col] = beta == T(0) ? T(0) : beta * ci[r * ldc + col];
      return;
    }
    // Rows r0.. of op(A): rows of A, or its columns when transposed; columns c0.. of op(B) likewise.
    const T* ai = a + i * stride_a + (trans_a ? r0 : r0 * lda);
    const T* bi = b + i * stride_b + (trans_b ? c0 * ldb : c0);
    call(ta, tb, static_cast<int>(r1 - r0), static_cast<int>(c1 - c0), static_cast<int>(k), alpha, ai,
         static_cast<int>(lda), bi, static_cast<int>(ldb), beta, ci, static_cast<int>(ldc));
  });
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                          const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, int64_t,
                           const double*, int64_t, int64_t, double, double*, int64_t, int64_t, int64_t);

}  // namespace mpncov::cpu
