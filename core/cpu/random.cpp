// Random fills on the CPU from the shared Philox definition (core/philox.h).
#include "core/cpu/cpu_ops.h"
#include "core/philox.h"

namespace mpncov::cpu {

template <typename T>
void fill_random(ops::detail::Random kind, T* p, int64_t n, double a, double b, uint64_t seed,
                 uint64_t stream, uint64_t first) {
  constexpr bool wide = sizeof(T) == 8;
#pragma omp parallel for if (n > (1 << 14))
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t idx = first + static_cast<uint64_t>(i);
    switch (kind) {
      case ops::detail::Random::Uniform:
        p[i] = static_cast<T>(a + (b - a) * philox::uniform(seed, stream, idx, wide));
        break;
      case ops::detail::Random::Normal:
        p[i] = static_cast<T>(a + b * philox::normal(seed, stream, idx));
        break;
      case ops::detail::Random::Bernoulli:
        p[i] = philox::uniform(seed, stream, idx, false) < a ? T(1) : T(0);
        break;
    }
  }
}

template void fill_random<float>(ops::detail::Random, float*, int64_t, double, double, uint64_t, uint64_t, uint64_t);
template void fill_random<double>(ops::detail::Random, double*, int64_t, double, double, uint64_t, uint64_t,
                                  uint64_t);

}  // namespace mpncov::cpu
