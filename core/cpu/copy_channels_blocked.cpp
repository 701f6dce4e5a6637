// Copying a range of channels between tensors in channel blocks (core/layout.h: NCHW, NHWC, nChw16c),
// each tensor with its own block: concat and its backward in the kernel layouts. At one pixel, channels
// are contiguous within a block, so the range splits into runs at the block boundaries of either side
// (the same for every pixel); a run is copied pixel by pixel, or in one piece where it is a whole block
// on both sides (nChw16c at offsets that are multiples of 16: a block's slab is contiguous). A run may
// start and end anywhere in a block, so offsets need not be multiples of the block.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/bfloat16.h"
#include "core/cpu/blocked.h"

namespace mpncov::cpu {

template <typename S>
void copy_channels_blocked(const S* src, int64_t src_channels, int64_t src_block, int64_t src_offset, S* dst,
                           int64_t dst_channels, int64_t dst_block, int64_t dst_offset, int64_t count, int64_t n,
                           int64_t inner) {
  // The runs: [first, first + length) of the copied channels, inside one block on both sides.
  struct Run {
    int64_t first, length;
  };
  std::vector<Run> runs;
  for (int64_t c = 0; c < count;) {
    const int64_t s = src_offset + c, d = dst_offset + c;
    const int64_t length = std::min({count - c, src_block - s % src_block, dst_block - d % dst_block});
    runs.push_back({c, length});
    c += length;
  }
  const int64_t run_count = static_cast<int64_t>(runs.size());
  // Pixels in pieces, so that a batch of one with few runs (NHWC) still uses every thread.
  constexpr int64_t kPiece = 256;
  const int64_t pieces = (inner + kPiece - 1) / kPiece;
  const int64_t src_blocks = src_channels / src_block, dst_blocks = dst_channels / dst_block;
#pragma omp parallel for schedule(static) collapse(3) if (n * count * inner > (1 << 16))
  for (int64_t image = 0; image < n; ++image)
    for (int64_t r = 0; r < run_count; ++r)
      for (int64_t piece = 0; piece < pieces; ++piece) {
        const Run run = runs[static_cast<size_t>(r)];
        const int64_t s = src_offset + run.first, d = dst_offset + run.first;
        const int64_t p0 = piece * kPiece, p1 = std::min(inner, p0 + kPiece);
        const S* from = src + ((image * src_blocks + s / src_block) * inner + p0) * src_block + s % src_block;
        S* to = dst + ((image * dst_blocks + d / dst_block) * inner + p0) * dst_block + d % dst_block;
        if (run.length == src_block && run.length == dst_block) {  // whole blocks: the pixels are contiguous
          std::memcpy(to, from, static_cast<size_t>((p1 - p0) * run.length) * sizeof(S));
          continue;
        }
        for (int64_t p = p0; p < p1; ++p, from += src_block, to += dst_block)
          std::memcpy(to, from, static_cast<size_t>(run.length) * sizeof(S));
      }
}

#define MPNCOV_INSTANTIATE(S)                                                                                \
  template void copy_channels_blocked<S>(const S*, int64_t, int64_t, int64_t, S*, int64_t, int64_t, int64_t, \
                                         int64_t, int64_t, int64_t);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(bfloat16)
#undef MPNCOV_INSTANTIATE

}  // namespace mpncov::cpu
