// Layer benchmark: forward and forward+backward time of conv, batchnorm, relu, maxpool and linear at
// ResNet-50 shapes (batch 8, 224 input) against PyTorch (bench/layers_torch.py) on the same machine and
// thread count, interleaved (ours, PyTorch, ours, PyTorch) and reported as medians and ratios
// (ours / PyTorch: below 1 is faster). Results go in bench/RESULTS.md.
//
// built with the project (scripts/build.sh): build/layers_bench
// usage: OMP_WAIT_POLICY=PASSIVE layers_bench [--threads 2] [--reps 5] [--rounds 2] [--only TYPE]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/ops.h"
#include "layers/layer.h"

using namespace mpncov;
using Clock = std::chrono::steady_clock;

namespace {

struct Shape4 {
  std::string type, yaml, input, what;
};

const std::vector<Shape4> kCases = {
    {"conv", "{out_channels: 64, kernel_size: 7, stride: 2, padding: 3, bias: false}", "8x3x224x224", "conv1 7x7/2"},
    {"conv", "{out_channels: 64, kernel_size: 1, bias: false}", "8x64x56x56", "layer1 1x1 64->64"},
    {"conv", "{out_channels: 64, kernel_size: 3, padding: 1, bias: false}", "8x64x56x56", "layer1 3x3 64"},
    {"conv", "{out_channels: 256, kernel_size: 1, bias: false}", "8x64x56x56", "layer1 1x1 64->256"},
    {"conv", "{out_channels: 128, kernel_size: 3, stride: 2, padding: 1, bias: false}", "8x128x56x56",
     "layer2 3x3/2 128"},
    {"conv", "{out_channels: 512, kernel_size: 1, stride: 2, bias: false}", "8x256x56x56", "layer2 down 1x1/2"},
    {"conv", "{out_channels: 256, kernel_size: 3, padding: 1, bias: false}", "8x256x14x14", "layer3 3x3 256"},
    {"conv", "{out_channels: 512, kernel_size: 1, bias: false}", "8x2048x7x7", "layer4 1x1 2048->512"},
    {"conv", "{out_channels: 512, kernel_size: 3, padding: 1, bias: false}", "8x512x7x7", "layer4 3x3 512"},
    {"batchnorm", "{}", "8x256x56x56", "bn 256@56"},
    {"relu", "{}", "8x256x56x56", "relu 256@56"},
    {"maxpool", "{kernel_size: 3, stride: 2, padding: 1}", "8x64x112x112", "maxpool 3x3/2"},
    {"linear", "{out_features: 1000}", "8x2048", "fc 2048->1000"},
};

Shape parse(const std::string& s) {
  std::vector<int64_t> d;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t x = s.find('x', pos);
    d.push_back(std::stoll(s.substr(pos, x - pos)));
    pos = x == std::string::npos ? s.size() : x + 1;
  }
  return Shape(d);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median seconds of forward and forward+backward of our layer.
std::pair<double, double> ours(const Shape4& c, int reps) {
  YAML::Node node = YAML::Load(c.yaml);
  Config config(node, "<bench>", c.type);
  std::unique_ptr<Layer> layer = make_layer(c.type, config);
  SetupContext ctx;
  ctx.name = "bench";
  const Shape in = parse(c.input);
  const Shape out = layer->setup({in}, ctx)[0];
  Tensor x = Tensor::empty(in), y = Tensor::empty(out), dy = Tensor::full(out, 1.0), dx = Tensor::empty(in);
  ops::fill_uniform(x, -1, 1, 1, 1);
  auto time = [&](bool backward) {
    std::vector<double> t;
    for (int r = 0; r <= reps; ++r) {
      const auto start = Clock::now();
      layer->forward({x}, {y});
      if (backward) layer->backward({x}, {y}, {dy}, {dx});
      if (r > 0) t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    return median(t);
  };
  const double f = time(false);
  return {f, time(true)};
}

std::pair<double, double> torch(const Shape4& c, int reps, int threads) {
  const std::string cmd = std::string("OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 ") + MPNCOV_SOURCE_DIR +
                          "/bench/layers_torch.py " + c.type + " '" + c.yaml + "' " + c.input + " " +
                          std::to_string(reps) + " " + std::to_string(threads);
  FILE* p = popen(cmd.c_str(), "r");
  double f = 0, fb = 0;
  if (!p || std::fscanf(p, "%lf %lf", &f, &fb) != 2) std::fprintf(stderr, "torch failed: %s\n", cmd.c_str());
  if (p) pclose(p);
  return {f, fb};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 5, rounds = 2;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--reps") reps = std::atoi(argv[i + 1]);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (a == "--only") only = argv[i + 1];
  }
  set_num_threads(threads);
  std::printf("| layer | input | ours fwd ms | torch fwd ms | ratio | ours fwd+bwd ms | torch fwd+bwd ms | ratio |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  double sum_ours = 0, sum_torch = 0;
  for (const Shape4& c : kCases) {
    if (!only.empty() && c.type != only) continue;
    std::vector<double> of, ofb, tf, tfb;
    for (int r = 0; r < rounds; ++r) {  // interleaved: ours, torch, ours, torch
      const auto o = ours(c, reps);
      const auto t = torch(c, reps, threads);
      of.push_back(o.first);
      ofb.push_back(o.second);
      tf.push_back(t.first);
      tfb.push_back(t.second);
    }
    const double a = median(of), b = median(tf), c2 = median(ofb), d = median(tfb);
    if (c.type == "conv") {
      sum_ours += c2;
      sum_torch += d;
    }
    std::printf("| %s | %s | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f |\n", c.what.c_str(), c.input.c_str(), a * 1e3,
                b * 1e3, a / b, c2 * 1e3, d * 1e3, c2 / d);
    std::fflush(stdout);
  }
  if (sum_torch > 0)
    std::printf("\nconv shapes together, fwd+bwd: ours %.1f ms, torch %.1f ms, ratio %.2f\n", sum_ours * 1e3,
                sum_torch * 1e3, sum_ours / sum_torch);
  return 0;
}
