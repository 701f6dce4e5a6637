// GPU benchmark and checks, our side (scripts/gpu-check.sh runs it; the PyTorch side is bench/gpu/*.py).
// Every mode also runs on the CPU (--device cpu), which is how the script's logic is checked without a GPU.
//
//   gpu_bench rep [--device D] [--iterations 5] [--reps 5] SHAPE...
//       the mpncov layer (iSQRT-COV) on each BxCxHxW: median forward and forward+backward seconds
//   gpu_bench step --net NET [--device D] [--batch 64] [--size 224] [--warmup 3] [--steps 10]
//       training steps (forward, softmax cross-entropy, backward, SGD with momentum) on one fixed batch:
//       images/s, and the allocator counters over the timed steps (a warmed-up step must call cudaMalloc
//       zero times)
//   gpu_bench compare --net NET [--device D] [--batch 8] [--size 32] [--steps 20] [--lr 0.01]
//                     [--tolerance 1e-3]
//       trains the same net from the same initial weights on the same batches on the CPU (float32) and on
//       D; fails when a step's losses differ by more than tolerance * max(1, |cpu loss|)
//
// NET is a zoo name (resnet50), a net file or an experiment file. Each mode prints one
// "RESULT mode key=value ..." line per figure, which the script collects.
// Exit status: 0 success, 1 a failed check or a run-time error, 2 bad usage.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/config.h"
#include "core/context.h"
#include "core/ops.h"
#include "core/optim_ops.h"
#include "core/text.h"
#include "layers/layer.h"
#include "nets/model.h"
#include "nets/net.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "train/step.h"

using namespace mpncov;
using Clock = std::chrono::steady_clock;

namespace {

struct Usage {
  std::string message;
};

struct Options {
  std::string mode;
  Device device = Device::cpu();
  std::vector<std::string> shapes;
  std::string net;
  int iterations = 5, reps = 5, batch = -1, size = -1, warmup = 3, steps = -1;
  double lr = 0.01, tolerance = 1e-3;
};

Shape parse_shape(const std::string& s) {
  std::vector<int64_t> d;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t x = s.find('x', pos);
    const std::string part = s.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end || v <= 0) throw Usage{"bad shape '" + s + "': expected BxCxHxW"};
    d.push_back(v);
    if (x == std::string::npos) break;
    pos = x + 1;
  }
  if (d.size() != 4) throw Usage{"bad shape '" + s + "': expected BxCxHxW"};
  return Shape(d);
}

Options parse(int argc, char** argv) {
  if (argc < 2) throw Usage{"give a mode: rep, step or compare"};
  Options o;
  o.mode = argv[1];
  if (o.mode != "rep" && o.mode != "step" && o.mode != "compare") throw Usage{"unknown mode '" + o.mode + "'"};
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Usage{a + " needs a value"};
      return argv[++i];
    };
    auto number = [&]() {
      const std::string v = value();
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(x > 0)) throw Usage{a + " '" + v + "': expected a positive number"};
      return x;
    };
    if (a == "--device") {
      try {
        o.device = Device::parse(value());
      } catch (const Error& e) {
        throw Usage{e.what()};
      }
    } else if (a == "--net") o.net = value();
    else if (a == "--iterations") o.iterations = static_cast<int>(number());
    else if (a == "--reps") o.reps = static_cast<int>(number());
    else if (a == "--batch") o.batch = static_cast<int>(number());
    else if (a == "--size") o.size = static_cast<int>(number());
    else if (a == "--warmup") o.warmup = static_cast<int>(number());
    else if (a == "--steps") o.steps = static_cast<int>(number());
    else if (a == "--lr") o.lr = number();
    else if (a == "--tolerance") o.tolerance = number();
    else if (!a.empty() && a[0] == '-') throw Usage{"unknown option '" + a + "'"};
    else if (o.mode == "rep") o.shapes.push_back(a);
    else throw Usage{"unexpected argument '" + a + "'"};
  }
  if (o.mode == "rep" && o.shapes.empty()) throw Usage{"rep needs at least one BxCxHxW shape"};
  if (o.mode != "rep" && o.net.empty()) throw Usage{o.mode + " needs --net FILE"};
  const bool step = o.mode == "step";
  if (o.batch < 0) o.batch = step ? 64 : 8;
  if (o.size < 0) o.size = step ? 224 : 32;
  if (o.steps < 0) o.steps = step ? 10 : 20;
  return o;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

constexpr double kMiB = 1024.0 * 1024.0;

// ---- rep: the iSQRT-COV layer alone ----

int run_rep(const Options& o) {
  for (const std::string& s : o.shapes) {
    const Shape shape = parse_shape(s);
    Config c(YAML::Load(str("{iterations: ", o.iterations, "}")), "gpu_bench", "layer 'mpncov'");
    auto layer = make_layer("mpncov", c);
    SetupContext ctx;
    ctx.device = o.device;
    ctx.name = "mpncov";
    const Shape out_shape = layer->setup({shape}, ctx)[0];
    Tensor x = Tensor::empty(shape, DType::F32, o.device), y = Tensor::empty(out_shape, DType::F32, o.device),
           g = Tensor::empty(out_shape, DType::F32, o.device), dx = Tensor::empty(shape, DType::F32, o.device);
    // Features after a ReLU are non-negative; the upstream gradient is signed.
    ops::fill_uniform(x, 0, 2, 1, 1);
    ops::fill_uniform(g, -1, 1, 1, 2);
    layer->forward({x}, {y});  // warm-up: workspaces, library handles, kernel loading
    layer->backward({x}, {y}, {g}, {dx});
    synchronize(o.device);
    const uint64_t mallocs = allocator_stats(o.device).device_mallocs;
    std::vector<double> fwd, both;
    for (int r = 0; r < o.reps; ++r) {
      Clock::time_point t = Clock::now();
      layer->forward({x}, {y});
      synchronize(o.device);
      fwd.push_back(seconds_since(t));
      t = Clock::now();
      layer->forward({x}, {y});
      layer->backward({x}, {y}, {g}, {dx});
      synchronize(o.device);
      both.push_back(seconds_since(t));
    }
    const double finite = std::isfinite(dx.to_vector()[0]) ? 1 : 0;
    std::printf("RESULT rep shape=%s device=%s iterations=%d fwd_s=%.6f fwdbwd_s=%.6f mallocs_timed=%llu finite=%g\n",
                s.c_str(), o.device.str().c_str(), o.iterations, median(fwd), median(both),
                static_cast<unsigned long long>(allocator_stats(o.device).device_mallocs - mallocs), finite);
    std::fflush(stdout);
  }
  return 0;
}

// ---- a training step: net + loss + SGD ----

class Trainer {
 public:
  Trainer(const std::string& net_file, Device device, int batch, int size, double lr) : net_(load(net_file)) {
    const int64_t channels = net_.spec().input_shape[0];
    net_.setup(Shape{batch, channels, size, size}, DType::F32, device, 1);
    net_.set_training(true);
    const Shape logits = net_.output_shape(net_.size() - 1);
    MPNCOV_CHECK(logits.ndim() == 2, net_file, ": the net's output must be logits (N, K), got ", logits.str());
    classes_ = logits[1];
    ParamGroup g;
    g.name = "all";
    for (const NetParameter& p : net_.parameters()) g.params.push_back({p.name, p.parameter});
    g.base_lr = g.lr = lr;
    g.momentum = 0.9;
    g.weight_decay = 1e-4;
    sgd_ = std::make_unique<SGD>(std::vector<ParamGroup>{g});
    step_ = std::make_unique<TrainStep>(net_, *sgd_);
  }

  int64_t classes() const { return classes_; }
  const Shape& input_shape() const { return net_.input_shape(); }
  int64_t parameter_count() const { return net_.parameter_count(); }
  const std::string& name() const { return net_.spec().name; }
  static NetSpec load(const std::string& net) { return load_net_or_experiment(net); }

  // The trainer's step on (x, labels), both already on the device.
  void step(const Tensor& x, const Tensor& labels) {
    net_.set_step(steps_++);
    step_->run(x, labels);
  }
  double loss() const { return step_->loss(); }

 private:
  Net net_;
  int64_t classes_ = 0;
  std::unique_ptr<SGD> sgd_;
  std::unique_ptr<TrainStep> step_;
  uint64_t steps_ = 0;
};

// A batch drawn on the CPU from (seed 7, step), so every device sees the same values.
void make_batch(const Shape& shape, int64_t classes, uint64_t step, Tensor& x, Tensor& labels) {
  x = Tensor::empty(shape, DType::F32);
  ops::fill_normal(x, 0, 1, 7, 2 * step);
  Tensor u = Tensor::empty(Shape{shape[0]}, DType::F64);
  ops::fill_uniform(u, 0, 1, 7, 2 * step + 1);
  std::vector<double> v = u.to_vector();
  for (double& l : v) l = std::min(static_cast<double>(classes - 1), std::floor(l * static_cast<double>(classes)));
  labels = Tensor::from_vector(v, Shape{shape[0]}, DType::I64);
}

int run_step(const Options& o) {
  Trainer t(o.net, o.device, o.batch, o.size, o.lr);
  Tensor x, labels;
  make_batch(t.input_shape(), t.classes(), 0, x, labels);
  x = x.to(o.device);
  labels = labels.to(o.device);
  Clock::time_point start = Clock::now();
  for (int i = 0; i < o.warmup; ++i) t.step(x, labels);
  synchronize(o.device);
  const double warmup_s = seconds_since(start);
  reset_peak(o.device);
  const AllocatorStats before = allocator_stats(o.device);
  start = Clock::now();
  for (int i = 0; i < o.steps; ++i) t.step(x, labels);
  synchronize(o.device);
  const double seconds = seconds_since(start);
  const AllocatorStats after = allocator_stats(o.device);
  const double loss = t.loss();
  std::printf("RESULT step net=%s device=%s batch=%d size=%d params=%lld warmup_s=%.3f step_s=%.6f "
              "images_per_s=%.1f mallocs_timed=%llu allocations_per_step=%.1f peak_mib=%.0f cached_mib=%.0f "
              "loss=%.4f finite=%d\n",
              t.name().c_str(), o.device.str().c_str(), o.batch, o.size, static_cast<long long>(t.parameter_count()),
              warmup_s, seconds / o.steps, o.batch * o.steps / seconds,
              static_cast<unsigned long long>(after.device_mallocs - before.device_mallocs),
              static_cast<double>(after.allocations - before.allocations) / o.steps, after.peak_bytes / kMiB,
              after.cached_bytes / kMiB, loss, std::isfinite(loss) ? 1 : 0);
  return std::isfinite(loss) ? 0 : 1;
}

int run_compare(const Options& o) {
  Trainer cpu(o.net, Device::cpu(), o.batch, o.size, o.lr), dev(o.net, o.device, o.batch, o.size, o.lr);
  double worst = 0;
  int failed = 0;
  std::printf("step   loss(cpu)    loss(%s)   |diff|/max(1,|cpu|)\n", o.device.str().c_str());
  for (int s = 0; s < o.steps; ++s) {
    Tensor x, labels;
    make_batch(cpu.input_shape(), cpu.classes(), static_cast<uint64_t>(s), x, labels);
    cpu.step(x, labels);
    dev.step(x.clone().to(o.device), labels.to(o.device));  // a copy: the CPU net must not share its input
    const double a = cpu.loss(), b = dev.loss();
    const double rel = std::abs(a - b) / std::max(1.0, std::abs(a));
    const bool bad = !(rel <= o.tolerance);  // NaN fails too
    failed += bad;
    if (!(rel <= worst)) worst = rel;
    std::printf("%4d  %.6f  %.6f  %.2e%s\n", s, a, b, rel, bad ? "  FAIL" : "");
  }
  std::printf("RESULT compare net=%s device=%s batch=%d size=%d steps=%d tolerance=%g max_rel_diff=%.3e failed=%d\n",
              cpu.name().c_str(), o.device.str().c_str(), o.batch, o.size, o.steps, o.tolerance, worst,
              failed);
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    require_device(o.device);
    std::printf("gpu_bench %s on %s (%s)\n", o.mode.c_str(), o.device.str().c_str(),
                o.device.is_cuda() ? cuda_device_name(o.device.index).c_str() : "host");
    if (o.mode == "rep") return run_rep(o);
    if (o.mode == "step") return run_step(o);
    return run_compare(o);
  } catch (const Usage& u) {
    std::fprintf(stderr,
                 "gpu_bench: %s\nusage: gpu_bench rep|step|compare [--device D] ... (see bench/gpu_bench.cpp)\n",
                 u.message.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_bench: error: %s\n", e.what());
    return 1;
  }
}
