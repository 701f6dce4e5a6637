#include "optim/param_group.h"

namespace mpncov {

double seed_classifier_weight_decay(double weight_decay, bool pretrained, const std::string& arch) {
  return pretrained && arch.rfind("vgg", 0) == 0 ? 0.0 : weight_decay;
}

std::vector<ParamGroup> seed_groups(std::vector<NamedParameter> features, std::vector<NamedParameter> representation,
                                    std::vector<NamedParameter> classifier, const GroupSettings& s) {
  auto group = [&](const char* name, std::vector<NamedParameter> params, double lr, double wd) {
    ParamGroup g;
    g.name = name;
    g.params = std::move(params);
    g.base_lr = g.lr = lr;
    g.weight_decay = wd;
    g.momentum = s.momentum;
    g.nesterov = s.nesterov;
    return g;
  };
  std::vector<ParamGroup> groups;
  groups.push_back(group("features", std::move(features), s.lr, s.weight_decay));
  groups.push_back(group("representation", std::move(representation), s.lr, s.weight_decay));
  groups.push_back(group("classifier", std::move(classifier), s.lr * s.classifier_lr_mult, s.classifier_weight_decay));
  return groups;
}

}  // namespace mpncov
