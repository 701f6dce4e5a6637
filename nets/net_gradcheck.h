// The layer-wise gradient check of a whole net: every layer, built afresh from its keys, checked in
// float64 with random inputs of the shapes it sees in the net (layers/gradcheck.h does the checking).
#pragma once
#include <string>
#include <vector>

#include "layers/gradcheck.h"
#include "nets/net_spec.h"

namespace mpncov {

struct NetGradCheckRow {
  std::string layer;
  std::string type;
  GradCheckReport report;
};

// input: (N, C, H, W). Tensors with more than options.max_elements elements are sampled (0: all).
std::vector<NetGradCheckRow> gradcheck_net(const NetSpec& spec, const Shape& input, const GradCheckOptions& options);
// One row per layer: elements checked over all its tensors, worst errors, kinks, pass/fail.
std::string net_gradcheck_table(const std::vector<NetGradCheckRow>& rows);

}  // namespace mpncov
