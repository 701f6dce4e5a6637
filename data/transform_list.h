// Pipelines as YAML lists in torchvision's vocabulary (an experiment's data.train_transform and
// data.val_transform, and the presets): each item is a step name, or a one-key mapping from the step
// name to its arguments (torchvision's argument names) or to its first argument alone:
//   - random_resized_crop: {size: 224, scale: [0.08, 1.0]}
//   - random_horizontal_flip
//   - color_jitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4}
//   - normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
// Without a normalize step the output is ToTensor's (pixel / 255). docs/data.md lists every step.
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "data/pipeline.h"

namespace mpncov::data {

// owner names the list in errors ("data.train_transform"); errors carry file:line and, for an unknown step
// or argument, the nearest valid name.
Pipeline read_transform_list(const YAML::Node& list, const std::string& file, const std::string& owner);

// The pipeline as such a list, every argument spelled out; read_transform_list reads it back unchanged.
YAML::Node transform_list_yaml(const Pipeline& pipeline);

std::vector<std::string> transform_step_names();

}  // namespace mpncov::data
