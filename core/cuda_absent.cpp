// Linked instead of core/cuda/ when mpncov is built without CUDA: every CUDA entry point says so.
#include "core/cuda_backend.h"
#include "core/error.h"

namespace mpncov::cuda {
namespace {
[[noreturn]] void absent() {
  throw Error("this build of mpncov has no CUDA backend; reconfigure with -DMPNCOV_CUDA=ON on a machine with the "
              "CUDA toolkit, or use --device cpu");
}
[[noreturn]] void absent(int device) {
  throw Error(str("device cuda:", device, " asked for, but this build of mpncov has no CUDA backend; reconfigure "
                  "with -DMPNCOV_CUDA=ON on a machine with the CUDA toolkit, or use --device cpu"));
}
}  // namespace

bool built() { return false; }
int device_count() { return 0; }
std::string device_name(int device) { absent(device); }
void synchronize(int device) { absent(device); }
void* allocate(int device, size_t) { absent(device); }
void deallocate(int, void*, size_t) { absent(); }
AllocatorStats allocator_stats(int device) { absent(device); }
void reset_peak(int device) { absent(device); }
void empty_cache(int device) { absent(device); }
void* allocate_pinned(size_t) { absent(); }
void deallocate_pinned(void*) { absent(); }
void copy_bytes(void*, Device, const void*, Device, size_t) { absent(); }
void copy_to_device_async(void*, int device, const void*, size_t) { absent(device); }
void gemm(int, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t, const float*, int64_t,
          int64_t, float, float*, int64_t, int64_t, int64_t) { absent(); }
void im2col(int, const float*, const ops::ConvGeometry&, int64_t, float*) { absent(); }
void col2im(int, const float*, const ops::ConvGeometry&, int64_t, float*) { absent(); }
void unary(int, ops::Unary, const float*, float*, int64_t) { absent(); }
void binary(int, ops::Binary, const float*, const float*, float*, const ops::detail::BroadcastPlan&) { absent(); }
void binary_scalar(int, ops::Binary, const float*, float, float*, int64_t) { absent(); }
void axpby(int, float, const float*, float, float*, int64_t) { absent(); }
void fill(int, void*, DType, int64_t, double) { absent(); }
void reduce(int, ops::Reduce, const float*, const ops::detail::ReducePlan&, float*, int64_t*) { absent(); }
void fill_random(int, ops::detail::Random, float*, int64_t, double, double, uint64_t, uint64_t) { absent(); }

}  // namespace mpncov::cuda
