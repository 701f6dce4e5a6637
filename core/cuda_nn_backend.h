// The CUDA backend of core/nn_ops.h, float32, on the device's stream: core/cuda/<file>.cu implements what
// core/cpu/<file>.cpp does on the CPU, with the same argument meanings (core/cpu/nn_cpu.h). Defined only in
// builds with CUDA (see core/cuda_backend.h).
#pragma once
#include <cstdint>

#include "core/nn_ops.h"

namespace mpncov::cuda {

using ops::detail::PoolShape;

// cuDNN; the algorithm is chosen once per shape and cached, its workspace bounded.
void conv2d_forward(int device, const float* x, const float* w, const float* b, float* y, int64_t n,
                    const ops::ConvGeometry& g, int64_t out_channels, int64_t groups);
void conv2d_backward(int device, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                     int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups);

void max_pool2d_forward(int device, const float* x, float* y, int64_t* index, const PoolShape& s,
                        const ops::Pool2dParams& p);
// Backwards gather (no atomics): reproducible, and equal to the CPU float32 result.
void max_pool2d_backward(int device, const float* dy, const int64_t* index, float* dx, const PoolShape& s,
                         const ops::Pool2dParams& p);
void avg_pool2d_forward(int device, const float* x, float* y, const PoolShape& s, const ops::Pool2dParams& p);
void avg_pool2d_backward(int device, const float* dy, float* dx, const PoolShape& s, const ops::Pool2dParams& p);
void adaptive_avg_pool2d_forward(int device, const float* x, float* y, const PoolShape& s);
void adaptive_avg_pool2d_backward(int device, const float* dy, float* dx, const PoolShape& s);

void batch_norm_forward(int device, const float* x, const float* weight, const float* bias, float* y, float* mean,
                        float* invstd, float* running_mean, float* running_var, int64_t n, int64_t c, int64_t inner,
                        bool training, double momentum, double eps);
void batch_norm_backward(int device, const float* x, const float* dy, const float* weight, const float* mean,
                         const float* invstd, float* dx, float* dweight, float* dbias, int64_t n, int64_t c,
                         int64_t inner, bool training);

void lrn_forward(int device, const float* x, float* y, float* scale, int64_t n, int64_t c, int64_t inner,
                 const ops::LrnParams& p);
void lrn_backward(int device, const float* x, const float* y, const float* scale, const float* dy, float* dx,
                  int64_t n, int64_t c, int64_t inner, const ops::LrnParams& p);

void softmax_cross_entropy_forward(int device, const float* logits, const int64_t* labels, float* prob, float* loss,
                                   int64_t n, int64_t k, double smoothing);
void softmax_cross_entropy_backward(int device, const float* prob, const int64_t* labels, const float* dloss,
                                    float* dlogits, int64_t n, int64_t k, double smoothing);

void relu_backward(int device, const float* y, const float* dy, float* dx, int64_t n);
void copy_channels(int device, const float* src, int64_t src_channels, int64_t src_offset, float* dst,
                   int64_t dst_channels, int64_t dst_offset, int64_t count, int64_t n, int64_t inner);

}  // namespace mpncov::cuda
