#include "layers/init.h"

#include <cmath>
#include <vector>

#include "core/ops.h"
#include "core/text.h"
#include "layers/layer_util.h"

namespace mpncov {

WeightOptions read_weight_options(Config& c, const std::string& fallback_init) {
  static const std::vector<std::string> kinds = {"kaiming_uniform", "kaiming_uniform_zero_bias", "kaiming_normal",
                                                 "kaiming_normal_fan_out", "normal", "constant"};
  WeightOptions o;
  o.init = c.get<std::string>("init", fallback_init);
  bool known = false;
  for (const std::string& k : kinds) known = known || k == o.init;
  if (!known) {
    std::string all;
    for (const std::string& k : kinds) all += (all.empty() ? "" : ", ") + k;
    c.fail("init", str("has unknown value '", o.init, "'", did_you_mean(o.init, kinds), " (one of: ", all, ")"));
  }
  o.std = get_finite(c, "init_std", 0.01);
  c.check(o.std >= 0, "init_std", "must be non-negative");
  o.value = get_finite(c, "init_value", 0.0);
  o.lr_mult = get_finite(c, "lr_mult", 1.0);
  c.check(o.lr_mult >= 0, "lr_mult", "must be non-negative");
  o.decay_mult = get_finite(c, "decay_mult", 1.0);
  c.check(o.decay_mult >= 0, "decay_mult", "must be non-negative");
  return o;
}

void init_weight_and_bias(const WeightOptions& o, const Tensor& weight, const Tensor& bias, int64_t fan_in,
                          int64_t fan_out, uint64_t seed, uint64_t weight_stream, uint64_t bias_stream) {
  if (o.init == "kaiming_uniform") {
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    ops::fill_uniform(weight, -bound, bound, seed, weight_stream);
    if (bias.defined()) ops::fill_uniform(bias, -bound, bound, seed, bias_stream);
    return;
  }
  if (o.init == "kaiming_uniform_zero_bias") {
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    ops::fill_uniform(weight, -bound, bound, seed, weight_stream);
  } else if (o.init == "kaiming_normal") {
    ops::fill_normal(weight, 0.0, fan_in > 0 ? std::sqrt(2.0 / static_cast<double>(fan_in)) : 0.0, seed, weight_stream);
  } else if (o.init == "kaiming_normal_fan_out") {
    ops::fill_normal(weight, 0.0, fan_out > 0 ? std::sqrt(2.0 / static_cast<double>(fan_out)) : 0.0, seed,
                     weight_stream);
  } else if (o.init == "normal") {
    ops::fill_normal(weight, 0.0, o.std, seed, weight_stream);
  } else {
    ops::fill(weight, o.value);
  }
  if (bias.defined()) ops::fill(bias, 0.0);
}

void apply_multipliers(const WeightOptions& o, Layer& layer) {
  for (Parameter& p : layer.parameters()) {
    p.lr_mult = o.lr_mult;
    p.decay_mult = o.decay_mult;
  }
}

}  // namespace mpncov
