#include "nets/weights.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>

#include "core/safetensors.h"
#include "core/text.h"
#include "nets/seed_names.h"

namespace mpncov {
namespace {

std::string list(const std::vector<std::string>& names, size_t limit = 20) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += "\n    " + names[i];
  if (names.size() > limit) out += str("\n    ... and ", names.size() - limit, " more");
  return out;
}

// "layer1.0.conv1.weight" -> "layer1.0.conv1" (parameter and buffer names have no dots).
std::string layer_of(const std::string& tensor) { return tensor.substr(0, tensor.rfind('.')); }

// torchvision's published DenseNet files name a dense layer's modules "norm.1", "conv.2" (dots PyTorch
// later forbade in module names); torchvision renames them as it loads them, to "norm1", "conv2", and so do we.
// A part of a model wrapped in DataParallel on its own, as the seed does with a VGG's or AlexNet's features,
// saves its names with "module." inside them ("features.module.0.weight"): read without it. (A "module."
// in front of every name is a shared prefix, found and stripped by shared_prefix.)
std::string current_torchvision_name(const std::string& name) {
  std::string current = name;
  // "...denselayer<digits>.<norm|relu|conv>.<1|2>.<parameter>": the dot before the 1 or 2 goes.
  const size_t layer = current.rfind("denselayer");
  if (layer != std::string::npos) {
    size_t at = layer + 10;
    const size_t digits = at;
    while (at < current.size() && std::isdigit(static_cast<unsigned char>(current[at]))) ++at;
    for (const char* module : {".norm.", ".relu.", ".conv."}) {
      const size_t dot = at + 5;  // the dot after the module's name
      if (at == digits || current.compare(at, 6, module) != 0 || dot + 3 > current.size()) continue;
      const char n = current[dot + 1];
      const std::string parameter = current.substr(dot + 3);
      if ((n == '1' || n == '2') && current[dot + 2] == '.' && !parameter.empty() &&
          parameter.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string::npos)
        current.erase(dot, 1);
    }
  }
  for (size_t at = current.find(".module."); at != std::string::npos; at = current.find(".module.", at))
    current.erase(at, 7);  // ".module." -> "."
  return current;
}

// torchvision's inception_v3 files hold its auxiliary classifier, which the zoo's inception_v3 leaves out as
// the seed does (torchvision drops it too when built without aux_logits).
bool auxiliary_classifier(const std::string& name) { return name.rfind("AuxLogits.", 0) == 0; }

// Names of the file that are weights: not a checkpoint's optimiser state ("@...") nor batch-norm counters.
bool is_weight(const std::string& name) { return !name.empty() && name[0] != '@' && !ends_with(name, ".num_batches_tracked"); }

}  // namespace

std::string WeightsLoadReport::summary() const {
  std::string s = str(loaded.size(), " tensors loaded");
  if (!seed_names.empty()) s += str(" (", seed_names, ")");
  if (!stripped_prefix.empty()) s += str(" (prefix '", stripped_prefix, "' of the file's names stripped)");
  if (!missing.empty()) s += str(", ", missing.size(), " missing from the file:", list(missing));
  if (!unexpected.empty()) s += str("\n  ", unexpected.size(), " in the file but not in the net:", list(unexpected));
  if (!mismatched.empty()) s += str("\n  ", mismatched.size(), " with other shapes:", list(mismatched));
  if (!set_aside.empty())
    s += str("\n  ", set_aside.size(), " of torchvision's auxiliary classifier (AuxLogits) not used: the net has none");
  return s;
}

void check_not_pytorch_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(head), 4);
  if (in.gcount() < 4) return;  // the safetensors reader says what is wrong with it
  const bool zip = head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;  // torch.save since 1.6
  const bool pickle = head[0] == 0x80 && head[1] >= 2 && head[1] <= 5;               // older torch.save
  if (!zip && !pickle) return;
  std::string out = path;
  for (const char* ext : {".pth.tar", ".pth", ".pt", ".tar", ".bin", ".ckpt"})
    if (ends_with(out, ext)) {
      out = out.substr(0, out.size() - std::string(ext).size());
      break;
    }
  throw Error(str(path, " is a PyTorch file (torch.save's ", zip ? "zip archive" : "pickle",
                  "), not safetensors: convert it once with\n  python3 tools/pth_to_safetensors.py ", path, " ", out,
                  ".safetensors\n(a python3 that has PyTorch; add --strip-prefix module. for a DataParallel checkpoint)"));
}

std::string shared_prefix(const std::vector<std::string>& file_names, const std::vector<std::string>& net_names) {
  const std::set<std::string> net(net_names.begin(), net_names.end());
  size_t direct = 0;
  std::map<std::string, size_t> count;  // prefix -> names it turns into net names
  for (const std::string& f : file_names) {
    if (net.count(f)) ++direct;
    for (size_t dot = f.find('.'); dot != std::string::npos; dot = f.find('.', dot + 1))
      if (net.count(f.substr(dot + 1))) ++count[f.substr(0, dot + 1)];
  }
  std::string best;
  size_t best_count = direct;
  for (const auto& [prefix, n] : count)
    if (n > best_count || (n == best_count && !best.empty() && prefix.size() > best.size())) {
      best = prefix;
      best_count = n;
    }
  return best;
}

WeightsLoadReport load_weights(Net& net, const std::string& path, const WeightsLoadOptions& options) {
  MPNCOV_CHECK(net.is_setup(), "load_weights: set the net up first (its parameters are created then)");
  check_not_pytorch_file(path);
  SafetensorsReader file(path);
  WeightsLoadReport report;
  std::vector<NamedTensor> state = net.state();
  std::vector<std::string> tensor_names, net_names;  // tensor_names: the file's, less the optimiser state
  std::map<std::string, std::string> entry_of;        // a tensor name -> the file's entry
  for (const SafetensorsEntry& e : file.entries())
    if (e.name.empty() || e.name[0] != '@') {
      tensor_names.push_back(current_torchvision_name(e.name));
      entry_of[tensor_names.back()] = e.name;
    }
  std::map<std::string, Shape> net_shapes;
  for (const NamedTensor& t : state) {
    net_names.push_back(t.name);
    net_shapes[t.name] = t.tensor.shape();
  }
  // A checkpoint of the seed's main.py names the backbone features.N (nets/seed_names.h).
  const SeedNames seed = map_seed_names(tensor_names, net.spec(), net_names, path, options.strict, [&](const std::string& f, const std::string& n) {
    const auto at = net_shapes.find(n);
    return at != net_shapes.end() && file.entry(entry_of.at(f)).shape == at->second;
  });
  report.seed_names = seed.note;
  // The name a tensor of the file goes by: torchvision's current name, then the net's for the seed's.
  const auto name_in_net = [&](const std::string& file_name) {
    const std::string name = current_torchvision_name(file_name);
    const auto renamed = seed.net_name.find(name);
    return renamed == seed.net_name.end() ? name : renamed->second;
  };
  std::vector<std::string> file_names;
  for (const SafetensorsEntry& e : file.entries())
    if (is_weight(e.name)) file_names.push_back(name_in_net(e.name));
  report.stripped_prefix = shared_prefix(file_names, net_names);
  std::map<std::string, std::string> file_name_of;  // net name -> the file's name for it
  for (const SafetensorsEntry& e : file.entries()) {
    const std::string& p = report.stripped_prefix;
    const std::string name = name_in_net(e.name);
    const bool strip = !p.empty() && name.compare(0, p.size(), p) == 0;
    file_name_of.emplace(strip ? name.substr(p.size()) : name, e.name);
  }
  std::set<std::string> used;
  std::map<std::string, NetPart> part_of;
  for (const NetParameter& p : net.parameters()) part_of[p.name] = p.part;
  std::vector<std::string> optional_missing;
  // A scalar may be stored 0-d or as one element; any other shape must match exactly.
  const auto fits = [](const NamedTensor& t, const SafetensorsEntry& e) {
    return e.shape == t.tensor.shape() || (e.shape.numel() == 1 && t.tensor.numel() == 1);
  };
  std::set<std::string> incomplete;  // whole_layers: layers with a tensor missing from the file or misfit there
  if (options.whole_layers)
    for (const NamedTensor& t : state) {
      const auto in_file = file_name_of.find(t.name);
      if (ends_with(t.name, ".num_batches_tracked")) continue;
      if (in_file == file_name_of.end() || !fits(t, file.entry(in_file->second))) incomplete.insert(layer_of(t.name));
    }
  for (NamedTensor& t : state) {
    const auto in_file = file_name_of.find(t.name);
    if (in_file == file_name_of.end() && ends_with(t.name, ".num_batches_tracked")) {
      // Weights saved before PyTorch 0.4.1 (torchvision's original ResNet and VGG files among them) have no
      // counter: it starts at 0, as PyTorch's BatchNorm loads such a state dict.
      if (!incomplete.count(layer_of(t.name))) t.tensor.zero();
      continue;
    }
    if (in_file == file_name_of.end()) {
      const auto part = part_of.find(t.name);
      const bool may = part != part_of.end() && std::find(options.may_be_missing.begin(), options.may_be_missing.end(),
                                                          part->second) != options.may_be_missing.end();
      (may ? optional_missing : report.missing).push_back(t.name);
      continue;
    }
    used.insert(in_file->second);
    const SafetensorsEntry& e = file.entry(in_file->second);
    if (!fits(t, e)) {
      report.mismatched.push_back(str(t.name, ": file ", e.shape.str(), ", net ", t.tensor.shape().str()));
      continue;
    }
    // Part of a layer that starts afresh: none of it loads, not even what fits (a bias of the same size).
    if (incomplete.count(layer_of(t.name))) continue;
    Tensor value = file.read(e.name).to(t.tensor.dtype());
    t.tensor.copy_from(value.to(t.tensor.device()));
    report.loaded.push_back(t.name);
  }
  for (const SafetensorsEntry& e : file.entries()) {
    if (!is_weight(e.name) || used.count(e.name)) continue;
    const std::string& p = report.stripped_prefix;
    const bool strip = !p.empty() && e.name.compare(0, p.size(), p) == 0;
    (auxiliary_classifier(strip ? e.name.substr(p.size()) : e.name) ? report.set_aside : report.unexpected).push_back(e.name);
  }
  net.state_written();  // whatever was kept from the old values is dropped
  const bool clean = report.missing.empty() && report.unexpected.empty() && report.mismatched.empty();
  if (options.strict && !clean)
    throw Error(str(path, ": the weights do not match net '", net.spec().name, "': ", report.summary(),
                    "\n  (tensor names must be the net's parameter names; load non-strict to take what matches)"));
  report.missing.insert(report.missing.end(), optional_missing.begin(), optional_missing.end());
  return report;
}

void save_weights(Net& net, const std::string& path, const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedTensor& t : net.state()) tensors.emplace_back(t.name, t.tensor);
  std::map<std::string, std::string> meta = metadata;
  meta.emplace("net", net.spec().name);
  save_safetensors(path, tensors, meta);
}

std::vector<std::string> PretrainedReport::lines() const {
  std::vector<std::string> out;
  out.push_back(str(load.loaded.size(), " tensors loaded",
                    load.stripped_prefix.empty() ? "" : str(" (prefix '", load.stripped_prefix, "' of the file's names stripped)")));
  if (!load.seed_names.empty()) out.push_back(load.seed_names);
  if (!new_layers.empty()) out.push_back("new (not in the weights, initialised afresh): " + join(new_layers));
  if (!replaced.empty()) out.push_back("not used (the net's own head, replaced by the model's): " + join(replaced));
  if (!load.set_aside.empty())
    out.push_back(str("not used: ", load.set_aside.size(), " tensors of torchvision's auxiliary classifier (AuxLogits), ",
                      "which the net does not have"));
  if (!ignored.empty())
    out.push_back(str("warning: ", ignored.size(), " tensors of the weights file are not in the net and were ignored ",
                      "(are they the weights of another net?):", list(ignored)));
  return out;
}

PretrainedReport load_pretrained(Net& net, const std::string& path, const NetSpec* original) {
  WeightsLoadOptions options;
  options.strict = false;
  options.whole_layers = true;  // a new layer starts afresh as a whole
  PretrainedReport r;
  r.load = load_weights(net, path, options);
  std::vector<std::string> features_bad;
  std::set<std::string> new_layers;
  auto classify = [&](const std::string& name, const std::string& problem) {
    const int layer = net.index_of(layer_of(name));
    if (net.layer_spec(layer).part == NetPart::Features) features_bad.push_back(problem);
    else new_layers.insert(layer_of(name));
  };
  for (const std::string& name : r.load.missing) classify(name, name + " (missing)");
  for (const std::string& m : r.load.mismatched) classify(m.substr(0, m.find(':')), m);
  size_t features_loaded = 0;
  for (const std::string& name : r.load.loaded)
    features_loaded += net.layer_spec(net.index_of(layer_of(name))).part == NetPart::Features ? 1 : 0;
  if (features_loaded == 0 && !features_bad.empty())
    throw Error(str(path, ": nothing of the weights fits the backbone (features) of net '", net.spec().name, "': none of its ",
                    features_bad.size(), " tensors is in the file with its name and shape (are these the weights of another ",
                    "net?)\n  the file's first names:", list(r.load.unexpected, 5), "\n  the net's first names:",
                    list(features_bad, 5)));
  if (!features_bad.empty())
    throw Error(str(path, ": the pretrained weights do not fit the backbone (features) of net '", net.spec().name, "':",
                    list(features_bad, 40)));
  for (int i = 0; i < net.size(); ++i) {
    const LayerSpec& l = net.layer_spec(i);
    if (!new_layers.count(l.name)) continue;
    const std::vector<Parameter>& params = net.layer(i).parameters();
    r.new_layers.push_back(str(l.name, " (", l.type, params.empty() ? "" : ", weight " + params[0].value.shape().str(), ")"));
  }
  std::set<std::string> head;  // state names of the original net's representation and classifier
  if (original)
    for (const LayerSpec& l : original->layers)
      if (l.part != NetPart::Features) head.insert(l.name);
  std::set<std::string> replaced;
  for (const std::string& name : r.load.unexpected) {
    const std::string p = r.load.stripped_prefix;
    const std::string stripped = !p.empty() && name.compare(0, p.size(), p) == 0 ? name.substr(p.size()) : name;
    if (head.count(layer_of(stripped))) replaced.insert(layer_of(stripped));
    else r.ignored.push_back(name);
  }
  r.replaced.assign(replaced.begin(), replaced.end());
  return r;
}

}  // namespace mpncov
