#include "tools/model_source.h"

#include <filesystem>

#include "nets/model.h"
#include "tools/command.h"
#include "train/trainer.h"

namespace mpncov::tools {

ModelSource load_model_source(const std::string& source, const std::vector<std::string>& overrides) {
  ModelSource m;
  m.spec = load_net_or_experiment(source);  // a bad file or name fails here with its own message
  const YAML::Node root = YAML::LoadFile(std::filesystem::exists(source) ? source : resolve_net_path(source));
  m.input = m.spec.input_shape;
  if (!root.IsMap() || !root["model"]) {
    // As extract says: silently ignored, a --set would look applied.
    if (!overrides.empty()) throw UsageError{"--set changes an experiment's keys; " + source + " is a net"};
    return m;
  }
  m.experiment = load_experiment(source, overrides);
  ModelConfig mc = m.experiment->model;
  if (mc.classes == 0) mc.classes = count_class_folders(m.experiment->data.train);
  m.spec = compose_model(mc);
  const data::Size size = make_pipeline(m.experiment->data, true, 1).output_size();
  if (size.height > 0 && size.width > 0) m.input = {3, size.height, size.width};
  return m;
}

}  // namespace mpncov::tools
