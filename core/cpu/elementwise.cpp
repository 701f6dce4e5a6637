// Elementwise maps, binary ops with broadcast, axpby and fill on the CPU.
#include <algorithm>
#include <cmath>

#include "core/cpu/cpu_ops.h"

namespace mpncov::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

template <typename T>
inline T apply(ops::Unary op, T v) {
  switch (op) {
    case ops::Unary::Copy: return v;
    case ops::Unary::Neg: return -v;
    case ops::Unary::Abs: return std::abs(v);
    case ops::Unary::Sign: return T((v > T(0)) - (v < T(0)));
    case ops::Unary::Square: return v * v;
    case ops::Unary::Sqrt: return std::sqrt(v);
    case ops::Unary::Exp: return std::exp(v);
    case ops::Unary::Log: return std::log(v);
    case ops::Unary::Reciprocal: return T(1) / v;
    case ops::Unary::Relu: return v > T(0) ? v : T(0);
  }
  return v;
}

template <typename T>
inline T apply(ops::Binary op, T a, T b) {
  switch (op) {
    case ops::Binary::Add: return a + b;
    case ops::Binary::Sub: return a - b;
    case ops::Binary::Mul: return a * b;
    case ops::Binary::Div: return a / b;
    case ops::Binary::Max: return std::max(a, b);
    case ops::Binary::Min: return std::min(a, b);
  }
  return a;
}

}  // namespace

template <typename T>
void unary(ops::Unary op, const T* x, T* y, int64_t n) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = apply(op, x[i]);
}

template <typename T>
void binary(ops::Binary op, const T* a, const T* b, T* out, const ops::detail::BroadcastPlan& p) {
  if (p.b_numel == p.n) {
#pragma omp parallel for if (p.n > kParallelMin)
    for (int64_t i = 0; i < p.n; ++i) out[i] = apply(op, a[i], b[i]);
  } else if (p.b_numel == 1) {
    const T s = b[0];
#pragma omp parallel for if (p.n > kParallelMin)
    for (int64_t i = 0; i < p.n; ++i) out[i] = apply(op, a[i], s);
  } else {
    // Blocks of `inner` elements share one b value; block j uses b[j % b_numel].
    const int64_t blocks = p.inner ? p.n / p.inner : 0;
#pragma omp parallel for if (p.n > kParallelMin)
    for (int64_t j = 0; j < blocks; ++j) {
      const T s = b[j % p.b_numel];
      const T* aj = a + j * p.inner;
      T* oj = out + j * p.inner;
      for (int64_t i = 0; i < p.inner; ++i) oj[i] = apply(op, aj[i], s);
    }
  }
}

template <typename T>
void binary_scalar(ops::Binary op, const T* a, T s, T* out, int64_t n) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = apply(op, a[i], s);
}

template <typename T>
void axpby(T alpha, const T* x, T beta, T* y, int64_t n) {
  if (beta == T(0)) {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
  } else {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
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
template void fill<float>(float*, int64_t, float);
template void fill<double>(double*, int64_t, double);
template void fill<int64_t>(int64_t*, int64_t, int64_t);

}  // namespace mpncov::cpu
