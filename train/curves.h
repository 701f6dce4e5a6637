// The run folder's record of training: metrics.csv (one row per epoch) and curves.svg (objective, top-1
// error and top-5 error over epochs, train and val), both rewritten from the whole history each epoch so
// they stay continuous across resumes.
#pragma once
#include <string>
#include <vector>

#include "train/checkpoint.h"

namespace mpncov {

std::string metrics_csv(const std::vector<EpochMetrics>& history);
std::string curves_svg(const std::vector<EpochMetrics>& history, const std::string& title);

}  // namespace mpncov
