// Batch normalisation on the CPU, one channel per loop iteration. Sums run in T within short chunks
// (vectorised, no conversions) and in double across chunks, so they stay accurate at any batch size.
#include <algorithm>
#include <cmath>

#include "core/cpu/nn_cpu.h"

namespace mpncov::cpu {
namespace {

constexpr int64_t kChunk = 256;

// Adds sum_j a(p[j]) and sum_j b(p[j], q[j]) over [0, n) into sa and sb; with a mask (a fused ReLU's
// output), p[j] counts as 0 where mask[j] > 0 does not hold, as relu_backward writes it.
template <bool Masked, typename T, typename A, typename B>
void chunked_sums(const T* p, const T* q, const T* mask, int64_t n, double& sa, double& sb, A a, B b) {
  for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
    const int64_t j1 = std::min(n, j0 + kChunk);
    T pa = 0, pb = 0;
#pragma omp simd reduction(+ : pa, pb)
    for (int64_t j = j0; j < j1; ++j) {
      T pv = p[j];
      if constexpr (Masked) pv = mask[j] > T(0) ? pv : T(0);
      pa += a(pv);
      pb += b(pv, q[j]);
    }
    sa += pa;
    sb += pb;
  }
}

}  // namespace

template <typename T>
void batch_norm_forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* invstd, T* running_mean,
                        T* running_var, int64_t n, int64_t c, int64_t inner, bool training, double momentum,
                        double eps, bool relu, const T* residual) {
  const int64_t m = n * inner;
#pragma omp parallel for schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t ch = 0; ch < c; ++ch) {
    double mu, inv;
    if (training) {
      double sum = 0, unused = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * inner;
        chunked_sums<false>(p, p, p, inner, sum, unused, [](T v) { return v; }, [](T, T) { return T(0); });
      }
      mu = sum / static_cast<double>(m);
      // Two passes (no cancellation), centred on mu rounded to T; the exact identity
      // sum (x - mu)^2 = sum (x - mt)^2 - m (mu - mt)^2 removes the rounding.
      const T mt = static_cast<T>(mu);
      double sq = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * inner;
        chunked_sums<false>(p, p, p, inner, sq, unused, [mt](T v) { return (v - mt) * (v - mt); }, [](T, T) { return T(0); });
      }
      const double shift = mu - static_cast<double>(mt);
      sq = std::max(0.0, sq - static_cast<double>(m) * shift * shift);
      const double var = sq / static_cast<double>(m);
      inv = 1.0 / std::sqrt(var + eps);
      if (running_mean) {
        running_mean[ch] = static_cast<T>((1 - momentum) * running_mean[ch] + momentum * mu);
        running_var[ch] =
            static_cast<T>((1 - momentum) * running_var[ch] + momentum * sq / static_cast<double>(m - 1));
      }
    } else {
      mu = running_mean[ch];
      inv = 1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps);
    }
    mean[ch] = static_cast<T>(mu);
    invstd[ch] = static_cast<T>(inv);
    // y = x * a + b with a = weight * invstd, b = bias - mean * a.
    const double a = (weight ? weight[ch] : 1.0) * inv;
    const T sa = static_cast<T>(a), sb = static_cast<T>((bias ? bias[ch] : 0.0) - mu * a);
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * inner;
      T* q = y + (i * c + ch) * inner;
      if (residual) {  // a residual add and its ReLU fused in, as add_relu_forward
        const T* r = residual + (i * c + ch) * inner;
        for (int64_t j = 0; j < inner; ++j) {
          const T v = p[j] * sa + sb;
          const T t = v + r[j];
          q[j] = t > T(0) ? t : T(0);
        }
      } else if (relu) {  // a fused ReLU, as Unary::Relu: 0 where the value is not > 0 (NaN included)
        for (int64_t j = 0; j < inner; ++j) {
          const T v = p[j] * sa + sb;
          q[j] = v > T(0) ? v : T(0);
        }
      } else {
        for (int64_t j = 0; j < inner; ++j) q[j] = p[j] * sa + sb;
      }
    }
  }
}

template <typename T>
void batch_norm_backward(const T* x, const T* dy, const T* relu_out, const T* weight, const T* mean, const T* invstd,
                         T* dx, T* dweight, T* dbias, int64_t n, int64_t c, int64_t inner, bool training) {
  const int64_t m = n * inner;
#pragma omp parallel for schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mu = mean[ch], inv = invstd[ch];
    double sum_dy = 0, sum_dy_xhat = 0;
    const T mt = static_cast<T>(mu);
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * inner;
      const T* g = dy + (i * c + ch) * inner;
      const auto a = [](T gv) { return gv; };
      const auto b = [mt](T gv, T pv) { return gv * (pv - mt); };
      if (relu_out) chunked_sums<true>(g, p, relu_out + (i * c + ch) * inner, inner, sum_dy, sum_dy_xhat, a, b);
      else chunked_sums<false>(g, p, g, inner, sum_dy, sum_dy_xhat, a, b);
    }
    sum_dy_xhat -= (mu - static_cast<double>(mt)) * sum_dy;  // centre on mu exactly
    sum_dy_xhat *= inv;
    if (dbias) dbias[ch] += static_cast<T>(sum_dy);
    if (dweight) dweight[ch] += static_cast<T>(sum_dy_xhat);
    if (!dx) continue;
    const double scale = (weight ? weight[ch] : 1.0) * inv;
    // Training: dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat)); evaluation: dx = scale * dy.
    const double k1 = training ? sum_dy / static_cast<double>(m) : 0.0;
    const double k2 = training ? sum_dy_xhat / static_cast<double>(m) * inv : 0.0;
    // In T: the same centred expression, without a round trip through double per element.
    const T ts = static_cast<T>(scale), tk1 = static_cast<T>(k1), tk2 = static_cast<T>(k2), tmu = static_cast<T>(mu);
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * inner;
      const T* g = dy + (i * c + ch) * inner;
      T* q = dx + (i * c + ch) * inner;
      if (relu_out) {
        const T* o = relu_out + (i * c + ch) * inner;
        for (int64_t j = 0; j < inner; ++j) {
          const T gv = g[j];  // loaded unconditionally, so the select vectorises
          q[j] = ts * ((o[j] > T(0) ? gv : T(0)) - tk1 - (p[j] - tmu) * tk2);
        }
      } else {
        for (int64_t j = 0; j < inner; ++j) q[j] = ts * (g[j] - tk1 - (p[j] - tmu) * tk2);
      }
    }
  }
}

#define MPNCOV_INSTANTIATE(T)                                                                                   \
  template void batch_norm_forward<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, int64_t, int64_t, int64_t, \
                                      bool, double, double, bool, const T*);                                    \
  template void batch_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*, T*, T*, T*,  \
                                       int64_t, int64_t, int64_t, bool);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(double)
#undef MPNCOV_INSTANTIATE

}  // namespace mpncov::cpu
