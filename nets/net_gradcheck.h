// The layer-wise gradient check of a whole net: every layer, built afresh from its keys, checked in
// float64 with random inputs of the shapes it sees in the net (layers/gradcheck.h does the checking).
#pragma once
#include <string>
#include <vector>

#include "layers/gradcheck.h"
#include "layers/gradcheck_suite.h"
#include "nets/net_spec.h"

namespace mpncov {

struct NetGradCheckRow {
  std::string layer;
  std::string type;
  GradCheckReport report;
};

// Each layer of the net as a gradient-check case: its resolved keys and the input shapes it sees in the
// net for an input (N, C, H, W).
std::vector<LayerCase> net_layer_cases(const NetSpec& spec, const Shape& input, bool training = true);
// Tensors with more than options.max_elements elements are sampled (0: all).
std::vector<NetGradCheckRow> gradcheck_net(const NetSpec& spec, const Shape& input, const GradCheckOptions& options);
// Each layer in float32 on a device against the CPU float64 reference (layers/gradcheck_suite.h).
std::vector<NetGradCheckRow> compare_net_on_device(const NetSpec& spec, const Shape& input, Device device,
                                                   double tolerance = 2e-3, uint64_t seed = 1);
// One row per layer: elements checked over all its tensors, worst errors, kinks, pass/fail.
std::string net_gradcheck_table(const std::vector<NetGradCheckRow>& rows);

}  // namespace mpncov
