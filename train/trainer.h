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

#include "core/dist/communicator.h"
#include "data/loader.h"
#include "layers/layer.h"
#include "nets/net.h"
#include "train/experiment.h"
#include "train/pipeline_config.h"

namespace mpncov {

struct TrainOptions {
  bool resume = false;       // continue from resume_path, or the run folder's last checkpoint
  std::string resume_path;   // a checkpoint file, or a run folder (its last.safetensors)
  bool quiet = false;        // no progress lines on the terminal (log lines still go to the log file)
  bool force = false;        // start afresh in a run folder that holds a run (else that is an error)
  int64_t stop_after_steps = -1;  // for tests: stop as SIGINT would once this many steps are done
};

// Returns 0 when training finished, 130/143 when interrupted by SIGINT/SIGTERM (after saving a
// checkpoint); throws mpncov::Error for bad configuration or a failure. Under an MPI launcher every
// process runs this as one data-parallel run (docs/distributed.md); rank 0 alone prints and writes.
int train(const Experiment& experiment, const TrainOptions& options);

struct EvalResult {
  double loss = 0, top1 = 0, top5 = 0;  // mean loss, accuracies in %
  int64_t images = 0;
};

// Evaluates a net (in eval mode) on every batch of the loader; multi-crop batches (B, crops, 3, H, W)
// average the logits over crops before the loss, as the seed does. With `shards` (a data-parallel run
// whose loaders hold unpadded shards, LoaderOptions::pad_shards = false) the result is over all of them.
EvalResult evaluate(Net& net, data::Loader& loader, Device device, int64_t epoch,
                    const std::function<void(int64_t done, int64_t total)>& progress = {},
                    dist::Communicator* shards = nullptr);

// The checkpoint a run continues from: --resume FILE (FOLDER/last.safetensors where it names a run folder),
// --resume's run.out/last.safetensors, or run.resume; "" for a fresh start.
std::string resume_checkpoint(const Experiment& experiment, const TrainOptions& options);

// The device an experiment's run.device names ("auto": the CUDA device local_rank % count when there
// are any, so each process of a data-parallel run on a machine gets its own; else cpu).
Device resolve_device(const std::string& name, int local_rank = 0);

// An error every process of a data-parallel run raised at the same step (a non-finite loss on any of
// them): every process reports what it saw and exits with an error status, without ending the others.
struct StoppedEverywhere : Error {
  using Error::Error;
};

}  // namespace mpncov
