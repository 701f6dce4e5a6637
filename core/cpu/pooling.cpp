// Max, average and adaptive average pooling on the CPU, one plane (image channel) per loop iteration.
// Windows follow PyTorch: window (oy, ox) starts at oy * stride - pad; average pooling divides by the
// window clipped to the padded input (count_include_pad) or to the input itself.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/nn_cpu.h"
#include "core/error.h"

namespace mpncov::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 14;
}

// One output row at a time, window tap by tap (row-major within the window, the order PyTorch scans),
// each tap over every output column whose input column is inside: the column loop has no dependence
// between iterations, so it vectorises.
template <typename T>
void max_pool2d_forward(const T* x, T* y, int64_t* index, const PoolShape& s, const ops::Pool2dParams& p) {
  MPNCOV_CHECK(s.h * s.w < (int64_t{1} << 31), "max pooling: planes of ", s.h, "x", s.w, " are too large");
#pragma omp parallel if (s.planes * s.h * s.w > kParallelMin)
  {
    std::vector<T> best(static_cast<size_t>(s.ow));
    std::vector<int32_t> arg(static_cast<size_t>(s.ow));
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < s.planes; ++pl) {
      const T* xp = x + pl * s.h * s.w;
      for (int64_t oy = 0; oy < s.oh; ++oy) {
        const int64_t y0 = std::max<int64_t>(oy * p.stride_h - p.pad_h, 0);
        const int64_t y1 = std::min(oy * p.stride_h - p.pad_h + p.kernel_h, s.h);
        std::fill(best.begin(), best.end(), -std::numeric_limits<T>::infinity());
        // Windows that see no input column keep PyTorch's index: their first in-range position.
        for (int64_t ox = 0; ox < s.ow; ++ox)
          arg[ox] = static_cast<int32_t>(y0 * s.w + std::max<int64_t>(ox * p.stride_w - p.pad_w, 0));
        T* bp = best.data();
        int32_t* ap = arg.data();
        for (int64_t iy = y0; iy < y1; ++iy) {
          const T* row = xp + iy * s.w;
          for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
            // Output columns whose tap ix = ox * stride - pad + kx lies in [0, w).
            const int64_t shift = kx - p.pad_w;
            const int64_t ox0 = shift >= 0 ? 0 : (-shift + p.stride_w - 1) / p.stride_w;
            const int64_t ox1 = std::min(s.ow, s.w - shift > 0 ? (s.w - shift - 1) / p.stride_w + 1 : 0);
            const int64_t sw = p.stride_w;
            const int32_t base = static_cast<int32_t>(iy * s.w + shift);
            // Branch-free. PyTorch's rule: a larger value or any NaN replaces the best, so the value
            // is NaN once one is seen and the index that of the last NaN.
#pragma omp simd
            for (int64_t ox = ox0; ox < ox1; ++ox) {
              const T v = row[ox * sw + shift];
              const T b = bp[ox];
              const bool take = v > b || v != v;
              bp[ox] = take ? v : b;
              ap[ox] = take ? base + static_cast<int32_t>(ox * sw) : ap[ox];
            }
          }
        }
        const int64_t o = (pl * s.oh + oy) * s.ow;
        for (int64_t ox = 0; ox < s.ow; ++ox) y[o + ox] = bp[ox];
        if (index)
          for (int64_t ox = 0; ox < s.ow; ++ox) index[o + ox] = ap[ox];
      }
    }
  }
}

template <typename T>
void max_pool2d_backward(const T* dy, const int64_t* index, T* dx, const PoolShape& s) {
#pragma omp parallel for schedule(static) if (s.planes * s.h * s.w > kParallelMin)
  for (int64_t pl = 0; pl < s.planes; ++pl) {
    T* dxp = dx + pl * s.h * s.w;
    std::fill(dxp, dxp + s.h * s.w, T(0));
    const int64_t o0 = pl * s.oh * s.ow;
    for (int64_t o = 0; o < s.oh * s.ow; ++o) dxp[index[o0 + o]] += dy[o0 + o];
  }
}

template <typename T>
void avg_pool2d_forward(const T* x, T* y, const PoolShape& s, const ops::Pool2dParams& p) {
#pragma omp parallel for schedule(static) if (s.planes * s.h * s.w > kParallelMin)
  for (int64_t pl = 0; pl < s.planes; ++pl) {
    const T* xp = x + pl * s.h * s.w;
    for (int64_t oy = 0; oy < s.oh; ++oy)
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        const AvgWindow win = avg_pool_window(oy, ox, s, p);
        T sum = 0;
        for (int64_t iy = win.y0; iy < win.y1; ++iy)
          for (int64_t ix = win.x0; ix < win.x1; ++ix) sum += xp[iy * s.w + ix];
        y[(pl * s.oh + oy) * s.ow + ox] = sum / static_cast<T>(win.divisor);
      }
  }
}

template <typename T>
void avg_pool2d_backward(const T* dy, T* dx, const PoolShape& s, const ops::Pool2dParams& p) {
#pragma omp parallel for schedule(static) if (s.planes * s.h * s.w > kParallelMin)
  for (int64_t pl = 0; pl < s.planes; ++pl) {
    T* dxp = dx + pl * s.h * s.w;
    std::fill(dxp, dxp + s.h * s.w, T(0));
    for (int64_t oy = 0; oy < s.oh; ++oy)
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        const AvgWindow win = avg_pool_window(oy, ox, s, p);
        const T g = dy[(pl * s.oh + oy) * s.ow + ox] / static_cast<T>(win.divisor);
        for (int64_t iy = win.y0; iy < win.y1; ++iy)
          for (int64_t ix = win.x0; ix < win.x1; ++ix) dxp[iy * s.w + ix] += g;
      }
  }
}

namespace {
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }
}  // namespace

template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* y, const PoolShape& s) {
#pragma omp parallel for schedule(static) if (s.planes * s.h * s.w > kParallelMin)
  for (int64_t pl = 0; pl < s.planes; ++pl) {
    const T* xp = x + pl * s.h * s.w;
    for (int64_t oy = 0; oy < s.oh; ++oy) {
      const int64_t y0 = adaptive_start(oy, s.h, s.oh), y1 = adaptive_end(oy, s.h, s.oh);
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        const int64_t x0 = adaptive_start(ox, s.w, s.ow), x1 = adaptive_end(ox, s.w, s.ow);
        T sum = 0;
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) sum += xp[iy * s.w + ix];
        y[(pl * s.oh + oy) * s.ow + ox] = sum / static_cast<T>((y1 - y0) * (x1 - x0));
      }
    }
  }
}

template <typename T>
void adaptive_avg_pool2d_backward(const T* dy, T* dx, const PoolShape& s) {
#pragma omp parallel for schedule(static) if (s.planes * s.h * s.w > kParallelMin)
  for (int64_t pl = 0; pl < s.planes; ++pl) {
    T* dxp = dx + pl * s.h * s.w;
    std::fill(dxp, dxp + s.h * s.w, T(0));
    for (int64_t oy = 0; oy < s.oh; ++oy) {
      const int64_t y0 = adaptive_start(oy, s.h, s.oh), y1 = adaptive_end(oy, s.h, s.oh);
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        const int64_t x0 = adaptive_start(ox, s.w, s.ow), x1 = adaptive_end(ox, s.w, s.ow);
        const T g = dy[(pl * s.oh + oy) * s.ow + ox] / static_cast<T>((y1 - y0) * (x1 - x0));
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) dxp[iy * s.w + ix] += g;
      }
    }
  }
}

#define MPNCOV_INSTANTIATE(T)                                                                               \
  template void max_pool2d_forward<T>(const T*, T*, int64_t*, const PoolShape&, const ops::Pool2dParams&); \
  template void max_pool2d_backward<T>(const T*, const int64_t*, T*, const PoolShape&);                    \
  template void avg_pool2d_forward<T>(const T*, T*, const PoolShape&, const ops::Pool2dParams&);           \
  template void avg_pool2d_backward<T>(const T*, T*, const PoolShape&, const ops::Pool2dParams&);          \
  template void adaptive_avg_pool2d_forward<T>(const T*, T*, const PoolShape&);                            \
  template void adaptive_avg_pool2d_backward<T>(const T*, T*, const PoolShape&);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(double)
#undef MPNCOV_INSTANTIATE

}  // namespace mpncov::cpu
