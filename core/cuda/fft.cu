// Real FFTs on CUDA through cuFFT (core/fft.h). Plans are batched per (device, length, rows, direction),
// bound to the device's stream, and cached in a bounded cache per device: the least recently used plan
// goes when a device has more than kMaxFftPlans (compact bilinear pooling meets a new row count for each partial chunk and
// each evaluation batch size). Plans get no work area of their own (cufftSetAutoAllocation(0)): each
// transform takes one from the caching allocator for its duration, so cuFFT's memory is counted, reused
// and freed with the rest.
//
// cuFFT's complex-to-real transform is defined for Hermitian input only, and may overwrite its input. So
// irfft copies the spectrum to scratch memory and zeroes there the imaginary parts of bins 0 and n/2 (n
// even), which a real signal's spectrum has as zeros: the result then ignores them, as FFTW's does.
#include <cufft.h>

#include <climits>
#include <list>
#include <map>
#include <mutex>
#include <tuple>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/fft_plans.h"
#include "core/cuda/launch.h"
#include "core/cuda_matrix_backend.h"

namespace mpncov::cuda {
namespace {

using PlanKey = std::tuple<int, int64_t, int64_t, bool>;  // device, length, rows, forward

struct CachedPlan {
  PlanKey key;
  cufftHandle handle;
  size_t work_bytes;
};

struct PlanCache {
  std::mutex mutex;
  std::map<int, std::list<CachedPlan>> plans;  // per device, most recently used first
  int64_t made = 0;
};

PlanCache& cache() {
  static PlanCache* c = new PlanCache;  // never destroyed: plans may outlive other statics
  return *c;
}

CachedPlan make_plan(int device, int64_t n, int64_t rows, bool forward) {
  MPNCOV_CHECK(n <= INT_MAX && rows <= INT_MAX && rows * (n / 2 + 1) <= INT_MAX,
               "cuFFT: ", rows, " transforms of length ", n, " exceed its 32-bit plan sizes");
  int len = static_cast<int>(n);
  const int bins = static_cast<int>(n / 2 + 1);
  CachedPlan p{PlanKey(device, n, rows, forward), 0, 0};
  CUFFT_CHECK(cufftCreate(&p.handle));
  CUFFT_CHECK(cufftSetAutoAllocation(p.handle, 0));
  const cufftResult made =
      cufftMakePlanMany(p.handle, 1, &len, nullptr, 1, forward ? len : bins, nullptr, 1, forward ? bins : len,
                        forward ? CUFFT_R2C : CUFFT_C2R, static_cast<int>(rows), &p.work_bytes);
  if (made != CUFFT_SUCCESS) {
    cufftDestroy(p.handle);
    CUFFT_CHECK(made);
  }
  CUFFT_CHECK(cufftSetStream(p.handle, context(device).stream()));
  return p;
}

// The plan of the key, made if needed; a device keeps at most kMaxFftPlans. Only the device's own host
// thread (cuda_context.h) uses and evicts its plans.
CachedPlan cached_plan(int device, int64_t n, int64_t rows, bool forward) {
  PlanCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::list<CachedPlan>& plans = c.plans[device];
  const PlanKey key(device, n, rows, forward);
  for (auto it = plans.begin(); it != plans.end(); ++it)
    if (it->key == key) {
      plans.splice(plans.begin(), plans, it);
      return plans.front();
    }
  plans.push_front(make_plan(device, n, rows, forward));
  ++c.made;
  while (plans.size() > kMaxFftPlans) {
    context(device).synchronize();  // work queued with the plan is done before it goes
    cufftDestroy(plans.back().handle);
    plans.pop_back();
  }
  return plans.front();
}

// Zeroes the imaginary parts of bins 0 and, for even n, n/2 of each row of a (rows, n/2 + 1) spectrum.
__global__ void make_hermitian_kernel(cufftComplex* y, int64_t rows, int64_t bins, bool even) {
  MPNCOV_GRID_LOOP(r, rows) {
    y[r * bins].y = 0.0f;
    if (even) y[r * bins + bins - 1].y = 0.0f;
  }
}

}  // namespace

FftPlanStats fft_plan_stats() {
  PlanCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  FftPlanStats s;
  s.made = c.made;
  for (const auto& [device, plans] : c.plans) s.cached += static_cast<int64_t>(plans.size());
  return s;
}

void rfft(int device, const float* x, float* y, int64_t rows, int64_t n) {
  DeviceGuard guard(device);
  const CachedPlan plan = cached_plan(device, n, rows, true);
  DeviceBuffer work(device, plan.work_bytes);  // back to the allocator, in stream order, after the transform
  if (plan.work_bytes) CUFFT_CHECK(cufftSetWorkArea(plan.handle, work.get()));
  CUFFT_CHECK(cufftExecR2C(plan.handle, const_cast<cufftReal*>(x), reinterpret_cast<cufftComplex*>(y)));
  CUDA_CHECK_LAUNCH();
}

void irfft(int device, const float* y, float* x, int64_t rows, int64_t n) {
  DeviceGuard guard(device);
  Context& ctx = context(device);
  const CachedPlan plan = cached_plan(device, n, rows, false);
  const int64_t bins = n / 2 + 1;
  const size_t bytes = static_cast<size_t>(rows * bins) * sizeof(cufftComplex);
  DeviceBuffer spectrum(device, bytes), work(device, plan.work_bytes);
  CUDA_CHECK(cudaMemcpyAsync(spectrum.get(), y, bytes, cudaMemcpyDeviceToDevice, ctx.stream()));
  make_hermitian_kernel<<<blocks_for(rows), kThreads, 0, ctx.stream()>>>(spectrum.as<cufftComplex>(), rows, bins,
                                                                         n % 2 == 0);
  CUDA_CHECK_LAUNCH();
  if (plan.work_bytes) CUFFT_CHECK(cufftSetWorkArea(plan.handle, work.get()));
  CUFFT_CHECK(cufftExecC2R(plan.handle, spectrum.as<cufftComplex>(), x));
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
