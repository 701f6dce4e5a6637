#include "nets/model.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/config_error.h"
#include "core/error.h"
#include "core/text.h"

namespace mpncov {
namespace {

std::vector<std::string> zoo_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("MPNCOV_ZOO")) dirs.push_back(env);
  dirs.push_back(std::string(MPNCOV_SOURCE_DIR) + "/nets/zoo");
  return dirs;
}

LayerSpec make_layer_spec(const std::string& name, const std::string& type, const std::string& input,
                          NetPart part, const std::string& file, int line, YAML::Node node = YAML::Node()) {
  LayerSpec l;
  l.name = name;
  l.type = type;
  l.inputs = {input};
  l.node = node;
  l.file = file;
  l.line = line;
  l.part = part;
  return l;
}

// "file:line" of a node, or the file alone for a node of no file (a --set value).
std::string place(const std::string& file, const YAML::Node& node) {
  return node.Mark().line >= 0 ? str(file, ":", node.Mark().line + 1) : file;
}

// The representation layers an experiment asks for, fed by `input`.
std::vector<LayerSpec> representation_layers(const YAML::Node& rep, const std::string& input, const std::string& file) {
  const int line = rep.Mark().line + 1;
  if (!rep.IsMap() || !rep["type"])
    throw ConfigError(str(place(file, rep), ": representation must be a mapping with a type (mpncov, bcnn, cbp, gavp) or 'none'"));
  std::vector<LayerSpec> layers;
  std::string previous = input;
  if (const YAML::Node reduce = rep["reduce"]) {
    int64_t d = 0;
    try {
      d = reduce.as<int64_t>();
    } catch (const YAML::Exception&) {
    }
    if (d < 1) throw ConfigError(str(place(file, reduce), ": representation: reduce must be a positive channel count"));
    const std::string prefix = "representation.conv_dr_block.";
    LayerSpec conv = make_layer_spec(prefix + "0", "conv", previous, NetPart::Representation, file, line);
    conv.overrides = {{"out_channels", YAML::Node(d)}, {"kernel_size", YAML::Node(1)}, {"bias", YAML::Node(false)},
                      {"init", YAML::Node("kaiming_normal_fan_out")}};
    layers.push_back(conv);
    layers.push_back(make_layer_spec(prefix + "1", "batchnorm", prefix + "0", NetPart::Representation, file, line));
    layers.push_back(make_layer_spec(prefix + "2", "relu", prefix + "1", NetPart::Representation, file, line));
    previous = prefix + "2";
  }
  LayerSpec pool = make_layer_spec("representation", rep["type"].as<std::string>(), previous, NetPart::Representation,
                                   file, line, rep);
  pool.ignored = {"reduce"};
  layers.push_back(pool);
  return layers;
}

}  // namespace

ModelConfig read_model_config(const YAML::Node& node, const std::string& file) {
  Config c(node, file, "model");
  ModelConfig m;
  m.file = file;
  m.net = c.require<std::string>("net");
  if (node.IsMap()) m.line = node["net"].Mark().line + 1;
  if (c.has("representation")) m.representation = c.value("representation");
  c.ignore("representation");
  m.classes = c.get<int64_t>("classes", 0);
  c.check(m.classes >= 0, "classes", "must be positive (or 0 for the number of class folders)");
  m.weights = c.get<std::string>("weights", "");
  m.freeze = c.get<int>("freeze", 0);
  c.check(m.freeze >= 0, "freeze", "must be 0 or more");
  m.classifier = c.get<std::string>("classifier", "auto");
  c.check(m.classifier == "auto" || m.classifier == "keep" || m.classifier == "linear", "classifier",
          "must be auto, keep or linear");
  m.sync_bn = c.get<bool>("sync_bn", false);
  // The seed's --pretrained flag, as a key: the nearest valid key ('net') would not help.
  c.check(!c.has("pretrained"), "pretrained",
          "has no meaning here: pretrained weights are a file, model.weights: FILE.safetensors (convert torchvision's .pth "
          "once with tools/pth_to_safetensors.py)");
  c.finish();
  return m;
}

NetSpec load_net_or_experiment(const std::string& name_or_path) {
  std::error_code ec;  // the non-throwing queries: a name too long for the file system is not there
  const std::string path = std::filesystem::exists(name_or_path, ec) ? name_or_path : resolve_net_path(name_or_path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(str("cannot open '", path, "'"));
  } catch (const YAML::ParserException& e) {
    throw ConfigError(str(path, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
  if (root.IsMap() && root["model"]) return compose_model(read_model_config(root["model"], path));
  return load_net(path);
}

std::string resolve_net_path(const std::string& name) {
  if (name.find('/') != std::string::npos || (name.size() > 5 && name.substr(name.size() - 5) == ".yaml")) return name;
  std::vector<std::string> known;
  for (const std::string& dir : zoo_dirs()) {
    const std::string path = dir + "/" + name + ".yaml";
    if (std::error_code ec; std::filesystem::exists(path, ec)) return path;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
      if (entry.path().extension() == ".yaml") known.push_back(entry.path().stem().string());
  }
  std::sort(known.begin(), known.end());
  std::string all;
  for (const std::string& k : known) all += (all.empty() ? "" : ", ") + k;
  throw ConfigError(str("unknown net '", name, "'", did_you_mean(name, known), " (the zoo has: ", all, ")"));
}

NetSpec compose_model(const ModelConfig& m) {
  NetSpec net;
  try {
    net = load_net(resolve_net_path(m.net));
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    if (what.rfind(m.file, 0) == 0 || m.file.empty()) throw;
    throw ConfigError(str(m.line > 0 ? str(m.file, ":", m.line) : m.file, ": model.net: ", what));
  }
  const bool new_representation =
      m.representation && !m.representation.IsNull() && !(m.representation.IsScalar() && m.representation.Scalar() == "none");
  const bool no_representation = m.representation && m.representation.IsScalar() && m.representation.Scalar() == "none";
  if (m.classifier != "auto" && m.classifier != "keep" && m.classifier != "linear")
    throw ConfigError(str(m.file, ": model.classifier must be auto, keep or linear, got '", m.classifier, "'"));

  std::vector<LayerSpec> features, representation, classifier;
  for (LayerSpec& l : net.layers) {
    if (l.part == NetPart::Features) features.push_back(l);
    else if (l.part == NetPart::Representation) representation.push_back(l);
    else classifier.push_back(l);
  }
  const std::string features_out = features.back().name;
  if (new_representation) representation = representation_layers(m.representation, features_out, m.file);
  if (no_representation) representation.clear();
  const std::string rep_out = representation.empty() ? features_out : representation.back().name;

  const bool single_linear = m.classifier == "linear" ||
                             (m.classifier == "auto" && new_representation && !m.weights.empty()) || classifier.empty();
  if (single_linear) {
    classifier.clear();
    classifier.push_back(make_layer_spec("flatten", "flatten", rep_out, NetPart::Classifier, m.file, 0));
    LayerSpec fc = make_layer_spec("fc", "linear", "flatten", NetPart::Classifier, m.file, 0);
    fc.overrides["out_features"] = YAML::Node(m.classes > 0 ? m.classes : 1000);
    classifier.push_back(fc);
  } else {
    classifier.front().inputs = {rep_out};  // the flatten in front of the classifier
    if (m.classes > 0) {
      auto last = std::find_if(classifier.rbegin(), classifier.rend(), [](const LayerSpec& l) { return l.type == "linear"; });
      if (last == classifier.rend())
        throw ConfigError(str(m.file, ": net '", net.name, "' has no linear layer in its classifier to resize to ", m.classes,
                        " classes; use model.classifier: linear"));
      last->overrides["out_features"] = YAML::Node(m.classes);
    }
  }
  net.layers = features;
  net.layers.insert(net.layers.end(), representation.begin(), representation.end());
  net.layers.insert(net.layers.end(), classifier.begin(), classifier.end());
  if (m.sync_bn)
    for (LayerSpec& l : net.layers)
      if (l.type == "batchnorm") l.overrides["sync"] = YAML::Node(true);
  // A configuration error (status 2, like every other wrong key), not an internal check.
  if (m.freeze < 0 || m.freeze > net.feature_children)
    throw ConfigError(str(m.file, ": model.freeze is ", m.freeze, "; net '", net.name, "' has ", net.feature_children,
                          " top-level feature items (freeze 0 to ", net.feature_children, ")"));
  return net;
}

std::vector<std::string> frozen_items(const NetSpec& spec, int k) {
  // An item's name: the longest dotted prefix its layers share (layer1.0.conv1, layer1.1.bn2 -> layer1).
  std::vector<std::string> names(static_cast<size_t>(std::max(k, 0)));
  for (const LayerSpec& l : spec.layers) {
    if (l.part != NetPart::Features || l.child < 0 || l.child >= k) continue;
    std::string& name = names[static_cast<size_t>(l.child)];
    if (name.empty()) {
      name = l.name;
      continue;
    }
    size_t common = 0;
    while (common < name.size() && common < l.name.size() && name[common] == l.name[common]) ++common;
    const bool whole = common == name.size() && (common == l.name.size() || l.name[common] == '.');
    if (!whole) name = name.substr(0, name.rfind('.', common) == std::string::npos ? 0 : name.rfind('.', common));
  }
  return names;
}

}  // namespace mpncov
