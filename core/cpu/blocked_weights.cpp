// Weights from oneDNN's 16x16-tiled layouts to (O, I, kh, kw), a tile pair (16 outputs, 16 inputs, every
// tap) at a time: its plain side is 16 runs of 16 kh kw contiguous floats, its blocked side kh kw tiles of
// 256 floats, small enough for the first-level cache, so each side is read or written once, in order.
#include "core/cpu/blocked_weights.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/cpu/parallel.h"

namespace mpncov::cpu {
namespace {

constexpr int64_t kBlock = 16;

// Where the blocked layout puts (o, i, h, w).
struct Tiling {
  int64_t o, i, kh, kw;         // the weights' dimensions
  int64_t stride[4];            // between outer blocks: O block, I block, h, w
  bool o_inner;                 // within a tile, o varies fastest (16i16o), else i does (16o16i)
  int64_t tile(int64_t ob, int64_t ib, int64_t h, int64_t w) const {
    return ob * stride[0] + ib * stride[1] + h * stride[2] + w * stride[3];
  }
};

Tiling tiling_of(const dnnl::memory::desc& layout) {
  const dnnl_memory_desc_t& d = layout.data;
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  Tiling t{};
  t.o = d.dims[0];
  t.i = d.dims[1];
  t.kh = d.dims[2];
  t.kw = d.dims[3];
  for (int k = 0; k < 4; ++k) t.stride[k] = b.strides[k];
  t.o_inner = b.inner_idxs[1] == 0;
  return t;
}

// The tile pair (ob, ib) copied through `local`, the pair's plain weights side by side (16 runs of 16 kh kw
// floats): the blocked side is read tile by tile in its own order, the plain side written (or added to) as
// those runs, so both move contiguously and only the transposition inside `local` (first-level cache)
// strides.
template <bool Add, bool OInner>
void copy_pair(const Tiling& t, int64_t ob, int64_t ib, float* plain, const float* blocked, float* local) {
  const int64_t taps = t.kh * t.kw, run = kBlock * taps, o_stride = t.i * taps;
  float* first = plain + (ob * kBlock * t.i + ib * kBlock) * taps;
  for (int64_t h = 0; h < t.kh; ++h)
    for (int64_t w = 0; w < t.kw; ++w) {
      const float* tile = blocked + t.tile(ob, ib, h, w);
      float* tap = local + h * t.kw + w;
      for (int64_t x = 0; x < kBlock; ++x)
        for (int64_t y = 0; y < kBlock; ++y) {  // tile[x * 16 + y]: (oo, ii) = (y, x) when o is inner
          (OInner ? tap[y * run + x * taps] : tap[x * run + y * taps]) = tile[x * kBlock + y];
        }
    }
  if (!Add)
    for (int64_t oo = 0; oo < kBlock; ++oo) std::memcpy(first + oo * o_stride, local + oo * run, sizeof(float) * run);
  else
    for (int64_t oo = 0; oo < kBlock; ++oo) {
      float* to = first + oo * o_stride;
      const float* from = local + oo * run;
      for (int64_t k = 0; k < run; ++k) to[k] += from[k];
    }
}

template <bool Add>
void copy_all(const Tiling& t, float* plain, const float* blocked) {
  const int64_t in_blocks = t.i / kBlock, pairs = t.o / kBlock * in_blocks;
#pragma omp parallel for schedule(static) if (t.o * t.i * t.kh * t.kw >= kParallelWork)
  for (int64_t p = 0; p < pairs; ++p) {
    thread_local std::vector<float> local;
    local.resize(static_cast<size_t>(kBlock * kBlock * t.kh * t.kw));
    if (t.o_inner)
      copy_pair<Add, true>(t, p / in_blocks, p % in_blocks, plain, blocked, local.data());
    else
      copy_pair<Add, false>(t, p / in_blocks, p % in_blocks, plain, blocked, local.data());
  }
}

}  // namespace

bool blocked_weights_fit(const dnnl::memory::desc& plain, const dnnl::memory::desc& blocked) {
  const dnnl_memory_desc_t &p = plain.data, &d = blocked.data;
  if (p.ndims != 4 || d.ndims != 4 || p.data_type != dnnl_f32 || d.data_type != dnnl_f32) return false;
  if (p.format_kind != dnnl_blocked || d.format_kind != dnnl_blocked || p.extra.flags != 0 || d.extra.flags != 0)
    return false;
  if (p.offset0 != 0 || d.offset0 != 0) return false;
  const dnnl_blocking_desc_t &pb = p.format_desc.blocking, &db = d.format_desc.blocking;
  int64_t dense = 1;
  for (int k = 3; k >= 0; --k) {  // plain: (O, I, kh, kw), dense, unpadded
    if (p.dims[k] != d.dims[k] || p.padded_dims[k] != p.dims[k] || d.padded_dims[k] != d.dims[k]) return false;
    if (pb.strides[k] != dense) return false;
    dense *= p.dims[k];
  }
  if (pb.inner_nblks != 0 || db.inner_nblks != 2 || db.inner_blks[0] != kBlock || db.inner_blks[1] != kBlock)
    return false;
  const bool nesting =
      (db.inner_idxs[0] == 0 && db.inner_idxs[1] == 1) || (db.inner_idxs[0] == 1 && db.inner_idxs[1] == 0);
  return nesting && d.dims[0] % kBlock == 0 && d.dims[1] % kBlock == 0;
}

void weights_from_blocked(const float* blocked, float* plain, const dnnl::memory::desc& layout, bool accumulate) {
  if (accumulate)
    copy_all<true>(tiling_of(layout), plain, blocked);
  else
    copy_all<false>(tiling_of(layout), plain, blocked);
}

}  // namespace mpncov::cpu
