// mpncov train: train a model as an experiment file says.
#include <algorithm>
#include <cstdio>

#include "core/dist/communicator.h"
#include "tools/args.h"
#include "tools/command.h"
#include "tools/precision_option.h"
#include "train/trainer.h"

namespace mpncov::tools {
namespace {

const std::vector<std::string> kOptions = {"set", "stop-after", "precision"};
const std::vector<std::string> kFlags = {"print-config", "quiet", "force", "resume"};  // --resume takes an optional value

int run_train(const std::vector<std::string>& argv) {
  // --resume takes an optional value: "--resume" alone continues the run folder's last checkpoint. The
  // argument after it is its value (a checkpoint file or a run folder, whatever its name) where another
  // positional is the experiment; alone, it is the experiment (mpncov train --resume EXPERIMENT.yaml).
  std::vector<std::string> rest;
  TrainOptions options;
  std::string after_resume;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--resume") {
      options.resume = true;
      if (i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0) after_resume = argv[i + 1];
    } else if (argv[i].rfind("--resume=", 0) == 0) {
      options.resume = true;
      options.resume_path = argv[i].substr(9);
    } else {
      rest.push_back(argv[i]);
    }
  }
  Args args(rest, kOptions, kFlags);
  std::vector<std::string> positional = args.positional();
  if (!after_resume.empty() && positional.size() == 2) {
    const auto at = std::find(positional.begin(), positional.end(), after_resume);
    if (at != positional.end()) {
      options.resume_path = after_resume;
      positional.erase(at);
    }
  }
  if (positional.size() != 1)
    throw UsageError{positional.empty() ? std::string("missing EXPERIMENT.yaml")
                                        : str("expected one EXPERIMENT.yaml, got ", positional.size(), " arguments")};
  const auto run = [&]() {
    // --precision is the last override, so it wins over a --set solver.precision (config.yaml records it).
    std::vector<std::string> overrides = args.all("set");
    if (args.has("precision"))
      overrides.push_back(str("solver.precision=", precision_name(precision_option(args, Precision::Float32))));
    const Experiment e = load_experiment(positional[0], overrides);
    check_experiment(e, options.resume);  // so --print-config shows only a configuration that can run
    if (args.flag("print-config")) {
      if (dist::world().rank() == 0) std::printf("%s", resolved_config(e).c_str());  // once, not per process
      return 0;
    }
    options.quiet = args.flag("quiet");
    options.force = args.flag("force");
    options.stop_after_steps = args.get_int("stop-after", -1);
    return train(e, options);
  };
  dist::Communicator& comm = dist::world();
  if (comm.size() == 1) return run();
  // Data-parallel: an error on one process ends all of them at once (they would wait for it forever).
  try {
    return run();
  } catch (const StoppedEverywhere& stop) {  // every process stopped at the same step
    std::fprintf(stderr, "mpncov train: rank %d: error: %s\n", comm.rank(), stop.what());
    return 1;
  } catch (const std::exception& error) {
    comm.abort(1, str("error: ", error.what(), " (stopping every process of the run)"));
  }
  return 1;  // not reached: abort ends the process
}

}  // namespace

MPNCOV_COMMAND(Command{
    "train", "train a model as an experiment file says",
    "usage: mpncov train EXPERIMENT.yaml [--set key=value]... [--resume [CHECKPOINT] | --force] [--print-config] [--quiet]\n"
    "                    [--stop-after N] [--precision P]\n\n"
    "Trains the experiment's model on its data (docs/experiments.md lists every key and default), writing\n"
    "the run folder (run.out): config.yaml, log.txt, metrics.csv, iterations.csv, curves.svg, net.dot,\n"
    "classes.txt, and the checkpoints last.safetensors and best.safetensors.\n\n"
    "  --set key=value   override any key, e.g. --set solver.lr=0.01 --set data.batch=64\n"
    "  --resume [FILE]   continue from FILE (a checkpoint, whatever its name, or a run folder: its\n"
    "                    last.safetensors), or from the run folder's last.safetensors; the run continues\n"
    "                    bit for bit (same batches, same random draws, same optimiser state)\n"
    "  --force           start afresh in a run folder that holds a run (its checkpoints, logs and metrics\n"
    "                    are removed first); without it train refuses, to keep a run from being overwritten\n"
    "  --print-config    check the whole configuration and print it resolved (valid YAML, an experiment\n"
    "                    itself, as the run folder's config.yaml is) and exit\n"
    "  --quiet           no progress on the terminal (the log file still gets everything)\n"
    "  --stop-after N    stop as Ctrl-C would once N steps are done (checkpoint, status 130)\n"
    "  --precision P     float32, bfloat16 or tf32: overrides solver.precision (bfloat16: mixed precision\n"
    "                    convolution and linear layers; checkpoints stay float32)\n\n"
    "Ctrl-C (SIGINT) or SIGTERM saves a checkpoint and exits (status 130 / 143); --resume continues.\n\n"
    "Data-parallel: mpirun -np N mpncov train EXPERIMENT.yaml (or srun) trains on N processes, each with\n"
    "data.batch images a step; rank 0 prints and writes the run folder (docs/distributed.md).\n",
    run_train, kOptions, kFlags});

}  // namespace mpncov::tools
