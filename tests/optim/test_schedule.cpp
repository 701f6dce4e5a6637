// Every schedule against its formula, the seed's step and log semantics, warm-up, and bad YAML.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <string>
#include <vector>

#include "optim/schedule.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

double rel(double a, double b) { return std::abs(a - b) / std::abs(b); }

Schedule parse(const std::string& yaml, int64_t epochs) {
  Config c(YAML::Load(yaml), "exp.yaml", "solver schedule");
  return Schedule::from_config(c, epochs);
}

// The error message of parsing yaml, or "" when it parses.
std::string parse_error(const std::string& yaml, int64_t epochs = 10) {
  try {
    parse(yaml, epochs);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The seed's Learning_rate_generater + adjust_learning_rate: per-epoch factors applied multiplicatively.
std::vector<double> seed_rates(const std::string& method, const std::vector<double>& params, int64_t epochs,
                               double lr) {
  std::vector<double> factor(epochs, 1.0);
  if (method == "step") {
    for (double m : params)
      if (m < epochs) factor[static_cast<size_t>(m)] = 0.1;
  } else {
    std::vector<double> rates(epochs);
    for (int64_t e = 0; e < epochs; ++e)
      rates[e] = std::pow(10.0, params[0] + (params[1] - params[0]) * e / static_cast<double>(epochs - 1));
    for (int64_t e = 1; e < epochs; ++e) factor[e] = rates[e] / rates[e - 1];
    lr = std::pow(10.0, params[0]);
  }
  std::vector<double> out;
  for (int64_t e = 0; e < epochs; ++e) out.push_back(lr *= factor[e]);
  return out;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("schedule: constant") {
  const Schedule s = Schedule::constant(5);
  for (int64_t e = 0; e < 5; ++e) CHECK(s.lr(0.3, {e, 0, 1}) == 0.3);
  CHECK(s.base_lr(0.3) == 0.3);
  CHECK_FALSE(s.per_iteration());
}

TEST_CASE("schedule: step is lr0 gamma^(number of milestones <= e) as in the seed's train.sh recipe") {
  const Schedule s = Schedule::step(65, {30, 45, 60});
  const std::vector<double> seed = seed_rates("step", {30, 45, 60}, 65, 0.1);
  for (int64_t e = 0; e < 65; ++e) {
    const int count = (e >= 30) + (e >= 45) + (e >= 60);
    const double expect = 0.1 * std::pow(0.1, count);
    CHECK(rel(s.lr(0.1, {e, 0, 1}), expect) < 1e-14);
    CHECK(rel(s.lr(0.1, {e, 0, 1}), seed[e]) < 1e-14);
    // Iterations within an epoch do not change it.
    CHECK(s.lr(0.1, {e, 7, 10}) == s.lr(0.1, {e, 0, 10}));
  }
  CHECK(s.lr(0.1, {29, 0, 1}) == 0.1);
  CHECK(rel(s.lr(0.1, {30, 0, 1}), 0.01) < 1e-15);
  CHECK(rel(s.lr(0.1, {64, 0, 1}), 1e-4) < 1e-15);
  // Other gammas, and a milestone at 0 applies from the first epoch.
  const Schedule g = Schedule::step(10, {0, 4}, 0.5);
  CHECK(g.lr(2.0, {0, 0, 1}) == 1.0);
  CHECK(g.lr(2.0, {3, 0, 1}) == 1.0);
  CHECK(g.lr(2.0, {4, 0, 1}) == 0.5);
  CHECK(g.describe().find("step at epochs 0, 4 by 0.5") != std::string::npos);
}

TEST_CASE("schedule: step milestones >= the epoch count are ignored as in the seed") {
  // finetune.sh: --lr-params 100 with 100 epochs is a constant rate.
  const Schedule constant = Schedule::step(100, {100});
  for (int64_t e = 0; e < 100; ++e) CHECK(constant.lr(1.2e-3, {e, 0, 1}) == 1.2e-3);
  CHECK(constant.describe().find("ignored") != std::string::npos);
  // finetune_mpncovvggd16.sh: 20, 40 with 40 epochs, so only 20 applies.
  const Schedule vgg = Schedule::step(40, {20, 40});
  const std::vector<double> seed = seed_rates("step", {20, 40}, 40, 3e-3);
  for (int64_t e = 0; e < 40; ++e) CHECK(rel(vgg.lr(3e-3, {e, 0, 1}), seed[e]) < 1e-14);
  CHECK(vgg.lr(3e-3, {39, 0, 1}) == doctest::Approx(3e-4).epsilon(1e-14));
}

TEST_CASE("schedule: log is 10^(a + (b - a) e / (E - 1)) and replaces the base lr") {
  const int64_t E = 20;
  const double a = -1.1, b = -5.0;
  const Schedule s = Schedule::log(E, a, b);
  const double base = s.base_lr(0.1);  // the configured 0.1 is replaced, as the seed sets args.lr = 10^a
  CHECK(rel(base, std::pow(10.0, a)) < 1e-15);
  const std::vector<double> seed = seed_rates("log", {a, b}, E, 0.1);
  for (int64_t e = 0; e < E; ++e) {
    const double expect = std::pow(10.0, a + (b - a) * e / static_cast<double>(E - 1));
    CHECK(rel(s.lr(base, {e, 0, 1}), expect) < 1e-13);
    CHECK(rel(s.lr(base, {e, 0, 1}), seed[e]) < 1e-13);
    // A group with a multiplier (the classifier's factor) keeps it throughout.
    CHECK(rel(s.lr(5 * base, {e, 0, 1}), 5 * expect) < 1e-13);
  }
  CHECK(rel(s.lr(base, {E - 1, 0, 1}), 1e-5) < 1e-13);
  // A one-epoch run stays at 10^a.
  CHECK(rel(Schedule::log(1, a, b).lr(base, {0, 0, 1}), std::pow(10.0, a)) < 1e-15);
}

TEST_CASE("schedule: exponential is gamma^t per epoch or per iteration") {
  const Schedule s = Schedule::exponential(30, 0.95);
  for (int64_t e = 0; e < 30; ++e) {
    CHECK(rel(s.lr(0.2, {e, 0, 1}), 0.2 * std::pow(0.95, e)) < 1e-14);
    CHECK(s.lr(0.2, {e, 3, 4}) == s.lr(0.2, {e, 0, 4}));
  }
  const Schedule it = s.per(Schedule::Per::Iteration);
  CHECK(it.per_iteration());
  CHECK(rel(it.lr(0.2, {2, 3, 4}), 0.2 * std::pow(0.95, 2.75)) < 1e-14);
}

TEST_CASE("schedule: cosine to a minimum factor or an absolute minimum lr") {
  const int64_t E = 12;
  const double pi = std::acos(-1.0);
  const Schedule s = Schedule::cosine(E);
  const Schedule f = Schedule::cosine(E, 0.1);
  const Schedule m = Schedule::cosine(E, 0, 1e-4);
  for (int64_t e = 0; e < E; ++e) {
    const double c = 0.5 * (1 + std::cos(pi * e / E));
    CHECK(std::abs(s.lr(0.1, {e, 0, 1}) - 0.1 * c) < 1e-16);
    CHECK(std::abs(f.lr(0.1, {e, 0, 1}) - (0.01 + 0.09 * c)) < 1e-16);
    CHECK(std::abs(m.lr(0.1, {e, 0, 1}) - (1e-4 + (0.1 - 1e-4) * c)) < 1e-16);
  }
  CHECK(s.lr(0.1, {0, 0, 1}) == 0.1);
  CHECK(std::abs(s.lr(0.1, {6, 0, 1}) - 0.05) < 1e-16);
  const Schedule it = s.per(Schedule::Per::Iteration);
  CHECK(std::abs(it.lr(0.1, {3, 1, 2}) - 0.1 * 0.5 * (1 + std::cos(pi * 3.5 / E))) < 1e-16);
}

TEST_CASE("schedule: linear warm-up wraps any schedule in epochs or iterations") {
  Schedule::Warmup w;
  w.length = 5;
  w.start_factor = 0.1;
  const Schedule s = Schedule::step(65, {3, 30}).with_warmup(w);
  // The inner schedule sees absolute time: its milestone at 3 applies during the warm-up.
  const double expect[] = {0.1 * 0.1, 0.1 * 0.28, 0.1 * 0.46, 0.01 * 0.64, 0.01 * 0.82, 0.01, 0.01};
  for (int64_t e = 0; e < 7; ++e) CHECK(rel(s.lr(0.1, {e, 0, 1}), expect[e]) < 1e-14);
  CHECK_FALSE(s.per_iteration());
  // Per iteration, the ramp is continuous.
  const Schedule smooth = Schedule::cosine(10).with_warmup(w).per(Schedule::Per::Iteration);
  const double pi = std::acos(-1.0);
  CHECK(rel(smooth.lr(1.0, {1, 1, 4}), (0.1 + 0.9 * 1.25 / 5) * 0.5 * (1 + std::cos(pi * 1.25 / 10))) < 1e-14);
  // Warm-up counted in iterations ramps every iteration even when the schedule steps per epoch.
  Schedule::Warmup wi;
  wi.length = 100;
  wi.in_iterations = true;
  wi.start_factor = 0;
  const Schedule iters = Schedule::constant(10).with_warmup(wi);
  CHECK(iters.per_iteration());
  CHECK(iters.lr(0.5, {0, 0, 30}) == 0.0);
  CHECK(rel(iters.lr(0.5, {1, 10, 30}), 0.5 * 0.4) < 1e-15);
  CHECK(iters.lr(0.5, {3, 10, 30}) == 0.5);
  CHECK(iters.describe().find("warm-up over 100 iterations") != std::string::npos);
}

TEST_CASE("schedule: from YAML") {
  const Schedule s = parse(
      "{type: step, milestones: [30, 45, 60], gamma: 0.1, warmup: {epochs: 5, start_factor: 0.1}, per: epoch}", 65);
  Schedule::Warmup w;
  w.length = 5;
  const Schedule expect = Schedule::step(65, {30, 45, 60}).with_warmup(w);
  for (int64_t e = 0; e < 65; ++e) CHECK(s.lr(0.1, {e, 0, 1}) == expect.lr(0.1, {e, 0, 1}));
  CHECK(s.kind() == Schedule::Kind::Step);
  CHECK(s.describe() == expect.describe());

  CHECK(parse("{type: step, milestones: [2]}", 4).lr(1, {2, 0, 1}) == doctest::Approx(0.1));
  CHECK(parse("{type: constant}", 4).lr(0.7, {3, 0, 1}) == 0.7);
  const Schedule log = parse("{type: log, exponents: [-1.1, -5.0]}", 20);
  CHECK(rel(log.base_lr(0.1), std::pow(10.0, -1.1)) < 1e-15);
  CHECK(parse("{type: exponential, gamma: 0.5, per: iteration}", 4).lr(1, {1, 1, 2}) ==
        doctest::Approx(std::pow(0.5, 1.5)));
  CHECK(parse("{type: cosine, min_lr: 0.01}", 4).lr(1, {2, 0, 1}) == doctest::Approx(0.505));
  CHECK(parse("{type: cosine, min_factor: 0.5}", 4).lr(1, {2, 0, 1}) == doctest::Approx(0.75));
  CHECK(parse("{type: constant, warmup: {iterations: 10, start_factor: 0}}", 4).lr(1, {0, 5, 100}) ==
        doctest::Approx(0.5));
}

TEST_CASE("schedule: bad YAML gives errors naming file and line and key") {
  const std::string two_lines = "type: step\nmilestones: [30, 20]\n";
  const std::string e1 = parse_error(two_lines);
  CHECK(e1.find("exp.yaml:2") != std::string::npos);
  CHECK(e1.find("'milestones' must increase") != std::string::npos);

  CHECK(parse_error("{type: stpe, milestones: [1]}").find("did you mean 'step'") != std::string::npos);
  CHECK(parse_error("{type: linear}").find("unknown schedule 'linear'") != std::string::npos);
  CHECK(parse_error("{milestones: [1]}").find("'type' is required") != std::string::npos);
  CHECK(parse_error("{type: step}").find("'milestones' is required") != std::string::npos);
  CHECK(parse_error("{type: step, milestones: 30}").find("expected a list") != std::string::npos);
  CHECK(parse_error("{type: step, milestones: [-1]}").find("must not be negative") != std::string::npos);
  CHECK(parse_error("{type: step, milestones: [3], gamma: 0}").find("'gamma' must be positive") != std::string::npos);
  CHECK(parse_error("{type: step, milestones: [3], gama: 0.5}").find("did you mean 'gamma'") != std::string::npos);
  CHECK(parse_error("{type: log, exponents: [-1, -5], gamma: 0.1}").find("does not apply to a 'log' schedule") !=
        std::string::npos);
  CHECK(parse_error("{type: log, exponents: [-1]}").find("needs two numbers") != std::string::npos);
  CHECK(parse_error("{type: exponential}").find("'gamma' is required") != std::string::npos);
  CHECK(parse_error("{type: cosine, min_lr: 0.1, min_factor: 0.1}").find("exclude each other") != std::string::npos);
  CHECK(parse_error("{type: cosine, min_factor: 2}").find("must lie in [0, 1]") != std::string::npos);
  CHECK(parse_error("{type: constant, per: batch}").find("must be 'epoch' or 'iteration'") != std::string::npos);
  CHECK(parse_error("{type: constant, warmup: {epochs: 2, iterations: 5}}").find("exclude each other") !=
        std::string::npos);
  CHECK(parse_error("{type: constant, warmup: {start_factor: 0.5}}").find("'epochs' or iterations is required") !=
        std::string::npos);
  CHECK(parse_error("{type: constant, warmup: {epochs: 0}}").find("must be positive") != std::string::npos);
  CHECK(parse_error("{type: constant, warmup: {epochs: 1, start_facter: 0.5}}").find("did you mean 'start_factor'") !=
        std::string::npos);
  CHECK(parse_error("{type: constant, warmup: {epochs: 1, start_factor: 1.5}}").find("must lie in [0, 1]") !=
        std::string::npos);
  const std::string nested = parse_error("type: constant\nwarmup:\n  epochs: 2\n  start_factr: 0.5\n");
  CHECK(nested.find("exp.yaml:4") != std::string::npos);
  CHECK(nested.find("warmup") != std::string::npos);
  CHECK(parse_error("{type: constant}", 0).find("at least one epoch") != std::string::npos);
  CHECK(parse_error("{type: step, milestones: [1, 2]}") == "");
}

}  // TEST_SUITE
