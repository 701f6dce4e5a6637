// Parameter groups: sets of parameters sharing a learning rate, weight decay and momentum, and the seed's
// three groups (features, representation, classifier). Which parameters fall in which part is the net's
// business; this file only assembles the groups from the three lists.
#pragma once
#include <string>
#include <vector>

#include "layers/layer.h"

namespace mpncov {

// A parameter with its full dotted name (e.g. "layer1.0.conv1.weight"), which keys its momentum buffer.
struct NamedParameter {
  std::string name;
  Parameter* param = nullptr;  // owned by a layer; must outlive the optimiser
};

struct ParamGroup {
  std::string name;
  std::vector<NamedParameter> params;
  double base_lr = 0;  // the rate before the schedule
  double lr = 0;       // the current rate (base_lr until a schedule sets it)
  double weight_decay = 0;
  double momentum = 0;
  bool nesterov = false;
};

// The solver settings the seed's groups depend on.
struct GroupSettings {
  double lr = 0.1;  // the base rate after the schedule's override (Schedule::base_lr)
  double momentum = 0.9;
  double weight_decay = 1e-4;
  bool nesterov = false;
  double classifier_lr_mult = 1;         // the seed's --classifier-factor
  double classifier_weight_decay = 1e-4;  // see seed_classifier_weight_decay
};

// The seed's rule (main.py): the classifier has no weight decay when fine-tuning a pretrained VGG, and the
// solver's weight decay otherwise.
double seed_classifier_weight_decay(double weight_decay, bool pretrained, const std::string& arch);

// The seed's groups in its order: features (lr, wd), representation (lr, wd; kept even when empty, so the
// group layout does not depend on the net), classifier (lr x classifier_lr_mult, classifier_weight_decay).
std::vector<ParamGroup> seed_groups(std::vector<NamedParameter> features, std::vector<NamedParameter> representation,
                                    std::vector<NamedParameter> classifier, const GroupSettings& settings);

}  // namespace mpncov
