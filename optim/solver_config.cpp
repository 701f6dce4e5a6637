#include "optim/solver_config.h"

#include <cmath>

namespace mpncov {

SolverConfig SolverConfig::from_config(Config& c) {
  SolverConfig s;
  s.lr = c.get<double>("lr", s.lr);
  c.check(s.lr > 0 && std::isfinite(s.lr), "lr", str("must be positive and finite, got ", s.lr));
  s.momentum = c.get<double>("momentum", s.momentum);
  c.check(s.momentum >= 0 && s.momentum < 1, "momentum", str("must lie in [0, 1), got ", s.momentum));
  s.weight_decay = c.get<double>("weight_decay", s.weight_decay);
  c.check(s.weight_decay >= 0 && std::isfinite(s.weight_decay), "weight_decay",
          str("must not be negative (and finite), got ", s.weight_decay));
  s.nesterov = c.get<bool>("nesterov", s.nesterov);
  c.check(!s.nesterov || s.momentum > 0, "nesterov", "needs momentum > 0");
  s.epochs = c.get<int64_t>("epochs", s.epochs);
  c.check(s.epochs >= 1, "epochs", str("must be at least 1, got ", s.epochs));
  s.classifier_lr_mult = c.get<double>("classifier_lr_mult", s.classifier_lr_mult);
  c.check(s.classifier_lr_mult >= 0 && std::isfinite(s.classifier_lr_mult), "classifier_lr_mult",
          str("must not be negative (and finite), got ", s.classifier_lr_mult));
  if (c.has("classifier_weight_decay") && c.value("classifier_weight_decay").IsScalar() &&
      c.value("classifier_weight_decay").Scalar() == "auto") {
    c.ignore("classifier_weight_decay");
  } else if (c.has("classifier_weight_decay")) {
    s.classifier_weight_decay = c.require<double>("classifier_weight_decay");
    c.check(*s.classifier_weight_decay >= 0 && std::isfinite(*s.classifier_weight_decay), "classifier_weight_decay",
            str("must not be negative (and finite), got ", *s.classifier_weight_decay));
  } else {
    c.ignore("classifier_weight_decay");
  }
  s.label_smoothing = c.get<double>("label_smoothing", s.label_smoothing);
  c.check(s.label_smoothing >= 0 && s.label_smoothing < 1, "label_smoothing",
          str("must lie in [0, 1), got ", s.label_smoothing));
  s.scale_lr = c.get<std::string>("scale_lr", s.scale_lr);
  c.check(s.scale_lr == "none" || s.scale_lr == "linear", "scale_lr", str("must be none or linear, got '", s.scale_lr, "'"));
  if (c.has("precision")) {
    const std::string name = c.require<std::string>("precision");
    const std::optional<Precision> p = parse_precision(name);
    c.check(p.has_value(), "precision", str("must be ", kPrecisionChoices, ", got '", name, "'"));
    s.precision = *p;
    s.precision_from = c.where("precision");
  }
  c.ignore("schedule");
  if (c.has("schedule")) {
    Config schedule(c.node()["schedule"], c.file(), c.owner() + " schedule");
    s.schedule = Schedule::from_config(schedule, s.epochs);
  } else {
    s.schedule = Schedule::constant(s.epochs);
  }
  c.finish();
  return s;
}

GroupSettings SolverConfig::group_settings(bool pretrained, const std::string& arch) const {
  GroupSettings g;
  g.lr = schedule.base_lr(lr);
  g.momentum = momentum;
  g.weight_decay = weight_decay;
  g.nesterov = nesterov;
  g.classifier_lr_mult = classifier_lr_mult;
  g.classifier_weight_decay = classifier_weight_decay ? *classifier_weight_decay
                                                      : seed_classifier_weight_decay(weight_decay, pretrained, arch);
  return g;
}

}  // namespace mpncov
