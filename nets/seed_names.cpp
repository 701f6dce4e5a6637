#include "nets/seed_names.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "nets/model.h"

namespace mpncov {
namespace {

// "features.12.weight" -> 12 and rest "weight"; -1 for a name that is not a numbered features item.
int features_item(const std::string& name, std::string* rest) {
  const std::string prefix = "features.";
  if (!starts_with(name, prefix)) return -1;
  size_t at = prefix.size();
  while (at < name.size() && std::isdigit(static_cast<unsigned char>(name[at]))) ++at;
  if (at == prefix.size() || at >= name.size() || name[at] != '.' || at - prefix.size() > 6) return -1;
  *rest = name.substr(at + 1);
  return std::stoi(name.substr(prefix.size(), at - prefix.size()));
}

// The type of feature item i when it is a single layer ("" otherwise).
std::string single_layer_type(const NetSpec& spec, int item) {
  std::string type;
  int count = 0;
  for (const LayerSpec& l : spec.layers)
    if (l.part == NetPart::Features && l.child == item) {
      type = l.type;
      ++count;
    }
  return count == 1 ? type : "";
}

class Mapper {
 public:
  Mapper(const NetSpec& spec, const std::vector<std::string>& net_names, const std::string& path, bool strict)
      : spec_(spec), net_(net_names.begin(), net_names.end()), path_(path), strict_(strict),
        items_(frozen_items(spec, spec.feature_children)) {
    for (const LayerSpec& l : spec.layers)
      if (l.part == NetPart::Classifier && l.type == "linear") linears_.push_back(l.name);
  }

  // The seed's from-scratch MPN-COV ResNet drops the backbone's layer_reduce (+ bn, relu) from its features
  // and has its representation reduce instead (conv_dr_block: the same 1x1 convolution, batch norm and
  // ReLU): the zoo's mpncov_resnet keeps them as its last three feature items, so they take those weights.
  void find_reduction(const std::vector<std::string>& names) {
    int file_items = 0;
    std::string rest;
    for (const std::string& n : names) file_items = std::max(file_items, features_item(n, &rest) + 1);
    if (file_items == 0 || file_items + 3 != spec_.feature_children || net_.count("representation.conv_dr_block.0.weight"))
      return;
    if (single_layer_type(spec_, file_items) == "conv" && single_layer_type(spec_, file_items + 1) == "batchnorm" &&
        single_layer_type(spec_, file_items + 2) == "relu")
      reduction_ = file_items;
  }

  // The net's name for the file's name n ("module." already removed); n itself when it needs no mapping.
  std::string map(const std::string& n) {
    if (net_.count(n)) return n;
    std::string rest;
    const int item = features_item(n, &rest);
    if (item >= 0) {
      if (item >= static_cast<int>(items_.size())) {
        if (!strict_) return n;  // left as it is: the loader lists it as not in the net
        throw Error(str(path_, ": the tensor '", n, "' is the seed's features item ", item, ", but net '", spec_.name,
                        "' has ", items_.size(), " feature items (features.0-", items_.size() - 1, ": ", join(items_),
                        "): is the checkpoint of another net?"));
      }
      const std::string from = str("features.", item);
      const std::string& to = items_[static_cast<size_t>(item)];
      if (to == from || to.empty()) return n;  // VGG, AlexNet: the zoo numbers them too ("": an item of no one name)
      return renamed(from, to, rest);
    }
    const std::string block = "representation.conv_dr_block.";
    if (reduction_ >= 0 && starts_with(n, block) && n.size() > block.size() + 2 && n[block.size() + 1] == '.') {
      const char k = n[block.size()];
      if (k == '0' || k == '1')
        return renamed(block + k, items_[static_cast<size_t>(reduction_ + (k - '0'))], n.substr(block.size() + 2));
    }
    return n;
  }

  // The seed's classifier as one linear layer: the zoo's `fc` (ResNet, Inception, a rebuilt head). The
  // name alone does not tell it from torchvision's DenseNet head (also `classifier`): without other signs of
  // the seed's names (`seed`) it is renamed only where its shape fits, and never refused.
  std::string map_classifier(const std::string& n, const std::string& file_name, bool seed, const SameShape& same_shape) {
    if (net_.count(n) || (n != "classifier.weight" && n != "classifier.bias")) return n;
    if (linears_.size() != 1) {
      if (!seed || !strict_) return n;
      throw Error(str(path_, ": the tensor '", n, "' is the seed's classifier as one linear layer, but the classifier ",
                      "of net '", spec_.name, "' has ", linears_.size(), " linear layers",
                      linears_.empty() ? "" : " (" + join(linears_) + ")",
                      ": build the model with the seed's head (model.classifier: linear)"));
    }
    const std::string target = linears_[0] + n.substr(n.find('.'));
    if (!seed && same_shape && !same_shape(file_name, target)) return n;
    return renamed("classifier", linears_[0], n.substr(n.find('.') + 1));
  }

  const std::vector<std::string>& changes() const { return changes_; }

 private:
  std::string renamed(const std::string& from, const std::string& to, const std::string& rest) {
    const std::string change = from + " -> " + to;
    if (seen_.insert(change).second) changes_.push_back(change);
    return to + "." + rest;
  }

  const NetSpec& spec_;
  const std::set<std::string> net_;
  const std::string path_;
  const bool strict_;  // refuse what does not map (else leave it unmapped, for the loader to list)
  const std::vector<std::string> items_;  // the net's top-level feature items, in the seed's children order
  std::vector<std::string> linears_;      // the net's classifier's linear layers
  int reduction_ = -1;                    // the first of the three feature items conv_dr_block maps to
  std::vector<std::string> changes_;
  std::set<std::string> seen_;
};

}  // namespace

SeedNames map_seed_names(const std::vector<std::string>& file_names, const NetSpec& spec,
                         const std::vector<std::string>& net_names, const std::string& path, bool strict,
                         const SameShape& same_shape) {
  // The seed's distributed runs save the whole model wrapped: "module." in front of every name.
  const std::string module = "module.";
  bool wrapped = !file_names.empty();
  for (const std::string& n : file_names) wrapped = wrapped && starts_with(n, module);
  std::vector<std::string> names;
  for (const std::string& n : file_names) names.push_back(wrapped ? n.substr(module.size()) : n);

  Mapper mapper(spec, net_names, path, strict);
  mapper.find_reduction(names);
  std::vector<std::string> targets;
  for (const std::string& n : names) targets.push_back(mapper.map(n));
  const bool seed = !mapper.changes().empty();  // features items renamed: the seed's names for sure
  for (size_t i = 0; i < names.size(); ++i) targets[i] = mapper.map_classifier(targets[i], file_names[i], seed, same_shape);
  SeedNames out;
  if (mapper.changes().empty()) return out;  // not the seed's names: the file loads as it is

  std::map<std::string, std::string> source;  // the net's name -> the file's name for it
  for (size_t i = 0; i < names.size(); ++i) {
    const auto [at, fresh] = source.emplace(targets[i], file_names[i]);
    if (!fresh && strict)
      throw Error(str(path, ": the tensors '", at->second, "' and '", file_names[i], "' both stand for the net's '",
                      targets[i], "' (the seed's names and the net's own mixed in one file): which to load is ambiguous"));
    if (!fresh) {  // not strict: the net's own name wins, the renamed one stays unmapped (listed as not in the net)
      if (targets[i] != file_names[i]) continue;
      out.net_name.erase(at->second);
      at->second = file_names[i];
      continue;
    }
    if (targets[i] != file_names[i]) out.net_name[file_names[i]] = targets[i];
  }
  out.note = str("the seed's checkpoint names (features / representation / classifier) recognised and mapped to net '",
                 spec.name, "': ", wrapped ? "prefix 'module.' stripped, " : "", join(mapper.changes()));
  return out;
}

}  // namespace mpncov
