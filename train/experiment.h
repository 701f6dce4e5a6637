// An experiment file: model, data, solver and run settings, every key with a documented default
// (docs/experiments.md). `--set section.key=value` overrides any key before it is read; the resolved
// configuration is kept in the run folder and shown by --print-config.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/pipeline.h"
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
  // data.train_transform / data.val_transform (data/transform_list.h); load_experiment fills in the
  // preset's list for an absent one, a bare DataConfig leaves them to make_pipeline.
  std::optional<data::Pipeline> train_transform, val_transform;
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
  double dist_timeout = 1800;      // data-parallel runs: seconds a collective may wait for a stuck process (0: forever)
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
// The resolved configuration as YAML text: the file with the overrides, every default filled in and
// model.classes resolved from data.train; itself a valid experiment that repeats the run.
std::string resolved_config(const Experiment& e);
// Checks everything a run needs that can be checked before anything is written: the data preset, the
// folders and files named (data.train, data.val, model.weights, run.resume), the device (present), and
// the model (net, representation, freeze count). Errors name the file, line (or --set) and key.
// resuming: the run continues a checkpoint (--resume), which holds every weight: model.weights is not
// read then and need not be there (nor is it with run.resume).
void check_experiment(const Experiment& e, bool resuming = false);
// The class folders of an image folder root (0 when it does not exist).
int64_t count_class_folders(const std::string& root);
// Every key of an experiment as "section.key" (to point `--epochs` to `--set solver.epochs=...`).
std::vector<std::string> experiment_keys();

}  // namespace mpncov
