// im2col / col2im for one image. Row (c, ki, kj) of col holds, for every output position (oy, ox),
// the input pixel x[c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw] (zero outside the image).
#include "core/cpu/cpu_ops.h"

namespace mpncov::cpu {

template <typename T>
void im2col(const T* x, const ops::ConvGeometry& g, T* col) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  for (int64_t c = 0; c < g.channels; ++c) {
    const T* xc = x + c * g.height * g.width;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        T* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * oh * ow;
        for (int64_t oy = 0; oy < oh; ++oy) {
          const int64_t iy = oy * g.stride_h - g.pad_h + ki * g.dilation_h;
          T* out = row + oy * ow;
          if (iy < 0 || iy >= g.height) {
            for (int64_t ox = 0; ox < ow; ++ox) out[ox] = T(0);
            continue;
          }
          const T* xrow = xc + iy * g.width;
          for (int64_t ox = 0; ox < ow; ++ox) {
            const int64_t ix = ox * g.stride_w - g.pad_w + kj * g.dilation_w;
            out[ox] = (ix >= 0 && ix < g.width) ? xrow[ix] : T(0);
          }
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
        const T* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * oh * ow;
        for (int64_t oy = 0; oy < oh; ++oy) {
          const int64_t iy = oy * g.stride_h - g.pad_h + ki * g.dilation_h;
          if (iy < 0 || iy >= g.height) continue;
          T* xrow = xc + iy * g.width;
          const T* in = row + oy * ow;
          for (int64_t ox = 0; ox < ow; ++ox) {
            const int64_t ix = ox * g.stride_w - g.pad_w + kj * g.dilation_w;
            if (ix >= 0 && ix < g.width) xrow[ix] += in[ox];
          }
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
