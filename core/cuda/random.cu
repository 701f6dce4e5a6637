// Random fills on CUDA from the shared Philox definition (core/philox.h): element i draws from counter
// (i, stream) and key seed exactly as core/cpu/random.cpp does for float, in the same double arithmetic
// (explicitly rounded, so the compiler fuses nothing the CPU computes in two steps). Uniform and
// Bernoulli values are bit-identical to the CPU's; normals may differ in the last bit when the device's
// log or cos rounds differently from the host's.
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_backend.h"
#include "core/philox.h"

namespace mpncov::cuda {
namespace {

__global__ void fill_random_kernel(ops::detail::Random kind, float* p, int64_t n, double a, double b,
                                   uint64_t seed, uint64_t stream, uint64_t first) {
  MPNCOV_GRID_LOOP(i, n) {
    const uint64_t idx = first + static_cast<uint64_t>(i);
    switch (kind) {
      case ops::detail::Random::Uniform:  // a + (b - a) * u
        p[i] = static_cast<float>(__dadd_rn(a, __dmul_rn(b - a, philox::uniform(seed, stream, idx, false))));
        break;
      case ops::detail::Random::Normal:  // a + b * z
        p[i] = static_cast<float>(__dadd_rn(a, __dmul_rn(b, philox::normal(seed, stream, idx))));
        break;
      case ops::detail::Random::Bernoulli:
        p[i] = philox::uniform(seed, stream, idx, false) < a ? 1.0f : 0.0f;
        break;
    }
  }
}

}  // namespace

void fill_random(int device, ops::detail::Random kind, float* p, int64_t n, double a, double b, uint64_t seed,
                 uint64_t stream, uint64_t first) {
  if (n == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  fill_random_kernel<<<blocks_for(n), kThreads, 0, ctx.stream()>>>(kind, p, n, a, b, seed, stream, first);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
