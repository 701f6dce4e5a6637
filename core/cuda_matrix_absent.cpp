// Linked instead of the CUDA representation ops when mpncov is built without CUDA: each entry point says so.
#include "core/cuda_matrix_backend.h"
#include "core/error.h"

namespace mpncov::cuda {
namespace {
[[noreturn]] void absent() {
  throw Error("this build of mpncov has no CUDA backend; reconfigure with -DMPNCOV_CUDA=ON on a machine with the "
              "CUDA toolkit, or use --device cpu");
}
}  // namespace

void add_identity(int, const float*, float, float, float*, const float*, const float*, int64_t, int64_t) { absent(); }
void symmetric_combine(int, float, const float*, float, const float*, int, float, const float*, float*, int64_t, int64_t) { absent(); }
void trace(int, const float*, float*, int64_t, int64_t) { absent(); }
void batched_dot(int, const float*, const float*, float*, int64_t, int64_t) { absent(); }
void trace_guard(int, const float*, double, float*, float*, int64_t) { absent(); }
void center_rows(int, const float*, float*, int64_t, int64_t) { absent(); }
void triu_gather(int, const float*, const float*, float*, int64_t, int64_t) { absent(); }
void triu_scatter(int, const float*, const float*, float*, int64_t, int64_t, bool) { absent(); }
void signed_sqrt(int, const float*, float, float*, int64_t) { absent(); }
void signed_sqrt_backward(int, const float*, const float*, float, float*, int64_t) { absent(); }
void l2_normalize_rows(int, const float*, float, float*, float*, int64_t, int64_t) { absent(); }
void l2_normalize_rows_backward(int, const float*, const float*, const float*, float, float*, int64_t, int64_t) { absent(); }
void count_sketch(int, const float*, const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t) { absent(); }
void spectrum_product_sum(int, const float*, const float*, float*, int64_t, int64_t, int64_t) { absent(); }
void sketch_gram_gather(int, const float*, const float*, const float*, const float*, const float*, float*, int64_t, int64_t, int64_t) { absent(); }
void rfft(int, const float*, float*, int64_t, int64_t) { absent(); }
void irfft(int, const float*, float*, int64_t, int64_t) { absent(); }

}  // namespace mpncov::cuda
