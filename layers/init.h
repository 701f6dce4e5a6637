// Parameter initialisation and the per-layer YAML keys that choose it, shared by the layers with weights.
//
//   init: kaiming_uniform        torchvision's default for conv and linear: weight and bias uniform in
//                                +-1/sqrt(fan_in) (kaiming uniform with a = sqrt(5))
//   init: kaiming_uniform_zero_bias  the same weight, bias 0 (torchvision's DenseNet classifier)
//   init: kaiming_normal         normal(0, sqrt(2 / fan_in)), bias 0 (torchvision's DenseNets)
//   init: kaiming_normal_fan_out normal(0, sqrt(2 / fan_out)), bias 0 (torchvision's ResNets, the seed's nets)
//   init: normal                 normal(0, init_std), bias 0 (init_std: 0.01, as VGG's linear layers)
//   init: constant               every weight init_value (default 0), bias 0
//
// Draws come from Philox keyed by the run seed and the layer's name, so they do not depend on the order
// in which layers are built.
#pragma once
#include <cstdint>
#include <string>

#include "core/config.h"
#include "layers/layer.h"

namespace mpncov {

struct WeightOptions {
  std::string init = "kaiming_uniform";
  double std = 0.01;   // init: normal
  double value = 0.0;  // init: constant
  double lr_mult = 1.0;
  double decay_mult = 1.0;
};

// Reads init, init_std, init_value, lr_mult and decay_mult; fallback_init is the layer's default.
WeightOptions read_weight_options(Config& config, const std::string& fallback_init = "kaiming_uniform");

// Fills weight (and bias, when defined) as the options say; fan_in and fan_out per output/input unit.
void init_weight_and_bias(const WeightOptions& options, const Tensor& weight, const Tensor& bias, int64_t fan_in,
                          int64_t fan_out, uint64_t seed, uint64_t weight_stream, uint64_t bias_stream);

// Applies the multipliers to every parameter of the layer.
void apply_multipliers(const WeightOptions& options, Layer& layer);

}  // namespace mpncov
