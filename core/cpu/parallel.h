// How CPU kernels share the threads. Every route keeps all threads busy at any batch size: work is cut
// into tasks (images, channels, blocks of a product) and the tasks go to one OpenMP team.
//
// OpenBLAS (its OpenMP build) runs single-threaded inside an active parallel region, which is what a task
// wants. Outside one it threads each call itself; but inside an *inactive* region (`#pragma omp parallel
// if (false)`, or a team of one) it starts a nested team per call, and each nested team creates its threads
// afresh: a 0.2 ms product then takes 3 ms. So a BLAS call must never run inside a region opened with a
// false `if`: run_tasks opens a region only when it will really use several threads, and otherwise runs the
// tasks as a plain loop.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace mpncov::cpu {

// The threads a task split can use here: 1 inside a parallel region (its tasks then run serially).
inline int free_threads() { return omp_get_level() > 0 ? 1 : omp_get_max_threads(); }

// Runs f(t) for t in [0, count), spread over the threads when there is more than one task and thread
// and the work is `worth` it; otherwise (and inside a parallel region) as a plain loop.
template <typename F>
void run_tasks(int64_t count, bool worth, F&& f) {
  if (worth && count > 1 && free_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < count; ++t) f(t);
  } else {
    for (int64_t t = 0; t < count; ++t) f(t);
  }
}

// Elements of plain loop work below which a team costs more than it saves.
constexpr int64_t kParallelWork = int64_t{1} << 15;

// [begin, end) of part p of `parts` near-equal parts of [0, size), boundaries on multiples of `align`.
inline void part_range(int64_t size, int64_t parts, int64_t p, int64_t align, int64_t& begin, int64_t& end) {
  const int64_t units = (size + align - 1) / align;
  begin = std::min(size, units * p / parts * align);
  end = std::min(size, units * (p + 1) / parts * align);
}

}  // namespace mpncov::cpu
