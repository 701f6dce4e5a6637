// The CUDA backend of core/matrix_ops.h, core/sketch_ops.h and core/fft.h (core/cuda/matrix_ops.cu,
// core/cuda/sketch_ops.cu, core/cuda/fft.cu), float32, on the device's stream; defined only in builds with CUDA (see
// core/cuda_backend.h). Same argument meanings as core/cpu/matrix_cpu.h; square_matmul is ops::gemm on CUDA
// and needs nothing here.
#pragma once
#include <cstdint>

#include "core/matrix_ops.h"

namespace mpncov::cuda {

void add_identity(int device, const float* x, float alpha, float beta, float* out, const float* p, const float* q,
                  int64_t batch, int64_t n);
void symmetric_combine(int device, float alpha, const float* x, float beta, const float* w, int sign, float gamma,
                       const float* z, float* out, int64_t batch, int64_t n);
void trace(int device, const float* x, float* out, int64_t batch, int64_t n);
void batched_dot(int device, const float* x, const float* y, float* out, int64_t batch, int64_t per_sample);
void trace_guard(int device, const float* trace, double eps, float* used, float* keep, int64_t batch);
void center_rows(int device, const float* x, float* out, int64_t rows, int64_t cols);
void triu_gather(int device, const float* x, const float* scale, float* out, int64_t batch, int64_t n);
void triu_scatter(int device, const float* g, const float* scale, float* out, int64_t batch, int64_t n,
                  bool symmetric);
void signed_sqrt(int device, const float* x, float thresh, float* y, int64_t count);
void signed_sqrt_backward(int device, const float* x, const float* dy, float thresh, float* dx, int64_t count);
void l2_normalize_rows(int device, const float* x, float eps, float* y, float* norm, int64_t rows, int64_t cols);
void l2_normalize_rows_backward(int device, const float* y, const float* norm, const float* dy, float eps,
                                float* dx, int64_t rows, int64_t cols);

void count_sketch(int device, const float* x, const float* hash, const float* sign, float* out, int64_t batch,
                  int64_t channels, int64_t positions, int64_t dim);
void spectrum_product_sum(int device, const float* a, const float* b, float* out, int64_t batch,
                          int64_t positions, int64_t bins);
void sketch_gram_gather(int device, const float* g, const float* h1, const float* s1, const float* h2,
                        const float* s2, float* out, int64_t batch, int64_t channels, int64_t dim);
// cuFFT, plans cached per (device, n, rows).
void rfft(int device, const float* x, float* y, int64_t rows, int64_t n);
void irfft(int device, const float* y, float* x, int64_t rows, int64_t n);

}  // namespace mpncov::cuda
