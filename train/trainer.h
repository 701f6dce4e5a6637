// The training loop of `mpncov train`: the seed's main.py done properly. Builds the model, data loaders
// and optimiser from an experiment; trains and validates epoch by epoch; keeps last/best checkpoints,
// metrics.csv, iterations.csv, curves.svg, the resolved config, the classes and the net graph in the run
// folder; stops cleanly on SIGINT/SIGTERM with a checkpoint; refuses to go on when the loss or a gradient
// stops being finite, naming the first layer where it happened.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "data/loader.h"
#include "layers/layer.h"
#include "nets/net.h"
#include "train/experiment.h"
#include "train/pipeline_config.h"

namespace mpncov {

struct TrainOptions {
  bool resume = false;       // continue from resume_path, or the run folder's last checkpoint
  std::string resume_path;
  bool quiet = false;        // no progress lines on the terminal (log lines still go to the log file)
  bool force = false;        // start afresh in a run folder that holds a run (else that is an error)
  int64_t stop_after_steps = -1;  // for tests: stop as SIGINT would once this many steps are done
};

// Returns 0 when training finished, 130/143 when interrupted by SIGINT/SIGTERM (after saving a
// checkpoint); throws mpncov::Error for bad configuration or a failure.
int train(const Experiment& experiment, const TrainOptions& options);

struct EvalResult {
  double loss = 0, top1 = 0, top5 = 0;  // mean loss, accuracies in %
  int64_t images = 0;
};

// Evaluates a net (in eval mode) on every batch of the loader; multi-crop batches (B, crops, 3, H, W)
// average the logits over crops before the loss, as the seed does.
EvalResult evaluate(Net& net, data::Loader& loader, Device device, int64_t epoch,
                    const std::function<void(int64_t done, int64_t total)>& progress = {});

// The device an experiment's run.device names ("auto": the first CUDA device when present, else cpu).
Device resolve_device(const std::string& name);

}  // namespace mpncov
