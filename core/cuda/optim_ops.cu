// CUDA SGD update: one thread per element. __fmul_rn/__fadd_rn keep nvcc from contracting into FMAs, so
// the result rounds exactly as the CPU loop (core/cpu/optim_ops.cpp) does.
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_optim_backend.h"

namespace mpncov::cuda {
namespace {

// w, grad, buf: (n)
template <bool kMomentum>
__global__ void sgd_update_kernel(float* __restrict__ w, const float* __restrict__ grad, float* __restrict__ buf,
                                  int64_t n, float neg_lr, float weight_decay, float momentum, bool nesterov,
                                  bool first) {
  MPNCOV_GRID_LOOP(i, n) {
    const float wi = w[i];
    const float d = __fadd_rn(grad[i], __fmul_rn(weight_decay, wi));
    float s = d;
    if (kMomentum) {
      const float b = first ? d : __fadd_rn(__fmul_rn(momentum, buf[i]), d);
      buf[i] = b;
      s = nesterov ? __fadd_rn(d, __fmul_rn(momentum, b)) : b;
    }
    w[i] = __fadd_rn(wi, __fmul_rn(neg_lr, s));
  }
}

}  // namespace

void sgd_update(int device, float* w, const float* grad, float* buf, int64_t n, float lr, float weight_decay,
                float momentum, bool nesterov, bool first) {
  DeviceGuard guard(device);
  cudaStream_t stream = context(device).stream();
  if (momentum != 0.0f)
    sgd_update_kernel<true><<<blocks_for(n), kThreads, 0, stream>>>(w, grad, buf, n, -lr, weight_decay, momentum,
                                                                     nesterov, first);
  else
    sgd_update_kernel<false><<<blocks_for(n), kThreads, 0, stream>>>(w, grad, buf, n, -lr, weight_decay, momentum,
                                                                      nesterov, first);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
