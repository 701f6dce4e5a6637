#include "core/layout_ops.h"

#include "core/cpu/blocked.h"

namespace mpncov::ops {

bool is_nchw(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (t->defined() && t->layout() != Layout::NCHW) return false;
  return true;
}

void check_layouts(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (!first) first = t;
    MPNCOV_CHECK(t->layout() == first->layout(), op, ": operands in different layouts, ", first->str(), " and ",
                 t->str());
  }
  if (first && first->layout() != Layout::NCHW)
    MPNCOV_CHECK(first->device().is_cpu() && first->dtype() == DType::F32 && first->ndim() == 4, op, ": layout ",
                 layout_name(first->layout()), " is for 4-D float32 CPU tensors, got ", first->str());
}

void to_layout(const Tensor& x, const Tensor& y) {
  MPNCOV_CHECK(x.defined() && y.defined(), "to_layout: undefined tensor");
  MPNCOV_CHECK(x.shape() == y.shape() && x.dtype() == y.dtype(), "to_layout: ", x.str(), " into ", y.str());
  if (x.layout() == y.layout()) {
    if (!x.same_storage(y)) const_cast<Tensor&>(y).copy_from(x);
    return;
  }
  check_layouts("to_layout", {&x});
  check_layouts("to_layout", {&y});
  MPNCOV_CHECK(!x.same_storage(y), "to_layout: cannot convert in place (", x.str(), " into ", y.str(), ")");
  const int64_t c = x.dim(1);
  cpu::convert_layout(x.data<float>(), layout_block(x.layout(), c), y.data<float>(), layout_block(y.layout(), c),
                      x.dim(0), c, x.dim(2) * x.dim(3));
}

Tensor to_nchw(const Tensor& x) {
  if (x.layout() == Layout::NCHW) return x;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  to_layout(x, y);
  return y;
}

}  // namespace mpncov::ops
