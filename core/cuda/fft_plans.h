// The cuFFT plan cache of core/cuda/fft.cu, as tests and the GPU check see it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mpncov::cuda {

// Plans kept at most per device (least recently used out first).
constexpr size_t kMaxFftPlans = 16;

struct FftPlanStats {
  int64_t cached = 0;  // plans held now, all devices (<= kMaxFftPlans each)
  int64_t made = 0;    // plans made since the start, all devices: flat once every shape of a run has been seen
};
FftPlanStats fft_plan_stats();

}  // namespace mpncov::cuda
