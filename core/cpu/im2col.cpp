// im2col / col2im for one image. Row (c, ki, kj) of col holds, for every output position (oy, ox),
// the input pixel x[c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw] (zero outside the image).
#include <algorithm>

#include "core/cpu/cpu_ops.h"

namespace mpncov::cpu {
namespace {

// The output columns ox in [lo, hi) whose input column ox * stride + start lies inside [0, size): the
// loops below then run without a bounds test per element (and copy contiguously at stride 1).
void valid_range(int64_t size, int64_t out, int64_t stride, int64_t start, int64_t& lo, int64_t& hi) {
  lo = start >= 0 ? 0 : (-start + stride - 1) / stride;
  const int64_t last = size - 1 - start;  // ox * stride <= last
  hi = last < 0 ? 0 : std::min(out, last / stride + 1);
  lo = std::min(lo, hi);
}

}  // namespace

template <typename T>
void im2col(const T* x, const ops::ConvGeometry& g, T* col) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  for (int64_t c = 0; c < g.channels; ++c) {
    const T* xc = x + c * g.height * g.width;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t start = kj * g.dilation_w - g.pad_w;
        int64_t lo, hi;
        valid_range(g.width, ow, g.stride_w, start, lo, hi);
        T* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * oh * ow;
        for (int64_t oy = 0; oy < oh; ++oy) {
          const int64_t iy = oy * g.stride_h - g.pad_h + ki * g.dilation_h;
          T* out = row + oy * ow;
          if (iy < 0 || iy >= g.height) {
            for (int64_t ox = 0; ox < ow; ++ox) out[ox] = T(0);
            continue;
          }
          const T* xrow = xc + iy * g.width + start;
          for (int64_t ox = 0; ox < lo; ++ox) out[ox] = T(0);
          if (g.stride_w == 1) std::copy(xrow + lo, xrow + hi, out + lo);
          else
            for (int64_t ox = lo; ox < hi; ++ox) out[ox] = xrow[ox * g.stride_w];
          for (int64_t ox = hi; ox < ow; ++ox) out[ox] = T(0);
        }
      }
    }
  }
}

template <typename T>
void col2im(const T* col, const ops::ConvGeometry& g, T* x) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  for (int64_t c = 0; c < g.channels; ++c) {
    T* xc = x + c * g.height * g.width;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const int64_t start = kj * g.dilation_w - g.pad_w;
        int64_t lo, hi;
        valid_range(g.width, ow, g.stride_w, start, lo, hi);
        const T* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * oh * ow;
        for (int64_t oy = 0; oy < oh; ++oy) {
          const int64_t iy = oy * g.stride_h - g.pad_h + ki * g.dilation_h;
          if (iy < 0 || iy >= g.height) continue;
          T* xrow = xc + iy * g.width + start;
          const T* in = row + oy * ow;
          if (g.stride_w == 1)
            for (int64_t ox = lo; ox < hi; ++ox) xrow[ox] += in[ox];
          else
            for (int64_t ox = lo; ox < hi; ++ox) xrow[ox * g.stride_w] += in[ox];
        }
      }
    }
  }
}

template void im2col<float>(const float*, const ops::ConvGeometry&, float*);
template void im2col<double>(const double*, const ops::ConvGeometry&, double*);
template void col2im<float>(const float*, const ops::ConvGeometry&, float*);
template void col2im<double>(const double*, const ops::ConvGeometry&, double*);

}  // namespace mpncov::cpu
