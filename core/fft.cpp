// Argument checks and backend dispatch for core/fft.h.
#include "core/fft.h"

#include "core/cpu/matrix_cpu.h"
#include "core/cuda_matrix_backend.h"
#include "core/dispatch.h"

namespace mpncov::ops {
namespace {

// Returns (rows, n) after checking x (..., n) against y (..., n/2 + 1, 2).
std::pair<int64_t, int64_t> check_fft(const char* op, const Tensor& x, const Tensor& y) {
  check_same(op, {&x, &y});
  MPNCOV_CHECK(y.defined(), op, ": undefined spectrum");
  MPNCOV_CHECK(x.ndim() >= 1 && x.dim(x.ndim() - 1) > 0, op, ": needs a real tensor (..., n), got ", x.str());
  const int64_t n = x.dim(x.ndim() - 1), rows = x.numel() / n;
  MPNCOV_CHECK(y.ndim() == x.ndim() + 1 && y.dim(y.ndim() - 1) == 2 && y.dim(y.ndim() - 2) == n / 2 + 1 &&
                   y.numel() == rows * (n / 2 + 1) * 2,
               op, ": the spectrum of ", x.str(), " is (..., ", n / 2 + 1, ", 2), got ", y.str());
  MPNCOV_CHECK(n <= (int64_t(1) << 30), op, ": length ", n, " is too long");
  return {rows, n};
}

}  // namespace

void rfft(const Tensor& x, const Tensor& y) {
  const auto shape = check_fft("rfft", x, y);  // not auto [rows, n]: clang 14 lambdas cannot capture those
  const int64_t rows = shape.first, n = shape.second;
  if (rows == 0) return;
  dispatch(
      x, [&](auto device) { cuda::rfft(device, x.data<float>(), y.data<float>(), rows, n); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::rfft<T>(x.data<T>(), y.data<T>(), rows, n);
      });
}

void irfft(const Tensor& y, const Tensor& x) {
  const auto shape = check_fft("irfft", x, y);  // not auto [rows, n]: clang 14 lambdas cannot capture those
  const int64_t rows = shape.first, n = shape.second;
  if (rows == 0) return;
  dispatch(
      x, [&](auto device) { cuda::irfft(device, y.data<float>(), x.data<float>(), rows, n); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::irfft<T>(y.data<T>(), x.data<T>(), rows, n);
      });
}

}  // namespace mpncov::ops
