#include "train/pipeline_config.h"

#include <cctype>
#include <string>

#include "data/presets.h"

namespace mpncov {

data::Pipeline make_pipeline(const DataConfig& d, bool train, int64_t crops) {
  std::string preset = d.preset;
  for (char& ch : preset) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (preset != "plain") {
    if (train) return data::preset(preset, data::Stage::Train);
    if (crops == 1) return data::preset(preset, data::Stage::Val);
  }
  // Multi-crop evaluation (and every stage of `plain`): the val resize, then the crops.
  data::Pipeline p;
  int size = 224;
  if (preset == "plain") {
    size = static_cast<int>(d.image_size);
    p.resize(size, size);
    if (train) return p.random_hflip();
    if (crops == 1) return p;
  } else if (preset.rfind("imagenet", 0) == 0) {
    p.resize(256);
  } else if (preset.rfind("cub", 0) == 0) {
    p.resize(448);
    size = 448;
  } else if (preset.rfind("aircraft", 0) == 0) {
    p.resize(512, 512);
    size = 448;
  } else {  // cars
    p.resize(448, 448);
    size = 448;
  }
  return crops == 10 ? p.ten_crop(size) : p.center_crop_with_flip(size);
}

}  // namespace mpncov
