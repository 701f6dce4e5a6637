// The layer configurations that `mpncov gradcheck --layer` / `--all-layers` and the tests check: each is a
// layer type with one of the checks of its registry entry (LayerInfo::checks; a type registered without
// checks gets one, no keys on its example inputs). Also: the same cases run on a GPU against the CPU
// float64 reference.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/gradcheck.h"

namespace mpncov {

struct LayerCase : LayerCheck {
  std::string type;
  std::string str() const;  // "conv {out_channels: 4, ...} on (2, 3, 6, 6) [train]"
};

// Every case of every registered layer type, in type order.
std::vector<LayerCase> all_layer_cases();
// The cases of one type (throws naming the nearest type when unknown).
std::vector<LayerCase> layer_cases(const std::string& type);

// Builds the case's layer from its YAML (errors name "<case>" as the file).
std::unique_ptr<Layer> make_case_layer(const LayerCase& c);
// Random inputs of the case's shapes (uniform in [-1, 1], labels uniform over the classes), float64 CPU.
std::vector<Tensor> case_inputs(const LayerCase& c, uint64_t seed);
// The float64 gradient check of one case.
GradCheckReport gradcheck_case(const LayerCase& c, const GradCheckOptions& options = {});

// Runs the case in float32 on `device` and in float64 on the CPU with the same parameters, inputs,
// output gradients and (non-zero) starting parameter gradients, and compares outputs, input gradients and parameter gradients: a row passes when
// max |device - reference| <= tolerance * max(max |reference|, 1e-3) over the tensor.
GradCheckReport compare_case_on_device(const LayerCase& c, Device device, double tolerance = 2e-3,
                                       uint64_t seed = 1);

}  // namespace mpncov
