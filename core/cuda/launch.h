// Launch helpers for the backend's kernels: grid sizes for grid-stride loops, and whether index arithmetic
// may use 32 bits (integer division is several times cheaper than in 64).
#pragma once
#include <algorithm>
#include <cstdint>

namespace mpncov::cuda {

constexpr int kThreads = 256;

// Blocks for n elements at `threads` per block, capped: kernels loop with a grid stride past the cap.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(b, 1), int64_t(1) << 20));
}

// Every index below n fits a signed 32-bit integer.
inline bool fits_int32(int64_t n) { return n <= INT32_MAX; }

}  // namespace mpncov::cuda

#if defined(__CUDACC__)
// for (int64_t i = first; i < n; i += stride) over the whole grid.
#define MPNCOV_GRID_LOOP(i, n)                                                                     \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);         \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
#endif
