// Small layer helpers on the CPU: relu's backward (also on bfloat16 storage) and channel-range copies
// (concat).
#include <algorithm>
#include <type_traits>

#include "core/bfloat16.h"
#include "core/cpu/isa_clones.h"
#include "core/cpu/nn_cpu.h"

namespace mpncov::cpu {

template <typename S>
MPNCOV_AVX2_CLONES void relu_backward(const S* y, const S* dy, S* dx, int64_t n) {
  using T = compute_t<S>;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T g = widen(dy[i]);  // loaded unconditionally, so the select vectorises
    dx[i] = narrow<S>(widen(y[i]) > T(0) ? g : T(0));
  }
}

// As Binary::Add then Unary::Relu: the sum in the compute type, 0 where it is not > 0 (NaN included), rounded
// once (rounding a positive value gives a positive value or +0, so rounding first gives the same bits).
template <typename S>
MPNCOV_AVX2_CLONES void add_relu_forward(const S* a, const S* b, S* y, int64_t n) {
  using T = compute_t<S>;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T v = widen(a[i]) + widen(b[i]);
    y[i] = narrow<S>(v > T(0) ? v : T(0));
  }
}

template <typename S>
MPNCOV_AVX2_CLONES void add_relu_backward(const S* y, const S* dy, S* dx0, S* dx1, int64_t n) {
  using T = compute_t<S>;
  S* first = dx0 ? dx0 : dx1;
  S* second = dx0 && dx1 != dx0 ? dx1 : nullptr;
  if (!first) return;
  // Stores to one or both, decided outside the loop so that it vectorises.
  const auto run = [&](auto both) {
#pragma omp parallel for schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) {
      const T g = widen(dy[i]);  // loaded unconditionally, so the select vectorises
      const S d = narrow<S>(widen(y[i]) > T(0) ? g : T(0));
      first[i] = d;
      if constexpr (decltype(both)::value) second[i] = d;
    }
  };
  if (second) run(std::true_type());
  else run(std::false_type());
}

template <typename T>
MPNCOV_AVX2_CLONES void channel_bias(T* y, const T* bias, int64_t segments, int64_t channels, int64_t block,
                                     int64_t inner, bool relu) {
  const int64_t groups = channels / block;
#pragma omp parallel for schedule(static) if (segments * inner * block > (1 << 15))
  for (int64_t r = 0; r < segments; ++r) {
    const T* b = bias + (r % groups) * block;
    T* run = y + r * inner * block;
    for (int64_t p = 0; p < inner; ++p) {
      T* v = run + p * block;
      if (relu) {
#pragma omp simd
        for (int64_t k = 0; k < block; ++k) {
          const T sum = v[k] + b[k];
          v[k] = sum > T(0) ? sum : T(0);  // as Unary::Relu: a NaN gives 0
        }
      } else {
#pragma omp simd
        for (int64_t k = 0; k < block; ++k) v[k] += b[k];
      }
    }
  }
}

template <typename T>
void copy_channels(const T* src, int64_t src_channels, int64_t src_offset, T* dst, int64_t dst_channels,
                   int64_t dst_offset, int64_t count, int64_t n, int64_t inner) {
  // One channel per iteration, not one batch entry: a batch of one still uses every thread.
#pragma omp parallel for schedule(static) if (n * count * inner > (1 << 16))
  for (int64_t r = 0; r < n * count; ++r) {
    const int64_t i = r / count, c = r % count;
    const T* s = src + (i * src_channels + src_offset + c) * inner;
    std::copy(s, s + inner, dst + (i * dst_channels + dst_offset + c) * inner);
  }
}

#define MPNCOV_INSTANTIATE(T)                                                    \
  template void relu_backward<T>(const T*, const T*, T*, int64_t);              \
  template void add_relu_forward<T>(const T*, const T*, T*, int64_t);          \
  template void add_relu_backward<T>(const T*, const T*, T*, T*, int64_t);     \
  template void channel_bias<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, bool); \
  template void copy_channels<T>(const T*, int64_t, int64_t, T*, int64_t, int64_t, int64_t, int64_t, int64_t);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(double)
#undef MPNCOV_INSTANTIATE
template void relu_backward<bfloat16>(const bfloat16*, const bfloat16*, bfloat16*, int64_t);
template void add_relu_forward<bfloat16>(const bfloat16*, const bfloat16*, bfloat16*, int64_t);
template void add_relu_backward<bfloat16>(const bfloat16*, const bfloat16*, bfloat16*, bfloat16*, int64_t);

}  // namespace mpncov::cpu
