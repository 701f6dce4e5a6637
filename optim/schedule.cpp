#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "core/text.h"

namespace mpncov {
namespace {

constexpr double kPi = 3.14159265358979323846;

const std::vector<std::string>& kind_names() {
  static const std::vector<std::string> names = {"constant", "step", "log", "exponential", "cosine"};
  return names;
}

// Keys that only some kinds read, so a misplaced one gets a precise error instead of "unknown key".
const std::map<std::string, std::vector<std::string>>& kind_keys() {
  static const std::map<std::string, std::vector<std::string>> keys = {
      {"milestones", {"step"}},      {"gamma", {"step", "exponential"}}, {"exponents", {"log"}},
      {"min_factor", {"cosine"}},    {"min_lr", {"cosine"}}};
  return keys;
}

}  // namespace

const char* schedule_kind_name(Schedule::Kind kind) { return kind_names()[static_cast<size_t>(kind)].c_str(); }

Schedule::Schedule(Kind kind, int64_t epochs) : kind_(kind), epochs_(epochs) {
  MPNCOV_CHECK(epochs >= 1, "schedule: the run needs at least one epoch, got ", epochs);
}

Schedule Schedule::constant(int64_t epochs) { return Schedule(Kind::Constant, epochs); }

Schedule Schedule::step(int64_t epochs, std::vector<int64_t> milestones, double gamma) {
  Schedule s(Kind::Step, epochs);
  MPNCOV_CHECK(gamma > 0, "step schedule: gamma must be positive, got ", gamma);
  for (size_t i = 0; i < milestones.size(); ++i) {
    MPNCOV_CHECK(milestones[i] >= 0, "step schedule: milestone ", milestones[i], " is negative");
    MPNCOV_CHECK(i == 0 || milestones[i] > milestones[i - 1], "step schedule: milestones must increase, got ",
                 milestones[i - 1], " then ", milestones[i]);
  }
  s.milestones_ = std::move(milestones);
  s.gamma_ = gamma;
  return s;
}

Schedule Schedule::log(int64_t epochs, double from_exponent, double to_exponent) {
  Schedule s(Kind::Log, epochs);
  MPNCOV_CHECK(std::isfinite(from_exponent) && std::isfinite(to_exponent), "log schedule: exponents must be finite");
  s.from_exponent_ = from_exponent;
  s.to_exponent_ = to_exponent;
  return s;
}

Schedule Schedule::exponential(int64_t epochs, double gamma) {
  Schedule s(Kind::Exponential, epochs);
  MPNCOV_CHECK(gamma > 0, "exponential schedule: gamma must be positive, got ", gamma);
  s.gamma_ = gamma;
  return s;
}

Schedule Schedule::cosine(int64_t epochs, double min_factor, double min_lr) {
  Schedule s(Kind::Cosine, epochs);
  MPNCOV_CHECK(min_factor >= 0 && min_factor <= 1, "cosine schedule: min_factor must lie in [0, 1], got ",
               min_factor);
  s.min_factor_ = min_factor;
  s.min_lr_ = min_lr;
  return s;
}

Schedule Schedule::with_warmup(Warmup warmup) const {
  MPNCOV_CHECK(warmup.length >= 0, "warm-up: length must not be negative, got ", warmup.length);
  MPNCOV_CHECK(warmup.start_factor >= 0 && warmup.start_factor <= 1,
               "warm-up: start_factor must lie in [0, 1], got ", warmup.start_factor);
  Schedule s = *this;
  s.warmup_ = warmup;
  return s;
}

Schedule Schedule::per(Per per) const {
  Schedule s = *this;
  s.per_ = per;
  return s;
}

double Schedule::base_lr(double configured_lr) const {
  return kind_ == Kind::Log ? std::pow(10.0, from_exponent_) : configured_lr;
}

bool Schedule::per_iteration() const {
  return per_ == Per::Iteration || (warmup_.length > 0 && warmup_.in_iterations);
}

double Schedule::time(const SchedulePoint& p) const {
  if (per_ == Per::Epoch) return static_cast<double>(p.epoch);
  return static_cast<double>(p.epoch) + static_cast<double>(p.iteration) / static_cast<double>(p.iterations_per_epoch);
}

double Schedule::inner_factor(double t) const {
  switch (kind_) {
    case Kind::Constant: return 1.0;
    case Kind::Step: {
      // Repeated multiplication, as the seed and PyTorch apply the factor at each milestone.
      double f = 1.0;
      for (int64_t m : milestones_)
        if (static_cast<double>(m) <= t) f *= gamma_;
      return f;
    }
    case Kind::Log: {
      // Relative to base_lr() = 10^a; a one-epoch run stays at 10^a.
      if (epochs_ == 1) return 1.0;
      return std::pow(10.0, (to_exponent_ - from_exponent_) * t / static_cast<double>(epochs_ - 1));
    }
    case Kind::Exponential: return std::pow(gamma_, t);
    case Kind::Cosine: return 0.5 * (1.0 + std::cos(kPi * t / static_cast<double>(epochs_)));
  }
  return 1.0;
}

double Schedule::warmup_factor(const SchedulePoint& p) const {
  if (warmup_.length <= 0) return 1.0;
  const double progress = warmup_.in_iterations
                              ? static_cast<double>(p.epoch * p.iterations_per_epoch + p.iteration)
                              : time(p);
  if (progress >= warmup_.length) return 1.0;
  return warmup_.start_factor + (1.0 - warmup_.start_factor) * progress / warmup_.length;
}

double Schedule::lr(double base_lr, const SchedulePoint& p) const {
  MPNCOV_CHECK(p.epoch >= 0 && p.iteration >= 0 && p.iterations_per_epoch >= 1,
               "schedule: bad position epoch ", p.epoch, ", iteration ", p.iteration, " of ", p.iterations_per_epoch);
  const double t = time(p);
  double rate;
  if (kind_ == Kind::Cosine) {
    const double floor = min_lr_ >= 0 ? min_lr_ : min_factor_ * base_lr;
    rate = floor + (base_lr - floor) * inner_factor(t);
  } else {
    rate = base_lr * inner_factor(t);
  }
  return rate * warmup_factor(p);
}

std::string Schedule::describe() const {
  std::ostringstream out;
  switch (kind_) {
    case Kind::Constant: out << "constant"; break;
    case Kind::Step: {
      std::vector<std::string> used, ignored;
      for (int64_t m : milestones_) (m < epochs_ ? used : ignored).push_back(std::to_string(m));
      if (used.empty()) out << "step with no milestone inside " << epochs_ << " epochs (constant)";
      else out << "step at epochs " << join(used, ", ") << " by " << gamma_;
      if (!ignored.empty()) out << " (milestones " << join(ignored, ", ") << " >= " << epochs_ << " epochs ignored)";
      break;
    }
    case Kind::Log:
      out << "log from 10^" << from_exponent_ << " to 10^" << to_exponent_ << " over " << epochs_
          << " epochs (replaces the configured lr)";
      break;
    case Kind::Exponential: out << "exponential by " << gamma_ << " per epoch"; break;
    case Kind::Cosine:
      out << "cosine over " << epochs_ << " epochs to ";
      if (min_lr_ >= 0) out << "lr " << min_lr_;
      else out << min_factor_ << " x base";
      break;
  }
  if (warmup_.length > 0)
    out << ", linear warm-up over " << warmup_.length << (warmup_.in_iterations ? " iterations" : " epochs")
        << " from " << warmup_.start_factor << " x";
  out << "; per " << (per_ == Per::Epoch ? "epoch" : "iteration");
  return out.str();
}

Schedule Schedule::from_config(Config& c, int64_t epochs) {
  MPNCOV_CHECK(epochs >= 1, "schedule: the run needs at least one epoch, got ", epochs);
  const std::string type = c.require<std::string>("type");
  const auto& names = kind_names();
  const auto it = std::find(names.begin(), names.end(), type);
  if (it == names.end())
    c.fail("type", str("names an unknown schedule '", type, "'", did_you_mean(type, names), " (one of ",
                       join(names, ", "), ")"));
  const Kind kind = static_cast<Kind>(it - names.begin());
  for (const auto& [key, kinds] : kind_keys())
    if (c.has(key) && std::find(kinds.begin(), kinds.end(), type) == kinds.end())
      c.fail(key, str("does not apply to a '", type, "' schedule (it belongs to ", join(kinds, ", "), ")"));

  // The checks the constructors repeat, made here so the error names the file, line and key.
  Schedule s = constant(epochs);
  switch (kind) {
    case Kind::Constant: break;
    case Kind::Step: {
      const auto milestones = c.require<std::vector<int64_t>>("milestones");
      for (size_t i = 0; i < milestones.size(); ++i) {
        // Plain ifs: check()'s message would be built (reading milestones[i - 1]) even when it passes.
        if (milestones[i] < 0) c.fail("milestones", str("must not be negative, got ", milestones[i]));
        if (i > 0 && milestones[i] <= milestones[i - 1])
          c.fail("milestones", str("must increase, got ", milestones[i - 1], " then ", milestones[i]));
      }
      const double gamma = c.get<double>("gamma", 0.1);
      c.check(gamma > 0 && std::isfinite(gamma), "gamma", str("must be positive and finite, got ", gamma));
      s = step(epochs, milestones, gamma);
      break;
    }
    case Kind::Log: {
      const auto exponents = c.require<std::vector<double>>("exponents");
      c.check(exponents.size() == 2, "exponents",
              str("needs two numbers [a, b] (lr from 10^a to 10^b), got ", exponents.size()));
      c.check(std::isfinite(exponents[0]) && std::isfinite(exponents[1]), "exponents", "must be finite");
      s = log(epochs, exponents[0], exponents[1]);
      break;
    }
    case Kind::Exponential: {
      const double gamma = c.require<double>("gamma");
      c.check(gamma > 0 && std::isfinite(gamma), "gamma", str("must be positive and finite, got ", gamma));
      s = exponential(epochs, gamma);
      break;
    }
    case Kind::Cosine: {
      c.check(!(c.has("min_factor") && c.has("min_lr")), "min_lr", "and min_factor exclude each other; give one");
      const double min_factor = c.get<double>("min_factor", 0.0);
      c.check(min_factor >= 0 && min_factor <= 1, "min_factor", str("must lie in [0, 1], got ", min_factor));
      const double min_lr = c.get<double>("min_lr", -1.0);
      if (c.has("min_lr"))
        c.check(min_lr >= 0 && std::isfinite(min_lr), "min_lr", str("must not be negative (and finite), got ", min_lr));
      s = cosine(epochs, min_factor, min_lr);
      break;
    }
  }

  const std::string per_name = c.get<std::string>("per", "epoch");
  if (per_name != "epoch" && per_name != "iteration")
    c.fail("per", str("must be 'epoch' or 'iteration', got '", per_name, "'",
                      did_you_mean(per_name, {"epoch", "iteration"})));
  s = s.per(per_name == "epoch" ? Per::Epoch : Per::Iteration);

  c.ignore("warmup");
  if (c.has("warmup")) {
    Config w(c.node()["warmup"], c.file(), c.owner() + " warmup");
    Warmup warmup;
    w.check(!(w.has("epochs") && w.has("iterations")), "iterations", "and epochs exclude each other; give one");
    w.check(w.has("epochs") || w.has("iterations"), "epochs", "or iterations is required");
    const std::string length_key = w.has("epochs") ? "epochs" : "iterations";
    warmup.in_iterations = length_key == "iterations";
    warmup.length = w.require<double>(length_key);
    // An infinite one would never end: the rate would stay at start_factor for the whole run.
    w.check(warmup.length > 0 && std::isfinite(warmup.length), length_key,
            str("must be positive and finite, got ", warmup.length));
    warmup.start_factor = w.get<double>("start_factor", 0.1);
    w.check(warmup.start_factor >= 0 && warmup.start_factor <= 1, "start_factor",
            str("must lie in [0, 1], got ", warmup.start_factor));
    w.ignore(warmup.in_iterations ? "epochs" : "iterations");
    w.finish();
    s = s.with_warmup(warmup);
  }
  c.finish();
  return s;
}

}  // namespace mpncov
