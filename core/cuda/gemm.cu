// Strided batched GEMM on CUDA through cuBLAS. Our matrices are row-major and cuBLAS's column-major; a
// row-major m x n matrix with row stride ld is the column-major n x m matrix (its transpose) with the
// same ld. So C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in column-major: cuBLAS gets B as its
// first operand and A as its second, with m and n swapped and the transpose flags kept.
#include <climits>

#include "core/cuda/bf16_convert.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_backend.h"
#include "core/cuda_mixed_backend.h"

namespace mpncov::cuda {
namespace {

// C_b (m x n, ld ldc) = beta * C_b for every batch entry: the product of k = 0 columns. beta = 0 writes
// zeros whatever C held (NaN included).
__global__ void scale_matrices_kernel(float* c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c, float beta,
                                      int64_t total) {
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t col = i % n, row = (i / n) % m, b = i / (m * n);
    float& v = c[b * stride_c + row * ldc + col];
    v = beta == 0.0f ? 0.0f : beta * v;
  }
}

int to_int(int64_t v, const char* what) {
  MPNCOV_CHECK(v >= 0 && v <= INT_MAX, "gemm: ", what, " = ", v, " exceeds cuBLAS's 32-bit limit");
  return static_cast<int>(v);
}

// The elements a strided batch of row-major matrices spans: rows x ld for the first, stride for each next.
int64_t span(int64_t rows, int64_t ld, int64_t stride, int64_t batch) { return (batch - 1) * stride + rows * ld; }

}  // namespace

void gemm(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
          int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  if (k == 0) {  // not left to cuBLAS, whose handling of k = 0 is not documented
    const int64_t total = batch * m * n;
    scale_matrices_kernel<<<blocks_for(total), kThreads, 0, ctx.stream()>>>(c, m, n, ldc, stride_c, beta, total);
    CUDA_CHECK_LAUNCH();
    return;
  }
  // FP32 math (no TF32): the default math mode keeps results within float rounding of the CPU's.
  CUBLAS_CHECK(cublasSgemmStridedBatched(
      ctx.cublas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, to_int(n, "n"),
      to_int(m, "m"), to_int(k, "k"), &alpha, b, to_int(ldb, "ldb"), stride_b, a, to_int(lda, "lda"), stride_a,
      &beta, c, to_int(ldc, "ldc"), stride_c, to_int(batch, "batch")));
  CUDA_CHECK_LAUNCH();
}

void gemm_bf16(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
               int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  if (k == 0) return gemm(device, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                          stride_c, batch);
  Context& ctx = context(device);
  DeviceGuard guard(device);
  // The operands as stored: A is m x k (k x m transposed), B k x n (n x k), each spanning its whole batch.
  const int64_t a_count = span(trans_a ? k : m, lda, stride_a, batch);
  const int64_t b_count = span(trans_b ? n : k, ldb, stride_b, batch);
  Bf16Buffer a16(device, a_count), b16(device, b_count);
  to_bf16(device, a, a16.get(), a_count);
  to_bf16(device, b, b16.get(), b_count);
  // Swapped operands for column-major cuBLAS, as gemm does; bfloat16 in, float32 accumulation and C.
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      ctx.cublas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, to_int(n, "n"),
      to_int(m, "m"), to_int(k, "k"), &alpha, b16.get(), CUDA_R_16BF, to_int(ldb, "ldb"), stride_b, a16.get(),
      CUDA_R_16BF, to_int(lda, "lda"), stride_a, &beta, c, CUDA_R_32F, to_int(ldc, "ldc"), stride_c,
      to_int(batch, "batch"), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
