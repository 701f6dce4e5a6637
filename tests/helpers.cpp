#include "tests/helpers.h"

#include "core/layout_ops.h"
#include "data/synthetic.h"

#include <array>
#include <cstdio>
#include <fstream>

namespace mpncov::test {

std::string run_oracle(const std::string& script, const std::vector<std::string>& args) {
  const char* python_env = std::getenv("MPNCOV_PYTHON");
  std::string command = python_env ? python_env : "/usr/bin/python3";
  command += " '" + std::string(MPNCOV_SOURCE_DIR) + "/tests/oracle/" + script + "'";
  for (const std::string& a : args) command += " '" + a + "'";
  command += " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, "cannot start ", command);
  std::array<char, 4096> buffer;
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe)) output += buffer.data();
  const int status = pclose(pipe);
  REQUIRE_MESSAGE(status == 0, "oracle script failed: ", command, "\n", output);
  return output;
}

void write_tiny_image_folder(const std::filesystem::path& dir, int train_per_class, int val_per_class, int size) {
  if (std::filesystem::exists(dir / "data")) return;
  data::SyntheticOptions o;
  o.classes = 3;
  o.train_per_class = train_per_class;
  o.val_per_class = val_per_class;
  o.size = size;
  data::write_synthetic_dataset((dir / "data").string(), o);
}

std::string write_tiny_experiment(const std::filesystem::path& dir, const std::string& solver,
                                  const std::string& model_extra) {
  write_tiny_image_folder(dir);
  const std::filesystem::path file = dir / "exp.yaml";
  std::ofstream(file) << "model:\n  net: small_cnn\n  representation: {type: mpncov, reduce: 6, iterations: 3}\n"
                      << model_extra << "data: {train: " << (dir / "data/train").string()
                      << ", val: " << (dir / "data/val").string()
                      << ", preset: plain, image_size: 16, batch: 4, workers: 2}\n"
                      << "solver: " << solver << "\n"
                      << "run: {device: cpu, out: " << (dir / "run").string() << ", print_every: 2}\n";
  return file.string();
}

double scaled_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = ops::to_nchw(a).to_vector(), y = ops::to_nchw(b).to_vector();
  REQUIRE(x.size() == y.size());
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < x.size(); ++i) {
    scale = std::max(scale, std::abs(y[i]));
    const double d = std::abs(x[i] - y[i]);
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst / scale;
}

void check_logits(const Tensor& got_logits, const Tensor& want_logits, const std::string& what) {
  const std::vector<double> got = got_logits.to_vector(), want = want_logits.to_vector();
  REQUIRE(got.size() == want.size());
  double scale = 0, worst = 0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  INFO(what, ": max |diff| ", worst, " against max |logit| ", scale);
  CHECK(worst <= 1e-4 * std::max(scale, 1.0));
}

Tensor in_layout(const Tensor& x, Layout l) { return in_layout(x, l, x.dtype()); }

Tensor in_layout(const Tensor& x, Layout l, DType dtype) {
  Tensor y = Tensor::empty(x.shape(), dtype, x.device()).with_layout(l);
  ops::to_layout(x, y);
  return y;
}

std::string small_densenet_yaml(int repeat1, int repeat2) {
  return str(R"(name: small_densenet
input: [3, 16, 16]
blocks:
  layer:
    layers:
      - {name: norm1, type: batchnorm}
      - {name: relu1, type: relu}
      - {name: conv1, type: conv, out_channels: 8, kernel_size: 1, bias: false}
      - {name: norm2, type: batchnorm}
      - {name: relu2, type: relu}
      - {name: conv2, type: conv, out_channels: 4, kernel_size: 3, padding: 1, bias: false}
features:
  - {name: conv0, type: conv, out_channels: 6, kernel_size: 3, padding: 1, bias: false}
  - {name: block1, block: layer, repeat: )", repeat1, R"(, dense: true, names_from: denselayer1}
  - {name: pool, type: avgpool, kernel_size: 2, stride: 2}
  - {name: block2, block: layer, repeat: )", repeat2, R"(, dense: true, names_from: denselayer1}
  - {name: norm5, type: batchnorm}
  - {name: relu5, type: relu}
representation: {name: avgpool, type: gavp}
classifier:
  - {name: classifier, type: linear, out_features: 5}
)");
}

}  // namespace mpncov::test
