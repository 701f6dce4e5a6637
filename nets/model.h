// The experiment's model: a net from the zoo (or any net file) with the representation, the classifier
// and the frozen prefix the experiment asks for, composed by the seed's rules (docs/nets.md):
//   - representation given: it replaces the net's own; `reduce: d` puts the seed's 1x1 convolution +
//     batch norm + ReLU to d channels (representation.conv_dr_block.0/1/2) in front of it;
//   - classifier: with pretrained weights and a new representation, one linear layer `fc`; otherwise the
//     net's own classifier with its last linear layer resized to the number of classes;
//   - freeze k: the first k top-level feature items get no gradient and no update.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "nets/net_spec.h"

namespace mpncov {

struct ModelConfig {
  std::string net;                // a zoo name ("resnet50") or a path to a net file
  YAML::Node representation;      // absent/null: the net's own; "none"; or {type: ..., reduce: d, ...}
  int64_t classes = 0;            // 0 keeps the net's
  std::string weights;            // pretrained weights ("" for none)
  int freeze = 0;
  std::string classifier = "auto";  // auto | keep | linear
  bool sync_bn = false;           // batch norm statistics over all processes of a data-parallel run
  std::string file;               // the experiment file, for error messages
  int line = 0;                   // the line of model.net in it (0: unknown)
};

// Reads an experiment's `model:` mapping (unknown keys are errors).
ModelConfig read_model_config(const YAML::Node& node, const std::string& file);
// A net file or an experiment file (one with a `model:` key) as the net to build.
NetSpec load_net_or_experiment(const std::string& path);

// The path of a zoo net by name, or the argument itself when it names a file.
std::string resolve_net_path(const std::string& name_or_path);
NetSpec compose_model(const ModelConfig& model);
// The names of the first k top-level feature items, those `freeze: k` freezes ("stem", "layer1").
std::vector<std::string> frozen_items(const NetSpec& spec, int k);

}  // namespace mpncov
