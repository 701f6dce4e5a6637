#include "nets/eval_fusion.h"

#include <algorithm>
#include <cstdlib>

#include "core/ops.h"

namespace mpncov {

bool eval_fusion_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("MPNCOV_EVAL_FUSION");
    return !(v && std::string(v) == "0");
  }();
  return enabled;
}

void EvalFusion::plan(const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<std::vector<int>>& inputs,
                      const std::vector<std::vector<int>>& consumers, const std::vector<bool>& in_place,
                      const std::vector<bool>& shared, const std::vector<Layout>& layouts,
                      const CommutedPooling& pooling) {
  const size_t n = layers.size();
  head_of_.assign(n, -1);
  onto_residual_.assign(n, -1);
  runs_.assign(n, Run());
  fused_.assign(n, false);
  pooled_.assign(n, false);
  added_apart_.assign(n, false);
  fused_any_ = false;
  // The only reader of layer i, when it reads nothing else and keeps its output in its own storage or in
  // place on i's.
  const auto sole_reader = [&](size_t i) -> int {
    if (consumers[i].size() != 1) return -1;
    const int r = consumers[i][0];
    const size_t ri = static_cast<size_t>(r);
    return inputs[ri].size() == 1 && !shared[ri] ? r : -1;
  };
  for (size_t i = 0; i < n; ++i) {
    if (layers[i]->type() != "conv" || shared[i] || head_of_[i] >= 0) continue;
    const int bn = sole_reader(i);
    if (bn < 0 || layers[static_cast<size_t>(bn)]->type() != "batchnorm" || in_place[static_cast<size_t>(bn)]) continue;
    Run& run = runs_[i];
    run.bn = run.last = bn;
    // A ReLU in place on `from`, its only reader.
    const auto relu_after = [&](size_t from) {
      const int r = sole_reader(from);
      return r >= 0 && layers[static_cast<size_t>(r)]->type() == "relu" && in_place[static_cast<size_t>(r)] ? r : -1;
    };
    run.relu = relu_after(static_cast<size_t>(bn));
    if (run.relu >= 0) run.last = run.relu;
    const size_t b = static_cast<size_t>(bn);
    const int pool = pooling.pool_of(static_cast<int>(i));
    if (run.relu < 0 && consumers[b].size() == 1 && pool < 0) {  // a residual add (see the header)
      const size_t add = static_cast<size_t>(consumers[b][0]);
      const std::vector<int>& in = inputs[add];
      if (layers[add]->type() == "add" && in.size() == 2 && in_place[add] && !shared[add] && in[0] != in[1] &&
          std::min(in[0], in[1]) >= 0 && std::min(in[0], in[1]) < static_cast<int>(i) &&
          std::max(in[0], in[1]) == bn && layouts[b] != Layout::NCHW &&
          layouts[static_cast<size_t>(in[0])] == layouts[static_cast<size_t>(in[1])]) {
        run.add = run.last = static_cast<int>(add);
        run.residual = in[0] == bn ? in[1] : in[0];
        run.bn_apart = in[1] == bn;
        run.relu = relu_after(add);
        if (run.relu >= 0) run.last = run.relu;
        head_of_[add] = static_cast<int>(i);
        // An identity shortcut read by no layer after the add: the add's output can take its storage.
        const size_t x = static_cast<size_t>(run.residual);
        const std::vector<int>& readers = consumers[x];
        if (!run.bn_apart && !shared[x] && pooling.conv_of(run.residual) < 0 && inputs[i][0] != run.residual &&
            *std::max_element(readers.begin(), readers.end()) == static_cast<int>(add)) {
          onto_residual_[add] = run.residual;
          run.onto = true;
        }
      }
    }
    if (pool >= 0) {  // a commuted average pooling right before (see the header)
      run.pool = pool;
      head_of_[static_cast<size_t>(pool)] = static_cast<int>(i);
    }
    head_of_[i] = static_cast<int>(i);
    head_of_[static_cast<size_t>(bn)] = static_cast<int>(i);
    if (run.relu >= 0) head_of_[static_cast<size_t>(run.relu)] = static_cast<int>(i);
  }
}

void EvalFusion::keep_prepared(bool on) {
  keep_ = on;
  for (Run& run : runs_) run.prepared.reset();
}

void EvalFusion::begin(bool allowed) {
  allowed_ = allowed && eval_fusion_enabled();
  fused_.assign(fused_.size(), false);
  pooled_.assign(pooled_.size(), false);
  added_apart_.assign(added_apart_.size(), false);
  fused_any_ = false;
}

bool EvalFusion::forward(int i, const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<Tensor>& in,
                         const std::vector<Tensor>& outputs, const CommutedPooling& pooling) {
  const size_t at = static_cast<size_t>(i);
  const int head = head_of_[at];
  if (!allowed_ || head < 0) return false;
  if (head != i) {  // a folded layer: nothing left to do when fused; a commuted pooling runs the whole run
    const size_t h = static_cast<size_t>(head);
    if (runs_[h].pool == i) {
      pooled_[h] = fused_[h] = forward_pooled(head, layers, in, outputs, pooling);
      fused_any_ = fused_any_ || fused_[h];
    }
    return fused_[h];
  }
  Run& run = runs_[at];
  if (pooled_[at]) return true;  // ran at the pooling's turn
  if (run.pool >= 0) return false;  // could not: the pair runs commuted, unfolded (the pooling's output is not kept)
  // The batch norm must be an affine map now (evaluation mode, 4-D, not synced), from its current values.
  if (!layers[static_cast<size_t>(run.bn)]->eval_affine(run.scale, run.shift)) return false;
  if (keep_ && !run.prepared) run.prepared = std::make_shared<ops::PreparedConv>();
  const Tensor& out = outputs[static_cast<size_t>(run.last)];
  const Tensor residual = run.add >= 0 ? outputs[static_cast<size_t>(run.residual)] : Tensor();
  ops::PreparedConv* prepared = keep_ ? run.prepared.get() : nullptr;
  run.bn_written = false;
  fused_[at] = layers[at]->forward_affine(in, {out}, run.scale, run.shift, run.relu >= 0, prepared, residual);
  if (!fused_[at] && residual.defined() && (run.onto || residual.data<float>() != out.data<float>())) {
    // The kernel would not take the add (a Winograd one with a second input, or none writing the output's
    // layout): the batch norm folded, the add (and its ReLU) in a pass of its own, as the add layer would,
    // from the batch norm's output in the add's storage (or in its own, where the add writes onto the
    // residual).
    const Tensor& folded = run.onto ? outputs[static_cast<size_t>(run.bn)] : out;
    fused_[at] = layers[at]->forward_affine(in, {folded}, run.scale, run.shift, false, prepared);
    added_apart_[at] = fused_[at];
    if (fused_[at] && run.relu >= 0) ops::add_relu_forward(folded, residual, out);
    else if (fused_[at]) ops::binary(ops::Binary::Add, folded, residual, out);
    run.bn_written = run.onto;
  }
  fused_any_ = fused_any_ || fused_[at];
  return fused_[at];
}

bool EvalFusion::forward_pooled(int conv, const std::vector<std::unique_ptr<Layer>>& layers,
                                const std::vector<Tensor>& in, const std::vector<Tensor>& outputs,
                                const CommutedPooling& pooling) {
  Run& run = runs_[static_cast<size_t>(conv)];
  const Tensor& x = in[0];
  const Tensor& out = outputs[static_cast<size_t>(run.last)];
  // The plan took only a pooling that keeps the size: the pointwise convolution's output has the run's shape.
  if (!layers[static_cast<size_t>(run.bn)]->eval_affine(run.scale, run.shift)) return false;
  if (!zero_shift_.defined() || zero_shift_.numel() < run.shift.numel() || zero_shift_.dtype() != run.shift.dtype())
    zero_shift_ = Tensor::zeros(Shape{run.shift.numel()}, run.shift.dtype(), run.shift.device());
  const Tensor conv_out = pooling.scratch_for(out);
  const Tensor zero = zero_shift_.view(run.shift.dtype(), run.shift.shape());
  if (keep_ && !run.prepared) run.prepared = std::make_shared<ops::PreparedConv>();
  ops::PreparedConv* prepared = keep_ ? run.prepared.get() : nullptr;
  if (!layers[static_cast<size_t>(conv)]->forward_affine({x}, {conv_out}, run.scale, zero, false, prepared)) return false;
  ops::avg_pool2d_forward(conv_out, out, pooling.params(run.pool));
  ops::channel_bias(out, run.shift, run.relu >= 0);
  return true;
}

}  // namespace mpncov
