// Ops on the layout tags of core/layout.h: checks for the ops that accept several layouts, and the one
// conversion used at the boundaries of a net's planned layouts (and by tests).
#pragma once
#include <initializer_list>

#include "core/tensor.h"

namespace mpncov::ops {

// Whether every defined tensor is in the NCHW layout.
bool is_nchw(std::initializer_list<const Tensor*> tensors);
// That every defined tensor shares one layout, and when that is not NCHW, that they are 4-D float32 or
// bfloat16 CPU tensors (the only kinds the other layouts exist for). `op` names the caller in the error.
void check_layouts(const char* op, std::initializer_list<const Tensor*> tensors);
// y = x with y's layout and dtype: the same shape, x's elements reordered and, between float32 and
// bfloat16, converted in the same pass (rounded to nearest even, NaN kept). x and y must not share storage
// unless the layouts are equal. 4-D float32 or bfloat16 CPU tensors when the layouts differ; in one layout
// any conversion ops::cast makes.
void to_layout(const Tensor& x, const Tensor& y);
// A new tensor holding x in the NCHW layout (x itself when it is NCHW already), of x's dtype.
Tensor to_nchw(const Tensor& x);
// x as a float32 NCHW tensor, from any layout, float32 or bfloat16 (x itself when it is one already;
// other dtypes as to_nchw). What a reader outside the net wants: `mpncov extract`, tests.
Tensor to_nchw_float(const Tensor& x);

}  // namespace mpncov::ops
