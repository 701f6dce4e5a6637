// Checkpoints: everything a run needs to continue bit for bit, in one safetensors file written
// atomically (a crash during the write leaves the previous file intact). The file doubles as a weights
// file: the net's tensors keep their own names, so `--weights last.safetensors` works anywhere; the
// optimiser's momentum buffers are stored as "@momentum/<parameter>", and the training state (epoch, batch,
// step, best accuracy, metrics history) as JSON in the metadata.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nets/net.h"
#include "optim/sgd.h"

namespace mpncov {

inline const char* kMomentumPrefix = "@momentum/";

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based, as printed
  double train_loss = 0, train_top1 = 0, train_top5 = 0;
  double val_loss = 0, val_top1 = 0, val_top5 = 0;  // NaN when there is no validation
  double lr = 0;      // the features group's rate during the epoch
  double seconds = 0;
  double images_per_second = 0;
};

struct TrainingState {
  int64_t epoch = 0;   // the epoch to run next (0-based): epochs completed, or the one interrupted
  int64_t batch = 0;   // the next batch within that epoch (non-zero after an interruption)
  int64_t step = 0;    // optimiser steps so far (keys dropout's random streams)
  double best_top1 = -1;
  std::vector<EpochMetrics> history;
  std::vector<std::string> classes;
  // Running sums of the interrupted epoch's training metrics, so its line is the same after a resume.
  double partial_loss = 0, partial_top1 = 0, partial_top5 = 0;
  int64_t partial_images = 0;
  int64_t world_size = 1;  // processes of the data-parallel run that saved it (its data order depends on it)
  int64_t batch_size = 0;  // its data.batch (the batches depend on it too); 0: not recorded (older checkpoints)
  std::string precision;  // its solver.precision ("float32", "bfloat16", "tf32"); "": not recorded (older ones)
};

void save_checkpoint(const std::string& path, Net& net, const SGD* sgd, const TrainingState& state,
                     const std::string& experiment);
// Loads the net's tensors (strict), the optimiser's buffers when sgd is given, and the state.
TrainingState load_checkpoint(const std::string& path, Net& net, SGD* sgd);
// Checks that path is a checkpoint (a safetensors file with a training state) without loading it; the
// error names the file and what is wrong.
void check_checkpoint_file(const std::string& path);
// The training state from the checkpoint metadata's JSON (errors name path); with sgd, also the
// optimiser's group rates and step count (its momentum buffers are tensors, not metadata).
TrainingState parse_training_state(const std::string& json, const std::string& path, SgdState* sgd = nullptr);

// What a weights or checkpoint file is, for the commands that load one: "runs/x/best.safetensors
// (checkpoint after epoch 3 of training, val top-1 66.67%)", or "... (weights file)".
std::string describe_weights_file(const std::string& path);
// The class names a checkpoint was trained on (empty for a weights file).
std::vector<std::string> checkpoint_classes(const std::string& path);

}  // namespace mpncov
