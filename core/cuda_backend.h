// What the CUDA backend (core/cuda/) provides, in terms free of CUDA headers; the ops' kernels are declared in
// core/cuda_nn_backend.h, core/cuda_matrix_backend.h and core/cuda_optim_backend.h. Ops run on the device's
// stream and compute in float32.
//
// A build without CUDA compiles nothing under core/cuda/, so none of these functions is defined there: every
// call sits in a branch `if constexpr (cuda::kBuilt)` drops (the ops' through ops::dispatch, core/dispatch.h),
// and its other branch refuses the device with cuda::absent(). No CUDA tensor exists in such a build, since
// allocating one is refused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/allocator.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/ops.h"

namespace mpncov::cuda {

#ifdef MPNCOV_HAS_CUDA
inline constexpr bool kBuilt = true;
#else
inline constexpr bool kBuilt = false;
#endif

// Throws the error for a CUDA device asked of a build without the CUDA backend.
[[noreturn]] void absent(Device device);

// ---- runtime ----
int device_count();
std::string device_name(int device);
void synchronize(int device);
void* allocate(int device, size_t nbytes);
void deallocate(int device, void* ptr, size_t nbytes);
AllocatorStats allocator_stats(int device);
void reset_peak(int device);
void empty_cache(int device);
// Page-locked host memory, for fast and asynchronous host <-> device copies.
void* allocate_pinned(size_t nbytes);
void deallocate_pinned(void* ptr);
// Copies between any two of host and devices (at least one is CUDA).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

// Queues a host -> device copy on the device's stream and returns at once. With page-locked source
// memory the host must keep the source alive and unchanged until the stream has passed the copy (e.g.
// until the next synchronisation); with pageable memory CUDA has consumed the source on return.
void copy_to_device_async(void* dst, int device, const void* src, size_t nbytes);
// A marker queued on the device's stream after the work queued so far (e.g. an asynchronous copy).
// finish_event waits until that work is done, then frees the marker; it never throws (it runs in
// destructors; a device fault is left to the next synchronisation).
void* record_event(int device);
void finish_event(void* event);
// How the device's convolutions may compute (docs/gpu.md): TF32 tensor cores allowed or not (off unless
// MPNCOV_CUDA_TF32=1), deterministic algorithms only or not (off unless MPNCOV_CUDA_DETERMINISTIC=1).
void set_math(int device, bool allow_tf32, bool deterministic);

// ---- ops (float32) ----
void gemm(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b,
          float beta, float* c, int64_t ldc, int64_t stride_c, int64_t batch);
void im2col(int device, const float* x, const ops::ConvGeometry& g, int64_t batch, float* col);
void col2im(int device, const float* col, const ops::ConvGeometry& g, int64_t batch, float* x);
void unary(int device, ops::Unary op, const float* x, float* y, int64_t n);
void binary(int device, ops::Binary op, const float* a, const float* b, float* out,
            const ops::detail::BroadcastPlan& plan);
void binary_scalar(int device, ops::Binary op, const float* a, float s, float* out, int64_t n);
void axpby(int device, float alpha, const float* x, float beta, float* y, int64_t n);
// Fills float32 or int64 elements.
void fill(int device, void* p, DType dtype, int64_t n, double value);
void reduce(int device, ops::Reduce op, const float* x, const ops::detail::ReducePlan& plan, float* out,
            int64_t* index);
void fill_random(int device, ops::detail::Random kind, float* p, int64_t n, double a, double b,
                 uint64_t seed, uint64_t stream, uint64_t first);

}  // namespace mpncov::cuda
