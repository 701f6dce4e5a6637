// The data pipelines of an experiment's data section: training, validation and multi-crop evaluation.
#pragma once
#include <cstdint>

#include "data/pipeline.h"
#include "train/experiment.h"

namespace mpncov {

// Training (train), validation (crops = 1) or multi-crop evaluation (crops = 2: centre + flip, 10: ten-crop)
// pipeline: data.train_transform / data.val_transform, or the preset's lists (imagenet, cub, aircraft,
// cars, or plain with image_size) where they are absent. Multi-crop evaluation is the val pipeline with its
// final centre crop replaced by the crops (data::multi_crop_evaluation).
data::Pipeline make_pipeline(const DataConfig& data, bool train, int64_t crops);

}  // namespace mpncov
