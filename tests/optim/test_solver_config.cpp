// The `solver:` section: defaults, every key, the seed's classifier rules, and bad values.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <string>

#include "optim/solver_config.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

SolverConfig parse(const std::string& yaml) {
  Config c(YAML::Load(yaml), "exp.yaml", "solver");
  return SolverConfig::from_config(c);
}

std::string parse_error(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("solver config: defaults are the seed's main.py defaults with a constant rate") {
  const SolverConfig s = parse("{}");
  CHECK(s.lr == 0.1);
  CHECK(s.momentum == 0.9);
  CHECK(s.weight_decay == 1e-4);
  CHECK_FALSE(s.nesterov);
  CHECK(s.epochs == 100);
  CHECK(s.classifier_lr_mult == 1);
  CHECK_FALSE(s.classifier_weight_decay.has_value());
  CHECK(s.schedule.kind() == Schedule::Kind::Constant);
  CHECK(s.schedule.epochs() == 100);
}

TEST_CASE("solver config: the seed's recipes") {
  // two_stage_finetune.sh stage 1: vgg16 pretrained, wd 5e-4, classifier x1000 with no weight decay.
  const SolverConfig s = parse(
      "{lr: 1.0e-3, weight_decay: 5.0e-4, classifier_lr_mult: 1000, epochs: 100,"
      " schedule: {type: step, milestones: [100]}}");
  const GroupSettings g = s.group_settings(true, "vgg16");
  CHECK(g.lr == 1e-3);
  CHECK(g.classifier_lr_mult == 1000);
  CHECK(g.weight_decay == 5e-4);
  CHECK(g.classifier_weight_decay == 0.0);
  CHECK(s.group_settings(false, "vgg16").classifier_weight_decay == 5e-4);
  CHECK(s.group_settings(true, "resnet50").classifier_weight_decay == 5e-4);
  // An explicit value overrides the rule.
  CHECK(parse("{classifier_weight_decay: 1.0e-5}").group_settings(true, "vgg16").classifier_weight_decay == 1e-5);
  // The log schedule replaces the base rate.
  const SolverConfig log = parse("{epochs: 20, schedule: {type: log, exponents: [-1.1, -5.0]}}");
  CHECK(std::abs(log.group_settings(false, "resnet50").lr - std::pow(10.0, -1.1)) < 1e-16);
  CHECK(parse("{nesterov: true, momentum: 0.5}").nesterov);
}

TEST_CASE("solver config: bad values and keys") {
  CHECK(parse_error("{lr: 0}").find("'lr' must be positive") != std::string::npos);
  CHECK(parse_error("{momentum: 1}").find("[0, 1)") != std::string::npos);
  CHECK(parse_error("{weight_decay: -1}").find("must not be negative") != std::string::npos);
  CHECK(parse_error("{nesterov: true, momentum: 0}").find("needs momentum") != std::string::npos);
  CHECK(parse_error("{epochs: 0}").find("at least 1") != std::string::npos);
  CHECK(parse_error("{lr: fast}").find("expected a number") != std::string::npos);
  // Infinite values are not numbers to train with (an endless warm-up keeps the rate at start_factor).
  CHECK(parse_error("{lr: .inf}").find("'lr' must be positive and finite") != std::string::npos);
  CHECK(parse_error("{weight_decay: .inf}").find("'weight_decay' must not be negative (and finite)") != std::string::npos);
  CHECK(parse_error("{schedule: {type: cosine, warmup: {epochs: .inf}}}").find("'epochs' must be positive and finite") !=
        std::string::npos);
  CHECK(parse_error("{schedule: {type: exponential, gamma: .inf}}").find("'gamma' must be positive and finite") !=
        std::string::npos);
  CHECK(parse_error("{learning_rate: 0.1}").find("unknown key 'learning_rate'") != std::string::npos);
  CHECK(parse_error("{weight_decy: 0.1}").find("did you mean 'weight_decay'") != std::string::npos);
  const std::string nested = parse_error("lr: 0.1\nschedule:\n  type: step\n  milestones: [3]\n  gama: 0.5\n");
  CHECK(nested.find("exp.yaml:5") != std::string::npos);
  CHECK(nested.find("did you mean 'gamma'") != std::string::npos);
  // The schedule sees the section's epochs.
  CHECK(parse("{epochs: 40, schedule: {type: step, milestones: [20, 40]}}").schedule.describe().find(
            "milestones 40 >= 40 epochs ignored") != std::string::npos);
}

}  // TEST_SUITE
