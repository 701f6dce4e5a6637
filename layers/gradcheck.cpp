#include "layers/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/ops.h"
#include "core/philox.h"

namespace mpncov {
namespace {

struct Harness {
  Layer& layer;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  std::vector<Tensor> weights;  // W_k, one per output

  double loss() {
    layer.forward(inputs, outputs);
    double total = 0;
    for (size_t k = 0; k < outputs.size(); ++k) {
      const double* y = outputs[k].data<double>();
      const double* w = weights[k].data<double>();
      for (int64_t i = 0; i < outputs[k].numel(); ++i) total += y[i] * w[i];
    }
    return total;
  }
};

// The elements of a tensor to check: all of them, or a random sample without repeats.
std::vector<int64_t> chosen_elements(int64_t n, int64_t limit, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
  if (limit <= 0 || n <= limit) return all;
  for (int64_t i = 0; i < limit; ++i) {  // partial Fisher-Yates
    const double u = philox::uniform(seed, stream, static_cast<uint64_t>(i), true);
    const int64_t j = i + static_cast<int64_t>(u * static_cast<double>(n - i));
    std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>(std::min(j, n - 1))]);
  }
  all.resize(static_cast<size_t>(limit));
  std::sort(all.begin(), all.end());
  return all;
}

void compare(Harness& h, double* x, const std::vector<int64_t>& elements, const double* analytic,
             const GradCheckOptions& o, GradCheckRow& row) {
  for (int64_t i : elements) {
    const double original = x[i];
    x[i] = original + o.step;
    const double up = h.loss();
    x[i] = original - o.step;
    const double down = h.loss();
    x[i] = original;
    const double mid = h.loss();
    const double numeric = (up - down) / (2 * o.step);
    const double right = (up - mid) / o.step, left = (mid - down) / o.step;
    if (std::abs(right - left) > o.kink_tolerance * std::max({1.0, std::abs(right), std::abs(left)})) {
      ++row.kinks;
      continue;
    }
    ++row.checked;
    const double a = analytic[i];
    const double err = std::abs(a - numeric);
    const double rel = err / std::max({std::abs(a), std::abs(numeric), 1.0});
    // NaN must show in the table, not vanish into max().
    row.max_abs_error = std::isnan(err) || std::isnan(row.max_abs_error) ? NAN : std::max(row.max_abs_error, err);
    row.max_rel_error = std::isnan(rel) || std::isnan(row.max_rel_error) ? NAN : std::max(row.max_rel_error, rel);
    row.max_gradient = std::max({row.max_gradient, std::abs(a), std::abs(numeric)});
    if (!(rel <= o.tolerance)) row.pass = false;  // NaN fails too
  }
}

}  // namespace

GradCheckReport gradcheck(Layer& layer, const std::vector<Tensor>& inputs, const GradCheckOptions& o,
                          const std::vector<int>& skip_inputs) {
  for (const Tensor& t : inputs)
    MPNCOV_CHECK(t.device().is_cpu() && (t.dtype() == DType::F64 || t.dtype() == DType::I64),
                 "gradcheck runs in float64 on the CPU; got an input ", t.str());
  layer.set_training(o.training);
  layer.set_step(o.seed);

  Harness h{layer, {}, {}, {}};
  for (const Tensor& t : inputs) h.inputs.push_back(t.clone());
  std::vector<Shape> in_shapes;
  for (const Tensor& t : inputs) in_shapes.push_back(t.shape());
  SetupContext ctx;
  ctx.dtype = DType::F64;
  ctx.name = "gradcheck";
  ctx.seed = o.seed;
  const std::vector<Shape> out_shapes = layer.setup(in_shapes, ctx);
  for (const Parameter& p : layer.parameters())
    MPNCOV_CHECK(p.value.device().is_cpu() && p.value.dtype() == DType::F64, "gradcheck: parameter ", p.name,
                 " is ", p.value.str(), "; give gradcheck a layer not yet set up in another dtype");
  for (size_t k = 0; k < out_shapes.size(); ++k) {
    h.outputs.push_back(Tensor::zeros(out_shapes[k], DType::F64));
    Tensor w = Tensor::empty(out_shapes[k], DType::F64);
    ops::fill_uniform(w, -1, 1, o.seed, 1000 + k);
    h.weights.push_back(w);
  }

  // Analytic gradients.
  layer.zero_grad();
  h.loss();
  std::vector<Tensor> input_grads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool skip = std::find(skip_inputs.begin(), skip_inputs.end(), static_cast<int>(i)) != skip_inputs.end();
    input_grads.push_back(skip ? Tensor() : Tensor::full(inputs[i].shape(), NAN, DType::F64));
  }
  layer.backward(h.inputs, h.outputs, h.weights, input_grads);

  GradCheckReport report;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!input_grads[i].defined()) continue;
    GradCheckRow row;
    row.tensor = str("input ", i);
    row.elements = inputs[i].numel();
    compare(h, h.inputs[i].data<double>(), chosen_elements(row.elements, o.max_elements, o.seed, 2000 + i),
            input_grads[i].data<double>(), o, row);
    row.pass = row.pass && row.checked > 0;
    report.rows.push_back(row);
  }
  uint64_t stream = 3000;
  for (Parameter& p : layer.parameters()) {
    if (p.frozen) continue;
    GradCheckRow row;
    row.tensor = p.name;
    row.elements = p.value.numel();
    const Tensor analytic = p.grad.clone();  // forwards below must not disturb it
    compare(h, p.value.data<double>(), chosen_elements(row.elements, o.max_elements, o.seed, stream++),
            analytic.data<double>(), o, row);
    row.pass = row.pass && row.checked > 0;
    report.rows.push_back(row);
  }
  return report;
}

bool GradCheckReport::pass() const {
  return !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const GradCheckRow& r) { return r.pass; });
}

bool GradCheckReport::degenerate() const {
  bool checked = false;
  for (const GradCheckRow& r : rows) {
    if (r.checked > 0 && r.max_gradient > 1e-12) return false;
    checked = checked || r.checked > 0;
  }
  return checked;
}

std::string GradCheckReport::table() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-20s %10s %10s %13s %13s %7s  %s\n", "tensor", "elements", "checked",
                "max abs err", "max rel err", "kinks", "result");
  out += line;
  for (const GradCheckRow& r : rows) {
    std::snprintf(line, sizeof line, "%-20s %10lld %10lld %13.3e %13.3e %7lld  %s\n", r.tensor.c_str(),
                  static_cast<long long>(r.elements), static_cast<long long>(r.checked), r.max_abs_error,
                  r.max_rel_error, static_cast<long long>(r.kinks),
                  !r.pass ? (r.checked == 0 ? "FAIL: nothing checked" : "FAIL")
                  : r.max_gradient <= 1e-12 ? "zero (no signal)"
                                            : "pass");
    out += line;
  }
  return out;
}

}  // namespace mpncov
