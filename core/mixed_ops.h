// Mixed-precision (bfloat16) versions of the ops that multiply: convolution and matrix products. They take
// and give float32 tensors, like their float32 counterparts in core/nn_ops.h and core/ops.h, but round the
// multiplied operands to bfloat16 (nearest even) and accumulate in float32, as PyTorch's autocast does.
// Weights, biases and their gradients stay float32 (the optimizer's master copies). On the CPU the
// convolution's activations (input, output and their gradients) may also be stored in bfloat16, as a net
// keeps them in mixed precision (docs/layouts.md): the kernels then read and write bfloat16 directly.
// CPU: oneDNN's bfloat16 convolutions. CUDA: cuDNN and cuBLAS on bfloat16 copies with
// float32 accumulation (core/cuda_mixed_backend.h; cuDNN's convolutions round their results to bfloat16).
#pragma once
#include "core/nn_ops.h"

namespace mpncov::ops {

// As conv2d_forward / conv2d_backward (dx written, dweight and dbias accumulated); activations float32 or
// (CPU) bfloat16, the input sharing its gradient's type and layout, the output its gradient's. Forward multiplies bf16(x) by bf16(weight); the input gradient bf16(dy) by bf16(weight); the weight
// gradient bf16(x) by bf16(dy). The bias and its gradient are float32.
// accumulate_dweight false: dweight is written (=), as conv2d_backward. cache (may be null): see
// ConvWeightCache (core/nn_ops.h); a training layer passes the same one to its forward and backward.
void conv2d_forward_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                         const Conv2dParams& p, ConvWeightCache* cache = nullptr);
void conv2d_backward_bf16(const Tensor& x, const Tensor& weight, const Tensor& dy, const Tensor& dx,
                          const Tensor& dweight, const Tensor& dbias, const Conv2dParams& p,
                          bool accumulate_dweight = true, ConvWeightCache* cache = nullptr);

// As matmul, float32 tensors: C = alpha * op(bf16(A)) op(bf16(B)) + beta * C. A product of two bfloat16
// values is exact in float32, so rounding the operands and multiplying in float32 is bfloat16 math with
// float32 accumulation.
void matmul_bf16(const Tensor& a, const Tensor& b, const Tensor& c, bool trans_a = false, bool trans_b = false,
                 double alpha = 1.0, double beta = 0.0);

// y = x rounded to the nearest bfloat16 (ties to even, NaN kept), stored as float32. y may be x.
void round_to_bf16(const Tensor& x, const Tensor& y);

}  // namespace mpncov::ops
