// CPU SGD update: one OpenMP loop, each operation rounded as PyTorch's separate kernels round it.
#include <cstdint>

#include "core/cpu/optim_cpu.h"

namespace mpncov::cpu {

template <typename T>
void sgd_update(T* w, const T* grad, T* buf, int64_t n, T lr, T weight_decay, T momentum, bool nesterov,
                bool first) {
  const T neg_lr = -lr;
  if (momentum == T(0)) {
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; ++i) {
      const T d = grad[i] + weight_decay * w[i];
      w[i] = w[i] + neg_lr * d;
    }
    return;
  }
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const T d = grad[i] + weight_decay * w[i];
    const T b = first ? d : momentum * buf[i] + d;
    buf[i] = b;
    const T s = nesterov ? d + momentum * b : b;
    w[i] = w[i] + neg_lr * s;
  }
}

template void sgd_update<float>(float*, const float*, float*, int64_t, float, float, float, bool, bool);
template void sgd_update<double>(double*, const double*, double*, int64_t, double, double, double, bool, bool);

}  // namespace mpncov::cpu
