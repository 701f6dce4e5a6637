// Helpers the layers share: checking inputs at setup and keeping per-layer state tensors (saved
// statistics, max-pool indices, dropout masks) on the inputs' device and dtype.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/tensor.h"
#include "core/text.h"
#include "layers/layer.h"

namespace mpncov {

// Throws unless there are `count` inputs (or at least `count` when at_least).
inline void check_arity(const Layer& layer, const std::vector<Shape>& inputs, size_t count, bool at_least = false) {
  MPNCOV_CHECK(at_least ? inputs.size() >= count : inputs.size() == count, layer.type(), " layer takes ",
               at_least ? "at least " : "", count, " input(s), got ", inputs.size());
}

// Fails unless the key is present (Config names a present key spelled close to it as a likely typo).
inline void require_key(Config& c, const std::string& key) {
  if (!c.has(key)) c.fail(key, "is required");
}

// A number key, which must be finite: YAML reads .nan and .inf as numbers, and no layer key means anything
// by them (an lrn beta of .nan made every output NaN, an eps of .inf every covariance guarded).
inline double get_finite(Config& c, const std::string& key, double fallback) {
  const double v = c.get<double>(key, fallback);
  c.check(std::isfinite(v), key, str("expected a finite number, got ", v));
  return v;
}

// Makes t a tensor of this shape, dtype and device, reusing its storage when it already is one.
inline void ensure_tensor(Tensor& t, const Shape& shape, DType dtype, Device device) {
  if (t.defined() && t.shape() == shape && t.dtype() == dtype && t.device() == device) return;
  t = Tensor::empty(shape, dtype, device);
}

// A pair of integers read as "NxM" in messages.
inline std::string pair_str(std::pair<int64_t, int64_t> p) { return str(p.first, "x", p.second); }

}  // namespace mpncov
