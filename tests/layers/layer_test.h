// What every layer's tests do, once: gradient checks of its configurations (layers/gradcheck_suite.h),
// bad-key errors, the PyTorch oracle (tests/oracle/layer_reference.py) and the GPU-vs-CPU comparison.
#pragma once
#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/npy.h"
#include "layers/gradcheck_suite.h"
#include "tests/helpers.h"

namespace mpncov::test {

// Every built-in configuration of the type passes the float64 gradient check.
inline void gradcheck_type(const std::string& type) {
  for (const LayerCase& c : layer_cases(type)) {
    const GradCheckReport r = gradcheck_case(c);
    INFO(c.str(), "\n", r.table());
    CHECK(r.pass());  // every row checked some elements
  }
}

// Building the type from these keys fails with a message holding every part.
inline void expect_config_error(const std::string& type, const std::string& yaml,
                                const std::vector<std::string>& parts) {
  LayerCase c;
  c.type = type;
  c.yaml = yaml;
  std::string message;
  try {
    make_case_layer(c);
  } catch (const Error& e) {
    message = e.what();
  }
  INFO(type, " ", yaml, " -> '", message, "'");
  REQUIRE(!message.empty());
  CHECK(message.find(str("layer '", type, "' (", type, ")")) != std::string::npos);
  for (const std::string& p : parts) CHECK(message.find(p) != std::string::npos);
}

// max |a - b| / max(max |b|, 1e-3): the error relative to the reference's largest element (infinity norm).
inline double rel_inf_error(const Tensor& got, const Tensor& want) {
  const std::vector<double> a = got.to_vector(), b = want.to_vector();
  REQUIRE(a.size() == b.size());
  double err = 0, scale = 1e-3;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    err = std::isnan(d) ? INFINITY : std::max(err, d);
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

// Runs the type's configurations (those accepted by keep) in float32 and float64 against PyTorch with the
// same inputs, parameters, buffers and output gradient; compares outputs, input and parameter gradients
// and buffers after the step, relative to each reference tensor's largest element.
template <typename Keep>
void oracle_type(const std::string& type, Keep keep, double tol32 = 1e-5, double tol64 = 1e-10) {
  struct Run {
    LayerCase c;
    DType dtype;
    std::filesystem::path dir;
    std::unique_ptr<Layer> layer;
    std::vector<Tensor> inputs, outputs, dy, dx;
  };
  std::vector<Run> runs;
  std::vector<std::string> dirs;
  int index = 0;
  for (const LayerCase& c : layer_cases(type)) {
    if (!keep(c)) continue;
    for (DType dtype : {DType::F32, DType::F64}) {
      Run r{c, dtype, temp_dir(str("oracle-", type, "-", index++)), make_case_layer(c), {}, {}, {}, {}};
      r.layer->set_training(c.training);
      SetupContext ctx;
      ctx.dtype = dtype;
      ctx.name = "oracle";
      std::vector<Shape> shapes;
      for (const Tensor& t : case_inputs(c, 7)) {
        r.inputs.push_back(t.dtype() == DType::F64 ? t.to(dtype) : t);
        shapes.push_back(t.shape());
      }
      const std::vector<Shape> out = r.layer->setup(shapes, ctx);
      for (size_t i = 0; i < r.inputs.size(); ++i) save_npy((r.dir / str("in_", i, ".npy")).string(), r.inputs[i]);
      for (const Parameter& p : r.layer->parameters()) save_npy((r.dir / ("param_" + p.name + ".npy")).string(), p.value);
      for (const Buffer& b : r.layer->buffers()) save_npy((r.dir / ("buffer_" + b.name + ".npy")).string(), b.value);
      r.outputs.push_back(Tensor::zeros(out[0], dtype));
      Tensor dy = Tensor::empty(out[0], dtype);
      ops::fill_uniform(dy, -1, 1, 9, 1);
      r.dy.push_back(dy);
      save_npy((r.dir / "dy_0.npy").string(), dy);
      for (const Tensor& t : r.inputs)
        r.dx.push_back(t.dtype() == DType::I64 ? Tensor() : Tensor::zeros(t.shape(), dtype));
      r.layer->zero_grad();
      r.layer->forward(r.inputs, r.outputs);
      r.layer->backward(r.inputs, r.outputs, r.dy, r.dx);
      std::ofstream((r.dir / "case.txt").string()) << c.type << "\n" << c.yaml << "\n"
                                                    << (c.training ? "train" : "eval") << "\n"
                                                    << dtype_name(dtype) << "\n";
      dirs.push_back(r.dir.string());
      runs.push_back(std::move(r));
    }
  }
  REQUIRE(!runs.empty());
  run_oracle("layer_reference.py", dirs);
  for (Run& r : runs) {
    const double tol = r.dtype == DType::F32 ? tol32 : tol64;
    auto compare = [&](const std::string& what, const Tensor& got, const std::string& file) {
      const Tensor want = load_npy((r.dir / file).string());
      INFO(r.c.str(), " ", dtype_name(r.dtype), ": ", what);
      REQUIRE(want.numel() == got.numel());
      CHECK(rel_inf_error(got, want) <= tol);
    };
    compare("output", r.outputs[0], "out_0.npy");
    for (size_t i = 0; i < r.dx.size(); ++i)
      if (r.dx[i].defined()) compare(str("input ", i, " gradient"), r.dx[i], str("din_", i, ".npy"));
    for (const Parameter& p : r.layer->parameters()) compare(p.name + " gradient", p.grad, "dparam_" + p.name + ".npy");
    for (const Buffer& b : r.layer->buffers()) compare(b.name + " after the step", b.value, "after_" + b.name + ".npy");
  }
}

inline void oracle_type(const std::string& type) {
  oracle_type(type, [](const LayerCase&) { return true; });
}

// Every configuration of the type on the GPU against the CPU float64 reference.
inline void gpu_type(const std::string& type, double tolerance = 2e-3) {
  for (const LayerCase& c : layer_cases(type)) {
    const GradCheckReport r = compare_case_on_device(c, Device::cuda(0), tolerance);
    INFO(c.str(), "\n", r.table());
    CHECK(r.pass());
  }
}

}  // namespace mpncov::test
