// Average pooling over the kernel layouts (nChw16c blocks and NHWC, where the block is all C channels),
// as max_pool_blocked.cpp: each tap of a window is a run of contiguous channels, so the channels are the
// innermost loop, in tiles that stay in vector registers.
//
// The results are the NCHW kernel's (pooling.cpp) bit for bit: each output sums its window's taps from
// zero in row-major order and divides by the same divisor. The backward gathers instead of scattering:
// each input element adds, from zero, the gradients dy / divisor of the windows that cover it in the
// order of those windows (row-major), which is the order in which the NCHW kernel's scatter adds them.
// Gathering writes each input element once, so input rows split between threads without conflicts.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/bfloat16.h"
#include "core/cpu/blocked.h"
#include "core/cpu/isa_clones.h"
#include "core/cpu/nn_cpu.h"

namespace mpncov::cpu {
namespace {

// Sixteen float sums (a float nChw16c block) in two 8-lane vector registers: GCC kept the arrays of sums
// below on the stack and reassembled them lane by lane (Inception-v3's branch pools at batch 8: a fifth
// less time, bench/RESULTS.md). The same sums in the same order, the same division.
struct Sums16 {
  using V = float __attribute__((vector_size(32)));
  V lo = {}, hi = {};
  inline MPNCOV_CLONE_INLINE void add(const float* p) {
    V a, b;
    std::memcpy(&a, p, sizeof a);
    std::memcpy(&b, p + 8, sizeof b);
    lo += a;
    hi += b;
  }
  inline MPNCOV_CLONE_INLINE void store(float* y) const {
    std::memcpy(y, &lo, sizeof lo);
    std::memcpy(y + 8, &hi, sizeof hi);
  }
};
template <typename S, typename Width>
constexpr bool kFloat16Block = std::is_same_v<S, float> && std::is_same_v<Width, std::integral_constant<int64_t, 16>>;

// One output: the window's taps summed over `width` channels, divided.
template <typename S, typename Width>
inline MPNCOV_CLONE_INLINE void window_average(const S* x, int64_t block, int64_t w, const AvgWindow& win, S* y, Width width) {
  if constexpr (kFloat16Block<S, Width>) {
    Sums16 sum;
    for (int64_t iy = win.y0; iy < win.y1; ++iy)
      for (int64_t ix = win.x0; ix < win.x1; ++ix) sum.add(x + (iy * w + ix) * block);
    const float divisor = static_cast<float>(win.divisor);
    sum.lo /= divisor;
    sum.hi /= divisor;
    return sum.store(y);
  }
  const int64_t n = width;
  float sum[kPoolTile];
  for (int64_t i = 0; i < n; ++i) sum[i] = 0.0f;
  for (int64_t iy = win.y0; iy < win.y1; ++iy)
    for (int64_t ix = win.x0; ix < win.x1; ++ix) {
      const S* tap = x + (iy * w + ix) * block;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) sum[i] += widen(tap[i]);
    }
  const float divisor = static_cast<float>(win.divisor);
  for (int64_t i = 0; i < n; ++i) y[i] = narrow<S>(sum[i] / divisor);
}

// The outputs whose windows cover each input position along one axis: [begin[i], end[i]). Windows move
// forward with the output index (both their ends do), so those covering one position are consecutive.
struct Cover {
  std::vector<int64_t> begin, end;
};
Cover covers(int64_t in, int64_t out, const std::vector<int64_t>& lo, const std::vector<int64_t>& hi) {
  Cover c{std::vector<int64_t>(static_cast<size_t>(in)), std::vector<int64_t>(static_cast<size_t>(in))};
  int64_t b = 0, e = 0;
  for (int64_t i = 0; i < in; ++i) {
    while (b < out && hi[static_cast<size_t>(b)] <= i) ++b;  // windows ending at or before i
    e = std::max(e, b);
    while (e < out && lo[static_cast<size_t>(e)] <= i) ++e;  // windows starting at or before i
    c.begin[static_cast<size_t>(i)] = b;
    c.end[static_cast<size_t>(i)] = std::max(b, e);
  }
  return c;
}

}  // namespace

template <typename S>
MPNCOV_AVX2_CLONES void avg_pool_blocked_forward(const S* x, S* y, const ops::detail::PoolShape& s,
                                                 const ops::Pool2dParams& p, int64_t block) {
  const int64_t segments = s.planes / block, inner = s.h * s.w, out_inner = s.oh * s.ow;
  // Over (segment, output row): both threads busy at batch 1 too.
#pragma omp parallel for schedule(static) collapse(2) if (s.planes * inner > (1 << 14))
  for (int64_t seg = 0; seg < segments; ++seg)
    for (int64_t oy = 0; oy < s.oh; ++oy) {
      const S* xs = x + seg * inner * block;
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        const AvgWindow win = avg_pool_window(oy, ox, s, p);
        S* yo = y + (seg * out_inner + oy * s.ow + ox) * block;
        for_tiles(block, [&](int64_t c, auto width) MPNCOV_CLONE_INLINE { window_average(xs + c, block, s.w, win, yo + c, width); });
      }
    }
}

template <typename S>
MPNCOV_AVX2_CLONES void avg_pool_blocked_backward(const S* dy, S* dx, const ops::detail::PoolShape& s,
                                                  const ops::Pool2dParams& p, int64_t block) {
  const int64_t segments = s.planes / block, inner = s.h * s.w, out_inner = s.oh * s.ow;
  // The windows' clipped extents along each axis (avg_pool_window's), and which cover each input row and column.
  std::vector<int64_t> y0(static_cast<size_t>(s.oh)), y1(y0), x0(static_cast<size_t>(s.ow)), x1(x0);
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    const AvgWindow win = avg_pool_window(oy, 0, s, p);
    y0[static_cast<size_t>(oy)] = win.y0;
    y1[static_cast<size_t>(oy)] = win.y1;
  }
  for (int64_t ox = 0; ox < s.ow; ++ox) {
    const AvgWindow win = avg_pool_window(0, ox, s, p);
    x0[static_cast<size_t>(ox)] = win.x0;
    x1[static_cast<size_t>(ox)] = win.x1;
  }
  const Cover rows = covers(s.h, s.oh, y0, y1), cols = covers(s.w, s.ow, x0, x1);
  // Tasks: bands of input rows of one segment, enough of them for every thread at batch 1 too.
  const bool parallel = s.planes * inner > (1 << 14);
  const int64_t threads = parallel ? omp_get_max_threads() : 1;
  const int64_t bands = std::clamp<int64_t>((4 * threads + segments - 1) / segments, 1, s.h);
  const int64_t band_rows = (s.h + bands - 1) / bands;
#pragma omp parallel if (parallel)
  {
    std::vector<float> g;  // dy / divisor of the output rows the band reads, as the NCHW kernel's g
#pragma omp for schedule(static) collapse(2)
    for (int64_t seg = 0; seg < segments; ++seg)
      for (int64_t band = 0; band < bands; ++band) {
        const int64_t r0 = band * band_rows, r1 = std::min(s.h, r0 + band_rows);
        if (r0 >= r1) continue;
        const int64_t o0 = rows.begin[static_cast<size_t>(r0)];
        const int64_t o1 = std::max(o0, rows.end[static_cast<size_t>(r1 - 1)]);
        g.resize(static_cast<size_t>(std::max<int64_t>(o1 - o0, 1) * s.ow * block));
        for (int64_t oy = o0; oy < o1; ++oy)
          for (int64_t ox = 0; ox < s.ow; ++ox) {
            const float divisor = static_cast<float>(avg_pool_window(oy, ox, s, p).divisor);
            const S* d = dy + (seg * out_inner + oy * s.ow + ox) * block;
            float* q = g.data() + ((oy - o0) * s.ow + ox) * block;
#pragma omp simd
            for (int64_t i = 0; i < block; ++i) q[i] = widen(d[i]) / divisor;
          }
        for (int64_t iy = r0; iy < r1; ++iy) {
          const int64_t oy0 = rows.begin[static_cast<size_t>(iy)], oy1 = rows.end[static_cast<size_t>(iy)];
          for (int64_t ix = 0; ix < s.w; ++ix) {
            const int64_t ox0 = cols.begin[static_cast<size_t>(ix)], ox1 = cols.end[static_cast<size_t>(ix)];
            S* out = dx + (seg * inner + iy * s.w + ix) * block;
            for_tiles(block, [&](int64_t c, auto width) MPNCOV_CLONE_INLINE {
              if constexpr (kFloat16Block<S, decltype(width)>) {
                Sums16 sum;
                for (int64_t oy = oy0; oy < oy1; ++oy)
                  for (int64_t ox = ox0; ox < ox1; ++ox) sum.add(g.data() + ((oy - o0) * s.ow + ox) * block);
                return sum.store(out + c);
              }
              const int64_t n = width;
              float sum[kPoolTile];
              for (int64_t i = 0; i < n; ++i) sum[i] = 0.0f;
              for (int64_t oy = oy0; oy < oy1; ++oy)
                for (int64_t ox = ox0; ox < ox1; ++ox) {
                  const float* q = g.data() + ((oy - o0) * s.ow + ox) * block + c;
#pragma omp simd
                  for (int64_t i = 0; i < n; ++i) sum[i] += q[i];
                }
              for (int64_t i = 0; i < n; ++i) out[c + i] = narrow<S>(sum[i]);
            });
          }
        }
      }
  }
}

#define MPNCOV_INSTANTIATE(S)                                                                                   \
  template void avg_pool_blocked_forward<S>(const S*, S*, const ops::detail::PoolShape&, const ops::Pool2dParams&, \
                                            int64_t);                                                              \
  template void avg_pool_blocked_backward<S>(const S*, S*, const ops::detail::PoolShape&,                          \
                                             const ops::Pool2dParams&, int64_t);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(bfloat16)
#undef MPNCOV_INSTANTIATE

}  // namespace mpncov::cpu
