// GEMM on the CPU. Float products go to oneDNN's batched matmul (matmul_onednn.cpp), which picks kernels
// for the CPU it finds where OpenBLAS runs those of the core type it is told (often an older one: this
// AVX-512 machine's environment says OPENBLAS_CORETYPE=Haswell, 1.7-2x oneDNN's time).
//
// Double products, and float ones oneDNN has no optimised kernel for, go to OpenBLAS (row-major CBLAS).
// A batch of products is cut into tasks that one OpenMP team shares (core/cpu/parallel.h), each task one
// single-threaded BLAS call: whole products when there are enough of them, otherwise blocks of each C
// (columns when C is wider than tall, else rows), so a single product, say a batch-1 layer, still uses
// every thread. Each element of C is one dot product whichever block holds it, so the cut does not change
// the arithmetic.
//
// A product with one row or one column of C (a batch-1 linear layer, a bias gradient) is a matrix-vector
// product: it goes to gemv, which streams the matrix once. OpenBLAS's gemm would pack the whole matrix
// first: for the 1000 x 32896 classifier of mpncov_resnet50 at batch 1 that took 2.5x as long. With 2 to 8
// rows (a classifier at a small batch: C = A B^T with B the weights) the float product streams B once in
// core/cpu/few_rows_gemm.cpp where the CPU has AVX-512 and B is large.
#include <cblas.h>

#include <numeric>
#include <type_traits>

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
void call_gemv(CBLAS_TRANSPOSE t, int m, int n, float alpha, const float* a, int lda, const float* x, int incx,
               float* y, int incy) {
  cblas_sgemv(CblasRowMajor, t, m, n, alpha, a, lda, x, incx, 1.0f, y, incy);
}
void call_gemv(CBLAS_TRANSPOSE t, int m, int n, double alpha, const double* a, int lda, const double* x, int incx,
               double* y, int incy) {
  cblas_dgemv(CblasRowMajor, t, m, n, alpha, a, lda, x, incx, 1.0, y, incy);
}

// C = alpha op(A) op(B) + beta C when C is a single row (m = 1) or column (n = 1), as y = alpha M x + beta y.
// beta is applied here so that beta = 0 never reads C (it may hold NaN).
template <typename T>
void matrix_vector(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const int64_t len = m == 1 ? n : m, inc_y = m == 1 ? 1 : ldc;
  for (int64_t i = 0; i < len; ++i) c[i * inc_y] = beta == T(0) ? T(0) : beta * c[i * inc_y];
  if (m == 1) {  // y (n) = op(B)^T x with x the row of op(A): B (n x k) untransposed when trans_b
    const int64_t inc_x = trans_a ? lda : 1;
    if (trans_b) call_gemv(CblasNoTrans, static_cast<int>(n), static_cast<int>(k), alpha, b, static_cast<int>(ldb), a,
                           static_cast<int>(inc_x), c, 1);
    else call_gemv(CblasTrans, static_cast<int>(k), static_cast<int>(n), alpha, b, static_cast<int>(ldb), a,
                   static_cast<int>(inc_x), c, 1);
  } else {  // y (m) = op(A) x with x the column of op(B)
    const int64_t inc_x = trans_b ? 1 : ldb;
    if (trans_a) call_gemv(CblasTrans, static_cast<int>(k), static_cast<int>(m), alpha, a, static_cast<int>(lda), b,
                           static_cast<int>(inc_x), c, static_cast<int>(ldc));
    else call_gemv(CblasNoTrans, static_cast<int>(m), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
                   static_cast<int>(inc_x), c, static_cast<int>(ldc));
  }
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
  if constexpr (std::is_same_v<T, float>) {
    if (batch == 1 && !trans_a && trans_b && k > 0 && few_rows_gemm(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
      return;
    if (m > 1 && n > 1 && onednn_matmul(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta,
                                        c, ldc, stride_c, batch))
      return;
  }
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  const int64_t parts = parts_per_product(m, n, k, batch);
  const bool by_columns = n >= m;
  const bool vector = m == 1 || n == 1;  // decided for the whole product, so that every block takes the same route
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
    if (vector)
      return matrix_vector(trans_a, trans_b, r1 - r0, c1 - c0, k, alpha, ai, lda, bi, ldb, beta, ci, ldc);
    call(ta, tb, static_cast<int>(r1 - r0), static_cast<int>(c1 - c0), static_cast<int>(k), alpha, ai,
         static_cast<int>(lda), bi, static_cast<int>(ldb), beta, ci, static_cast<int>(ldc));
  });
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                          const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, int64_t,
                           const double*, int64_t, int64_t, double, double*, int64_t, int64_t, int64_t);

}  // namespace mpncov::cpu
