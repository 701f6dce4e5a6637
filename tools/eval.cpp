// mpncov eval: top-1, top-5 and loss of a trained model on the experiment's validation folder.
#include <cstdio>

#include "data/image_folder.h"
#include "nets/weights.h"
#include "tools/args.h"
#include "tools/command.h"
#include "train/trainer.h"

namespace mpncov::tools {
namespace {

int run_eval(const std::vector<std::string>& argv) {
  Args args(argv, {"weights", "crops", "set", "batch"}, {});
  const Experiment e = load_experiment(args.one_positional("EXPERIMENT.yaml"), args.all("set"));
  const int64_t crops = args.get_int("crops", 1);
  if (crops != 1 && crops != 2 && crops != 10) throw UsageError{"--crops must be 1, 2 or 10"};
  if (e.data.val.empty()) throw Error(str(e.file, ": data.val is not set: nothing to evaluate on"));
  const std::string weights = args.get("weights", e.run.out + "/best.safetensors");
  const Device device = resolve_device(e.run.device);

  auto val_set = std::make_shared<const data::ImageFolder>(e.data.val);
  ModelConfig mc = e.model;
  mc.classes = static_cast<int64_t>(val_set->classes().size());
  mc.weights = "";  // the trained weights replace the pretrained ones
  Net net(compose_model(mc));
  data::LoaderOptions lo;
  lo.batch_size = std::max<int64_t>(1, args.get_int("batch", e.data.val_batch ? e.data.val_batch : e.data.batch) / crops);
  lo.workers = e.data.workers;
  lo.shuffle = false;
  lo.strict = e.data.strict;
  data::Loader loader(val_set, make_pipeline(e.data, false, crops), lo);
  Shape shape = loader.batch_shape();
  if (shape.ndim() == 5) shape = Shape({shape[0] * shape[1], shape[2], shape[3], shape[4]});
  net.setup(shape, DType::F32, device, e.run.seed);
  std::fprintf(stderr, "weights: %s\n", load_weights(net, weights).summary().c_str());
  const EvalResult r = evaluate(net, loader, device, 0, [](int64_t done, int64_t total) {
    std::fprintf(stderr, "\r[%lld/%lld]", static_cast<long long>(done), static_cast<long long>(total));
  });
  std::fprintf(stderr, "\n");
  std::printf("%s: %lld images, %lld-crop: loss %.4f  top-1 %.2f%%  top-5 %.2f%%  (error %.2f%% / %.2f%%)\n",
              e.data.val.c_str(), static_cast<long long>(r.images), static_cast<long long>(crops), r.loss, r.top1, r.top5,
              100 - r.top1, 100 - r.top5);
  return 0;
}

}  // namespace

MPNCOV_COMMAND(Command{"eval", "evaluate a trained model on the experiment's validation folder",
                       "usage: mpncov eval EXPERIMENT.yaml [--weights FILE] [--crops 1|2|10] [--batch N] [--set key=value]...\n\n"
                       "Prints loss, top-1 and top-5 accuracy on data.val. With --crops 2 (centre crop and its flip) or\n"
                       "10 (ten-crop) the logits are averaged over the crops before the loss and accuracy, as the seed's\n"
                       "multi-crop evaluation does.\n\n"
                       "  --weights FILE  weights or checkpoint (default: the run folder's best.safetensors)\n"
                       "  --crops N       1 (the val transform), 2 or 10\n"
                       "  --batch N       images per batch (default: data.val_batch or data.batch), divided by crops\n",
                       run_eval});

}  // namespace mpncov::tools
