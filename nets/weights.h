// Weights files: safetensors whose tensor names are the net's parameter and buffer names (torchvision's
// state_dict keys), so torchvision weights load with no mapping table.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "nets/net.h"

namespace mpncov {

struct WeightsLoadOptions {
  // Strict: every tensor of the net must be in the file and every tensor of the file in the net, with
  // equal shapes; all problems are listed in one error. Non-strict: what matches loads, the rest is
  // reported.
  bool strict = true;
  // Net parts allowed to be missing from the file even when strict (e.g. a new classifier).
  std::vector<NetPart> may_be_missing;
};

struct WeightsLoadReport {
  std::vector<std::string> loaded, missing, unexpected, mismatched;  // mismatched: "name: file (..) net (..)"
  std::string summary() const;
};

// The net must be set up (its parameters exist). Values are converted to the net's dtype and device.
// Buffers named num_batches_tracked (torchvision's batch-norm counter) are accepted but not needed.
WeightsLoadReport load_weights(Net& net, const std::string& path, const WeightsLoadOptions& options = {});
void save_weights(Net& net, const std::string& path, const std::map<std::string, std::string>& metadata = {});

}  // namespace mpncov
