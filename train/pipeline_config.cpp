#include "train/pipeline_config.h"

#include "data/presets.h"

namespace mpncov {

data::Pipeline make_pipeline(const DataConfig& d, bool train, int64_t crops) {
  const int size = static_cast<int>(d.image_size);
  if (train) return d.train_transform ? *d.train_transform : data::preset(d.preset, data::Stage::Train, size);
  const data::Pipeline val = d.val_transform ? *d.val_transform : data::preset(d.preset, data::Stage::Val, size);
  if (crops == 1) return val;
  return data::multi_crop_evaluation(val, static_cast<int>(crops));
}

}  // namespace mpncov
