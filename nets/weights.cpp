#include "nets/weights.h"

#include <algorithm>
#include <set>

#include "core/safetensors.h"

namespace mpncov {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string list(const std::vector<std::string>& names, size_t limit = 20) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += "\n    " + names[i];
  if (names.size() > limit) out += str("\n    ... and ", names.size() - limit, " more");
  return out;
}

}  // namespace

std::string WeightsLoadReport::summary() const {
  std::string s = str(loaded.size(), " tensors loaded");
  if (!missing.empty()) s += str(", ", missing.size(), " missing from the file:", list(missing));
  if (!unexpected.empty()) s += str("\n  ", unexpected.size(), " in the file but not in the net:", list(unexpected));
  if (!mismatched.empty()) s += str("\n  ", mismatched.size(), " with other shapes:", list(mismatched));
  return s;
}

WeightsLoadReport load_weights(Net& net, const std::string& path, const WeightsLoadOptions& options) {
  MPNCOV_CHECK(net.is_setup(), "load_weights: set the net up first (its parameters are created then)");
  SafetensorsReader file(path);
  WeightsLoadReport report;
  std::set<std::string> used;
  std::map<std::string, NetPart> part_of;
  for (const NetParameter& p : net.parameters()) part_of[p.name] = p.part;
  std::vector<std::string> optional_missing;
  for (NamedTensor& t : net.state()) {
    if (!file.contains(t.name)) {
      const auto part = part_of.find(t.name);
      const bool may = part != part_of.end() && std::find(options.may_be_missing.begin(), options.may_be_missing.end(),
                                                          part->second) != options.may_be_missing.end();
      (may ? optional_missing : report.missing).push_back(t.name);
      continue;
    }
    used.insert(t.name);
    const SafetensorsEntry& e = file.entry(t.name);
    // A scalar may be stored 0-d or as one element; any other shape must match exactly.
    const bool scalar = e.shape.numel() == 1 && t.tensor.numel() == 1;
    if (e.shape != t.tensor.shape() && !scalar) {
      report.mismatched.push_back(str(t.name, ": file ", e.shape.str(), ", net ", t.tensor.shape().str()));
      continue;
    }
    Tensor value = file.read(t.name).to(t.tensor.dtype());
    t.tensor.copy_from(value.to(t.tensor.device()));
    report.loaded.push_back(t.name);
  }
  for (const SafetensorsEntry& e : file.entries())
    // "@..." entries are a checkpoint's optimiser state (train/checkpoint.h), not weights.
    if (!used.count(e.name) && !ends_with(e.name, ".num_batches_tracked") && e.name[0] != '@')
      report.unexpected.push_back(e.name);
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

}  // namespace mpncov
