// Real FFTs on CUDA through cuFFT (core/fft.h): one batched plan per (device, length, rows, direction),
// made once and kept, bound to the device's stream. cuFFT's complex-to-real transform may overwrite its
// input, so irfft first copies the spectrum into the context's scratch memory.
#include <cufft.h>

#include <climits>
#include <map>
#include <mutex>
#include <tuple>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda_matrix_backend.h"

namespace mpncov::cuda {
namespace {

cufftHandle cached_plan(int device, int64_t n, int64_t rows, bool forward) {
  static std::mutex mutex;
  static std::map<std::tuple<int, int64_t, int64_t, bool>, cufftHandle> plans;
  std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(device, n, rows, forward);
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  MPNCOV_CHECK(n <= INT_MAX && rows <= INT_MAX && rows * (n / 2 + 1) <= INT_MAX,
               "cuFFT: ", rows, " transforms of length ", n, " exceed its 32-bit plan sizes");
  int len = static_cast<int>(n);
  const int bins = static_cast<int>(n / 2 + 1);
  cufftHandle plan;
  CUFFT_CHECK(cufftPlanMany(&plan, 1, &len, nullptr, 1, forward ? len : bins, nullptr, 1, forward ? bins : len,
                            forward ? CUFFT_R2C : CUFFT_C2R, static_cast<int>(rows)));
  CUFFT_CHECK(cufftSetStream(plan, context(device).stream()));
  plans.emplace(key, plan);
  return plan;
}

}  // namespace

void rfft(int device, const float* x, float* y, int64_t rows, int64_t n) {
  DeviceGuard guard(device);
  const cufftHandle plan = cached_plan(device, n, rows, true);
  CUFFT_CHECK(cufftExecR2C(plan, const_cast<cufftReal*>(x), reinterpret_cast<cufftComplex*>(y)));
}

void irfft(int device, const float* y, float* x, int64_t rows, int64_t n) {
  DeviceGuard guard(device);
  Context& ctx = context(device);
  const cufftHandle plan = cached_plan(device, n, rows, false);
  const size_t bytes = static_cast<size_t>(rows * (n / 2 + 1)) * sizeof(cufftComplex);
  void* scratch = ctx.workspace(bytes);
  CUDA_CHECK(cudaMemcpyAsync(scratch, y, bytes, cudaMemcpyDeviceToDevice, ctx.stream()));
  CUFFT_CHECK(cufftExecC2R(plan, static_cast<cufftComplex*>(scratch), x));
}

}  // namespace mpncov::cuda
