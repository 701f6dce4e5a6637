// An experiment file: model, data, solver and run settings, every key with a documented default
// (docs/experiments.md). `--set section.key=value` overrides any key before it is read; the resolved
// configuration is kept in the run folder and shown by --print-config.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nets/model.h"
#include "optim/solver_config.h"

namespace mpncov {

struct DataConfig {
  std::string train, val;            // ImageFolder roots (val may be empty: no validation)
  std::string preset = "imagenet";   // imagenet | cub | aircraft | cars | plain
  int64_t image_size = 0;            // plain: images resized to image_size x image_size
  int64_t batch = 32;                // training batch
  int64_t val_batch = 0;             // 0: same as batch
  int workers = 4;
  int64_t eval_crops = 0;            // 0: no final multi-crop evaluation; else the preset's 2 or 10 crops
  bool strict = false;               // a bad image file stops the run instead of being skipped
  bool drop_last = false;
};

struct RunConfig {
  std::string device = "auto";     // auto (cuda when present, else cpu), cpu, cuda, cuda:N
  uint64_t seed = 1;
  std::string out;                 // run folder (default runs/<experiment file name>)
  int64_t print_every = 20;        // iterations between progress lines (and iterations.csv rows)
  bool keep_every_epoch = false;   // also keep epoch-N.safetensors checkpoints
  std::string resume;              // a checkpoint to continue from (e.g. the first stage of a fine-tune)
  int threads = 0;                 // CPU threads (0: all cores, shared among the processes on a machine)
  double bucket_mb = 25;           // data-parallel runs: size of the gradient all-reduce buckets, MiB
};

struct Experiment {
  std::string file;
  YAML::Node root;  // resolved: the file with the overrides applied
  ModelConfig model;
  DataConfig data;
  SolverConfig solver;  // optim/solver_config.h (its schedule included)
  RunConfig run;
};

// Applies "a.b.c=value" overrides (value parsed as YAML) to a parsed file.
void apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides);
Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides = {});
// The resolved configuration as YAML text, with every default filled in.
std::string resolved_config(const Experiment& e);

}  // namespace mpncov
