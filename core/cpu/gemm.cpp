// GEMM on the CPU through OpenBLAS (row-major CBLAS).
#include <cblas.h>

#include "core/cpu/cpu_ops.h"

namespace mpncov::cpu {
namespace {

void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a,
          int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta, T* c, int64_t ldc,
          int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0) return;
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  for (int64_t i = 0; i < batch; ++i) {
    T* ci = c + i * stride_c;
    if (k == 0) {  // BLAS may not touch C when k = 0; the definition says C = beta * C.
      for (int64_t r = 0; r < m; ++r)
        for (int64_t col = 0; col < n; ++col) ci[r * ldc + col] = beta == T(0) ? T(0) : beta * ci[r * ldc + col];
      continue;
    }
    call(ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a + i * stride_a,
         static_cast<int>(lda), b + i * stride_b, static_cast<int>(ldb), beta, ci, static_cast<int>(ldc));
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                          const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, int64_t,
                           const double*, int64_t, int64_t, double, double*, int64_t, int64_t, int64_t);

}  // namespace mpncov::cpu
