// The data presets: named transform lists (data/transform_list.h) for the seed's four benchmarks
// (docs/seed.md §6, imagepreprocess.py) and `plain`, each with a train, val and evaluate (multi-crop)
// list; all normalise with the ImageNet mean and std.
//   imagenet  train RandomResizedCrop(224) + flip | val Resize(256) CenterCrop(224) | eval Resize(256) TenCrop(224)
//   cub       train Resize(448) CenterCrop(448) + flip | val Resize(448) CenterCrop(448) | eval Resize(448) 2-crop(448)
//   aircraft  train Resize((512,512)) CenterCrop(448) + flip | val the same without flip | eval ... 2-crop(448)
//   cars      train Resize((448,448)) + flip | val Resize((448,448)) | eval Resize((448,448)) 2-crop(448)
//   plain     train Resize((s,s)) + flip | val Resize((s,s)) | eval Resize((s,s)) 2-crop(s), s = image_size
#pragma once
#include <string>
#include <vector>

#include "data/pipeline.h"

namespace mpncov::data {

enum class Stage { Train, Val, Evaluate };
const char* stage_name(Stage stage);

// name: imagenet, cub, aircraft, cars or plain, case-insensitive; like the seed's --benchmark, a name that
// starts with one of them (e.g. "CUB_200_2011") picks it. Throws listing the names otherwise.
// image_size: plain's size (required there, unused by the others).
Pipeline preset(const std::string& name, Stage stage, int image_size = 0);
// The preset's list as YAML text (what preset() reads).
std::string preset_list_text(const std::string& name, Stage stage, int image_size = 0);
std::vector<std::string> preset_names();

// The multi-crop evaluation of a val pipeline: its steps without a final CenterCrop, then ten_crop (crops 10)
// or center_crop_with_flip (crops 2) at the val output size; the presets' evaluate lists are this.
Pipeline multi_crop_evaluation(const Pipeline& val, int crops);

}  // namespace mpncov::data
