#include "core/layout_ops.h"

#include "core/bfloat16.h"
#include "core/cpu/blocked.h"
#include "core/ops.h"

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
    MPNCOV_CHECK(first->device().is_cpu() && (first->dtype() == DType::F32 || first->dtype() == DType::BF16) &&
                     first->ndim() == 4,
                 op, ": layout ", layout_name(first->layout()), " is for 4-D float32 or bfloat16 CPU tensors, got ",
                 first->str());
}

namespace {
// y = x reordered, SX and SY the storage types of x and y.
template <typename SX, typename SY>
void convert(const Tensor& x, const Tensor& y) {
  const int64_t c = x.dim(1);
  cpu::convert_layout<SX, SY>(x.data<SX>(), layout_block(x.layout(), c), y.data<SY>(), layout_block(y.layout(), c),
                              x.dim(0), c, x.dim(2) * x.dim(3));
}
}  // namespace

void to_layout(const Tensor& x, const Tensor& y) {
  MPNCOV_CHECK(x.defined() && y.defined(), "to_layout: undefined tensor");
  MPNCOV_CHECK(x.shape() == y.shape(), "to_layout: ", x.str(), " into ", y.str());
  if (x.layout() == y.layout()) {
    if (x.dtype() != y.dtype()) return cast(x, y);  // the same order: a conversion of each element
    if (!x.same_storage(y)) const_cast<Tensor&>(y).copy_from(x);
    return;
  }
  const auto storage = [](DType t) { return t == DType::F32 || t == DType::BF16; };
  MPNCOV_CHECK(x.dtype() == y.dtype() || (storage(x.dtype()) && storage(y.dtype())), "to_layout: ", x.str(), " into ",
               y.str(), " (converts between float32 and bfloat16 only)");
  check_layouts("to_layout", {&x});
  check_layouts("to_layout", {&y});
  MPNCOV_CHECK(x.device().is_cpu() && y.device().is_cpu() && storage(x.dtype()) && storage(y.dtype()), "to_layout: ",
               x.str(), " into ", y.str(), ": layouts are for 4-D float32 or bfloat16 CPU tensors");
  MPNCOV_CHECK(!x.same_storage(y), "to_layout: cannot convert in place (", x.str(), " into ", y.str(), ")");
  const bool xb = x.dtype() == DType::BF16, yb = y.dtype() == DType::BF16;
  if (!xb && !yb) return convert<float, float>(x, y);
  if (!xb && yb) return convert<float, bfloat16>(x, y);
  if (xb && !yb) return convert<bfloat16, float>(x, y);
  return convert<bfloat16, bfloat16>(x, y);
}

Tensor to_nchw(const Tensor& x) {
  if (x.layout() == Layout::NCHW) return x;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  to_layout(x, y);
  return y;
}

Tensor to_nchw_float(const Tensor& x) {
  MPNCOV_CHECK(x.defined(), "to_nchw_float: undefined tensor");
  if (x.dtype() != DType::BF16) return to_nchw(x);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  to_layout(x, y);
  return y;
}

}  // namespace mpncov::ops
