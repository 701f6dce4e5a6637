// A network file parsed and expanded: blocks instantiated, names composed with dots as torchvision names
// them, inputs resolved, every layer tagged with its part (features / representation / classifier).
// The format is documented in docs/nets.md.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"

namespace mpncov {

enum class NetPart { Features, Representation, Classifier };
const char* part_name(NetPart part);

// The name of the network's input (the image batch) in `inputs:` lists.
inline const char* kNetInput = "input";

struct LayerSpec {
  std::string name;                 // full dotted name, e.g. "layer1.0.conv1"
  std::string type;                 // registered layer type
  std::vector<std::string> inputs;  // full names of the producing layers, or kNetInput
  YAML::Node node;                  // the layer's mapping in the file (its keys are read through Config)
  ConfigArgs args;                  // values of the block arguments in scope ($name)
  ConfigArgs overrides;             // keys set by the experiment (e.g. out_features = classes)
  std::vector<std::string> ignored; // keys of the node that belong to someone else (e.g. reduce)
  std::string file;
  int line = 0;                     // 1-based
  NetPart part = NetPart::Features;
  int child = -1;                   // index of the top-level features item it belongs to (for freeze)

  std::string where() const;        // "file:line"
  // A Config over the layer's own keys (name/type/inputs and the like already declared as read).
  Config config() const;
  // The layer's own keys with block arguments and overrides applied, as one YAML mapping.
  YAML::Node resolved_keys() const;
};

struct NetSpec {
  std::string name;
  std::string file;
  std::vector<int64_t> input_shape;  // C, H, W (the default input size)
  std::vector<LayerSpec> layers;     // in execution order: every layer after its inputs
  int feature_children = 0;          // top-level items of `features`

  // Index of a layer by full name, or -1.
  int find(const std::string& name) const;
};

NetSpec load_net(const std::string& path);
// Appends the layer that flattens the representation to (N, D) before the classifier, as the seed's
// Basemodel does with view(B, -1); returns its name ("flatten").
std::string add_flatten(NetSpec& spec, const std::string& previous);
NetSpec parse_net(const std::string& text, const std::string& file);
// Expands a list of items (layers or block instances) as the given part, appended to spec.layers;
// `previous` is the name feeding the first item. Used by the experiment's model composition too.
// Returns the name of the last layer added.
std::string expand_items(NetSpec& spec, const YAML::Node& items, const YAML::Node& blocks, NetPart part,
                         const std::string& previous, const std::string& file, const std::string& prefix,
                         const std::map<std::string, std::string>* block_files = nullptr);

}  // namespace mpncov
