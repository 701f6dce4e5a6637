// Data-parallel training step benchmark: run alone, or as N processes under mpirun.
//
//   dist_bench --net NET [--batch 8] [--size 224] [--warmup 2] [--steps 5] [--threads 1] [--overlap 1]
//              [--bucket-mb 25] [--device cpu|cuda]     (cuda: each process the GPU of its local rank)
//
// Every process trains NET (a zoo name, net file or experiment file) on its own fixed random batch of
// `batch` images with the trainer's step (forward, loss, backward with the bucketed gradient all-reduce,
// SGD); rank 0 prints one line:
//   RESULT net=NET procs=N threads=T batch=B images_per_s=... step_s=... comm_wait_share=... buckets=K
// images_per_s counts every process's images; comm_wait_share is the part of the step spent waiting for
// gradient all-reduces after the backward pass (with --overlap 0 every bucket starts after it).
// bench/dist_scaling.sh runs the comparisons of bench/RESULTS.md.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/context.h"
#include "core/dist/communicator.h"
#include "core/ops.h"
#include "nets/model.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "train/gradient_reducer.h"
#include "train/step.h"

using namespace mpncov;

int main(int argc, char** argv) {
  std::string net_name;
  int64_t batch = 8, size = 224;
  int warmup = 2, steps = 5, threads = 1;
  bool overlap = true;
  double bucket_mb = 25;
  std::string device_name = "cpu";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--net") net_name = value;
    else if (key == "--batch") batch = std::atoll(value.c_str());
    else if (key == "--size") size = std::atoll(value.c_str());
    else if (key == "--warmup") warmup = std::atoi(value.c_str());
    else if (key == "--steps") steps = std::atoi(value.c_str());
    else if (key == "--threads") threads = std::atoi(value.c_str());
    else if (key == "--overlap") overlap = value != "0";
    else if (key == "--bucket-mb") bucket_mb = std::atof(value.c_str());
    else if (key == "--device") device_name = value;
    else {
      std::fprintf(stderr, "dist_bench: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  if (net_name.empty() || batch < 1 || steps < 1) {
    std::fprintf(stderr, "usage: dist_bench --net NET [--batch 8] [--size 224] [--warmup 2] [--steps 5] [--threads 1] "
                         "[--overlap 1] [--bucket-mb 25]\n");
    return 2;
  }
  try {
    set_num_threads(threads);
    dist::Communicator& comm = dist::world();
    const Device device = device_name == "cuda" ? Device::cuda(comm.local_rank()) : Device::parse(device_name);
    require_device(device);
    Net net(load_net_or_experiment(net_name));
    net.setup(Shape({batch, 3, size, size}), DType::F32, device, 1);
    for (const NamedTensor& t : net.state()) comm.broadcast(t.tensor, 0);
    std::vector<NamedParameter> all;
    for (const NetParameter& p : net.parameters()) all.push_back({p.name, p.parameter});
    GroupSettings gs;
    gs.lr = 1e-4;
    SGD sgd(seed_groups(all, {}, {}, gs));
    std::unique_ptr<GradientReducer> reducer;
    StepOptions so;
    if (comm.size() > 1) {
      GradientReducerOptions ro;
      ro.bucket_mb = bucket_mb;
      ro.overlap = overlap;
      reducer = std::make_unique<GradientReducer>(net, comm, ro);
      so.gradients = reducer.get();
    }
    TrainStep step(net, sgd, so);
    Tensor x = Tensor::empty(Shape({batch, 3, size, size}));
    ops::fill_uniform(x, -1, 1, 7, static_cast<uint64_t>(comm.rank()));
    std::vector<double> labels;
    const int64_t classes = net.output_shape(net.size() - 1)[1];
    for (int64_t i = 0; i < batch; ++i) labels.push_back(static_cast<double>((i * 7 + comm.rank()) % classes));
    const Tensor y = Tensor::from_vector(labels, Shape({batch}), DType::I64).to(device);
    x = x.to(device);
    net.set_training(true);
    for (int i = 0; i < warmup; ++i) step.run(x, y);
    if (reducer) reducer->reset_wait_seconds();
    synchronize(device);
    comm.barrier();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) step.run(x, y);
    synchronize(device);
    comm.barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Tensor wait = Tensor::full(Shape({1}), reducer ? reducer->wait_seconds() : 0.0, DType::F64);
    comm.all_reduce(wait);  // the mean over processes
    if (comm.rank() == 0)
      std::printf("RESULT net=%s procs=%d threads=%d batch=%lld size=%lld overlap=%d images_per_s=%.3f step_s=%.3f "
                  "comm_wait_share=%.3f buckets=%d\n",
                  net_name.c_str(), comm.size(), threads, static_cast<long long>(batch), static_cast<long long>(size),
                  overlap ? 1 : 0, static_cast<double>(batch * steps * comm.size()) / seconds, seconds / steps,
                  wait.item() / comm.size() / seconds, reducer ? reducer->buckets() : 0);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_bench: error: %s\n", e.what());
    return 1;
  }
}
