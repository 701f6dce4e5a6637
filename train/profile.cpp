#include "train/profile.h"

#include <chrono>
#include <cstdio>

#include "core/context.h"
#include "core/ops.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "train/step.h"

namespace mpncov {
namespace {

double now(Device device) {
  synchronize(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

StepProfile profile_training(Net& net, int64_t iterations, int64_t warmup) {
  MPNCOV_CHECK(net.is_setup() && iterations >= 1, "profile_training: set the net up and time at least one step");
  const Device device = net.device();
  const Shape in = net.input_shape();
  Tensor x = Tensor::empty(in, net.dtype(), device);
  ops::fill_normal(x, 0, 1, 7, 0);
  const int64_t n = in[0], classes = net.output_shape(net.size() - 1)[-1];
  std::vector<double> label_values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) label_values[static_cast<size_t>(i)] = static_cast<double>(i % classes);
  const Tensor labels = Tensor::from_vector(label_values, {n}, DType::I64).to(device);
  std::vector<NamedParameter> params;
  for (const NetParameter& p : net.parameters()) params.push_back({p.name, p.parameter});
  ParamGroup g;
  g.name = "all";
  g.params = params;
  g.base_lr = g.lr = 1e-4;
  g.momentum = 0.9;
  g.weight_decay = 1e-4;
  SGD sgd({g});
  net.set_training(true);
  StepOptions options;  // the trainer's step, its non-finite check included
  TrainStep untimed(net, sgd, options);
  options.time_parts = true;
  TrainStep timed(net, sgd, options);
  StepProfile p;
  p.batch = n;
  auto step = [&](bool with_parts) { (with_parts ? timed : untimed).run(x, labels); };
  for (int64_t i = 0; i < warmup; ++i) step(false);
  // Whole steps without per-layer synchronisation.
  const double start = now(device);
  for (int64_t i = 0; i < iterations; ++i) step(false);
  p.step = (now(device) - start) / static_cast<double>(iterations);
  // Then per layer.
  net.set_timing(true);
  net.reset_timing();
  for (int64_t i = 0; i < iterations; ++i) step(true);
  net.set_timing(false);
  const double k = 1.0 / static_cast<double>(iterations);
  for (double s : net.forward_seconds()) p.forward.push_back(s * k);
  for (double s : net.backward_seconds()) p.backward.push_back(s * k);
  p.loss = timed.loss_seconds() * k;
  p.update = timed.update_seconds() * k;
  return p;
}

double time_inference(Net& net, int64_t iterations, int64_t warmup) {
  const Device device = net.device();
  Tensor x = Tensor::empty(net.input_shape(), net.dtype(), device);
  ops::fill_normal(x, 0, 1, 7, 0);
  const FixedWeights fixed(net);  // as an evaluation pass runs
  for (int64_t i = 0; i < warmup; ++i) net.forward(x);
  const double start = now(device);
  for (int64_t i = 0; i < iterations; ++i) net.forward(x);
  return (now(device) - start) / static_cast<double>(iterations);
}

StepProfile profile_inference(Net& net, int64_t iterations, int64_t warmup) {
  MPNCOV_CHECK(net.is_setup() && iterations >= 1, "profile_inference: set the net up and time at least one pass");
  StepProfile p;
  p.inference = true;
  p.batch = net.input_shape()[0];
  p.step = time_inference(net, iterations, warmup);
  Tensor x = Tensor::empty(net.input_shape(), net.dtype(), net.device());
  ops::fill_normal(x, 0, 1, 7, 0);
  const FixedWeights fixed(net);
  net.forward(x);  // prepares what the fixed weights keep, as time_inference's warm-up did
  net.set_timing(true);
  net.reset_timing();
  for (int64_t i = 0; i < iterations; ++i) net.forward(x);
  net.set_timing(false);
  for (double s : net.forward_seconds()) p.forward.push_back(s / static_cast<double>(iterations));
  p.backward.assign(p.forward.size(), 0.0);
  return p;
}

std::string StepProfile::table(const Net& net) const {
  if (inference) return inference_table(net);
  double total = loss + update;
  for (size_t i = 0; i < forward.size(); ++i) total += forward[i] + backward[i];
  std::string out;
  char line[320];
  std::snprintf(line, sizeof line, "%-36s %-18s %10s %10s %10s %9s %7s\n", "layer", "type", "fwd ms", "bwd ms", "GFLOP",
                "GFLOP/s", "share");
  out += line;
  for (int i = 0; i < net.size(); ++i) {
    const double f = forward[static_cast<size_t>(i)], b = backward[static_cast<size_t>(i)];
    const double flops = net.layer(i).flops();
    // A ReLU run inside its batch norm or add, an add (and ReLU) inside its batch norm (nets/train_fusion.h):
    // its forward time is that layer's.
    const bool fused = net.relu_fused_into(i) >= 0 || net.add_fused_into(i) >= 0;
    const std::string type = net.layer_spec(i).type + (fused ? " (fused)" : "");
    std::snprintf(line, sizeof line, "%-36s %-18s %10.3f %10.3f %10.3f %9.1f %6.1f%%\n", net.layer_spec(i).name.c_str(),
                  type.c_str(), 1e3 * f, 1e3 * b, flops * 1e-9,
                  f > 0 && flops > 0 ? flops * 1e-9 / f : 0.0, 100 * (f + b) / total);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-36s %-18s %10.3f %10s %10s %9s %6.1f%%\n", "(loss)", "softmax_cross_entropy",
                1e3 * loss, "", "", "", 100 * loss / total);
  out += line;
  std::snprintf(line, sizeof line, "%-36s %-18s %10.3f %10s %10s %9s %6.1f%%\n", "(update)", "sgd", 1e3 * update, "", "",
                "", 100 * update / total);
  out += line;
  std::snprintf(line, sizeof line,
                "training step: %.1f ms per batch of %lld (%.1f images/s); %.1f ms summed per layer with synchronisation\n",
                1e3 * step, static_cast<long long>(batch), static_cast<double>(batch) / step, 1e3 * total);
  out += line;
  return out;
}

std::string StepProfile::inference_table(const Net& net) const {
  double total = 0;
  for (double f : forward) total += f;
  std::string out;
  char line[320];
  std::snprintf(line, sizeof line, "%-36s %-18s %10s %10s %9s %7s\n", "layer", "type", "fwd ms", "GFLOP", "GFLOP/s",
                "share");
  out += line;
  // A batch norm or ReLU folded into the convolution before it, or an average pooling commuted into the
  // convolution after it (nets/eval_fusion.h), or a ReLU run inside its add (nets/train_fusion.h): its time
  // is that layer's (the commuted pooling's turn runs the whole run, so its time moves to the convolution).
  std::vector<double> shown = forward;
  for (int i = 0; i < net.size(); ++i) {
    const int head = net.fused_into(i);
    if (net.folded(i)) {
      shown[static_cast<size_t>(head)] += shown[static_cast<size_t>(i)];
      shown[static_cast<size_t>(i)] = 0;
    }
  }
  for (int i = 0; i < net.size(); ++i) {
    const double f = shown[static_cast<size_t>(i)];
    const double flops = net.layer(i).flops();
    const bool folded = net.folded(i);
    const std::string type =
        net.layer_spec(i).type + (folded ? " (folded)" : net.relu_fused_into(i) >= 0 ? " (fused)" : "");
    std::snprintf(line, sizeof line, "%-36s %-18s %10.3f %10.3f %9.1f %6.1f%%\n", net.layer_spec(i).name.c_str(),
                  type.c_str(), 1e3 * f, flops * 1e-9, f > 0 && flops > 0 ? flops * 1e-9 / f : 0.0,
                  total > 0 ? 100 * f / total : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "%.1f ms summed per layer with synchronisation\n", 1e3 * total);
  out += line;
  return out;
}

}  // namespace mpncov
