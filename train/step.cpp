#include "train/step.h"

#include <chrono>
#include <cmath>

#include "core/context.h"
#include "core/ops.h"
#include "train/gradient_reducer.h"

namespace mpncov {
namespace {

double now(Device device) {
  synchronize(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool finite(const Tensor& t) {
  return t.numel() == 0 || std::isfinite(ops::reduce(ops::Reduce::Sum, t.reshape({-1}), {0}).item());
}

// Names the first layer whose output (forward) is not finite (of those that keep their own output).
std::string first_bad_output(const Net& net) {
  for (int i = 0; i < net.size(); ++i)
    if (!net.runs_in_place(i) && !net.shares_storage(i) && net.output_written(i) &&
        !finite(net.output(net.layer_spec(i).name)))
      return net.layer_spec(i).name;
  return "(none: only the loss)";
}

}  // namespace

std::unique_ptr<Layer> make_loss(double label_smoothing) {
  YAML::Node node(YAML::NodeType::Map);
  node["label_smoothing"] = label_smoothing;
  Config c(node, "(experiment)", "loss");
  return make_layer("softmax_cross_entropy", c);
}

TrainStep::TrainStep(Net& net, SGD& sgd, StepOptions options)
    : net_(net), sgd_(sgd), options_(options), loss_(make_loss(options.label_smoothing)) {
  MPNCOV_CHECK(net.is_setup(), "TrainStep: set the net up first");
  const Shape scalar(std::vector<int64_t>{});
  value_ = Tensor::empty(scalar, net.dtype(), net.device());
  one_ = Tensor::full(scalar, 1.0, net.dtype(), net.device());
  check_ = Tensor::empty(scalar, net.dtype(), net.device());
  for (const ParamGroup& g : sgd.groups())
    for (const NamedParameter& p : g.params)
      if (!p.param->frozen) trainable_.push_back(p.param);
  grad_sums_ = Tensor::empty(Shape{static_cast<int64_t>(trainable_.size())}, net.dtype(), net.device());
}

TrainStep::~TrainStep() = default;

void TrainStep::run(const Tensor& images, const Tensor& labels) {
  if (net_.input_shape() != images.shape()) net_.setup(images.shape(), net_.dtype(), net_.device());
  const Tensor& logits = net_.forward(images);
  const double t0 = options_.time_parts ? now(net_.device()) : 0;
  if (loss_input_ != logits.shape()) {
    SetupContext ctx;
    ctx.device = net_.device();
    ctx.dtype = net_.dtype();
    ctx.name = "loss";
    loss_->setup({logits.shape(), labels.shape()}, ctx);
    dlogits_ = Tensor::empty(logits.shape(), net_.dtype(), net_.device());
    loss_input_ = logits.shape();
  }
  loss_->forward({logits, labels}, {value_});
  if (options_.check_finite) {
    const double value = value_.item();
    bool bad = !std::isfinite(value), bad_anywhere = bad;
    if (options_.gradients) {  // every process stops at the same step, or none does
      Tensor flag = Tensor::full(Shape({1}), bad ? 1.0 : 0.0, DType::F64);
      options_.gradients->communicator().all_reduce(flag);
      bad_anywhere = flag.item() > 0;
    }
    if (bad)
      throw NonFiniteError(str("the loss is ", value, "; the first layer with a non-finite output is ",
                               first_bad_output(net_)));
    if (bad_anywhere) throw NonFiniteError("the loss is not finite on another process (its log names the layer)");
  }
  sgd_.zero_grad();
  loss_->backward({logits, labels}, {value_}, {one_}, {dlogits_, Tensor()});
  if (options_.time_parts) loss_seconds_ += now(net_.device()) - t0;
  if (options_.gradients) options_.gradients->begin();
  net_.backward(dlogits_);
  if (options_.gradients) options_.gradients->finish();  // the same averaged gradients on every process
  if (options_.check_finite) check_gradients();
  const double t1 = options_.time_parts ? now(net_.device()) : 0;
  sgd_.step();
  if (options_.time_parts) update_seconds_ += now(net_.device()) - t1;
}

double TrainStep::loss() const { return value_.item(); }

// One sum per gradient into a slot, one sum of the slots, one host read: a non-finite element anywhere
// makes the total non-finite. Only then are the gradients searched, going backward, for the first bad one.
void TrainStep::check_gradients() const {
  if (trainable_.empty()) return;
  for (size_t i = 0; i < trainable_.size(); ++i) {
    const Tensor& g = trainable_[i]->grad;
    const Tensor slot = grad_sums_.slice(static_cast<int64_t>(i), static_cast<int64_t>(i) + 1).reshape({});
    if (g.numel() == 0) ops::fill(slot, 0);
    else ops::reduce(ops::Reduce::Sum, g.reshape({-1}), {0}, slot);
  }
  ops::reduce(ops::Reduce::Sum, grad_sums_, {0}, check_);
  if (std::isfinite(check_.item())) return;
  for (int i = net_.size() - 1; i >= 0; --i)
    for (const Parameter& p : net_.layer(i).parameters())
      if (!p.frozen && !finite(p.grad))
        throw NonFiniteError(str("the gradient of ", net_.layer_spec(i).name, ".", p.name,
                                 " is not finite (the first such layer going backward)"));
  // Every gradient is finite on its own: only their sum overflowed, which is no reason to stop.
}

}  // namespace mpncov
