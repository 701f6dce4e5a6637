// Argument checks and backend dispatch for core/fft.h.
#include "core/fft.h"

#include "core/cpu/matrix_cpu.h"
#include "core/cuda_matrix_backend.h"

namespace mpncov::ops {
namespace {

// Returns (rows, n) after checking x (..., n) against y (..., n/2 + 1, 2).
std::pair<int64_t, int64_t> check_fft(const char* op, const Tensor& x, const Tensor& y) {
  MPNCOV_CHECK(x.defined() && y.defined(), op, ": undefined tensor");
  MPNCOV_CHECK(x.device() == y.device() && x.dtype() == y.dtype(), op, ": tensors differ in device or dtype (",
               x.str(), ", ", y.str(), ")");
  MPNCOV_CHECK(x.dtype() == DType::F32 || (x.dtype() == DType::F64 && x.device().is_cpu()), op,
               ": needs float32 (or float64 on the CPU), got ", x.str());
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
  const auto [rows, n] = check_fft("rfft", x, y);
  if (rows == 0) return;
  if (x.device().is_cuda()) return cuda::rfft(x.device().index, x.data<float>(), y.data<float>(), rows, n);
  if (x.dtype() == DType::F32) cpu::rfft<float>(x.data<float>(), y.data<float>(), rows, n);
  else cpu::rfft<double>(x.data<double>(), y.data<double>(), rows, n);
}

void irfft(const Tensor& y, const Tensor& x) {
  const auto [rows, n] = check_fft("irfft", x, y);
  if (rows == 0) return;
  if (x.device().is_cuda()) return cuda::irfft(x.device().index, y.data<float>(), x.data<float>(), rows, n);
  if (x.dtype() == DType::F32) cpu::irfft<float>(y.data<float>(), x.data<float>(), rows, n);
  else cpu::irfft<double>(y.data<double>(), x.data<double>(), rows, n);
}

}  // namespace mpncov::ops
