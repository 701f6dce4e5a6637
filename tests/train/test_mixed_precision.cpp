// bfloat16 mixed precision in training (solver.precision): a small net's losses follow float32's, a stopped
// and resumed bfloat16 run ends bit-identical to a straight one with float32 checkpoints, and the
// experiment key is checked.
#include <signal.h>

#include <cmath>
#include <fstream>

#include "core/safetensors.h"
#include "data/synthetic.h"
#include "nets/net_spec.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "tests/helpers.h"
#include "train/experiment.h"
#include "train/step.h"
#include "train/trainer.h"

using namespace mpncov;
namespace fs = std::filesystem;

namespace {

const char* kNet = R"(name: bf16_net
input: [3, 12, 12]
features:
  - {name: conv1, type: conv, out_channels: 16, kernel_size: 3, padding: 1}
  - {name: bn1, type: batchnorm}
  - {name: relu1, type: relu}
  - {name: pool, type: maxpool, kernel_size: 2, stride: 2}
  - {name: conv2, type: conv, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
  - {name: bn2, type: batchnorm}
  - {name: relu2, type: relu}
representation: {name: representation, type: mpncov, iterations: 3}
classifier:
  - {name: fc, type: linear, out_features: 4}
)";

// The losses of `steps` SGD steps on one fixed random batch, from the same initial weights.
std::vector<double> losses(Precision precision, int steps) {
  Net net(parse_net(kNet, "bf16_net.yaml"));
  net.set_precision(precision);
  net.setup(Shape({8, 3, 12, 12}), DType::F32, Device::cpu(), 7);
  std::vector<NamedParameter> all;
  for (const NetParameter& p : net.parameters()) all.push_back({p.name, p.parameter});
  ParamGroup g;
  g.name = "all";
  g.params = all;
  g.base_lr = g.lr = 0.05;
  g.momentum = 0.9;
  SGD sgd({g});
  TrainStep step(net, sgd);
  const Tensor x = test::random_tensor({8, 3, 12, 12}, DType::F32, 11);
  const Tensor y = Tensor::from_vector({0, 1, 2, 3, 3, 2, 1, 0}, {8}, DType::I64);
  std::vector<double> out;
  for (int i = 0; i < steps; ++i) {
    step.run(x, y);
    out.push_back(step.loss());
  }
  return out;
}

std::string tiny_experiment(const fs::path& dir) {
  test::write_tiny_image_folder(dir);
  const fs::path file = dir / "exp.yaml";
  std::ofstream(file) << "model:\n  net: small_cnn\n  representation: {type: mpncov, reduce: 6, iterations: 3}\n"
                      << "data: {train: " << (dir / "data/train").string() << ", val: " << (dir / "data/val").string()
                      << ", preset: plain, image_size: 16, batch: 4, workers: 2}\n"
                      << "solver: {lr: 0.02, epochs: 2, precision: bfloat16}\n"
                      << "run: {device: cpu, out: " << (dir / "run").string() << ", print_every: 2}\n";
  return file.string();
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("bf16 training: 20 steps of a small net follow the float32 losses") {
  const std::vector<double> f32 = losses(Precision::Float32, 20), bf16 = losses(Precision::BFloat16, 20);
  const std::vector<double> tf32 = losses(Precision::TF32, 3);
  // tf32 is float32 on the CPU, to the bit.
  for (int i = 0; i < 3; ++i) CHECK(tf32[static_cast<size_t>(i)] == f32[static_cast<size_t>(i)]);
  bool differs = false;
  for (size_t i = 0; i < f32.size(); ++i) {
    CAPTURE(i);
    CAPTURE(f32[i]);
    CAPTURE(bf16[i]);
    // bfloat16 keeps 8 significant bits (2^-9 relative per operand); over 20 steps the losses stay within
    // 1% of float32's (measured: at most 0.15%).
    CHECK(std::abs(bf16[i] - f32[i]) <= 0.01 * f32[i]);
    differs = differs || bf16[i] != f32[i];
  }
  CHECK(differs);  // the bfloat16 kernels did run
  CHECK(bf16.back() < 0.6 * bf16.front());  // and it learns (1.39 -> 0.67)
}

TEST_CASE("bf16 training: solver.precision is read, resolved and checked") {
  const fs::path dir = test::temp_dir("bf16_experiment");
  std::ofstream(dir / "exp.yaml") << "model: {net: small_cnn, representation: none}\n"
                                  << "data: {train: x, preset: plain, image_size: 16}\n"
                                  << "solver: {precision: bfloat16}\n";
  const Experiment e = load_experiment((dir / "exp.yaml").string());
  CHECK(e.solver.precision == Precision::BFloat16);
  CHECK(resolved_config(e).find("precision: bfloat16") != std::string::npos);
  CHECK(load_experiment((dir / "exp.yaml").string(), {"solver.precision=tf32"}).solver.precision == Precision::TF32);
  CHECK_THROWS_WITH_AS(load_experiment((dir / "exp.yaml").string(), {"solver.precision=half"}),
                       doctest::Contains("must be float32, bfloat16 or tf32, got 'half'"), Error);
}

}  // TEST_SUITE

TEST_SUITE("oracle") {

TEST_CASE("bf16 training: two epochs straight and 1.5 + resume give identical float32 weights") {
  const fs::path straight = test::temp_dir("bf16_straight"), resumed = test::temp_dir("bf16_resumed");
  TrainOptions quiet;
  quiet.quiet = true;
  CHECK(train(load_experiment(tiny_experiment(straight)), quiet) == 0);
  TrainOptions stop = quiet;
  stop.stop_after_steps = 7;  // mid-way through the second epoch (5 batches per epoch)
  const std::string exp = tiny_experiment(resumed);
  CHECK(train(load_experiment(exp), stop) == 128 + SIGINT);
  TrainOptions resume = quiet;
  resume.resume = true;
  CHECK(train(load_experiment(exp), resume) == 0);
  const SafetensorsFile a = load_safetensors((straight / "run/last.safetensors").string());
  const SafetensorsFile b = load_safetensors((resumed / "run/last.safetensors").string());
  REQUIRE(a.names == b.names);
  for (const std::string& n : a.names) {
    INFO(n);
    CHECK(a.tensors.at(n).to_vector() == b.tensors.at(n).to_vector());
    const DType dt = a.tensors.at(n).dtype();
    CHECK((dt == DType::F32 || dt == DType::I64));  // checkpoints stay float32
  }
}

}  // TEST_SUITE
