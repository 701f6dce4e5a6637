// mpncov time: per-layer forward and backward time of a training step, or the data loader's throughput.
#include <chrono>
#include <cstdio>

#include "core/context.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "nets/model.h"
#include "tools/args.h"
#include "tools/command.h"
#include "tools/model_source.h"
#include "tools/precision_option.h"
#include "train/profile.h"
#include "train/trainer.h"

namespace mpncov::tools {
namespace {

int time_loader(const Args& args, const std::string& source) {
  const Experiment e = load_experiment(source, args.all("set"));
  auto set = std::make_shared<const data::ImageFolder>(e.data.train);
  data::LoaderOptions lo;
  lo.batch_size = args.get_int("batch", e.data.batch);
  lo.workers = static_cast<int>(args.get_int("workers", e.data.workers));
  lo.seed = e.run.seed;
  const int64_t batches = args.get_int("iterations", 50);
  if (lo.batch_size < 1 || batches < 1) throw UsageError{"--batch and --iterations must be at least 1"};
  if (lo.workers < 0) throw UsageError{"--workers must be 0 or more"};
  data::Loader loader(set, make_pipeline(e.data, true, 1), lo);
  // The clock runs from the first epoch's start (the workers begin decoding then), over as many epochs
  // as a folder smaller than `batches` batches needs.
  const auto start = std::chrono::steady_clock::now();
  int64_t images = 0, done = 0;
  for (int64_t epoch = 0; done < batches; ++epoch) {
    loader.start_epoch(epoch);
    for (; done < batches; ++done) {
      std::optional<data::Batch> b = loader.next();
      if (!b) break;
      images += b->size();
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  loader.stop();
  std::printf("loader: %lld images in %.3g s = %.1f images/s with %d workers (%s)\n", static_cast<long long>(images), s,
              static_cast<double>(images) / s, lo.workers, loader.pipeline().describe().c_str());
  return 0;
}

const std::vector<std::string> kOptions = {"iterations", "batch", "device", "input", "set", "workers", "threads",
                                           "precision"};
const std::vector<std::string> kFlags = {"loader", "inference"};

int run_time(const std::vector<std::string>& argv) {
  Args args(argv, kOptions, kFlags);
  const std::string source = args.one_positional("EXPERIMENT.yaml or NET.yaml");
  if (args.has("threads")) set_num_threads(static_cast<int>(args.get_int("threads", 1)));
  if (args.flag("loader")) return time_loader(args, source);
  const ModelSource model = load_model_source(source, args.all("set"));
  Net net(model.spec);
  std::vector<int64_t> input = model.input;
  if (args.has("input")) input = parse_dims(args.get("input"), 3, "input");
  const int64_t batch = args.get_int("batch", 8), iterations = args.get_int("iterations", 5);
  if (batch < 1 || iterations < 1) throw UsageError{"--batch and --iterations must be at least 1"};
  const Device device = resolve_device(args.get("device", model.experiment ? model.experiment->run.device : "auto"));
  const Precision precision =
      precision_option(args, model.experiment ? model.experiment->solver.precision : Precision::Float32);
  use_precision(net, precision, device);
  net.setup(Shape({batch, input[0], input[1], input[2]}), DType::F32, device);
  std::printf("%s on %s, batch %lld, input %lldx%lldx%lld, %d CPU threads, %s\n", net.spec().name.c_str(),
              device.str().c_str(), static_cast<long long>(batch), static_cast<long long>(input[0]),
              static_cast<long long>(input[1]), static_cast<long long>(input[2]), num_threads(),
              precision_name(precision));
  if (args.flag("inference")) {
    const StepProfile p = profile_inference(net, iterations);
    std::printf("%s", p.table(net).c_str());
    std::printf("inference: %.1f ms per batch, %.1f images/s\n", 1e3 * p.step, static_cast<double>(batch) / p.step);
    // conv -> batch norm (-> add) runs, and average poolings commuted into them (nets/eval_fusion.h)
    int runs = 0, fused = 0, adds = 0, pools = 0;
    for (int i = 0; i < net.size(); ++i) {
      const int head = net.fused_into(i);
      runs += head == i;
      fused += head == i && net.fused(i);
      const bool folded = net.folded(i);
      adds += folded && net.layer(i).type() == "add";
      pools += folded && net.layer(i).type() == "avgpool";
    }
    if (runs > 0)
      std::printf("evaluation fusion: %d of %d convolutions ran with their batch norm (and ReLU) folded in, %d "
                  "residual adds and %d average poolings (commuted) in their runs%s\n",
                  fused, runs, adds, pools, eval_fusion_enabled() ? "" : " (MPNCOV_EVAL_FUSION=0)");
    return 0;
  }
  std::printf("%s", profile_training(net, iterations).table(net).c_str());
  return 0;
}

}  // namespace

MPNCOV_COMMAND(Command{"time", "time a training step layer by layer, inference, or the data loader",
                       "usage: mpncov time EXPERIMENT.yaml|NET.yaml|NAME [--batch N] [--iterations N] [--input CxHxW]\n"
                       "                   [--device D] [--threads N] [--precision P] [--inference] [--set key=value]...\n"
                       "       mpncov time --loader EXPERIMENT.yaml [--batch N] [--workers N] [--iterations N] [--threads N]\n"
                       "                   [--set key=value]...\n\n"
                       "Training step (default): forward, backward, loss and SGD update on random inputs after two\n"
                       "warm-up steps; prints each layer's forward and backward milliseconds, FLOPs, GFLOP/s and share\n"
                       "of the step, and the step's images/s. --inference times eval-mode forward passes instead, then\n"
                       "each layer's forward milliseconds.\n"
                       "--loader times the experiment's training data pipeline (decode + augment) in images/s, over\n"
                       "several epochs when the folder has fewer batches than --iterations. An experiment's model\n"
                       "runs at its image size with its class count (as train builds it).\n"
                       "Float32 3x3 convolutions run Winograd kernels where they are faster; their GFLOP/s count the\n"
                       "direct algorithm's work. MPNCOV_CONV_ALGORITHM=direct in the environment times the direct\n"
                       "kernels instead (docs/layers.md).\n\n"
                       "  --batch N       batch size (default 8; with --loader the experiment's)\n"
                       "  --iterations N  timed steps (default 5; with --loader, batches, default 50)\n"
                       "  --input CxHxW   input size (default: the experiment's image size, or the net's)\n"
                       "  --device D      auto, cpu, cuda, cuda:N (default: the experiment's run.device, else auto)\n"
                       "  --threads N     CPU threads\n"
                       "  --precision P   float32, bfloat16 or tf32 (default: the experiment's solver.precision, else\n"
                       "                  float32); bfloat16 runs convolution and linear layers in bfloat16 mixed\n"
                       "                  precision\n"
                       "  --workers N     decoding threads with --loader (default: data.workers)\n"
                       "  --inference     time eval-mode forward passes instead of training steps\n"
                       "  --set key=value override an experiment key\n",
                       run_time, kOptions, kFlags});

}  // namespace mpncov::tools
