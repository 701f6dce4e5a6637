// mpncov extract: a layer's outputs for an array of images, in eval mode.
#include <cstdio>

#include <filesystem>
#include <fstream>
#include <optional>

#include "core/context.h"
#include "core/dist/communicator.h"
#include "core/layout_ops.h"
#include "core/npy.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/presets.h"
#include "nets/model.h"
#include "nets/weights.h"
#include "tools/args.h"
#include "tools/command.h"
#include "tools/precision_option.h"
#include "tools/progress.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace mpncov::tools {
namespace {

// "features.npy" -> "features-labels.npy"
std::string labels_path(const std::string& out) {
  const std::string stem = out.size() > 4 && out.substr(out.size() - 4) == ".npy" ? out.substr(0, out.size() - 4) : out;
  return stem + "-labels.npy";
}

const std::vector<std::string> kOptions = {"weights", "input", "images", "layer", "out", "batch",
                                           "device", "precision", "workers", "set"};
const std::vector<std::string> kFlags = {"non-strict"};

int run_extract(const std::vector<std::string>& argv) {
  // Under a launcher (mpirun -np N) rank 0 alone extracts: the output is one array in image order, and
  // every process writing all of it (as they did) repeated the work and raced on the same files.
  dist::Communicator& comm = dist::world();
  if (comm.rank() != 0) {
    std::fprintf(stderr, "mpncov extract: rank %d of %d: nothing to do here; rank 0 extracts alone\n", comm.rank(),
                 comm.size());
    return 0;
  }
  if (comm.size() > 1)
    std::fprintf(stderr, "mpncov extract: %d processes were started; rank 0 extracts alone (extract is not split "
                 "over processes: start it without mpirun/srun)\n", comm.size());
  Args args(argv, kOptions, kFlags);
  const std::string source = args.one_positional("NET.yaml or EXPERIMENT.yaml");
  if (!args.has("out")) throw UsageError{"--out is required"};
  if (args.has("input") == args.has("images")) throw UsageError{"give exactly one of --input X.npy and --images DIR"};
  const int64_t batch = args.get_int("batch", 32);
  if (batch < 1) throw UsageError{"--batch must be at least 1"};

  NetSpec spec = load_net_or_experiment(source);
  const YAML::Node root = YAML::LoadFile(std::filesystem::exists(source) ? source : resolve_net_path(source));
  std::optional<Experiment> experiment;
  if (root.IsMap() && root["model"]) {
    experiment = load_experiment(source, args.all("set"));
    spec = compose_model(experiment->model);
  } else if (args.has("set")) {
    throw UsageError{"--set changes an experiment's keys; " + source + " is a net"};
  }
  // The defaults eval has: the run's best checkpoint and the experiment's device.
  if (!args.has("weights") && !experiment)
    throw UsageError{"--weights is required with a net (with an experiment it defaults to the run's best.safetensors)"};
  const std::string weights = args.get("weights", experiment ? experiment->run.out + "/best.safetensors" : "");
  if (!std::filesystem::exists(weights))
    throw Error(args.has("weights") ? str("--weights ", weights, " does not exist")
                                    : str(weights, " does not exist: train the experiment first, or give --weights FILE"));
  const Device device = resolve_device(args.get("device", experiment ? experiment->run.device : "auto"));
  const Precision precision = precision_option(args, experiment ? experiment->solver.precision : Precision::Float32);
  // An experiment that lets the classes default gets them from the checkpoint (what the weights were
  // trained on), else as train does from data.train's class folders, else from the image folder.
  int64_t classes = 0;
  if (experiment && experiment->model.classes == 0) {
    classes = static_cast<int64_t>(checkpoint_classes(weights).size());
    if (classes == 0) classes = count_class_folders(experiment->data.train);
  }

  // Images: the experiment's validation transform (a plain net file: ImageNet's).
  std::unique_ptr<data::Loader> loader;
  Progress progress;
  Tensor x;
  Shape image_shape;
  int64_t n = 0;
  std::string class_names;  // --images: written with the labels, once the features are
  if (args.has("images")) {
    const DataConfig d = experiment ? experiment->data : DataConfig{};
    auto folder = std::make_shared<const data::ImageFolder>(args.get("images"));
    if (experiment && experiment->model.classes == 0 && classes == 0) classes = static_cast<int64_t>(folder->classes().size());
    data::LoaderOptions lo;
    lo.batch_size = batch;
    lo.workers = static_cast<int>(args.get_int("workers", 4));
    lo.shuffle = false;
    lo.strict = true;  // row i is image i: a bad file is an error, never replaced by the next image
    lo.log = [&](const std::string& m) { progress.message(m); };
    loader = std::make_unique<data::Loader>(folder, make_pipeline(d, false, 1), lo);
    image_shape = loader->batch_shape();
    n = folder->size();
    for (const std::string& c : folder->classes()) class_names += c + "\n";
  } else {
    x = load_npy(args.get("input"));
    MPNCOV_CHECK(x.ndim() == 4 && x.dtype() == DType::F32, args.get("input"), ": expected a float32 array (N, C, H, W), got ",
                 x.str());
    n = x.dim(0);
    image_shape = Shape({std::min(batch, n), x.dim(1), x.dim(2), x.dim(3)});
  }
  if (classes > 0) {
    ModelConfig mc = experiment->model;
    mc.classes = classes;
    spec = compose_model(mc);
  }
  MPNCOV_CHECK(n > 0, "no images to extract features from");
  Net net(spec);
  const std::string layer = args.has("layer") ? args.get("layer") : net.spec().layers.back().name;
  net.set_in_place(false);  // every layer keeps its own output
  net.set_training(false);
  use_precision(net, precision, device);
  net.setup(image_shape, DType::F32, device);
  std::fprintf(stderr, "weights: %s\n", describe_weights_file(weights).c_str());
  const WeightsLoadReport report = load_weights(net, weights, {!args.flag("non-strict"), {}});
  std::fprintf(stderr, "  %s\n", report.summary().c_str());
  const int index = net.index_of(layer);
  Shape out_shape = net.output_shape(index);
  out_shape[0] = n;
  NpyWriter writer(args.get("out"), out_shape, DType::F32);
  std::vector<double> labels;
  int64_t done = 0;
  auto run = [&](const Tensor& images) {
    if (images.shape() != net.input_shape()) net.setup(images.shape(), DType::F32, device);
    net.forward(images.to(device));
    // A layer inside a planned layout (docs/layouts.md) may hold its output in another order, and in
    // bfloat16 mixed precision in bfloat16: the file is float32 NCHW (one pass converts both).
    writer.write(ops::to_nchw_float(net.output(layer)));
    done += images.dim(0);
    progress.update(str(done, "/", n, " images"));
  };
  if (loader) {
    loader->start_epoch(0);
    while (std::optional<data::Batch> b = loader->next()) {
      run(b->images);
      for (double v : b->labels.to_vector()) labels.push_back(v);
    }
  } else {
    for (int64_t begin = 0; begin < n; begin += batch) run(x.slice(begin, std::min(n, begin + batch)));
  }
  writer.commit();
  progress.end();
  std::printf("wrote %s: output of '%s', shape %s\n", args.get("out").c_str(), layer.c_str(), out_shape.str().c_str());
  if (loader) {
    save_npy(labels_path(args.get("out")), Tensor::from_vector(labels, {n}, DType::I64));
    const std::string names_path = labels_path(args.get("out")).substr(0, labels_path(args.get("out")).size() - 4) + ".txt";
    std::ofstream names(names_path);
    if (!(names << class_names)) throw Error(str("cannot write '", names_path, "'"));
    std::printf("wrote %s: the class index of each image (class names in the .txt beside it)\n",
                labels_path(args.get("out")).c_str());
  }
  return 0;
}

}  // namespace

MPNCOV_COMMAND(Command{"extract", "run a net in eval mode on an array of images and save a layer's outputs",
                       "usage: mpncov extract NET.yaml|NAME|EXPERIMENT.yaml [--weights FILE] (--input X.npy | --images DIR)\n"
                       "                      --out Y.npy [--layer NAME] [--batch N] [--workers N] [--device D] [--precision P]\n"
                       "                      [--non-strict] [--set key=value]...\n\n"
                       "Runs the net in eval mode and writes the named layer's output (default: the last layer, the\n"
                       "logits) as a float32 .npy, one row per image. The images are either X.npy, a float32 array\n"
                       "(N, C, H, W) of normalised images, or an image folder DIR/<class>/<image> read with the\n"
                       "experiment's validation transform (ImageNet's for a plain net); then the labels go to\n"
                       "Y-labels.npy and the class names to Y-labels.txt (e.g. to train an SVM as the paper did).\n"
                       "An experiment that leaves model.classes to the data takes the class count from the checkpoint\n"
                       "(from a weights file: data.train's class folders, as train does). Under mpirun or srun,\n"
                       "rank 0 alone extracts (the others have nothing to do): start it as one process.\n\n"
                       "  --weights FILE  weights or checkpoint (safetensors, the net's parameter names); default for an\n"
                       "                  experiment: its run folder's best.safetensors (required for a net)\n"
                       "  --layer NAME    the layer to write, e.g. representation for the iSQRT-COV features\n"
                       "                  (mpncov inspect lists the names)\n"
                       "  --batch N       images per forward pass (default 32)\n"
                       "  --workers N     decoding threads for --images (default 4)\n"
                       "  --device D      auto, cpu, cuda or cuda:N (default: an experiment's run.device, else auto)\n"
                       "  --precision P   float32, bfloat16 or tf32 (default: an experiment's solver.precision, else\n"
                       "                  float32); bfloat16 runs the convolution and linear layers in bfloat16 mixed\n"
                       "                  precision, as PyTorch's autocast does\n"
                       "  --non-strict    load what matches instead of requiring every tensor\n"
                       "  --set key=value override an experiment key\n",
                       run_extract, kOptions, kFlags});

}  // namespace mpncov::tools
