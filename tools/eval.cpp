// mpncov eval: top-1, top-5 and loss of a trained model on the experiment's validation folder.
#include <cstdio>
#include <filesystem>

#include "core/dist/communicator.h"
#include "data/image_folder.h"
#include "nets/weights.h"
#include "tools/args.h"
#include "tools/command.h"
#include "tools/precision_option.h"
#include "tools/progress.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace mpncov::tools {
namespace {

const std::vector<std::string> kOptions = {"weights", "crops", "batch", "device", "precision", "set"};

int run_eval(const std::vector<std::string>& argv) {
  Args args(argv, kOptions, {});
  const Experiment e = load_experiment(args.one_positional("EXPERIMENT.yaml"), args.all("set"));
  const int64_t crops = args.get_int("crops", 1);
  if (crops != 1 && crops != 2 && crops != 10) throw UsageError{"--crops must be 1, 2 or 10"};
  if (args.get_int("batch", 1) < 1) throw UsageError{"--batch must be at least 1"};  // as extract and time say
  if (e.data.val.empty()) throw Error(str(e.file, ": data.val is not set: nothing to evaluate on"));
  const std::string weights = args.get("weights", e.run.out + "/best.safetensors");
  if (!std::filesystem::exists(weights))
    throw Error(args.has("weights") ? str("--weights ", weights, " does not exist")
                                    : str(weights, " does not exist: train the experiment first, or give --weights FILE"));
  const Device device = resolve_device(args.get("device", e.run.device));
  const Precision precision = precision_option(args, e.solver.precision);

  auto val_set = std::make_shared<const data::ImageFolder>(e.data.val);
  // Labels are class indices: a checkpoint trained on other class names would be scored against the
  // wrong ones (as train refuses to resume on other classes).
  const std::vector<std::string> trained = checkpoint_classes(weights);
  if (!trained.empty() && trained != val_set->classes())
    throw Error(str(weights, " was trained on other classes than ", e.data.val, " has (", trained.size(), " vs ",
                    val_set->classes().size(), " class folders, or other names): its labels would not match"));
  ModelConfig mc = e.model;
  mc.classes = static_cast<int64_t>(val_set->classes().size());
  // mc.weights stays: it is not loaded here (the trained weights are), but it decides the classifier, as
  // in train (a pretrained net under a new representation gets one linear layer, fc).
  Net net(compose_model(mc));
  // Under a launcher (mpirun -np N mpncov eval) each process evaluates its shard of the images, as a
  // training run's validation does, and rank 0 alone prints the sums over all of them.
  dist::Communicator& comm = dist::world();
  const bool printing = comm.rank() == 0;
  Progress progress;
  data::LoaderOptions lo;
  lo.rank = comm.rank();
  lo.world_size = comm.size();
  lo.pad_shards = false;  // every image counted once
  lo.batch_size = std::max<int64_t>(1, args.get_int("batch", e.data.val_batch ? e.data.val_batch : e.data.batch) / crops);
  lo.workers = e.data.workers;
  lo.shuffle = false;
  lo.strict = e.data.strict;
  lo.log = [&](const std::string& m) {
    if (printing) progress.message(m);
  };
  data::Loader loader(val_set, make_pipeline(e.data, false, crops), lo);
  Shape shape = loader.batch_shape();
  if (shape.ndim() == 5) shape = Shape({shape[0] * shape[1], shape[2], shape[3], shape[4]});
  use_precision(net, precision, device);
  net.setup(shape, DType::F32, device, e.run.seed);
  const std::string loaded = load_weights(net, weights).summary();
  if (printing) std::fprintf(stderr, "weights: %s\n  %s\n", describe_weights_file(weights).c_str(), loaded.c_str());
  const EvalResult r = evaluate(
      net, loader, device, 0,
      [&](int64_t done, int64_t total) {
        if (printing) progress.update(str("[", done, "/", total, "]"));
      },
      &comm);
  progress.end();
  if (!printing) return 0;
  std::printf("%s: %lld images, %lld-crop: loss %.4f  top-1 %.2f%%  top-5 %.2f%%  (error %.2f%% / %.2f%%)\n",
              e.data.val.c_str(), static_cast<long long>(r.images), static_cast<long long>(crops), r.loss, r.top1, r.top5,
              100 - r.top1, 100 - r.top5);
  return 0;
}

int run_eval_everywhere(const std::vector<std::string>& argv) {
  dist::Communicator& comm = dist::world();
  if (comm.size() == 1) return run_eval(argv);
  // An error on one process ends all of them at once (the others would wait for its sums), as in train.
  try {
    return run_eval(argv);
  } catch (const std::exception& error) {
    comm.abort(1, str("error: ", error.what(), " (stopping every process of the run)"));
  }
  return 1;  // not reached: abort ends the process
}

}  // namespace

MPNCOV_COMMAND(Command{"eval", "evaluate a trained model on the experiment's validation folder",
                       "usage: mpncov eval EXPERIMENT.yaml [--weights FILE] [--crops 1|2|10] [--batch N] [--device D]\n"
                       "                   [--precision P] [--set key=value]...\n\n"
                       "Prints loss, top-1 and top-5 accuracy on data.val. With --crops 2 (centre crop and its flip) or\n"
                       "10 (ten-crop) the logits are averaged over the crops before the loss and accuracy, as the seed's\n"
                       "multi-crop evaluation does. The first line names the file and the epoch it holds.\n\n"
                       "  --weights FILE  weights or checkpoint (default: the run folder's best.safetensors)\n"
                       "  --crops N       1 (the val transform), 2 or 10\n"
                       "  --batch N       images per batch (default: data.val_batch or data.batch), divided by crops\n"
                       "  --device D      auto, cpu, cuda or cuda:N (default: the experiment's run.device)\n"
                       "  --precision P   float32, bfloat16 or tf32 (default: the experiment's solver.precision);\n"
                       "                  bfloat16 runs the convolution and linear layers in bfloat16 mixed precision,\n"
                       "                  as PyTorch's autocast does\n"
                       "  --set key=value override an experiment key, e.g. --set data.val=other/val\n",
                       run_eval_everywhere, kOptions, {}});

}  // namespace mpncov::tools
