// mpncov quickstart: makes a small texture dataset and trains an MPN-COV network on it.
#include <cstdio>
#include <filesystem>

#include "core/dist/communicator.h"
#include "data/synthetic.h"
#include "tools/args.h"
#include "tools/command.h"
#include "train/trainer.h"

namespace mpncov::tools {
namespace {

const std::vector<std::string> kOptions = {"out", "epochs", "representation", "set"};
const std::vector<std::string> kFlags = {"quiet", "force"};

int run_quickstart(const std::vector<std::string>& argv) {
  Args args(argv, kOptions, kFlags);
  if (!args.positional().empty()) throw UsageError{"quickstart takes no positional arguments"};
  const std::string out = args.get("out", "runs/quickstart");
  const std::string data = out + "/data";
  dist::Communicator& comm = dist::world();
  // Under a launcher (mpirun -np N mpncov quickstart) rank 0 alone writes the dataset and the others wait
  // for it: they would otherwise write the same files at once, or read a half-written folder.
  if (comm.rank() == 0 && !std::filesystem::exists(data + "/train")) {
    std::printf("making the dataset in %s ...\n", data.c_str());
    const int64_t n = data::write_synthetic_dataset(data);
    std::printf("%lld images: 4 classes of 64x64 colour textures that differ only in how their colours co-vary\n",
                static_cast<long long>(n));
  }
  if (comm.size() > 1) comm.barrier();
  const std::string file = std::string(MPNCOV_SOURCE_DIR) + "/experiments/quickstart.yaml";
  std::vector<std::string> overrides = {"data.train=" + data + "/train", "data.val=" + data + "/val", "run.out=" + out};
  if (args.has("epochs")) overrides.push_back("solver.epochs=" + args.get("epochs"));
  // Another type replaces the file's representation; its own type (mpncov, the default) keeps the file's
  // settings (reduce: 32, iterations: 5), so naming the default trains the default.
  const YAML::Node own = YAML::LoadFile(file)["model"]["representation"];
  const std::string own_type = own && own.IsMap() && own["type"] ? own["type"].as<std::string>() : "";
  if (args.has("representation") && args.get("representation") != own_type)
    overrides.push_back("model.representation={type: " + args.get("representation") + "}");
  for (const std::string& s : args.all("set")) overrides.push_back(s);
  const Experiment e = load_experiment(file, overrides);
  TrainOptions options;
  options.quiet = args.flag("quiet");
  options.force = args.flag("force");
  const int status = train(e, options);
  if (status == 0 && comm.rank() == 0) std::printf("quickstart done: see %s/metrics.csv and %s/curves.svg\n", out.c_str(), out.c_str());
  return status;
}

int run_quickstart_everywhere(const std::vector<std::string>& argv) {
  dist::Communicator& comm = dist::world();
  if (comm.size() == 1) return run_quickstart(argv);
  // Data-parallel: an error on one process ends all of them at once (they would wait for it), as in train.
  try {
    return run_quickstart(argv);
  } catch (const StoppedEverywhere& stop) {
    std::fprintf(stderr, "mpncov quickstart: rank %d: error: %s\n", comm.rank(), stop.what());
    return 1;
  } catch (const std::exception& error) {
    comm.abort(1, str("error: ", error.what(), " (stopping every process of the run)"));
  }
  return 1;  // not reached: abort ends the process
}

}  // namespace

MPNCOV_COMMAND(Command{"quickstart", "make a small dataset and train an MPN-COV network on it (CPU, minutes)",
                       "usage: mpncov quickstart [--out DIR] [--epochs N] [--representation mpncov|gavp|bcnn|cbp]\n"
                       "                         [--set key=value]... [--quiet] [--force]\n\n"
                       "Writes 500 64x64 JPEG textures in 4 classes that differ only in their colour covariance to\n"
                       "DIR/data (default runs/quickstart), then trains experiments/quickstart.yaml (small_cnn with\n"
                       "iSQRT-COV pooling) on them and reports validation accuracy each epoch. --representation gavp\n"
                       "trains the same net with average pooling instead, for comparison. A second quickstart into\n"
                       "the same DIR reuses the dataset; like train, it refuses to overwrite the run without --force.\n\n"
                       "  --out DIR          the folder of the dataset and the run (default runs/quickstart)\n"
                       "  --epochs N         training epochs (default: the experiment's)\n"
                       "  --representation R mpncov (default), gavp, bcnn or cbp\n"
                       "  --set key=value    override any experiment key\n"
                       "  --quiet            no progress on the terminal\n"
                       "  --force            start the run afresh when DIR already holds one\n",
                       run_quickstart_everywhere, kOptions, kFlags});

}  // namespace mpncov::tools
