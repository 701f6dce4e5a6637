#include "layers/gradcheck_suite.h"

#include <algorithm>
#include <cmath>

#include "core/context.h"
#include "core/ops.h"
#include "core/philox.h"

namespace mpncov {

std::string LayerCase::str() const {
  std::string shapes;
  for (const Shape& s : inputs) shapes += (shapes.empty() ? "" : ", ") + s.str();
  return mpncov::str(type, " ", yaml, " on ", shapes, training ? " [train]" : " [eval]");
}

std::vector<LayerCase> layer_cases(const std::string& type) {
  const LayerInfo& info = layer_info(type);  // throws for an unknown type
  std::vector<LayerCheck> checks = info.checks;
  if (checks.empty()) checks.push_back({"{}", info.example_inputs});
  std::vector<LayerCase> out;
  for (const LayerCheck& check : checks) {
    LayerCase c;
    static_cast<LayerCheck&>(c) = check;
    c.type = type;
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<LayerCase> all_layer_cases() {
  std::vector<LayerCase> out;
  for (const std::string& t : layer_types())
    for (LayerCase& c : layer_cases(t)) out.push_back(std::move(c));
  return out;
}

std::unique_ptr<Layer> make_case_layer(const LayerCase& c) {
  YAML::Node node;
  try {
    node = YAML::Load(c.yaml);
  } catch (const YAML::Exception& e) {
    throw Error(str("<case>: layer keys '", c.yaml, "' are not valid YAML: ", e.what()));
  }
  Config config(node, "<case>", str("layer '", c.type, "' (", c.type, ")"));
  return make_layer(c.type, config);
}

std::vector<Tensor> case_inputs(const LayerCase& c, uint64_t seed) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const bool label = std::find(c.label_inputs.begin(), c.label_inputs.end(), static_cast<int>(i)) !=
                       c.label_inputs.end();
    if (!label) {
      Tensor t = Tensor::empty(c.inputs[i], DType::F64);
      ops::fill_uniform(t, -1, 1, seed, 100 + i);
      // The matrix square root is defined on symmetric positive definite matrices (what covpool gives):
      // feed it R R^T / d + I/2 instead of arbitrary entries.
      if (c.type == "sqrtm" && t.ndim() == 3 && t.dim(1) == t.dim(2)) {
        const int64_t d = t.dim(1);
        const Tensor r = t.clone();
        ops::matmul(r, r, t, false, true, 1.0 / static_cast<double>(d));
        double* p = t.data<double>();
        for (int64_t b = 0; b < t.dim(0); ++b)
          for (int64_t k = 0; k < d; ++k) p[(b * d + k) * d + k] += 0.5;
      }
      inputs.push_back(t);
      continue;
    }
    MPNCOV_CHECK(!c.inputs.empty() && c.inputs[0].ndim() >= 2, "labels need (N, K) scores as input 0");
    const int64_t classes = c.inputs[0][1];
    Tensor t = Tensor::empty(c.inputs[i], DType::I64);
    int64_t* p = t.data<int64_t>();
    for (int64_t j = 0; j < t.numel(); ++j)
      p[j] = std::min(classes - 1, static_cast<int64_t>(philox::uniform(seed, 200 + i, static_cast<uint64_t>(j), true) *
                                                       static_cast<double>(classes)));
    inputs.push_back(t);
  }
  return inputs;
}

GradCheckReport gradcheck_case(const LayerCase& c, const GradCheckOptions& options) {
  std::unique_ptr<Layer> layer = make_case_layer(c);
  GradCheckOptions o = options;
  o.training = c.training;
  return gradcheck(*layer, case_inputs(c, o.seed), o, c.label_inputs);
}

namespace {
GradCheckRow compare_rows(const std::string& name, const Tensor& got, const Tensor& want, double tolerance) {
  GradCheckRow row;
  row.tensor = name;
  const std::vector<double> a = got.to_vector(), b = want.to_vector();
  row.elements = row.checked = static_cast<int64_t>(b.size());
  double scale = 1e-3;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double err = std::abs(a[i] - b[i]);
    if (!(err <= row.max_abs_error)) row.max_abs_error = std::isnan(err) ? INFINITY : err;
  }
  row.max_rel_error = row.max_abs_error / scale;
  row.pass = row.checked > 0 && a.size() == b.size() && row.max_rel_error <= tolerance;
  return row;
}
}  // namespace

GradCheckReport compare_case_on_device(const LayerCase& c, Device device, double tolerance, uint64_t seed) {
  require_device(device);
  std::unique_ptr<Layer> ref = make_case_layer(c), dev = make_case_layer(c);
  for (Layer* l : {ref.get(), dev.get()}) {
    l->set_training(c.training);
    l->set_step(seed);
  }
  const std::vector<Tensor> inputs = case_inputs(c, seed);
  SetupContext rc, dc;
  rc.dtype = DType::F64;
  rc.name = dc.name = "device_check";
  rc.seed = dc.seed = seed;
  dc.dtype = DType::F32;
  dc.device = device;
  std::vector<Shape> shapes;
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  const std::vector<Shape> out_shapes = ref->setup(shapes, rc);
  dev->setup(shapes, dc);
  // The device layer gets the reference's parameters and buffers, rounded to float32.
  for (size_t i = 0; i < ref->parameters().size(); ++i)
    dev->parameters()[i].value.copy_from(ref->parameters()[i].value.to(DType::F32));
  for (size_t i = 0; i < ref->buffers().size(); ++i) {
    const Tensor& b = ref->buffers()[i].value;
    dev->buffers()[i].value.copy_from(b.dtype() == DType::F64 ? b.to(DType::F32) : b);
  }
  std::vector<Tensor> ref_in, dev_in;
  for (const Tensor& t : inputs) {
    const Tensor rounded = t.dtype() == DType::F64 ? t.to(DType::F32) : t;
    ref_in.push_back(rounded.dtype() == DType::F32 ? rounded.to(DType::F64) : rounded);
    dev_in.push_back(rounded.to(device));
  }
  std::vector<Tensor> ref_out, dev_out, ref_dy, dev_dy, ref_dx, dev_dx;
  for (size_t k = 0; k < out_shapes.size(); ++k) {
    ref_out.push_back(Tensor::zeros(out_shapes[k], DType::F64));
    dev_out.push_back(Tensor::zeros(out_shapes[k], DType::F32, device));
    Tensor dy = Tensor::empty(out_shapes[k], DType::F32);
    ops::fill_uniform(dy, -1, 1, seed, 300 + k);
    ref_dy.push_back(dy.to(DType::F64));
    dev_dy.push_back(dy.to(device));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool label = std::find(c.label_inputs.begin(), c.label_inputs.end(), static_cast<int>(i)) !=
                       c.label_inputs.end();
    ref_dx.push_back(label ? Tensor() : Tensor::zeros(inputs[i].shape(), DType::F64));
    dev_dx.push_back(label ? Tensor() : Tensor::zeros(inputs[i].shape(), DType::F32, device));
  }
  // Parameter gradients start non-zero (the same on both sides): backward accumulates (+=) into them, so
  // a backend that overwrote them instead would differ here.
  for (size_t i = 0; i < ref->parameters().size(); ++i) {
    if (!ref->parameters()[i].grad.defined()) continue;
    Tensor g0 = Tensor::empty(ref->parameters()[i].grad.shape(), DType::F32);
    ops::fill_uniform(g0, -1, 1, seed, 400 + i);
    ref->parameters()[i].grad.copy_from(g0.to(DType::F64));
    dev->parameters()[i].grad.copy_from(g0.to(device));
  }
  ref->forward(ref_in, ref_out);
  dev->forward(dev_in, dev_out);
  ref->backward(ref_in, ref_out, ref_dy, ref_dx);
  dev->backward(dev_in, dev_out, dev_dy, dev_dx);
  synchronize(device);

  GradCheckReport report;
  for (size_t k = 0; k < ref_out.size(); ++k)
    report.rows.push_back(compare_rows(str("output ", k), dev_out[k].to(Device::cpu()), ref_out[k], tolerance));
  for (size_t i = 0; i < ref_dx.size(); ++i)
    if (ref_dx[i].defined())
      report.rows.push_back(compare_rows(str("input ", i), dev_dx[i].to(Device::cpu()), ref_dx[i], tolerance));
  for (size_t i = 0; i < ref->parameters().size(); ++i)
    report.rows.push_back(compare_rows(ref->parameters()[i].name, dev->parameters()[i].grad.to(Device::cpu()),
                                       ref->parameters()[i].grad, tolerance));
  for (size_t i = 0; i < ref->buffers().size(); ++i)
    report.rows.push_back(compare_rows(ref->buffers()[i].name, dev->buffers()[i].value.to(Device::cpu()),
                                       ref->buffers()[i].value, tolerance));
  return report;
}

}  // namespace mpncov
