// Local response normalisation across channels on the CPU (PyTorch's LocalResponseNorm):
// scale_c = k + alpha/size * sum_{j = c - size/2}^{c + (size-1)/2} x_j^2, y = x * scale^-beta.
#include <algorithm>
#include <cmath>

#include "core/cpu/nn_cpu.h"

namespace mpncov::cpu {

template <typename T>
void lrn_forward(const T* x, T* y, T* scale, int64_t n, int64_t c, int64_t inner, const ops::LrnParams& p) {
  const int64_t before = p.size / 2, after = (p.size - 1) / 2;
  const T a = static_cast<T>(p.alpha / static_cast<double>(p.size)), k = static_cast<T>(p.k);
#pragma omp parallel for collapse(2) schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const T* xi = x + i * c * inner;
      T* s = scale + (i * c + ch) * inner;
      std::fill(s, s + inner, T(0));
      for (int64_t j = std::max<int64_t>(ch - before, 0); j <= std::min(ch + after, c - 1); ++j) {
        const T* xj = xi + j * inner;
        for (int64_t e = 0; e < inner; ++e) s[e] += xj[e] * xj[e];
      }
      const T* xc = xi + ch * inner;
      T* yc = y + (i * c + ch) * inner;
      for (int64_t e = 0; e < inner; ++e) {
        s[e] = k + a * s[e];
        yc[e] = xc[e] * std::pow(s[e], static_cast<T>(-p.beta));
      }
    }
}

// dx_i = dy_i scale_i^-beta - 2 alpha beta / size * x_i * sum over the channels c whose window holds i
// (c in [i - (size-1)/2, i + size/2]) of dy_c y_c / scale_c.
template <typename T>
void lrn_backward(const T* x, const T* y, const T* scale, const T* dy, T* dx, int64_t n, int64_t c, int64_t inner,
                  const ops::LrnParams& p) {
  const int64_t before = p.size / 2, after = (p.size - 1) / 2;
  const T f = static_cast<T>(2.0 * p.alpha * p.beta / static_cast<double>(p.size));
#pragma omp parallel for collapse(2) schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t base = i * c * inner;
      const int64_t off = base + ch * inner;
      for (int64_t e = 0; e < inner; ++e) dx[off + e] = dy[off + e] * std::pow(scale[off + e], static_cast<T>(-p.beta));
      for (int64_t j = std::max<int64_t>(ch - after, 0); j <= std::min(ch + before, c - 1); ++j) {
        const int64_t oj = base + j * inner;
        for (int64_t e = 0; e < inner; ++e) dx[off + e] -= f * x[off + e] * dy[oj + e] * y[oj + e] / scale[oj + e];
      }
    }
}

#define MPNCOV_INSTANTIATE(T)                                                                          \
  template void lrn_forward<T>(const T*, T*, T*, int64_t, int64_t, int64_t, const ops::LrnParams&); \
  template void lrn_backward<T>(const T*, const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, \
                                const ops::LrnParams&);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(double)
#undef MPNCOV_INSTANTIATE

}  // namespace mpncov::cpu
