// mpncov extract: a layer's outputs for an array of images, in eval mode.
#include <cstdio>

#include "core/context.h"
#include "core/npy.h"
#include "nets/model.h"
#include "nets/weights.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mpncov::tools {
namespace {

int run_extract(const std::vector<std::string>& argv) {
  Args args(argv, {"weights", "input", "layer", "out", "batch", "device"}, {"non-strict"});
  const std::string source = args.one_positional("NET.yaml or EXPERIMENT.yaml");
  for (const char* required : {"weights", "input", "out"})
    if (!args.has(required)) throw UsageError{str("--", required, " is required")};
  const int64_t batch = args.get_int("batch", 32);
  if (batch < 1) throw UsageError{"--batch must be at least 1"};
  const Device device = Device::parse(args.get("device", "cpu"));

  Net net(load_net_or_experiment(source));
  const Tensor x = load_npy(args.get("input"));
  MPNCOV_CHECK(x.ndim() == 4 && x.dtype() == DType::F32, args.get("input"), ": expected a float32 array (N, C, H, W), got ",
               x.str());
  const int64_t n = x.dim(0);
  MPNCOV_CHECK(n > 0, args.get("input"), " holds no images");
  const std::string layer = args.has("layer") ? args.get("layer") : net.spec().layers.back().name;
  net.set_in_place(false);  // every layer keeps its own output
  net.set_training(false);
  const int64_t first = std::min(batch, n);
  net.setup(Shape({first, x.dim(1), x.dim(2), x.dim(3)}), DType::F32, device);
  const WeightsLoadReport report = load_weights(net, args.get("weights"), {!args.flag("non-strict"), {}});
  std::fprintf(stderr, "weights: %s\n", report.summary().c_str());
  const int index = net.index_of(layer);
  Shape out_shape = net.output_shape(index);
  out_shape[0] = n;
  NpyWriter writer(args.get("out"), out_shape, DType::F32);
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t end = std::min(n, begin + batch);
    if (end - begin != net.input_shape()[0]) net.setup(Shape({end - begin, x.dim(1), x.dim(2), x.dim(3)}), DType::F32, device);
    net.forward(x.slice(begin, end).to(device));
    writer.write(net.output(layer));
    std::fprintf(stderr, "\r%lld/%lld images", static_cast<long long>(end), static_cast<long long>(n));
  }
  writer.commit();
  std::fprintf(stderr, "\n");
  std::printf("wrote %s: output of '%s', shape %s\n", args.get("out").c_str(), layer.c_str(), out_shape.str().c_str());
  return 0;
}

}  // namespace

MPNCOV_COMMAND(Command{"extract", "run a net in eval mode on an array of images and save a layer's outputs",
                       "usage: mpncov extract NET.yaml|NAME|EXPERIMENT.yaml --weights FILE --input X.npy --out Y.npy\n"
                       "                      [--layer NAME] [--batch N] [--device cpu|cuda[:N]] [--non-strict]\n\n"
                       "Runs the net in eval mode on X.npy, a float32 array (N, C, H, W) of normalised images, and\n"
                       "writes the named layer's output (default: the last layer, the logits) as float32 .npy.\n\n"
                       "  --weights FILE  safetensors weights whose names are the net's parameter names\n"
                       "  --layer NAME    the layer whose output to write (see mpncov inspect for names)\n"
                       "  --batch N       images per forward pass (default 32)\n"
                       "  --device D      cpu (default), cuda or cuda:N\n"
                       "  --non-strict    load what matches instead of requiring every tensor\n",
                       run_extract});

}  // namespace mpncov::tools
