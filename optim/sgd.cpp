#include "optim/sgd.h"

#include <set>

#include "core/ops.h"
#include "core/optim_ops.h"

namespace mpncov {

SGD::SGD(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  std::set<std::string> group_names;
  std::set<const Parameter*> seen;
  for (const ParamGroup& g : groups_) {
    MPNCOV_CHECK(group_names.insert(g.name).second, "SGD: two parameter groups are named '", g.name, "'");
    MPNCOV_CHECK(g.lr >= 0 && g.base_lr >= 0 && g.weight_decay >= 0 && g.momentum >= 0, "SGD: group '", g.name,
                 "' has a negative lr (", g.lr, "), weight decay (", g.weight_decay, ") or momentum (", g.momentum,
                 ")");
    MPNCOV_CHECK(!g.nesterov || g.momentum > 0, "SGD: group '", g.name, "' asks for Nesterov without momentum");
    for (const NamedParameter& p : g.params) {
      MPNCOV_CHECK(p.param != nullptr, "SGD: parameter '", p.name, "' in group '", g.name, "' is null");
      MPNCOV_CHECK(by_name_.emplace(p.name, p.param).second, "SGD: two parameters are named '", p.name, "'");
      MPNCOV_CHECK(seen.insert(p.param).second, "SGD: parameter '", p.name, "' is in more than one group");
    }
  }
}

ParamGroup& SGD::group(const std::string& name) {
  for (ParamGroup& g : groups_)
    if (g.name == name) return g;
  MPNCOV_FAIL("SGD: no parameter group named '", name, "'");
}

void SGD::apply(const Schedule& schedule, const SchedulePoint& p) {
  for (ParamGroup& g : groups_) g.lr = schedule.lr(g.base_lr, p);
}

void SGD::step() {
  for (const ParamGroup& g : groups_) {
    for (const NamedParameter& np : g.params) {
      Parameter& p = *np.param;
      if (p.frozen || p.lr_mult == 0) continue;
      MPNCOV_CHECK(p.grad.defined(), "SGD: parameter '", np.name, "' is trainable but has no gradient");
      zero_pending_grad(p);  // no backward pass wrote it since zero_grad
      ops::SgdStep s;
      s.lr = g.lr * p.lr_mult;
      s.weight_decay = g.weight_decay * p.decay_mult;
      s.momentum = g.momentum;
      s.nesterov = g.nesterov;
      Tensor buf;
      if (g.momentum != 0) {
        auto it = buffers_.find(np.name);
        s.first = it == buffers_.end();
        // No zero fill needed: the first update overwrites the buffer.
        if (s.first) it = buffers_.emplace(np.name, Tensor::empty(p.value.shape(), p.value.dtype(), p.value.device())).first;
        buf = it->second;
      }
      ops::sgd_update(p.value, p.grad, buf, s);
    }
  }
  ++steps_;
}

void SGD::zero_grad() {
  for (const ParamGroup& g : groups_)
    for (const NamedParameter& np : g.params)
      if (!np.param->frozen && np.param->grad.defined()) {
        // Deferred to the layer's next backward, which writes the gradient (Parameter::overwrite_grad).
        if (np.param->overwrite_grad) np.param->grad_zero_pending = true;
        else np.param->grad.zero();
      }
}

const Tensor* SGD::momentum_buffer(const std::string& name) const {
  auto it = buffers_.find(name);
  return it == buffers_.end() ? nullptr : &it->second;
}

SgdState SGD::state() const {
  SgdState s;
  s.momentum = buffers_;
  for (const ParamGroup& g : groups_) s.group_lr[g.name] = g.lr;
  s.steps = steps_;
  return s;
}

void SGD::load_state(const SgdState& state) {
  std::map<std::string, Tensor> restored;
  for (const auto& [name, saved] : state.momentum) {
    auto it = by_name_.find(name);
    MPNCOV_CHECK(it != by_name_.end(), "SGD state: momentum buffer for unknown parameter '", name, "'");
    const Tensor& value = it->second->value;
    MPNCOV_CHECK(saved.defined() && saved.shape() == value.shape(), "SGD state: momentum buffer '", name, "' is ",
                 saved.defined() ? saved.str() : std::string("undefined"), ", the parameter ", value.str());
    Tensor buf = Tensor::empty(value.shape(), value.dtype(), value.device());
    buf.copy_from(saved.dtype() == value.dtype() ? saved : saved.to(Device::cpu()).to(value.dtype()));
    restored.emplace(name, std::move(buf));
  }
  for (const auto& [name, lr] : state.group_lr) {
    bool found = false;
    for (const ParamGroup& g : groups_) found = found || g.name == name;
    MPNCOV_CHECK(found, "SGD state: rate for unknown parameter group '", name, "'");
    MPNCOV_CHECK(lr >= 0, "SGD state: negative rate ", lr, " for group '", name, "'");
  }
  // Nothing changes unless everything checked out.
  buffers_ = std::move(restored);
  for (ParamGroup& g : groups_) {
    auto it = state.group_lr.find(g.name);
    if (it != state.group_lr.end()) g.lr = it->second;
  }
  steps_ = state.steps;
}

}  // namespace mpncov
