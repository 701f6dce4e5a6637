// Real FFTs on the CPU through FFTW: one plan per (length, direction, precision), made once under a lock
// (FFTW's planner is not thread-safe) and executed on each row from OpenMP threads with FFTW's new-array
// functions (which are). FFTW_UNALIGNED because rows of n/2 + 1 complex values are only 8-byte aligned;
// FFTW_ESTIMATE so the chosen algorithm, and the rounding, never depend on timing.
#include <fftw3.h>

#include <map>
#include <mutex>
#include <utility>

#include "core/cpu/matrix_cpu.h"
#include "core/error.h"

namespace mpncov::cpu {
namespace {

// The FFTW API of one precision.
template <typename T>
struct Fftw;
template <>
struct Fftw<float> {
  using Plan = fftwf_plan;
  using Complex = fftwf_complex;
  static Plan plan(int n, bool forward) {
    float* r = fftwf_alloc_real(static_cast<size_t>(n));
    Complex* c = fftwf_alloc_complex(static_cast<size_t>(n / 2 + 1));
    Plan p = forward ? fftwf_plan_dft_r2c_1d(n, r, c, FFTW_ESTIMATE | FFTW_UNALIGNED)
                     : fftwf_plan_dft_c2r_1d(n, c, r, FFTW_ESTIMATE | FFTW_UNALIGNED | FFTW_PRESERVE_INPUT);
    fftwf_free(r);
    fftwf_free(c);
    return p;
  }
  static void r2c(Plan p, const float* x, float* y) {
    fftwf_execute_dft_r2c(p, const_cast<float*>(x), reinterpret_cast<Complex*>(y));
  }
  static void c2r(Plan p, const float* y, float* x) {
    fftwf_execute_dft_c2r(p, reinterpret_cast<Complex*>(const_cast<float*>(y)), x);
  }
  static void destroy(Plan p) { fftwf_destroy_plan(p); }
  static void cleanup() { fftwf_cleanup(); }
};
template <>
struct Fftw<double> {
  using Plan = fftw_plan;
  using Complex = fftw_complex;
  static Plan plan(int n, bool forward) {
    double* r = fftw_alloc_real(static_cast<size_t>(n));
    Complex* c = fftw_alloc_complex(static_cast<size_t>(n / 2 + 1));
    Plan p = forward ? fftw_plan_dft_r2c_1d(n, r, c, FFTW_ESTIMATE | FFTW_UNALIGNED)
                     : fftw_plan_dft_c2r_1d(n, c, r, FFTW_ESTIMATE | FFTW_UNALIGNED | FFTW_PRESERVE_INPUT);
    fftw_free(r);
    fftw_free(c);
    return p;
  }
  static void r2c(Plan p, const double* x, double* y) {
    fftw_execute_dft_r2c(p, const_cast<double*>(x), reinterpret_cast<Complex*>(y));
  }
  static void c2r(Plan p, const double* y, double* x) {
    fftw_execute_dft_c2r(p, reinterpret_cast<Complex*>(const_cast<double*>(y)), x);
  }
  static void destroy(Plan p) { fftw_destroy_plan(p); }
  static void cleanup() { fftw_cleanup(); }
};

// Plans live for the life of the process (a handful of lengths per run); at exit they are destroyed and
// FFTW's own planner memory released, so leak checkers see nothing left.
template <typename T>
struct PlanCache {
  std::mutex mutex;
  std::map<std::pair<int64_t, bool>, typename Fftw<T>::Plan> plans;
  ~PlanCache() {
    for (auto& kv : plans) Fftw<T>::destroy(kv.second);
    Fftw<T>::cleanup();
  }
};

template <typename T>
typename Fftw<T>::Plan cached_plan(int64_t n, bool forward) {
  static PlanCache<T> cache;
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto it = cache.plans.find({n, forward});
  if (it != cache.plans.end()) return it->second;
  typename Fftw<T>::Plan p = Fftw<T>::plan(static_cast<int>(n), forward);
  MPNCOV_CHECK(p != nullptr, "FFTW could not plan a real transform of length ", n);
  cache.plans.emplace(std::make_pair(n, forward), p);
  return p;
}

}  // namespace

template <typename T>
void rfft(const T* x, T* y, int64_t rows, int64_t n) {
  const auto plan = cached_plan<T>(n, true);
  const int64_t bins = n / 2 + 1;
#pragma omp parallel for if (rows > 1 && rows * n > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) Fftw<T>::r2c(plan, x + r * n, y + r * bins * 2);
}

template <typename T>
void irfft(const T* y, T* x, int64_t rows, int64_t n) {
  const auto plan = cached_plan<T>(n, false);
  const int64_t bins = n / 2 + 1;
#pragma omp parallel for if (rows > 1 && rows * n > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) Fftw<T>::c2r(plan, y + r * bins * 2, x + r * n);
}

template void rfft<float>(const float*, float*, int64_t, int64_t);
template void rfft<double>(const double*, double*, int64_t, int64_t);
template void irfft<float>(const float*, float*, int64_t, int64_t);
template void irfft<double>(const double*, double*, int64_t, int64_t);

}  // namespace mpncov::cpu
