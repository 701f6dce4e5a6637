// Weights files: safetensors whose tensor names are the net's parameter and buffer names (torchvision's
// state_dict keys), so torchvision weights load with no mapping table. A prefix shared by the file's
// names (DataParallel's "module.") is recognised and stripped; a PyTorch .pth file is recognised and the
// error says how to convert it (tools/pth_to_safetensors.py).
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
  // A layer loads whole or not at all: where one of its tensors is missing from the file or has another
  // shape there, its other tensors keep their values too (a new layer starts afresh, not half pretrained).
  bool whole_layers = false;
};

struct WeightsLoadReport {
  std::vector<std::string> loaded, missing, unexpected, mismatched;  // mismatched: "name: file (..) net (..)"
  // Tensors of torchvision's inception_v3 auxiliary classifier (AuxLogits.*) that the net does not have:
  // not used, and not a mismatch even when strict.
  std::vector<std::string> set_aside;
  // One line where the file's names were the seed's checkpoint names, mapped to the net's (nets/seed_names.h).
  std::string seed_names;
  std::string stripped_prefix;  // removed from every file name that had it ("module."), or ""
  std::string summary() const;
};

// The net must be set up (its parameters exist). Values are converted to the net's dtype and device.
// Buffers named num_batches_tracked (torchvision's batch-norm counter) are accepted but not needed: one the
// file lacks (weights saved before PyTorch 0.4.1) is set to 0, as PyTorch does.
WeightsLoadReport load_weights(Net& net, const std::string& path, const WeightsLoadOptions& options = {});
void save_weights(Net& net, const std::string& path, const std::map<std::string, std::string>& metadata = {});

// Throws, naming the converter, when path is a PyTorch file (torch.save's zip archive or a pickle).
void check_not_pytorch_file(const std::string& path);

// The longest prefix that, removed from the file's names, makes more of them names of the net than
// they are as they stand ("" when none does): "module." for a DataParallel checkpoint.
std::string shared_prefix(const std::vector<std::string>& file_names, const std::vector<std::string>& net_names);

// Pretrained weights for fine-tuning (model.weights). The backbone (features) must all be in the file
// with its shapes; layers of the representation and classifier that are not in the file (or have other
// shapes there) are new and keep their fresh initialisation; tensors of the file that the net does not
// use are warnings, except those of `original`'s own representation and classifier that the model
// replaced. An error when nothing of the backbone matched.
struct PretrainedReport {
  WeightsLoadReport load;
  std::vector<std::string> new_layers;  // "fc (linear)", one per layer that starts afresh
  std::vector<std::string> replaced;    // layers of the file's own head that the model replaced
  std::vector<std::string> ignored;     // other tensors of the file not in the net (a warning)
  std::vector<std::string> lines() const;  // what the log shows: "loaded ...", "new: ...", "warning: ..."
};
PretrainedReport load_pretrained(Net& net, const std::string& path, const NetSpec* original = nullptr);

}  // namespace mpncov
