// Batch normalisation on the CPU, one channel per loop iteration; sums in double.
#include <cmath>

#include "core/cpu/nn_cpu.h"

namespace mpncov::cpu {

template <typename T>
void batch_norm_forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* invstd, T* running_mean,
                        T* running_var, int64_t n, int64_t c, int64_t inner, bool training, double momentum,
                        double eps) {
  const int64_t m = n * inner;
#pragma omp parallel for schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t ch = 0; ch < c; ++ch) {
    double mu, inv;
    if (training) {
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * inner;
        for (int64_t j = 0; j < inner; ++j) sum += p[j];
      }
      mu = sum / static_cast<double>(m);
      double sq = 0;  // two passes: no cancellation
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * inner;
        for (int64_t j = 0; j < inner; ++j) {
          const double d = p[j] - mu;
          sq += d * d;
        }
      }
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
      for (int64_t j = 0; j < inner; ++j) q[j] = p[j] * sa + sb;
    }
  }
}

template <typename T>
void batch_norm_backward(const T* x, const T* dy, const T* weight, const T* mean, const T* invstd, T* dx,
                         T* dweight, T* dbias, int64_t n, int64_t c, int64_t inner, bool training) {
  const int64_t m = n * inner;
#pragma omp parallel for schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mu = mean[ch], inv = invstd[ch];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * inner;
      const T* g = dy + (i * c + ch) * inner;
      for (int64_t j = 0; j < inner; ++j) {
        sum_dy += g[j];
        sum_dy_xhat += g[j] * (p[j] - mu);
      }
    }
    sum_dy_xhat *= inv;
    if (dbias) dbias[ch] += static_cast<T>(sum_dy);
    if (dweight) dweight[ch] += static_cast<T>(sum_dy_xhat);
    if (!dx) continue;
    const double scale = (weight ? weight[ch] : 1.0) * inv;
    // Training: dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat)); evaluation: dx = scale * dy.
    const double k1 = training ? sum_dy / static_cast<double>(m) : 0.0;
    const double k2 = training ? sum_dy_xhat / static_cast<double>(m) * inv : 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * inner;
      const T* g = dy + (i * c + ch) * inner;
      T* q = dx + (i * c + ch) * inner;
      for (int64_t j = 0; j < inner; ++j) q[j] = static_cast<T>(scale * (g[j] - k1 - (p[j] - mu) * k2));
    }
  }
}

#define MPNCOV_INSTANTIATE(T)                                                                                   \
  template void batch_norm_forward<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, int64_t, int64_t, int64_t, \
                                      bool, double, double);                                                    \
  template void batch_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, int64_t,   \
                                       int64_t, int64_t, bool);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(double)
#undef MPNCOV_INSTANTIATE

}  // namespace mpncov::cpu
