// The CPU backend of core/optim_ops.h, float and double. Arguments already checked by core/optim_ops.cpp.
#pragma once
#include <cstdint>

namespace mpncov::cpu {

// buf may be null when momentum == 0.
template <typename T>
void sgd_update(T* w, const T* grad, T* buf, int64_t n, T lr, T weight_decay, T momentum, bool nesterov,
                bool first);

}  // namespace mpncov::cpu
