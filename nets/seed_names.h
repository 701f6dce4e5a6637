// The names of checkpoints saved by the seed (fast-MPN-COV's main.py, docs/seed.md §4-§5), read as the net's.
// The seed's Newmodel holds every backbone as three children, so its state_dict names are
//   features.<i>.<rest>   the i-th child of the backbone's `features` (a ResNet's conv1, bn1, relu, maxpool,
//                         layer1-4 become features.0-7; an MPN-COV ResNet fine-tuned from its pretrained
//                         weights adds layer_reduce, layer_reduce_bn, layer_reduce_relu as features.8-10);
//   representation.<rest> the representation (MPNCOV's representation.conv_dr_block.0/1: the zoo's names);
//   classifier.weight/.bias  one linear layer (the zoo's ResNet, Inception and rebuilt heads call it `fc`),
//                         or classifier.<i>.* for AlexNet's and VGG's own stack (torchvision's names, the zoo's).
// The zoo's feature items follow the same children order (it is also what `freeze: k` counts), so the
// mapping is by position. Only names the net does not have are renamed: torchvision's own files, and
// VGG, AlexNet and DenseNet checkpoints whose names are already the net's, pass unchanged.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nets/net_spec.h"

namespace mpncov {

struct SeedNames {
  std::map<std::string, std::string> net_name;  // the file's name -> the net's, for every name that changes
  std::string note;  // one line for the load log ("" when the file does not use the seed's names)
  bool recognised() const { return !note.empty(); }
};

// Whether the file's tensor (first) has the shape of the net's (second).
using SameShape = std::function<bool(const std::string&, const std::string&)>;

// file_names: the weight names of the file (DataParallel's ".module." inside them already dropped);
// net_names: the net's state names. A leading "module." on every name (the seed's distributed runs wrap the
// whole model) is part of the mapping. Strict, throws, naming `path`, the tensor and what the net expected,
// where the seed's structure does not map onto the net: a features item past the net's last, the seed's
// single linear classifier against a net whose classifier is not one linear layer, two of the file's names
// for one of the net's. Not strict (load what matches), leaves such names unmapped instead (the net's own
// name wins over a renamed one), for the loader to list as not in the net. same_shape (optional) tells the seed's one-linear classifier from torchvision's DenseNet
// head, also named `classifier`, in a file that shows no other sign of the seed's names.
SeedNames map_seed_names(const std::vector<std::string>& file_names, const NetSpec& spec,
                         const std::vector<std::string>& net_names, const std::string& path, bool strict,
                         const SameShape& same_shape = nullptr);

}  // namespace mpncov
