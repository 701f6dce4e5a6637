// The CPU float32 kernels behind core/layout_ops.h and the layout-aware paths of core/nn_ops.h: tensors
// (n, c, inner) in channel blocks of `block` channels (core/layout.h; block divides c).
#pragma once
#include <cstdint>

#include "core/nn_ops.h"

namespace mpncov::cpu {

// As batch_norm_forward / batch_norm_backward (nn_cpu.h), in the blocked layout.
void batch_norm_forward_blocked(const float* x, const float* weight, const float* bias, float* y, float* mean,
                                float* invstd, float* running_mean, float* running_var, int64_t n, int64_t c,
                                int64_t inner, int64_t block, bool training, double momentum, double eps);
void batch_norm_backward_blocked(const float* x, const float* dy, const float* weight, const float* mean,
                                 const float* invstd, float* dx, float* dweight, float* dbias, int64_t n, int64_t c,
                                 int64_t inner, int64_t block, bool training);
// Global average pooling: x blocked (n, c, inner) -> y (n, c), and back (dx written).
void global_avg_pool_blocked_forward(const float* x, float* y, int64_t n, int64_t c, int64_t inner, int64_t block);
void global_avg_pool_blocked_backward(const float* dy, float* dx, int64_t n, int64_t c, int64_t inner, int64_t block);
// Max pooling with the NCHW kernel's maxima and indices (h * W + w within the plane); index is laid out
// as y. s.planes = n * c.
void max_pool_blocked_forward(const float* x, float* y, int64_t* index, const ops::detail::PoolShape& s,
                              const ops::Pool2dParams& p, int64_t block);
void max_pool_blocked_backward(const float* dy, const int64_t* index, float* dx, const ops::detail::PoolShape& s,
                               int64_t block);
// y (blocks of y_block) = x (blocks of x_block).
void convert_layout(const float* x, int64_t x_block, float* y, int64_t y_block, int64_t n, int64_t c, int64_t inner);

}  // namespace mpncov::cpu
