// iSQRT-COV benchmark, our side: forward and forward+backward time of the mpncov layer (float32, CPU) for
// the given shapes. bench/rep_torch.py runs it interleaved with PyTorch and prints the ratios; see
// bench/RESULTS.md.
//
// built with the project (scripts/build.sh): build/rep_bench
// usage: OMP_WAIT_POLICY=PASSIVE rep_bench [--threads 1] [--reps 5] [--iterations 5] [--type mpncov] BxCxHxW...
// prints one line per shape: "BxCxHxW forward_seconds forward_backward_seconds" (medians over reps).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/ops.h"
#include "layers/layer.h"

using namespace mpncov;
using Clock = std::chrono::steady_clock;

namespace {

Shape parse(const std::string& s) {
  std::vector<int64_t> d;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t x = s.find('x', start);
    d.push_back(std::stoll(s.substr(start, x == std::string::npos ? std::string::npos : x - start)));
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return Shape(d);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5, iterations = 5;
  std::string type = "mpncov";
  std::vector<std::string> shapes;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--iterations" && i + 1 < argc) iterations = std::atoi(argv[++i]);
    else if (a == "--type" && i + 1 < argc) type = argv[++i];
    else shapes.push_back(a);
  }
  set_num_threads(threads);
  for (const std::string& s : shapes) {
    const Shape shape = parse(s);
    Config c(YAML::Load(type == "mpncov" ? str("{iterations: ", iterations, "}") : std::string("{}")), "bench",
             "layer");
    auto layer = make_layer(type, c);
    SetupContext ctx;
    ctx.name = "bench";
    const Shape out_shape = layer->setup({shape}, ctx)[0];
    Tensor x = Tensor::empty(shape), y = Tensor::empty(out_shape), g = Tensor::empty(out_shape),
           dx = Tensor::empty(shape);
    ops::fill_uniform(x, 0, 2, 1, 1);
    ops::fill_uniform(g, -1, 1, 1, 2);
    layer->forward({x}, {y});  // warm-up: workspaces, thread pools
    layer->backward({x}, {y}, {g}, {dx});
    std::vector<double> fwd, both;
    for (int r = 0; r < reps; ++r) {
      Clock::time_point t = Clock::now();
      layer->forward({x}, {y});
      fwd.push_back(seconds_since(t));
      t = Clock::now();
      layer->forward({x}, {y});
      layer->backward({x}, {y}, {g}, {dx});
      both.push_back(seconds_since(t));
    }
    std::printf("%s %.6f %.6f\n", s.c_str(), median(fwd), median(both));
    std::fflush(stdout);
  }
  return 0;
}
