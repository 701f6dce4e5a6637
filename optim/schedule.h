// Learning-rate schedules: the learning rate of a parameter group as a pure function of its base rate and
// the position in training (epoch, iteration within the epoch), so a resumed run recomputes exactly the
// rate it would have had. Keys, defaults and formulas: docs/solver.md.
//
//   constant     lr = base
//   step         lr = base * gamma^(number of milestones <= epoch)      (the seed's; milestones >= epochs never apply)
//   log          lr = 10^(a + (b - a) t / (E - 1))                       (the seed's; replaces the configured base)
//   exponential  lr = base * gamma^t
//   cosine       lr = min + (base - min) (1 + cos(pi t / E)) / 2
//   warm-up      any of them times start + (1 - start) min(1, progress / length), the inner schedule seeing
//                the same absolute time
//
// t is the epoch when stepping per epoch, epoch + iteration / iterations_per_epoch when per iteration.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace mpncov {

// Where training stands: epoch (0-based), iteration within it, and iterations per epoch.
struct SchedulePoint {
  int64_t epoch = 0;
  int64_t iteration = 0;
  int64_t iterations_per_epoch = 1;
};

class Schedule {
 public:
  enum class Kind { Constant, Step, Log, Exponential, Cosine };
  enum class Per { Epoch, Iteration };

  struct Warmup {
    double length = 0;           // 0: no warm-up
    bool in_iterations = false;  // length counts iterations, else epochs
    double start_factor = 0.1;   // the multiplier at the first step of the warm-up
  };

  // Builds from a `schedule:` mapping (strict keys, errors with file:line); epochs: the run's length E.
  static Schedule from_config(Config& config, int64_t epochs);

  static Schedule constant(int64_t epochs);
  static Schedule step(int64_t epochs, std::vector<int64_t> milestones, double gamma = 0.1);
  static Schedule log(int64_t epochs, double from_exponent, double to_exponent);
  static Schedule exponential(int64_t epochs, double gamma);
  // min_lr >= 0 is an absolute floor; otherwise the floor is min_factor * base.
  static Schedule cosine(int64_t epochs, double min_factor = 0, double min_lr = -1);
  Schedule with_warmup(Warmup warmup) const;
  Schedule per(Per per) const;

  // The base rate a group derives from the configured one: the log schedule replaces it by 10^a.
  double base_lr(double configured_lr) const;
  // The learning rate of a group whose base rate is base_lr, at point p.
  double lr(double base_lr, const SchedulePoint& p) const;
  // Whether the rate can change within an epoch (the training loop then updates it every iteration).
  bool per_iteration() const;

  Kind kind() const { return kind_; }
  int64_t epochs() const { return epochs_; }
  // One line for the run's start table, e.g. "step at epochs 30, 45, 60 by 0.1; per epoch".
  std::string describe() const;

 private:
  Schedule(Kind kind, int64_t epochs);
  double inner_factor(double t) const;  // the schedule without warm-up, relative to base (not cosine's min_lr)
  double warmup_factor(const SchedulePoint& p) const;
  double time(const SchedulePoint& p) const;

  Kind kind_;
  int64_t epochs_;
  Per per_ = Per::Epoch;
  std::vector<int64_t> milestones_;
  double gamma_ = 0.1;
  double from_exponent_ = 0, to_exponent_ = 0;
  double min_factor_ = 0, min_lr_ = -1;
  Warmup warmup_;
};

const char* schedule_kind_name(Schedule::Kind kind);

}  // namespace mpncov
