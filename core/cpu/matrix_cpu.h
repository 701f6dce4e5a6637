// The CPU backend of core/matrix_ops.h and core/sketch_ops.h, pointer-level, float and double;
// core/matrix_ops.cpp and core/sketch_ops.cpp have checked the arguments. The CUDA backend
// (core/cuda_matrix_backend.h) has the same functions in float. Sizes: `batch` matrices of n x n, or
// `rows` rows of `cols` elements.
#pragma once
#include <cstdint>

#include "core/matrix_ops.h"

namespace mpncov::cpu {

// c_b = alpha op(a_b) op(b_b) + beta c_b, c_b n x n (ld n), op(a_b) n x k.
template <typename T>
void square_matmul(bool trans_a, bool trans_b, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta, T* c, int64_t batch,
                   ops::Structure structure);
template <typename T>
void add_identity(const T* x, T alpha, T beta, T* out, const T* p, const T* q, int64_t batch, int64_t n);
template <typename T>
void symmetric_combine(T alpha, const T* x, T beta, const T* w, int sign, T gamma, const T* z, T* out,
                       int64_t batch, int64_t n);
template <typename T>
void trace(const T* x, T* out, int64_t batch, int64_t n);
template <typename T>
void batched_dot(const T* x, const T* y, T* out, int64_t batch, int64_t per_sample);
template <typename T>
void trace_guard(const T* trace, double eps, T* used, T* keep, int64_t batch);
template <typename T>
void center_rows(const T* x, T* out, int64_t rows, int64_t cols);
template <typename T>
void triu_gather(const T* x, const T* scale, T* out, int64_t batch, int64_t n);
template <typename T>
void triu_scatter(const T* g, const T* scale, T* out, int64_t batch, int64_t n, bool symmetric);
template <typename T>
void signed_sqrt(const T* x, T thresh, T* y, int64_t count);
template <typename T>
void signed_sqrt_backward(const T* x, const T* dy, T thresh, T* dx, int64_t count);
template <typename T>
void l2_normalize_rows(const T* x, T eps, T* y, T* norm, int64_t rows, int64_t cols);
template <typename T>
void l2_normalize_rows_backward(const T* y, const T* norm, const T* dy, T eps, T* dx, int64_t rows, int64_t cols);

// ---- compact bilinear pooling (core/sketch_ops.h) ----
template <typename T>
void count_sketch(const T* x, const T* hash, const T* sign, T* out, int64_t batch, int64_t channels,
                  int64_t positions, int64_t dim);
template <typename T>
void spectrum_product_sum(const T* a, const T* b, T* out, int64_t batch, int64_t positions, int64_t bins);
template <typename T>
void sketch_gram_gather(const T* g, const T* h1, const T* s1, const T* h2, const T* s2, T* out, int64_t batch,
                        int64_t channels, int64_t dim);
// Real FFTs of `rows` rows of length n (core/fft.h): x (rows, n) <-> y (rows, n/2 + 1, 2), unnormalised.
template <typename T>
void rfft(const T* x, T* y, int64_t rows, int64_t n);
template <typename T>
void irfft(const T* y, T* x, int64_t rows, int64_t n);

}  // namespace mpncov::cpu
