// SGD with momentum in PyTorch's convention (torch.optim.SGD, dampening 0), by parameter group:
//
//   d = grad + wd * w,   buf = momentum * buf + d  (buf = d on a parameter's first update),
//   w -= lr * buf,  or with Nesterov  w -= lr * (d + momentum * buf)
//
// with lr = group lr x parameter lr_mult and wd = group weight decay x parameter decay_mult (Caffe's
// multipliers). Frozen parameters, and those with lr_mult 0, are skipped entirely: not updated, and their
// momentum buffer neither created nor touched. One fused op per parameter (core/optim_ops.h), on the
// parameter's device.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "optim/param_group.h"
#include "optim/schedule.h"

namespace mpncov {

// What a checkpoint keeps of the optimiser so a resumed run continues bit for bit.
struct SgdState {
  std::map<std::string, Tensor> momentum;  // full parameter name -> momentum buffer
  std::map<std::string, double> group_lr;  // group name -> current lr
  int64_t steps = 0;                       // updates made so far
};

class SGD {
 public:
  // Parameter and group names must be unique; a parameter may belong to one group only.
  explicit SGD(std::vector<ParamGroup> groups);

  const std::vector<ParamGroup>& groups() const { return groups_; }
  ParamGroup& group(const std::string& name);

  // Sets every group's lr from its base_lr through the schedule, at point p.
  void apply(const Schedule& schedule, const SchedulePoint& p);
  // One update of every trainable parameter from its gradient (which must be defined).
  void step();
  // Zeroes the gradient of every trainable parameter.
  void zero_grad();
  int64_t steps() const { return steps_; }

  // The momentum buffer of a parameter, or nullptr before its first update (or without momentum).
  const Tensor* momentum_buffer(const std::string& name) const;

  // The buffers are shared with the optimiser, not copied: save them before the next step.
  SgdState state() const;
  // Restores buffers (copied into place on each parameter's device and dtype) and group rates. Every name
  // must be one of this optimiser's; a parameter without a saved buffer starts afresh.
  void load_state(const SgdState& state);

 private:
  std::vector<ParamGroup> groups_;
  std::map<std::string, Tensor> buffers_;
  std::map<std::string, const Parameter*> by_name_;
  int64_t steps_ = 0;
};

}  // namespace mpncov
