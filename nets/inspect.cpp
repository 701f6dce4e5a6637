#include "nets/inspect.h"

#include <cstdio>

namespace mpncov {
namespace {

std::string human(double v, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T"};
  int p = 0;
  while (v >= 1000 && p < 4) {
    v /= 1000;
    ++p;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, p ? "%.2f %s%s" : "%.0f %s%s", v, prefixes[p], unit);
  return buf;
}

std::string bytes(double v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

std::string shape_without_batch(const Shape& s) {
  std::string out;
  for (int i = 1; i < s.ndim(); ++i) out += (i > 1 ? "x" : "") + std::to_string(s[i]);
  return out.empty() ? "1" : out;
}

std::string short_inputs(const Net& net, int i) {
  const LayerSpec& l = net.layer_spec(i);
  // The previous layer is the usual input; naming it adds nothing.
  if (l.inputs.size() == 1 && i > 0 && l.inputs[0] == net.layer_spec(i - 1).name) return "";
  std::string out;
  for (const std::string& in : l.inputs) out += (out.empty() ? "" : ", ") + in;
  return out;
}

}  // namespace

std::string topology_table(const Net& net) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-34s %-18s %-28s %-16s %12s %12s %12s\n", "layer", "type", "inputs", "output",
                "params", "FLOPs", "activations");
  out += line;
  out += std::string(138, '-') + "\n";
  double total_params = 0, total_flops = 0, total_bytes = 0, bf16_bytes = 0;
  const char* part = nullptr;
  for (int i = 0; i < net.size(); ++i) {
    const LayerSpec& l = net.layer_spec(i);
    if (part != part_name(l.part)) {
      part = part_name(l.part);
      out += str("[", part, "]\n");
    }
    double params = 0;
    for (const Parameter& p : net.layer(i).parameters()) params += static_cast<double>(p.value.numel());
    const double flops = net.layer(i).flops();
    const bool own_storage = !net.runs_in_place(i) && !net.shares_storage(i) && net.pooled_by(i) < 0;
    const double act =
        own_storage ? static_cast<double>(net.output_shape(i).numel()) * static_cast<double>(dtype_size(net.output_dtype(i)))
                    : 0.0;
    total_params += params;
    total_flops += flops;
    total_bytes += act;
    if (net.output_dtype(i) == DType::BF16) bf16_bytes += act;
    // Folded into the convolution before it by the last evaluation forward (nets/eval_fusion.h: what it
    // did, not what the plan hoped for), a ReLU run inside its batch norm or add (nets/train_fusion.h), or
    // an average pooling its convolution runs (nets/commuted_pooling.h).
    const bool fused = (!net.training() && net.folded(i)) || net.relu_fused_into(i) >= 0 || net.pooled_by(i) >= 0;
    std::string inputs = short_inputs(net, i);
    if (inputs.size() > 28) inputs = inputs.substr(0, 25) + "...";
    std::snprintf(line, sizeof line, "%-34s %-18s %-28s %-16s %12s %12s %12s\n", l.name.c_str(),
                  (l.type + (!net.reaches_output(i) ? " (unused)"
                             : fused                    ? " (fused)"
                             : net.runs_in_place(i)     ? " (in place)"
                             : net.shares_storage(i)    ? " (shared)"
                                                        : "")).c_str(),
                  inputs.c_str(),
                  shape_without_batch(net.output_shape(i)).c_str(), params ? human(params, "").c_str() : "-",
                  flops ? human(flops, "").c_str() : "-", act ? bytes(act).c_str() : "-");
    out += line;
  }
  out += std::string(138, '-') + "\n";
  std::string unused;
  for (int i = 0; i < net.size(); ++i)
    if (!net.reaches_output(i)) unused += (unused.empty() ? "" : ", ") + net.layer_spec(i).name;
  if (!unused.empty())
    out += str("unused: ", unused, " (no path from their outputs to the net's output: they add nothing to "
               "the loss and their parameters get no gradient; check the `inputs:` of the layers after them)\n");
  total_bytes += static_cast<double>(net.shared_bytes());  // one buffer for every "(shared)" layer
  out += str(net.size(), " layers, batch ", net.input_shape()[0], ", input ", shape_without_batch(net.input_shape()),
             ": ", human(total_params, ""), " parameters (", static_cast<int64_t>(total_params), "), ",
             human(total_flops, "FLOPs"), " per forward pass, ", bytes(total_bytes), " of activations",
             bf16_bytes > 0 ? str(" (", bytes(bf16_bytes), " of them stored in bfloat16)") : std::string(), "\n");
  // The training step's buffers as planned; SGD with momentum adds one copy of the trainable parameters.
  const MemoryPlan plan = net.memory_plan();
  out += str("training step, planned: ", bytes(plan.total() + plan.parameter_grads), " (parameters ", bytes(plan.parameters),
             ", their gradients ", bytes(plan.parameter_grads), " and SGD momentum ", bytes(plan.parameter_grads),
             ", activations ", bytes(plan.activations), ", activation gradients ", bytes(plan.activation_grads),
             "; not counted: the layers' workspaces)\n");
  return out;
}

std::string topology_dot(const Net& net) {
  std::string out = str("digraph \"", net.spec().name, "\" {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", "
                        "fontname=\"Helvetica\", fontsize=10];\n  input [label=\"input\\n",
                        shape_without_batch(net.input_shape()), "\", fillcolor=\"#eeeeee\"];\n");
  const char* colors[] = {"#dbe9f6", "#fde2c8", "#d9f0d3"};
  for (NetPart part : {NetPart::Features, NetPart::Representation, NetPart::Classifier}) {
    std::string body;
    for (int i = 0; i < net.size(); ++i) {
      const LayerSpec& l = net.layer_spec(i);
      if (l.part != part) continue;
      body += str("    \"", l.name, "\" [label=\"", l.name, "\\n", l.type, " ", shape_without_batch(net.output_shape(i)),
                  "\", fillcolor=\"", colors[static_cast<int>(part)], "\"];\n");
    }
    if (body.empty()) continue;
    out += str("  subgraph cluster_", part_name(part), " {\n    label=\"", part_name(part), "\";\n    style=dashed;\n", body,
               "  }\n");
  }
  for (int i = 0; i < net.size(); ++i)
    for (const std::string& in : net.layer_spec(i).inputs)
      out += str("  \"", in, "\" -> \"", net.layer_spec(i).name, "\";\n");
  return out + "}\n";
}

}  // namespace mpncov
