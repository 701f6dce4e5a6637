// The CUDA backend of core/optim_ops.h (core/cuda/optim_ops.cu), float32, on the device's stream. Defined
// only in builds with CUDA (see core/cuda_backend.h).
#pragma once
#include <cstdint>

namespace mpncov::cuda {

// buf may be null when momentum == 0.
void sgd_update(int device, float* w, const float* grad, float* buf, int64_t n, float lr, float weight_decay,
                float momentum, bool nesterov, bool first);

}  // namespace mpncov::cuda
