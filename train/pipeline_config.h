// The data pipelines of an experiment's data section: training, validation and multi-crop evaluation.
#pragma once
#include <cstdint>

#include "data/pipeline.h"
#include "train/experiment.h"

namespace mpncov {

// The data pipeline of a preset (imagenet, cub, aircraft, cars, or plain with image_size) for training,
// validation (crops = 1) or multi-crop evaluation (crops = 2: centre + flip, 10: ten-crop).
data::Pipeline make_pipeline(const DataConfig& data, bool train, int64_t crops);

}  // namespace mpncov
