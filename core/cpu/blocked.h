// The CPU kernels behind core/layout_ops.h and the layout-aware paths of core/nn_ops.h: tensors
// (n, c, inner) in channel blocks of `block` channels (core/layout.h; block divides c). The activations
// and their gradients are stored as S, float or bfloat16 (computed in float32, results rounded:
// core/bfloat16.h); per-channel tensors (weights, statistics) and global pooling's (n, c) are float.
#pragma once
#include <cstdint>
#include <type_traits>

#include "core/bfloat16.h"
#include "core/cpu/isa_clones.h"
#include "core/nn_ops.h"

namespace mpncov::cpu {

// Channels per pass of the pooling kernels: four AVX2 registers of floats (measured best of 16, 32).
constexpr int64_t kPoolTile = 32;

// f(first channel, width) over a block in tiles of kPoolTile channels; a block of 16 (nChw16c) and whole
// tiles get their width as a constant, so their loops unroll into whole vectors.
template <typename F>
inline MPNCOV_CLONE_INLINE void for_tiles(int64_t block, F f) {
  if (block == 16) return f(int64_t{0}, std::integral_constant<int64_t, 16>());
  int64_t c = 0;
  for (; c + kPoolTile <= block; c += kPoolTile) f(c, std::integral_constant<int64_t, kPoolTile>());
  if (c < block) f(c, block - c);
}

// As batch_norm_forward / batch_norm_backward (nn_cpu.h), in the blocked layout, with the same fused ReLU
// and residual add (the normalised value rounded to S before the add, as the two layers store it).
template <typename S>
void batch_norm_forward_blocked(const S* x, const float* weight, const float* bias, S* y, float* mean, float* invstd,
                                float* running_mean, float* running_var, int64_t n, int64_t c, int64_t inner,
                                int64_t block, bool training, double momentum, double eps, bool relu,
                                const S* residual = nullptr);
template <typename S>
void batch_norm_backward_blocked(const S* x, const S* dy, const S* relu_out, const float* weight, const float* mean,
                                 const float* invstd, S* dx, float* dweight, float* dbias, int64_t n, int64_t c,
                                 int64_t inner, int64_t block, bool training);
// Global average pooling: x blocked (n, c, inner) -> y (n, c), and back (dx written).
template <typename S>
void global_avg_pool_blocked_forward(const S* x, float* y, int64_t n, int64_t c, int64_t inner, int64_t block);
template <typename S>
void global_avg_pool_blocked_backward(const float* dy, S* dx, int64_t n, int64_t c, int64_t inner, int64_t block);
// Max pooling with the NCHW kernel's maxima and indices (h * W + w within the plane); index is laid out
// as y. s.planes = n * c.
template <typename S>
void max_pool_blocked_forward(const S* x, S* y, int64_t* index, const ops::detail::PoolShape& s,
                              const ops::Pool2dParams& p, int64_t block);
template <typename S>
void max_pool_blocked_backward(const S* dy, const int64_t* index, S* dx, const ops::detail::PoolShape& s,
                               const ops::Pool2dParams& p, int64_t block);
// Average pooling with the NCHW kernel's results, bit for bit (avg_pool_blocked.cpp). s.planes = n * c.
template <typename S>
void avg_pool_blocked_forward(const S* x, S* y, const ops::detail::PoolShape& s, const ops::Pool2dParams& p,
                              int64_t block);
template <typename S>
void avg_pool_blocked_backward(const S* dy, S* dx, const ops::detail::PoolShape& s, const ops::Pool2dParams& p,
                               int64_t block);
// For each of n images: channels [src_offset, src_offset + count) of src (src_channels channels in blocks
// of src_block) into [dst_offset, dst_offset + count) of dst (its own channels and block); inner pixels.
template <typename S>
void copy_channels_blocked(const S* src, int64_t src_channels, int64_t src_block, int64_t src_offset, S* dst,
                           int64_t dst_channels, int64_t dst_block, int64_t dst_offset, int64_t count, int64_t n,
                           int64_t inner);
// y (blocks of y_block) = x (blocks of x_block); between float and bfloat16 rounded to nearest even.
template <typename SX, typename SY>
void convert_layout(const SX* x, int64_t x_block, SY* y, int64_t y_block, int64_t n, int64_t c, int64_t inner);

}  // namespace mpncov::cpu
