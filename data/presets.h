// The seed's four data presets (docs/seed.md §6), each with a train, val and
// evaluate (multi-crop) pipeline; all normalise with the ImageNet mean and std.
//   imagenet  train RandomResizedCrop(224) + flip | val Resize(256) CenterCrop(224) | eval Resize(256) TenCrop(224)
//   cub       train Resize(448) CenterCrop(448) + flip | val Resize(448) CenterCrop(448) | eval Resize(448) 2-crop(448)
//   aircraft  train Resize((512,512)) CenterCrop(448) + flip | val the same without flip | eval ... 2-crop(448)
//   cars      train Resize((448,448)) + flip | val Resize((448,448)) | eval Resize((448,448)) 2-crop(448)
#pragma once
#include <string>
#include <vector>

#include "data/pipeline.h"

namespace mpncov::data {

enum class Stage { Train, Val, Evaluate };
const char* stage_name(Stage stage);

// name: imagenet, cub, aircraft or cars, case-insensitive; like the seed's --benchmark, a name that starts
// with one of them (e.g. "CUB_200_2011") picks it. Throws listing the names otherwise.
Pipeline preset(const std::string& name, Stage stage);
std::vector<std::string> preset_names();

}  // namespace mpncov::data
