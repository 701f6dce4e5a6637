// The optimiser's one op: a fused SGD update of one parameter tensor, in a single pass over memory.
//
//   d   = grad + weight_decay * w
//   buf = first ? d : momentum * buf + d            (only when momentum != 0; dampening 0)
//   s   = nesterov ? d + momentum * buf : buf       (s = d when momentum == 0)
//   w   = w - lr * s
//
// PyTorch's torch.optim.SGD convention, evaluated in the same order and in the tensor's own precision (the
// scalars are cast to it first), so float32 and float64 updates match PyTorch's to the last bits or nearly.
#pragma once
#include "core/tensor.h"

namespace mpncov::ops {

struct SgdStep {
  double lr = 0;
  double weight_decay = 0;
  double momentum = 0;
  bool nesterov = false;
  bool first = false;  // the momentum buffer holds nothing yet: initialise it to d
};

// w, grad (and buf, unless momentum == 0, when it may be undefined) share shape, dtype and device.
void sgd_update(const Tensor& w, const Tensor& grad, const Tensor& buf, const SgdStep& step);

}  // namespace mpncov::ops
