// Reductions over any set of axes on the CPU: one output element per kept index, each summing (or
// maxing) its reduced sub-block in row-major order, accumulating in double. A long contiguous sum is
// split into fixed chunks instead (long_sum).
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/cpu/cpu_ops.h"

namespace mpncov::cpu {
namespace {

// Offset of flat index i in a space of the given sizes and strides (row-major over the sizes).
inline int64_t offset_of(int64_t i, int dims, const int64_t* size, const int64_t* stride) {
  int64_t off = 0;
  for (int d = dims - 1; d >= 0; --d) {
    off += (i % size[d]) * stride[d];
    i /= size[d];
  }
  return off;
}

constexpr int64_t kSumChunk = int64_t{1} << 14;

// The sum of n contiguous values: chunks of kSumChunk, each summed in eight double lanes, the chunk sums
// added in order, so the result does not depend on the thread count. The chunks split between the
// threads: a full reduction (one output, e.g. a training step's finiteness check of each gradient) would
// otherwise run on one thread, one dependent add per element.
template <typename T>
double long_sum(const T* x, int64_t n) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> part(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const T* xc = x + c * kSumChunk;
    const int64_t m = std::min(kSumChunk, n - c * kSumChunk);
    double lanes[8] = {};
    int64_t i = 0;
    for (; i + 8 <= m; i += 8)
#pragma omp simd
      for (int k = 0; k < 8; ++k) lanes[k] += static_cast<double>(xc[i + k]);
    double acc = 0;
    for (; i < m; ++i) acc += static_cast<double>(xc[i]);
    for (int k = 0; k < 8; ++k) acc += lanes[k];
    part[static_cast<size_t>(c)] = acc;
  }
  double acc = 0;
  for (double v : part) acc += v;
  return acc;
}

}  // namespace

template <typename T>
void reduce(ops::Reduce op, const T* x, const ops::detail::ReducePlan& p, T* out, int64_t* index) {
  if (op != ops::Reduce::Max && p.reduced_dims == 1 && p.reduced_stride[0] == 1 && p.reduced_numel >= 4 * kSumChunk &&
      p.out_numel < omp_get_max_threads()) {  // too few outputs to split: split each sum
    for (int64_t o = 0; o < p.out_numel; ++o) {
      double acc = long_sum(x + offset_of(o, p.kept_dims, p.kept_size, p.kept_stride), p.reduced_numel);
      if (op == ops::Reduce::Mean) acc /= static_cast<double>(p.reduced_numel);
      out[o] = static_cast<T>(acc);
    }
    return;
  }
#pragma omp parallel for if (p.out_numel * p.reduced_numel > (1 << 15))
  for (int64_t o = 0; o < p.out_numel; ++o) {
    const T* base = x + offset_of(o, p.kept_dims, p.kept_size, p.kept_stride);
    if (op == ops::Reduce::Max) {
      T best = -std::numeric_limits<T>::infinity();
      int64_t best_at = 0;
      for (int64_t r = 0; r < p.reduced_numel; ++r) {
        const T v = base[offset_of(r, p.reduced_dims, p.reduced_size, p.reduced_stride)];
        if (v > best || (r == 0) || (v != v && best == best)) {  // NaN wins, as in PyTorch
          best = v;
          best_at = r;
        }
      }
      out[o] = best;
      if (index) index[o] = best_at;
    } else {
      double acc = 0;
      if (p.reduced_dims == 1 && p.reduced_stride[0] == 1) {
        for (int64_t r = 0; r < p.reduced_numel; ++r) acc += base[r];
      } else {
        for (int64_t r = 0; r < p.reduced_numel; ++r)
          acc += base[offset_of(r, p.reduced_dims, p.reduced_size, p.reduced_stride)];
      }
      if (op == ops::Reduce::Mean) acc = p.reduced_numel ? acc / static_cast<double>(p.reduced_numel) : 0.0;
      out[o] = static_cast<T>(acc);
    }
  }
}

template void reduce<float>(ops::Reduce, const float*, const ops::detail::ReducePlan&, float*, int64_t*);
template void reduce<double>(ops::Reduce, const double*, const ops::detail::ReducePlan&, double*, int64_t*);

}  // namespace mpncov::cpu
