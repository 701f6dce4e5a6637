// The experiment's `solver:` section: SGD hyper-parameters, the run length and the schedule. Keys and
// defaults: docs/solver.md.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/config.h"
#include "core/precision.h"
#include "optim/param_group.h"
#include "optim/schedule.h"

namespace mpncov {

struct SolverConfig {
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  bool nesterov = false;
  int64_t epochs = 100;
  double classifier_lr_mult = 1;
  std::optional<double> classifier_weight_decay;  // absent or 'auto': the seed's rule (seed_classifier_weight_decay)
  double label_smoothing = 0;                     // of the softmax cross-entropy loss
  std::string scale_lr = "none";                  // none | linear: lr times the number of processes
  Precision precision = Precision::Float32;       // of the convolution and linear layers (core/precision.h)
  // Where precision came from, for the log: "" (the default), "FILE:LINE" or "FILE (--set)" (--set
  // solver.precision or train's --precision).
  std::string precision_from;
  Schedule schedule = Schedule::constant(100);

  // Reads the section (strict keys; errors name file, line and key).
  static SolverConfig from_config(Config& config);

  // The settings of the seed's three groups. pretrained: the net starts from loaded weights; arch: the
  // net's name, for the seed's classifier weight decay rule. The schedule's base rate replaces lr (log).
  GroupSettings group_settings(bool pretrained, const std::string& arch) const;
};

}  // namespace mpncov
