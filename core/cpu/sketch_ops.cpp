// Count sketch, spectrum products and the sketch's Gram-gradient gather on the CPU (core/sketch_ops.h).
#include <cstring>

#include "core/cpu/matrix_cpu.h"

namespace mpncov::cpu {

template <typename T>
void count_sketch(const T* x, const T* hash, const T* sign, T* out, int64_t batch, int64_t channels,
                  int64_t positions, int64_t dim) {
  // One (sample, position) row of out per iteration: its channels scatter into it.
#pragma omp parallel for if (batch * positions > 1)
  for (int64_t i = 0; i < batch * positions; ++i) {
    const int64_t b = i / positions, m = i % positions;
    T* row = out + i * dim;
    std::memset(row, 0, static_cast<size_t>(dim) * sizeof(T));
    const T* xb = x + b * channels * positions + m;
    for (int64_t c = 0; c < channels; ++c) row[static_cast<int64_t>(hash[c])] += sign[c] * xb[c * positions];
  }
}

template <typename T>
void spectrum_product_sum(const T* a, const T* b, T* out, int64_t batch, int64_t positions, int64_t bins) {
#pragma omp parallel for if (batch * bins > 1024)
  for (int64_t i = 0; i < batch * bins; ++i) {
    const int64_t s = i / bins, f = i % bins;
    T re = 0, im = 0;
    for (int64_t m = 0; m < positions; ++m) {
      const int64_t e = ((s * positions + m) * bins + f) * 2;
      re += a[e] * b[e] - a[e + 1] * b[e + 1];
      im += a[e] * b[e + 1] + a[e + 1] * b[e];
    }
    out[i * 2] = re;
    out[i * 2 + 1] = im;
  }
}

template <typename T>
void sketch_gram_gather(const T* g, const T* h1, const T* s1, const T* h2, const T* s2, T* out, int64_t batch,
                        int64_t channels, int64_t dim) {
#pragma omp parallel for if (batch * channels > 1)
  for (int64_t i = 0; i < batch * channels; ++i) {
    const int64_t b = i / channels, c = i % channels;
    const T* gb = g + b * dim;
    T* row = out + i * channels;
    const int64_t h1c = static_cast<int64_t>(h1[c]), h2c = static_cast<int64_t>(h2[c]);
    for (int64_t d = 0; d < channels; ++d) {
      const int64_t k1 = (h1c + static_cast<int64_t>(h2[d])) % dim, k2 = (static_cast<int64_t>(h1[d]) + h2c) % dim;
      row[d] = s1[c] * s2[d] * gb[k1] + s1[d] * s2[c] * gb[k2];
    }
  }
}

#define MPNCOV_SKETCH_CPU(T)                                                                                   \
  template void count_sketch<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t);          \
  template void spectrum_product_sum<T>(const T*, const T*, T*, int64_t, int64_t, int64_t);                     \
  template void sketch_gram_gather<T>(const T*, const T*, const T*, const T*, const T*, T*, int64_t, int64_t,   \
                                      int64_t);
MPNCOV_SKETCH_CPU(float)
MPNCOV_SKETCH_CPU(double)
#undef MPNCOV_SKETCH_CPU

}  // namespace mpncov::cpu
