// mpncov gradcheck: checks layers' backward passes against central differences in float64 on the CPU,
// or (--device cuda) each layer on the GPU against the CPU float64 reference. Whole networks
// (NET.yaml / EXPERIMENT.yaml / a zoo name) are checked layer by layer with the shapes each layer sees.
#include <cstdio>
#include <cstdlib>

#include "core/context.h"
#include "layers/gradcheck_suite.h"
#include "nets/model.h"
#include "nets/net_gradcheck.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mpncov::tools {
namespace {

const char* kUsage =
    "usage: mpncov gradcheck --layer TYPE [--set KEY=VALUE]... [--input NxCxHxW] [--eval]\n"
    "       mpncov gradcheck --all-layers\n"
    "       mpncov gradcheck NET.yaml|NAME|EXPERIMENT.yaml [--input CxHxW] [--batch N]\n"
    "       (either form) [--device cpu|cuda] [--max-elements N] [--tolerance T] [--seed S]\n"
    "\n"
    "Checks each layer's analytic gradients (input and parameter) against central finite differences,\n"
    "in float64 on the CPU, and prints per tensor: elements, elements checked, the largest absolute and\n"
    "relative error, and the points skipped near a kink. An element passes when\n"
    "|analytic - numeric| <= T * max(|analytic|, |numeric|, 1).\n"
    "\n"
    "  --layer TYPE        check one layer type ('all' = --all-layers); without --set/--input it runs the\n"
    "                      type's built-in configurations, with them one configuration\n"
    "  --set KEY=VALUE     a layer key (YAML value), e.g. --set kernel_size=3 --set stride=[2,1]\n"
    "  --input NxCxHxW     the shape of input 0 (default: the type's example); other inputs of the same\n"
    "                      shape follow it, labels take its batch size\n"
    "  --eval              evaluation mode (batchnorm's running statistics, dropout off)\n"
    "  --all-layers        every registered layer type in its built-in configurations\n"
    "  NET                 every layer of a net (a zoo name, a net file or an experiment's model), each\n"
    "                      with random inputs of the shapes it sees in the net for a (N, C, H, W) input;\n"
    "                      one row per layer. --input CxHxW (default: the net's channels and a quarter of\n"
    "                      its height and width, at least 64), --batch N (default 2); tensors are sampled\n"
    "                      (--max-elements, default 16 for nets)\n"
    "  --device cuda[:N]   run each layer on the GPU in float32 and compare its outputs and gradients\n"
    "                      with the CPU float64 reference (tolerance relative to each tensor's largest\n"
    "                      value, default 2e-3); exits 2 when no GPU is present\n"
    "  --max-elements N    check a random sample of N elements per tensor (default: all of them)\n"
    "  --tolerance T       relative tolerance (default 1e-5 for gradients, 2e-3 for --device cuda)\n"
    "  --seed S            seed of the inputs, parameters and sampled elements (default 1)\n"
    "\n"
    "A check whose gradients are all 0 at the input (e.g. 1x1 spatial size before a covariance pooling) is\n"
    "marked 'zero (no signal)' and warned about: it proves nothing, and is not counted as a failure.\n"
    "\n"
    "Exit status: 0 when every tensor passes, 1 when one fails, 2 for a usage error (an unknown option,\n"
    "layer type or net).\n";

struct Options {
  std::string layer;
  std::string net;
  int64_t batch = 2;
  bool all = false;
  std::vector<std::pair<std::string, std::string>> sets;
  bool has_input = false;
  Shape input;
  bool eval = false;
  bool has_device = false;
  Device device;
  GradCheckOptions check;
  bool has_tolerance = false;
};

Options parse(const std::vector<std::string>& args) {
  Options o;
  auto value = [&](size_t& i) -> const std::string& {
    if (i + 1 >= args.size()) throw UsageError{str(args[i], " needs a value")};
    return args[++i];
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--layer") {
      o.layer = value(i);
    } else if (a == "--all-layers") {
      o.all = true;
    } else if (a == "--set") {
      const std::string& kv = value(i);
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw UsageError{str("--set '", kv, "': expected KEY=VALUE")};
      o.sets.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (a == "--input") {
      o.input = Shape(parse_dims(value(i), 0, "input"));
      o.has_input = true;
    } else if (a == "--batch") {
      const std::string& v = value(i);
      char* end = nullptr;
      o.batch = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || o.batch < 1) throw UsageError{str("--batch '", v, "': expected a positive integer")};
    } else if (a == "--eval") {
      o.eval = true;
    } else if (a == "--device") {
      const std::string& d = value(i);
      try {
        o.device = Device::parse(d);
      } catch (const Error& e) {
        throw UsageError{e.what()};
      }
      o.has_device = true;
    } else if (a == "--max-elements" || a == "--tolerance" || a == "--seed") {
      const std::string& v = value(i);
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(x > 0)) throw UsageError{str(a, " '", v, "': expected a positive number")};
      if (a == "--max-elements") o.check.max_elements = static_cast<int64_t>(x);
      else if (a == "--seed") o.check.seed = static_cast<uint64_t>(x);
      else {
        o.check.tolerance = x;
        o.has_tolerance = true;
      }
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError{str("unknown option '", a, "'")};
    } else {
      if (!o.net.empty()) throw UsageError{str("one net at a time, got '", o.net, "' and '", a, "'")};
      o.net = a;
    }
  }
  if (!o.net.empty()) {
    if (!o.layer.empty() || o.all || !o.sets.empty())
      throw UsageError{"a net goes without --layer, --all-layers and --set"};
    if (o.has_input && o.input.ndim() != 3) throw UsageError{"with a net, --input is CxHxW (the batch is --batch)"};
    if (o.check.max_elements == 0) o.check.max_elements = 16;
    return o;
  }
  if (o.layer == "all") {
    o.all = true;
    o.layer.clear();
  }
  if (o.all == !o.layer.empty()) throw UsageError{"give exactly one of --layer TYPE and --all-layers"};
  if (o.all && (!o.sets.empty() || o.has_input))
    throw UsageError{"--set and --input go with --layer TYPE, not --all-layers"};
  return o;
}

// The cases to run: the type's built-in ones, or one built from the first with --set/--input applied.
std::vector<LayerCase> cases_of(const Options& o) {
  if (o.all) return all_layer_cases();
  std::vector<LayerCase> cases = layer_cases(o.layer);
  if (o.sets.empty() && !o.has_input) {
    if (o.eval)
      for (LayerCase& c : cases) c.training = false;
    return cases;
  }
  LayerCase c = cases.front();
  c.training = !o.eval;
  if (!o.sets.empty()) {
    YAML::Node node = YAML::Load(c.yaml);
    for (const auto& [key, text] : o.sets) {
      try {
        node[key] = YAML::Load(text);
      } catch (const YAML::Exception& e) {
        throw UsageError{str("--set ", key, "=", text, ": the value is not valid YAML")};
      }
    }
    YAML::Emitter out;
    out << YAML::Flow << node;
    c.yaml = out.c_str();
  }
  if (o.has_input) {
    const Shape old0 = c.inputs.at(0);
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      const bool label = std::find(c.label_inputs.begin(), c.label_inputs.end(), static_cast<int>(i)) !=
                         c.label_inputs.end();
      if (label) c.inputs[i] = Shape{o.input[0]};
      else if (i == 0 || c.inputs[i] == old0) c.inputs[i] = o.input;
    }
  }
  return {c};
}

}  // namespace

// A warning for checks that saw only zero gradients (their errors of 0 prove nothing).
void warn_degenerate(const std::string& what) {
  std::fprintf(stderr,
               "warning: %s: every checked gradient is 0 at this input, so the check proves nothing there (a degenerate "
               "input, e.g. a 1x1 spatial size before a covariance pooling); give a larger --input\n",
               what.c_str());
}

int run_net(const Options& o) {
  NetSpec spec;
  try {  // an unknown net or a bad file is a usage mistake: exit 2
    spec = load_net_or_experiment(o.net);
  } catch (const Error& e) {
    throw UsageError{e.what()};
  }
  std::vector<int64_t> chw = spec.input_shape;
  if (o.has_input) {
    chw = o.input.dims();
  } else {
    for (size_t i = 1; i < 3; ++i) chw[i] = std::max<int64_t>(64, (chw[i] + 3) / 4);
  }
  const Shape input({o.batch, chw[0], chw[1], chw[2]});
  std::printf("== %s: %d layers, input %s, %s\n", spec.name.c_str(), static_cast<int>(spec.layers.size()),
              input.str().c_str(), o.has_device && o.device.is_cuda() ? ("float32 on " + o.device.str() + " against float64 on the CPU").c_str()
                                                                        : "float64 on the CPU");
  std::fflush(stdout);
  GradCheckOptions check = o.check;
  check.training = !o.eval;
  const std::vector<NetGradCheckRow> rows =
      o.has_device && o.device.is_cuda()
          ? compare_net_on_device(spec, input, o.device, o.has_tolerance ? o.check.tolerance : 2e-3, o.check.seed)
          : gradcheck_net(spec, input, check);
  std::printf("%s", net_gradcheck_table(rows).c_str());
  int failed = 0, degenerate = 0;
  for (const NetGradCheckRow& r : rows) {
    failed += r.report.pass() ? 0 : 1;
    if (r.report.pass() && r.report.degenerate()) {
      ++degenerate;
      warn_degenerate(str("layer ", r.layer, " (", r.type, ")"));
    }
  }
  std::printf("%zu layers checked, %d failed%s\n", rows.size(), failed,
              degenerate ? str(", ", degenerate, " with only zero gradients (not checked: see the warning)").c_str() : "");
  return failed || rows.empty() ? 1 : 0;  // a net with nothing to check fails too
}

// Runs the checks and prints a table per case; the library entry point of the command (tests call it).
int run_gradcheck(const std::vector<std::string>& args) {
  const Options o = parse(args);
  if (o.has_device && o.device.is_cuda()) {
    if (!cuda_built() || cuda_device_count() == 0) {
      std::fprintf(stderr, "mpncov gradcheck: --device %s: %s\n", o.device.str().c_str(),
                   cuda_built() ? "no CUDA device is present" : "this build has no CUDA backend");
      return 2;
    }
  }
  if (!o.net.empty()) return run_net(o);
  std::vector<LayerCase> cases;
  try {  // an unknown layer type is a usage mistake: exit 2
    cases = cases_of(o);
  } catch (const Error& e) {
    throw UsageError{e.what()};
  }
  for (const LayerCase& c : cases) {  // a bad key or value is a configuration error: exit 2
    try {
      make_case_layer(c);
    } catch (const Error& e) {
      throw UsageError{e.what()};
    }
  }
  int failed = 0;
  for (const LayerCase& c : cases) {
    std::printf("== %s\n", c.str().c_str());
    std::fflush(stdout);
    GradCheckReport report;
    if (o.has_device && o.device.is_cuda()) {
      report = compare_case_on_device(c, o.device, o.has_tolerance ? o.check.tolerance : 2e-3, o.check.seed);
    } else {
      report = gradcheck_case(c, o.check);
    }
    std::printf("%s", report.table().c_str());
    if (!report.pass()) ++failed;
    else if (report.degenerate()) warn_degenerate(c.str());
  }
  std::printf("%zu configuration(s) checked, %d failed\n", cases.size(), failed);
  return failed ? 1 : 0;
}

MPNCOV_COMMAND(Command{"gradcheck", "check layers' gradients against finite differences (or GPU against CPU)",
                       kUsage, run_gradcheck,
                       {"layer", "set", "input", "batch", "device", "max-elements", "tolerance", "seed"},
                       {"eval", "all-layers"}});

}  // namespace mpncov::tools
