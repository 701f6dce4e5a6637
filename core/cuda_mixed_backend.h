// The CUDA backend of core/mixed_ops.h (bfloat16 mixed precision), on the device's stream: the operands of
// the products are rounded to bfloat16 and cuDNN / cuBLAS multiply them with float32 accumulation (tensor
// cores). Float32 in and out, as on the CPU, with one difference: cuDNN's bfloat16 convolutions write
// bfloat16 results (the output, the input gradient, the weight gradient), widened back to float32 here, as
// PyTorch's autocast does; the CPU's oneDNN kernels keep them float32. Defined only in builds with CUDA
// (see core/cuda_backend.h).
#pragma once
#include <cstdint>

#include "core/nn_ops.h"

namespace mpncov::cuda {

// As conv2d_forward / conv2d_backward (core/cuda_nn_backend.h): dx written, dw and db accumulated.
void conv2d_forward_bf16(int device, const float* x, const float* w, const float* b, float* y, int64_t n,
                         const ops::ConvGeometry& g, int64_t out_channels, int64_t groups);
void conv2d_backward_bf16(int device, const float* x, const float* w, const float* dy, float* dx, float* dw,
                          float* db, int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups);

// As gemm (core/cuda_backend.h) with bfloat16 operands: cublasGemmStridedBatchedEx, CUBLAS_COMPUTE_32F,
// float32 C (alpha and beta applied in float32).
void gemm_bf16(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
               int64_t ldc, int64_t stride_c, int64_t batch);

// y[i] = x[i] rounded to the nearest bfloat16, stored as float32 (y may be x).
void round_to_bf16(int device, const float* x, float* y, int64_t count);

// The bfloat16 dtype's conversions (ops::cast), core/half.h's rule bit for bit: y[i] = bf16(x[i]); and
// y[i] = float(x[i]), or y[i] += float(x[i]) when accumulate.
void to_bf16(int device, const float* x, uint16_t* y, int64_t count);
void from_bf16(int device, const uint16_t* x, float* y, int64_t count, bool accumulate = false);

}  // namespace mpncov::cuda
