// The CPU backend: each op as a plain loop (OpenMP across elements) or an OpenBLAS call, for float and
// double; unary, binary and axpby also for bfloat16 storage (core/bfloat16.h). Pointer-level;
// core/ops.cpp has already checked shapes, dtypes and devices.
#pragma once
#include <cstdint>

#include "core/bfloat16.h"
#include "core/ops.h"

namespace mpncov::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta, T* c, int64_t ldc,
          int64_t stride_c, int64_t batch);
// C = alpha A B^T + beta C (row-major, one product) for 2 to 8 rows of C and a large B, streamed once
// (core/cpu/few_rows_gemm.cpp); false, touching nothing, where that route does not apply (then BLAS).
bool few_rows_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                   int64_t ldb, float beta, float* c, int64_t ldc);
// The same product (float, any batch) through oneDNN's matmul (core/cpu/matmul_onednn.cpp); false,
// touching nothing, where oneDNN has no optimised kernel for it (then BLAS). A sum post-op applies beta,
// so beta = 0 never reads C.
bool onednn_matmul(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                   int64_t ldc, int64_t stride_c, int64_t batch);
// One image: x (C, H, W) -> col (C*kh*kw, oh*ow), and back (col2im accumulates).
template <typename T>
void im2col(const T* x, const ops::ConvGeometry& g, T* col);
template <typename T>
void col2im(const T* col, const ops::ConvGeometry& g, T* x);
template <typename T>
void unary(ops::Unary op, const T* x, T* y, int64_t n);
template <typename T>
void binary(ops::Binary op, const T* a, const T* b, T* out, const ops::detail::BroadcastPlan& plan);
template <typename T>
void binary_scalar(ops::Binary op, const T* a, T s, T* out, int64_t n);
template <typename S>
void axpby(compute_t<S> alpha, const S* x, compute_t<S> beta, S* y, int64_t n);
template <typename T>
void fill(T* p, int64_t n, T value);
template <typename T>
void reduce(ops::Reduce op, const T* x, const ops::detail::ReducePlan& plan, T* out, int64_t* index);
template <typename T>
void fill_random(ops::detail::Random kind, T* p, int64_t n, double a, double b, uint64_t seed,
                 uint64_t stream, uint64_t first);

}  // namespace mpncov::cpu
