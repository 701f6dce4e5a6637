// The layout of every layer's output in a net (core/layout.h), so activations stay in a convolution
// kernel's layout between the layers that understand it and are converted only where one that does not
// reads them: there the producer writes NCHW (a convolution then reorders once, into NCHW).
#pragma once
#include <memory>
#include <vector>

#include "layers/layer.h"

namespace mpncov {

// inputs[i]: the layers whose outputs layer i reads (-1: the net's input, always NCHW). The last layer's
// output is NCHW (the net's result). Every layer gets NCHW unless `dtype` is float32 on the CPU and
// the layout mode (core/layout.h) is on.
std::vector<Layout> plan_layouts(const std::vector<std::unique_ptr<Layer>>& layers,
                                 const std::vector<std::vector<int>>& inputs, DType dtype, Device device);

}  // namespace mpncov
