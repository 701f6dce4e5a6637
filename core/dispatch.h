// Argument checks and backend dispatch shared by the op implementations (core/ops.cpp, nn_ops.cpp,
// matrix_ops.cpp, sketch_ops.cpp, optim_ops.cpp, fft.cpp). Each op checks its arguments, then calls
// dispatch() with its CUDA kernel call and its CPU kernel call; docs/layers.md ("Adding an op") has the steps.
#pragma once
#include <initializer_list>

#include "core/bfloat16.h"
#include "core/cuda_backend.h"
#include "core/tensor.h"

namespace mpncov::ops {

// The element types an op takes, as a set: its checks admit them and dispatch instantiates its CPU
// kernels for them. Ops compute in float32 or float64 (the default); the ops that opt in to bfloat16
// storage (activations of a bfloat16 net, docs/layouts.md) also take DType::BF16 CPU tensors, which their
// kernels widen to float32, compute and round back (core/bfloat16.h). CUDA computes float32 only.
using DTypeSet = unsigned;
constexpr DTypeSet kFloat32 = 1, kFloat64 = 2, kBfloat16 = 4;
constexpr DTypeSet kComputeTypes = kFloat32 | kFloat64;
constexpr DTypeSet kStorageTypes = kComputeTypes | kBfloat16;

// t is defined, of a dtype in `types`, and of one its device computes in (CUDA: float32 only).
void check_float(const char* op, const Tensor& t, DTypeSet types = kComputeTypes);

// The first tensor passes check_float; every other defined one shares its device and dtype. Undefined
// tensors after the first are optional arguments: the op decides whether it may leave them out.
void check_same(const char* op, std::initializer_list<const Tensor*> tensors, DTypeSet types = kComputeTypes);

// The element pointer of an optional tensor: null when it is undefined.
template <typename T>
T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Runs an op on t's device: on_cuda(device index) when t is on a CUDA device, else on_cpu(T{}) with T the
// element type of t (float, double, or bfloat16 when kTypes has it; the op's checks admitted t with the
// same set). on_cuda takes `auto` so that a build without CUDA never instantiates its body: the backend's
// kernels need no stand-ins there, and a CUDA device is refused by cuda::absent.
template <DTypeSet kTypes = kComputeTypes, typename OnCuda, typename OnCpu>
void dispatch(const Tensor& t, OnCuda&& on_cuda, OnCpu&& on_cpu) {
  if (t.device().is_cuda()) {
    if constexpr (cuda::kBuilt) on_cuda(t.device().index);
    else cuda::absent(t.device());
    return;
  }
  switch (t.dtype()) {
    case DType::F32:
      if constexpr ((kTypes & kFloat32) != 0) return on_cpu(float{});
      break;
    case DType::F64:
      if constexpr ((kTypes & kFloat64) != 0) return on_cpu(double{});
      break;
    case DType::BF16:
      if constexpr ((kTypes & kBfloat16) != 0) return on_cpu(bfloat16{});
      break;
    default: break;
  }
  MPNCOV_FAIL("dispatch: no CPU kernel for ", t.str(), " (the op's checks should have refused it)");
}

}  // namespace mpncov::ops
