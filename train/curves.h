// The run folder's record of training: metrics.csv (one row per epoch) and curves.svg (objective, top-1
// error and top-5 error over epochs, train and val), both rewritten from the whole history each epoch so
// they stay continuous across resumes.
#pragma once
#include <string>
#include <vector>

#include "train/checkpoint.h"

namespace mpncov {

std::string metrics_csv(const std::vector<EpochMetrics>& history);
// A value axis as a plotting library draws it: ticks at multiples of a 1-2-5 step (1, 2, 5, 10, 20, ...)
// that cover [lo, hi] in at most max_ticks intervals, and no tick below zero when no value is negative.
struct Axis {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> ticks() const;
};
Axis nice_axis(double lo, double hi, int max_ticks = 5);

std::string curves_svg(const std::vector<EpochMetrics>& history, const std::string& title);

}  // namespace mpncov
