// Elementwise maps, binary ops with broadcast, axpby and fill on CUDA: one thread per element over a
// grid-stride loop, with the formulas of core/cpu/elementwise.cpp (std::max/min's NaN behaviour, the sign
// of zero, no fused multiply-add where the CPU rounds twice) so both backends agree as far as IEEE allows.
#include <cstring>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_backend.h"

namespace mpncov::cuda {
namespace {

__device__ __forceinline__ float apply(ops::Unary op, float v) {
  switch (op) {
    case ops::Unary::Copy: return v;
    case ops::Unary::Neg: return -v;
    case ops::Unary::Abs: return fabsf(v);
    case ops::Unary::Sign: return static_cast<float>((v > 0.0f) - (v < 0.0f));  // 0 for +-0 and NaN
    case ops::Unary::Square: return v * v;
    case ops::Unary::Sqrt: return sqrtf(v);  // correctly rounded (nvcc's default -prec-sqrt=true)
    case ops::Unary::Exp: return expf(v);
    case ops::Unary::Log: return logf(v);
    case ops::Unary::Reciprocal: return 1.0f / v;  // correctly rounded (-prec-div=true)
    case ops::Unary::Relu: return v > 0.0f ? v : 0.0f;  // NaN -> 0, as on the CPU
  }
  return v;
}

__device__ __forceinline__ float apply(ops::Binary op, float a, float b) {
  switch (op) {
    case ops::Binary::Add: return a + b;
    case ops::Binary::Sub: return a - b;
    case ops::Binary::Mul: return a * b;
    case ops::Binary::Div: return a / b;
    case ops::Binary::Max: return (a < b) ? b : a;  // std::max: a NaN in a is kept, one in b is not
    case ops::Binary::Min: return (b < a) ? b : a;  // std::min
  }
  return a;
}

// y (n) = f(x (n))
__global__ void unary_kernel(ops::Unary op, const float* x, float* y, int64_t n) {
  MPNCOV_GRID_LOOP(i, n) y[i] = apply(op, x[i]);
}

// out (n) = a (n) op b (n)
__global__ void binary_same_kernel(ops::Binary op, const float* a, const float* b, float* out, int64_t n) {
  MPNCOV_GRID_LOOP(i, n) out[i] = apply(op, a[i], b[i]);
}

// out (n) = a (n) op s, with s a host value or the single element of a device tensor
__global__ void binary_scalar_kernel(ops::Binary op, const float* a, float s, const float* s_ptr, float* out,
                                     int64_t n) {
  const float v = s_ptr ? *s_ptr : s;
  MPNCOV_GRID_LOOP(i, n) out[i] = apply(op, a[i], v);
}

// out (n) = a (n) op b[(i / inner) % channels]: per-channel broadcast
template <typename I>
__global__ void binary_channel_kernel(ops::Binary op, const float* a, const float* b, float* out, int64_t n,
                                      I inner, I channels) {
  MPNCOV_GRID_LOOP(i, n) {
    const I c = (static_cast<I>(i) / inner) % channels;
    out[i] = apply(op, a[i], b[c]);
  }
}

// y = alpha x + beta y, rounded like the CPU (two products, one sum; no fma)
__global__ void axpby_kernel(float alpha, const float* x, float beta, float* y, int64_t n) {
  if (beta == 0.0f) {
    MPNCOV_GRID_LOOP(i, n) y[i] = alpha * x[i];  // y's old contents, NaN included, are ignored
  } else {
    MPNCOV_GRID_LOOP(i, n) y[i] = __fadd_rn(__fmul_rn(alpha, x[i]), __fmul_rn(beta, y[i]));
  }
}

template <typename T>
__global__ void fill_kernel(T* p, int64_t n, T value) {
  MPNCOV_GRID_LOOP(i, n) p[i] = value;
}

}  // namespace

void unary(int device, ops::Unary op, const float* x, float* y, int64_t n) {
  if (n == 0 || (op == ops::Unary::Copy && x == y)) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  unary_kernel<<<blocks_for(n), kThreads, 0, ctx.stream()>>>(op, x, y, n);
  CUDA_CHECK_LAUNCH();
}

void binary(int device, ops::Binary op, const float* a, const float* b, float* out,
            const ops::detail::BroadcastPlan& plan) {
  const int64_t n = plan.n;
  if (n == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  const unsigned blocks = blocks_for(n);
  if (plan.b_numel == n) {
    binary_same_kernel<<<blocks, kThreads, 0, ctx.stream()>>>(op, a, b, out, n);
  } else if (plan.b_numel == 1) {
    binary_scalar_kernel<<<blocks, kThreads, 0, ctx.stream()>>>(op, a, 0.0f, b, out, n);
  } else if (fits_int32(n)) {
    binary_channel_kernel<uint32_t><<<blocks, kThreads, 0, ctx.stream()>>>(
        op, a, b, out, n, static_cast<uint32_t>(plan.inner), static_cast<uint32_t>(plan.b_numel));
  } else {
    binary_channel_kernel<int64_t><<<blocks, kThreads, 0, ctx.stream()>>>(op, a, b, out, n, plan.inner,
                                                                          plan.b_numel);
  }
  CUDA_CHECK_LAUNCH();
}

void binary_scalar(int device, ops::Binary op, const float* a, float s, float* out, int64_t n) {
  if (n == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  binary_scalar_kernel<<<blocks_for(n), kThreads, 0, ctx.stream()>>>(op, a, s, nullptr, out, n);
  CUDA_CHECK_LAUNCH();
}

void axpby(int device, float alpha, const float* x, float beta, float* y, int64_t n) {
  if (n == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  axpby_kernel<<<blocks_for(n), kThreads, 0, ctx.stream()>>>(alpha, x, beta, y, n);
  CUDA_CHECK_LAUNCH();
}

void fill(int device, void* p, DType dtype, int64_t n, double value) {
  MPNCOV_CHECK(dtype == DType::F32 || dtype == DType::I64, "fill: the CUDA backend fills float32 and int64, got ",
               dtype_name(dtype));
  if (n == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  const size_t elem = dtype_size(dtype);
  // All-zero bits (0.0f, 0): a memset, the fastest fill.
  bool zero_bits = false;
  if (dtype == DType::F32) {
    const float f = static_cast<float>(value);
    uint32_t bits = 0;
    std::memcpy(&bits, &f, sizeof bits);
    zero_bits = bits == 0;
  } else {
    zero_bits = static_cast<int64_t>(value) == 0;
  }
  if (zero_bits) {
    CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * elem, ctx.stream()));
    return;
  }
  if (dtype == DType::F32) {
    fill_kernel<float><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(static_cast<float*>(p), n,
                                                                     static_cast<float>(value));
  } else {
    fill_kernel<int64_t><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(static_cast<int64_t*>(p), n,
                                                                       static_cast<int64_t>(value));
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
