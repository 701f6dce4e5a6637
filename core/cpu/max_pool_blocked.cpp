// Max pooling over the kernel layouts (nChw16c blocks and NHWC, where the block is all C channels):
// each tap of a window is a run of contiguous channels, so the channels are the innermost loop, in
// tiles of a fixed width that the compiler keeps in vector registers (compare and blend per tap).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>
#include "core/bfloat16.h"
#include "core/cpu/blocked.h"
#include "core/cpu/isa_clones.h"

namespace mpncov::cpu {
namespace {

// One window over `width` channels (kPoolTile as a constant in the hot case): taps in row-major order with
// PyTorch's rule (a larger value or a NaN replaces the best), as pooling.cpp: the same maxima and indices.
// Positions are kept in Pos (int32 where the plane fits): lanes as wide as the floats' make the blend cheap.
template <typename S, typename Pos, typename Width>
inline MPNCOV_CLONE_INLINE void window_max(const S* x, int64_t block, int64_t w, int64_t y0, int64_t y1, int64_t x0, int64_t x1,
                       S* y, int64_t* index, Width width) {
  const int64_t n = width;
  float best[kPoolTile];
  Pos arg[kPoolTile];
  for (int64_t i = 0; i < n; ++i) {
    best[i] = -std::numeric_limits<float>::infinity();
    arg[i] = static_cast<Pos>(y0 * w + x0);
  }
  for (int64_t iy = y0; iy < y1; ++iy)
    for (int64_t ix = x0; ix < x1; ++ix) {
      const S* tap = x + (iy * w + ix) * block;
      const Pos at = static_cast<Pos>(iy * w + ix);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const float v = widen(tap[i]), b = best[i];
        const bool take = v > b || v != v;
        best[i] = take ? v : b;
        arg[i] = take ? at : arg[i];
      }
    }
  for (int64_t i = 0; i < n; ++i) {
    y[i] = narrow<S>(best[i]);
    index[i] = arg[i];
  }
}

// The same maxima without positions (evaluation): half the stores, no blends of positions.
template <typename S, typename Width>
inline MPNCOV_CLONE_INLINE void window_max(const S* x, int64_t block, int64_t w, int64_t y0, int64_t y1, int64_t x0, int64_t x1,
                       S* y, Width width) {
  const int64_t n = width;
  float best[kPoolTile];
  for (int64_t i = 0; i < n; ++i) best[i] = -std::numeric_limits<float>::infinity();
  for (int64_t iy = y0; iy < y1; ++iy)
    for (int64_t ix = x0; ix < x1; ++ix) {
      const S* tap = x + (iy * w + ix) * block;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const float v = widen(tap[i]), b = best[i];
        best[i] = v > b || v != v ? v : b;
      }
    }
  for (int64_t i = 0; i < n; ++i) y[i] = narrow<S>(best[i]);
}

}  // namespace

template <typename S>
MPNCOV_AVX2_CLONES void max_pool_blocked_forward(const S* x, S* y, int64_t* index, const ops::detail::PoolShape& s,
                                                 const ops::Pool2dParams& p, int64_t block) {
  const int64_t segments = s.planes / block, inner = s.h * s.w, out_inner = s.oh * s.ow;
  const bool small_plane = inner <= std::numeric_limits<int32_t>::max();
  // Over (segment, output row): both threads busy at batch 1 too.
#pragma omp parallel for schedule(static) collapse(2) if (s.planes * inner > (1 << 14))
  for (int64_t seg = 0; seg < segments; ++seg)
    for (int64_t oy = 0; oy < s.oh; ++oy) {
      const S* xs = x + seg * inner * block;
      const int64_t y0 = std::max<int64_t>(oy * p.stride_h - p.pad_h, 0);
      const int64_t y1 = std::min(oy * p.stride_h - p.pad_h + p.kernel_h, s.h);
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        const int64_t x0 = std::max<int64_t>(ox * p.stride_w - p.pad_w, 0);
        const int64_t x1 = std::min(ox * p.stride_w - p.pad_w + p.kernel_w, s.w);
        const int64_t o = (seg * out_inner + oy * s.ow + ox) * block;
        if (!index)
          for_tiles(block, [&](int64_t c, auto width) MPNCOV_CLONE_INLINE {
            window_max<S>(xs + c, block, s.w, y0, y1, x0, x1, y + o + c, width);
          });
        else if (small_plane)
          for_tiles(block, [&](int64_t c, auto width) MPNCOV_CLONE_INLINE {
            window_max<S, int32_t>(xs + c, block, s.w, y0, y1, x0, x1, y + o + c, index + o + c, width);
          });
        else
          for_tiles(block, [&](int64_t c, auto width) MPNCOV_CLONE_INLINE {
            window_max<S, int64_t>(xs + c, block, s.w, y0, y1, x0, x1, y + o + c, index + o + c, width);
          });
      }
    }
}

template <typename S>
MPNCOV_AVX2_CLONES void max_pool_blocked_backward(const S* dy, const int64_t* index, S* dx,
                                                  const ops::detail::PoolShape& s, const ops::Pool2dParams& p,
                                                  int64_t block) {
  const int64_t segments = s.planes / block, inner = s.h * s.w, out_inner = s.oh * s.ow, row = s.w * block;
  constexpr bool kFloat = std::is_same_v<S, float>;
#pragma omp parallel if (s.planes * inner > (1 << 14))
  {
    // Overlapping windows add into one input element: in float, as the float kernel does, and a bfloat16
    // segment is rounded once at the end.
    std::vector<float> scratch(kFloat ? 0 : static_cast<size_t>(inner * block));
#pragma omp for schedule(static)
    for (int64_t seg = 0; seg < segments; ++seg) {
      float* d = scratch.data();
      if constexpr (kFloat) d = dx + seg * inner * block;
      S* q = dx + seg * inner * block;
      // Output row by output row, the input rows are zeroed just before its windows first reach them and
      // (bfloat16) rounded once the windows have moved below them: both while they are still in cache.
      int64_t zeroed = 0, rounded = 0;
      const auto round_rows = [&](int64_t end) {
        if constexpr (!kFloat)
          for (int64_t i = rounded * row; i < end * row; ++i) q[i] = narrow<S>(d[i]);
        rounded = end;
      };
      for (int64_t oy = 0; oy < s.oh; ++oy) {
        const int64_t top = std::clamp<int64_t>(oy * p.stride_h - p.pad_h, 0, s.h);
        const int64_t end = std::clamp<int64_t>(oy * p.stride_h - p.pad_h + p.kernel_h, 0, s.h);
        if (end > zeroed) {
          std::fill(d + zeroed * row, d + end * row, 0.0f);
          zeroed = end;
        }
        if (top > rounded) round_rows(top);  // later windows start at or below top
        for (int64_t o = oy * s.ow; o < (oy + 1) * s.ow; ++o) {
          const S* g = dy + (seg * out_inner + o) * block;
          const int64_t* at = index + (seg * out_inner + o) * block;
          for (int64_t i = 0; i < block; ++i) d[at[i] * block + i] += widen(g[i]);
        }
      }
      std::fill(d + zeroed * row, d + s.h * row, 0.0f);  // rows below the last window
      round_rows(s.h);
    }
  }
}

#define MPNCOV_INSTANTIATE(S)                                                                   \
  template void max_pool_blocked_forward<S>(const S*, S*, int64_t*, const ops::detail::PoolShape&, \
                                            const ops::Pool2dParams&, int64_t);                    \
  template void max_pool_blocked_backward<S>(const S*, const int64_t*, S*, const ops::detail::PoolShape&, \
                                             const ops::Pool2dParams&, int64_t);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(bfloat16)
#undef MPNCOV_INSTANTIATE

}  // namespace mpncov::cpu
