// Count sketch, spectrum products and the sketch's Gram-gradient gather on CUDA (core/sketch_ops.h), with
// the formulas of core/cpu/sketch_ops.cpp. Each output is owned by one thread (no atomics), so results
// are deterministic.
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_matrix_backend.h"

namespace mpncov::cuda {
namespace {

// One thread per (sample, position): its channels scatter into its row of out (zeroed before). Adjacent
// threads read adjacent positions of x.
__global__ void count_sketch_kernel(const float* x, const float* hash, const float* sign, float* out,
                                    int64_t channels, int64_t positions, int64_t dim, int64_t total) {
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t b = i / positions, m = i % positions;
    const float* xb = x + b * channels * positions + m;
    float* row = out + i * dim;
    for (int64_t c = 0; c < channels; ++c) row[static_cast<int64_t>(hash[c])] += sign[c] * xb[c * positions];
  }
}

// One thread per (sample, frequency), summing over positions.
__global__ void spectrum_product_sum_kernel(const float* a, const float* b, float* out, int64_t positions,
                                            int64_t bins, int64_t total) {
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t s = i / bins, f = i % bins;
    float re = 0.0f, im = 0.0f;
    for (int64_t m = 0; m < positions; ++m) {
      const int64_t e = ((s * positions + m) * bins + f) * 2;
      re += a[e] * b[e] - a[e + 1] * b[e + 1];
      im += a[e] * b[e + 1] + a[e + 1] * b[e];
    }
    out[i * 2] = re;
    out[i * 2 + 1] = im;
  }
}

__global__ void sketch_gram_gather_kernel(const float* g, const float* h1, const float* s1, const float* h2,
                                          const float* s2, float* out, int64_t channels, int64_t dim,
                                          int64_t total) {
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t b = i / (channels * channels), c = (i / channels) % channels, d = i % channels;
    const float* gb = g + b * dim;
    const int64_t k1 = (static_cast<int64_t>(h1[c]) + static_cast<int64_t>(h2[d])) % dim;
    const int64_t k2 = (static_cast<int64_t>(h1[d]) + static_cast<int64_t>(h2[c])) % dim;
    out[i] = s1[c] * s2[d] * gb[k1] + s1[d] * s2[c] * gb[k2];
  }
}

}  // namespace

void count_sketch(int device, const float* x, const float* hash, const float* sign, float* out, int64_t batch,
                  int64_t channels, int64_t positions, int64_t dim) {
  const int64_t total = batch * positions;
  if (total == 0) return;
  DeviceGuard guard(device);
  cudaStream_t stream = context(device).stream();
  CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<size_t>(total * dim) * sizeof(float), stream));
  count_sketch_kernel<<<blocks_for(total, 128), 128, 0, stream>>>(x, hash, sign, out, channels, positions, dim,
                                                                  total);
  CUDA_CHECK_LAUNCH();
}

void spectrum_product_sum(int device, const float* a, const float* b, float* out, int64_t batch, int64_t positions,
                          int64_t bins) {
  const int64_t total = batch * bins;
  if (total == 0) return;
  DeviceGuard guard(device);
  spectrum_product_sum_kernel<<<blocks_for(total), kThreads, 0, context(device).stream()>>>(a, b, out, positions,
                                                                                            bins, total);
  CUDA_CHECK_LAUNCH();
}

void sketch_gram_gather(int device, const float* g, const float* h1, const float* s1, const float* h2,
                        const float* s2, float* out, int64_t batch, int64_t channels, int64_t dim) {
  const int64_t total = batch * channels * channels;
  if (total == 0) return;
  DeviceGuard guard(device);
  sketch_gram_gather_kernel<<<blocks_for(total), kThreads, 0, context(device).stream()>>>(g, h1, s1, h2, s2, out,
                                                                                          channels, dim, total);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
