// Elementwise maps, binary ops with broadcast, axpby and fill on the CPU. Each kernel is templated on its
// storage type S (float, double, or bfloat16: core/bfloat16.h) and computes in compute_t<S>.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/bfloat16.h"
#include "core/cpu/cpu_ops.h"
#include "core/cpu/isa_clones.h"

namespace mpncov::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

// The op is chosen once per call, outside the loop, so each loop body is a single expression the
// compiler can vectorise (a switch per element kept every loop scalar).
template <typename S, typename F>
MPNCOV_AVX2_CLONES void map1(const S* x, S* y, int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = narrow<S>(f(widen(x[i])));
}

template <typename S, typename F>
MPNCOV_AVX2_CLONES void map2(const S* a, const S* b, S* out, int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = narrow<S>(f(widen(a[i]), widen(b[i])));
}

template <typename S, typename F>
MPNCOV_AVX2_CLONES void map_scalar(const S* a, compute_t<S> s, S* out, int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = narrow<S>(f(widen(a[i]), s));
}

// ReLU of a stored bfloat16 on its bits: a positive value that is not NaN (bits 0x0001 to 0x7f80) stays,
// anything else becomes +0. That is the float32 ReLU's result rounded back (a stored value widens and
// rounds to itself), in 16-bit lanes with no conversion: memory-bound, where widening and rounding each
// element made it slower than the float32 ReLU.
inline bfloat16 relu_bits(bfloat16 v) {
  return bfloat16{static_cast<uint16_t>(static_cast<uint16_t>(v.bits - 1u) < 0x7f80u ? v.bits : 0u)};
}

template <typename S, typename F>
MPNCOV_AVX2_CLONES void map_stored(const S* x, S* y, int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// Calls k(f) with f the binary op as a function object.
template <typename T, typename K>
void with_binary(ops::Binary op, K&& k) {
  switch (op) {
    case ops::Binary::Add: return k([](T a, T b) { return a + b; });
    case ops::Binary::Sub: return k([](T a, T b) { return a - b; });
    case ops::Binary::Mul: return k([](T a, T b) { return a * b; });
    case ops::Binary::Div: return k([](T a, T b) { return a / b; });
    case ops::Binary::Max: return k([](T a, T b) { return std::max(a, b); });
    case ops::Binary::Min: return k([](T a, T b) { return std::min(a, b); });
  }
}

}  // namespace

template <typename S>
void unary(ops::Unary op, const S* x, S* y, int64_t n) {
  using T = compute_t<S>;
  switch (op) {
    case ops::Unary::Copy:  // the stored values as they are (bfloat16 NaN payloads included)
      if (x != y) map_stored(x, y, n, [](S v) { return v; });
      return;
    case ops::Unary::Neg: return map1(x, y, n, [](T v) { return -v; });
    case ops::Unary::Abs: return map1(x, y, n, [](T v) { return std::abs(v); });
    case ops::Unary::Sign: return map1(x, y, n, [](T v) { return T((v > T(0)) - (v < T(0))); });
    case ops::Unary::Square: return map1(x, y, n, [](T v) { return v * v; });
    case ops::Unary::Sqrt: return map1(x, y, n, [](T v) { return std::sqrt(v); });
    case ops::Unary::Exp: return map1(x, y, n, [](T v) { return std::exp(v); });
    case ops::Unary::Log: return map1(x, y, n, [](T v) { return std::log(v); });
    case ops::Unary::Reciprocal: return map1(x, y, n, [](T v) { return T(1) / v; });
    case ops::Unary::Relu:
      if constexpr (std::is_same_v<S, bfloat16>) return map_stored(x, y, n, [](S v) { return relu_bits(v); });
      else return map1(x, y, n, [](T v) { return v > T(0) ? v : T(0); });
  }
}

template <typename S>
void binary(ops::Binary op, const S* a, const S* b, S* out, const ops::detail::BroadcastPlan& p) {
  using T = compute_t<S>;
  with_binary<T>(op, [&](auto f) {
    if (p.b_numel == p.n) {
      map2(a, b, out, p.n, f);
    } else if (p.b_numel == 1) {
      map_scalar(a, widen(b[0]), out, p.n, f);
    } else {
      // Blocks of `inner` elements share one b value; block j uses b[j % b_numel].
      const int64_t blocks = p.inner ? p.n / p.inner : 0;
#pragma omp parallel for schedule(static) if (p.n > kParallelMin)
      for (int64_t j = 0; j < blocks; ++j) {
        const T s = widen(b[j % p.b_numel]);
        const S* aj = a + j * p.inner;
        S* oj = out + j * p.inner;
        for (int64_t i = 0; i < p.inner; ++i) oj[i] = narrow<S>(f(widen(aj[i]), s));
      }
    }
  });
}

template <typename T>
void binary_scalar(ops::Binary op, const T* a, T s, T* out, int64_t n) {
  with_binary<T>(op, [&](auto f) { map_scalar(a, s, out, n, f); });
}

template <typename S>
MPNCOV_AVX2_CLONES void axpby(compute_t<S> alpha, const S* x, compute_t<S> beta, S* y, int64_t n) {
  if (beta == 0) {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = narrow<S>(alpha * widen(x[i]));
  } else {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = narrow<S>(alpha * widen(x[i]) + beta * widen(y[i]));
  }
}

template <typename T>
void fill(T* p, int64_t n, T value) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

#define MPNCOV_INSTANTIATE(T)                                                                  \
  template void unary<T>(ops::Unary, const T*, T*, int64_t);                                   \
  template void binary<T>(ops::Binary, const T*, const T*, T*, const ops::detail::BroadcastPlan&); \
  template void binary_scalar<T>(ops::Binary, const T*, T, T*, int64_t);                       \
  template void axpby<T>(T, const T*, T, T*, int64_t);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(double)
#undef MPNCOV_INSTANTIATE
// bfloat16 storage (core/dispatch.h: the ops that opt in), computed in float32.
template void unary<bfloat16>(ops::Unary, const bfloat16*, bfloat16*, int64_t);
template void binary<bfloat16>(ops::Binary, const bfloat16*, const bfloat16*, bfloat16*,
                               const ops::detail::BroadcastPlan&);
template void axpby<bfloat16>(float, const bfloat16*, float, bfloat16*, int64_t);
template void fill<float>(float*, int64_t, float);
template void fill<double>(double*, int64_t, double);
template void fill<int64_t>(int64_t*, int64_t, int64_t);

}  // namespace mpncov::cpu
