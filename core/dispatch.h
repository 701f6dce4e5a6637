// Argument checks and backend dispatch shared by the op implementations (core/ops.cpp, nn_ops.cpp,
// matrix_ops.cpp, sketch_ops.cpp, optim_ops.cpp, fft.cpp). Each op checks its arguments, then calls
// dispatch() with its CUDA kernel call and its CPU kernel call; docs/layers.md ("Adding an op") has the steps.
#pragma once
#include <initializer_list>

#include "core/cuda_backend.h"
#include "core/tensor.h"

namespace mpncov::ops {

// t is defined, float32 or float64, and of a dtype its device computes in (CUDA: float32 only).
void check_float(const char* op, const Tensor& t);

// The first tensor passes check_float; every other defined one shares its device and dtype. Undefined
// tensors after the first are optional arguments: the op decides whether it may leave them out.
void check_same(const char* op, std::initializer_list<const Tensor*> tensors);

// The element pointer of an optional tensor: null when it is undefined.
template <typename T>
T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Runs an op on t's device: on_cuda(device index) when t is on a CUDA device, else on_cpu(T{}) with T the
// element type of t (float or double). on_cuda takes `auto` so that a build without CUDA never instantiates
// its body: the backend's kernels need no stand-ins there, and a CUDA device is refused by cuda::absent.
template <typename OnCuda, typename OnCpu>
void dispatch(const Tensor& t, OnCuda&& on_cuda, OnCpu&& on_cpu) {
  if (t.device().is_cuda()) {
    if constexpr (cuda::kBuilt) on_cuda(t.device().index);
    else cuda::absent(t.device());
  } else if (t.dtype() == DType::F32) {
    on_cpu(float{});
  } else {
    on_cpu(double{});
  }
}

}  // namespace mpncov::ops
