// The net a command builds from its NET.yaml | NAME | EXPERIMENT.yaml argument, with the input size to
// run it at. An experiment's model is the one `train` builds: its classes from data.train's class
// folders (when model.classes is unset and the folder exists) and its input the size its training
// transform makes (e.g. 448x448 for cub, image_size for plain).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nets/net_spec.h"
#include "train/experiment.h"

namespace mpncov::tools {

struct ModelSource {
  NetSpec spec;
  std::vector<int64_t> input;  // C, H, W
  std::optional<Experiment> experiment;
};

ModelSource load_model_source(const std::string& source, const std::vector<std::string>& overrides = {});

}  // namespace mpncov::tools
