// The gradient checker shared by the tests and `mpncov gradcheck`: float64 on the CPU, central
// differences of the scalar L = sum_k <output_k, W_k> with fixed random W_k, against the layer's backward.
// An element passes when |analytic - numeric| <= tol * max(|analytic|, |numeric|, 1). Points near a
// kink (the one-sided differences disagree) are skipped and counted. The layer's step is held fixed, so
// dropout draws the same mask in every forward and is checked too.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace mpncov {

struct GradCheckOptions {
  double step = 1e-5;          // finite-difference step
  double tolerance = 1e-5;     // relative, as above
  double kink_tolerance = 1e-3;  // one-sided differences further apart than this (relative) mark a kink
  int64_t max_elements = 0;    // per tensor; 0 checks every element, else a random sample of this many
  uint64_t seed = 1;
  bool training = true;
};

struct GradCheckRow {
  std::string tensor;      // "input 0", "weight", ...
  int64_t elements = 0;    // in the tensor
  int64_t checked = 0;     // elements compared
  int64_t kinks = 0;       // skipped near a kink
  double max_abs_error = 0;
  double max_rel_error = 0;
  double max_gradient = 0;  // largest |analytic| or |numeric| checked: 0 means the check saw no signal
  bool pass = true;         // at least one element checked, and every checked one within tolerance
};

struct GradCheckReport {
  std::vector<GradCheckRow> rows;
  bool pass() const;  // some rows, all passing: a check of nothing fails
  // Every checked gradient of every tensor is 0 (e.g. a covariance of a 1x1 input): errors of 0 then
  // prove nothing, and the check says so instead of passing.
  bool degenerate() const;
  std::string table() const;  // aligned text, one row per tensor
};

// Sets the layer up for the inputs' shapes in float64 on the CPU (its parameters get their initial
// values), then checks it. Every input is checked unless skip_inputs names its index (e.g. labels).
GradCheckReport gradcheck(Layer& layer, const std::vector<Tensor>& inputs, const GradCheckOptions& options = {},
                          const std::vector<int>& skip_inputs = {});

}  // namespace mpncov
