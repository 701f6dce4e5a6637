// Softmax cross-entropy on the CPU: per row, subtract the maximum before exponentiating (stable), sum
// the losses in double.
#include <cmath>
#include <limits>

#include "core/cpu/nn_cpu.h"

namespace mpncov::cpu {

template <typename T>
void softmax_cross_entropy_forward(const T* logits, const int64_t* labels, T* prob, T* loss, int64_t n, int64_t k,
                                   double smoothing) {
  double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static) if (n * k > (1 << 14))
  for (int64_t i = 0; i < n; ++i) {
    const T* z = logits + i * k;
    T* pr = prob + i * k;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < k; ++j) mx = std::max(mx, static_cast<double>(z[j]));
    double sum = 0, sum_z = 0;
    for (int64_t j = 0; j < k; ++j) {
      sum += std::exp(z[j] - mx);
      sum_z += z[j];
    }
    const double log_sum = std::log(sum) + mx;  // log p_j = z_j - log_sum
    for (int64_t j = 0; j < k; ++j) pr[j] = static_cast<T>(std::exp(z[j] - log_sum));
    const int64_t label = labels[i];
    if (label < 0 || label >= k) {
      total += std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    const double nll = log_sum - z[label];
    // Without smoothing the uniform term is left out, as PyTorch does: a -inf logit makes it infinite,
    // and 0 * inf would turn a finite loss into NaN.
    if (smoothing == 0) {
      total += nll;
      continue;
    }
    const double uniform = log_sum - sum_z / static_cast<double>(k);  // mean over classes of -log p
    total += (1 - smoothing) * nll + smoothing * uniform;
  }
  loss[0] = static_cast<T>(total / static_cast<double>(n));
}

template <typename T>
void softmax_cross_entropy_backward(const T* prob, const int64_t* labels, const T* dloss, T* dlogits, int64_t n,
                                    int64_t k, double smoothing) {
  const T scale = static_cast<T>(dloss[0] / static_cast<double>(n));
  const T off = static_cast<T>(smoothing / static_cast<double>(k)), on = static_cast<T>(1 - smoothing);
#pragma omp parallel for schedule(static) if (n * k > (1 << 14))
  for (int64_t i = 0; i < n; ++i) {
    const T* pr = prob + i * k;
    T* d = dlogits + i * k;
    for (int64_t j = 0; j < k; ++j) d[j] = scale * (pr[j] - off);
    const int64_t label = labels[i];
    if (label >= 0 && label < k) d[label] -= scale * on;
    else
      for (int64_t j = 0; j < k; ++j) d[j] = std::numeric_limits<T>::quiet_NaN();
  }
}

#define MPNCOV_INSTANTIATE(T)                                                                                  \
  template void softmax_cross_entropy_forward<T>(const T*, const int64_t*, T*, T*, int64_t, int64_t, double); \
  template void softmax_cross_entropy_backward<T>(const T*, const int64_t*, const T*, T*, int64_t, int64_t, double);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(double)
#undef MPNCOV_INSTANTIATE

}  // namespace mpncov::cpu
