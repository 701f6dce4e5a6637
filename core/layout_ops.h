// Ops on the layout tags of core/layout.h: checks for the ops that accept several layouts, and the one
// conversion used at the boundaries of a net's planned layouts (and by tests).
#pragma once
#include <initializer_list>

#include "core/tensor.h"

namespace mpncov::ops {

// Whether every defined tensor is in the NCHW layout.
bool is_nchw(std::initializer_list<const Tensor*> tensors);
// That every defined tensor shares one layout, and when that is not NCHW, that they are float32 CPU
// tensors (the only kind the other layouts exist for). `op` names the caller in the error.
void check_layouts(const char* op, std::initializer_list<const Tensor*> tensors);
// y = x with y's layout: the same shape, x's elements reordered (x and y must not share storage unless
// the layouts are equal). float32 CPU tensors when the layouts differ.
void to_layout(const Tensor& x, const Tensor& y);
// A new tensor holding x in the NCHW layout (x itself when it is NCHW already).
Tensor to_nchw(const Tensor& x);

}  // namespace mpncov::ops
