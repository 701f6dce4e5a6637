#include "core/dispatch.h"

namespace mpncov::ops {

void check_float(const char* op, const Tensor& t) {
  MPNCOV_CHECK(t.defined(), op, ": undefined tensor");
  MPNCOV_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, op, ": needs float32 or float64, got ", t.str());
  MPNCOV_CHECK(t.device().is_cpu() || t.dtype() == DType::F32, op, ": the CUDA backend computes float32 only, got ",
               t.str());
}

void check_same(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor& first = **tensors.begin();
  check_float(op, first);
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    MPNCOV_CHECK(t->device() == first.device(), op, ": tensors on different devices (", first.str(), ", ", t->str(),
                 ")");
    MPNCOV_CHECK(t->dtype() == first.dtype(), op, ": tensors of different dtypes (", first.str(), ", ", t->str(),
                 ")");
  }
}

}  // namespace mpncov::ops
