// mpncov inspect: the topology of a net or an experiment's model.
#include <cstdio>
#include <fstream>

#include "nets/inspect.h"
#include "nets/model.h"
#include "tools/args.h"
#include "tools/command.h"
#include "tools/model_source.h"
#include "tools/precision_option.h"

namespace mpncov::tools {
namespace {

const std::vector<std::string> kOptions = {"input", "batch", "precision", "dot", "set"};

int run_inspect(const std::vector<std::string>& argv) {
  Args args(argv, kOptions);
  const ModelSource source = load_model_source(args.one_positional("NET.yaml or EXPERIMENT.yaml"), args.all("set"));
  Net net(source.spec);
  std::vector<int64_t> input = source.input;
  if (args.has("input")) input = parse_dims(args.get("input"), 3, "input");
  const int64_t batch = args.get_int("batch", 1);
  if (batch < 1) throw UsageError{"--batch must be at least 1"};
  net.set_training(false);
  const Precision precision =
      precision_option(args, source.experiment ? source.experiment->solver.precision : Precision::Float32);
  net.set_precision(precision);
  net.setup(Shape({batch, input[0], input[1], input[2]}));
  // Which runs evaluation fusion folds is up to the kernels at this batch (a residual add that would cost
  // a convolution its Winograd kernel runs in a pass of its own): one evaluation forward, as an evaluation
  // pass runs it, tells the table.
  bool runs_planned = false;
  for (int i = 0; i < net.size(); ++i) runs_planned = runs_planned || net.fused_into(i) >= 0;
  if (runs_planned && net.eval_fusion_applies()) {
    const FixedWeights fixed(net);
    net.forward(Tensor::zeros(net.input_shape(), DType::F32, Device::cpu()));
  }
  if (precision != Precision::Float32) std::printf("precision: %s\n", precision_name(precision));
  std::printf("%s", topology_table(net).c_str());
  if (args.has("dot")) {
    const std::string path = args.get("dot");
    std::ofstream out(path);
    if (!out) throw Error(str("cannot write '", path, "'"));
    out << topology_dot(net);
    std::printf("graph written to %s (render with: dot -Tsvg %s -o graph.svg)\n", path.c_str(), path.c_str());
  }
  return 0;
}

}  // namespace

MPNCOV_COMMAND(Command{"inspect", "show a network's layers, shapes, parameters, FLOPs and memory",
                       "usage: mpncov inspect NET.yaml|NAME|EXPERIMENT.yaml [--input CxHxW] [--batch N] [--precision P]\n"
                       "                      [--dot FILE] [--set key=value]...\n\n"
                       "Builds the net (a zoo name such as resnet50, a net file, or an experiment's model) and prints\n"
                       "one row per layer: name, type, inputs (when not the previous layer), output shape, parameters,\n"
                       "FLOPs and activation memory, with totals. An experiment's model is the one train builds: its\n"
                       "classes from data.train's class folders, its input the size of its training transform.\n"
                       "A layer that runs inside another's pass in evaluation is marked (fused): inspect runs one\n"
                       "evaluation forward (of zeros, at --batch) to see which do (none with MPNCOV_EVAL_FUSION=0).\n\n"
                       "  --input CxHxW  input size (default: the experiment's image size, or the net's, e.g. 3x224x224)\n"
                       "  --batch N      batch size for the FLOPs and memory figures (default 1)\n"
                       "  --precision P  float32, bfloat16 or tf32 (default: the experiment's solver.precision, else\n"
                       "                 float32); in bfloat16 the activations kept in a convolution kernel's layout\n"
                       "                 are stored in bfloat16 and counted so (CPU)\n"
                       "  --dot FILE     also write the graph as Graphviz DOT, its parts drawn apart\n"
                       "  --set k=v      override an experiment key, e.g. --set data.image_size=64\n",
                       run_inspect, kOptions, {}});

}  // namespace mpncov::tools
