// Float32 convolution weight gradients from oneDNN's kernel layouts that tile both channel dimensions by 16
// (OIhw16i16o, IOhw16o16i, OIhw16o16i: what its direct and 1x1 kernels use) back to our plain (O, I, kh, kw)
// order, written or added. oneDNN's own reorder, accumulating, took 2.5 ms for a 512 x 2048 1x1 layer's and
// 7 ms for a 2048 x 2048 one's (4.5 GB/s); a tile pair at a time across the threads, about 0.3 and 1 ms
// (blocked_weights.cpp). The other direction stays with oneDNN, whose copies there ran as fast or faster.
#pragma once
#include <dnnl.hpp>

namespace mpncov::cpu {

// Whether `plain` is a float32 (O, I, kh, kw) in that order and `blocked` the same weights in a layout
// these copies take: float32, two inner blocks of 16 over O and I (either nesting), no padding, any order of
// the outer blocks.
bool blocked_weights_fit(const dnnl::memory::desc& plain, const dnnl::memory::desc& blocked);

// blocked -> plain (`layout` describes `blocked`), added to what plain holds when accumulate, else written.
void weights_from_blocked(const float* blocked, float* plain, const dnnl::memory::desc& layout, bool accumulate);

}  // namespace mpncov::cpu
