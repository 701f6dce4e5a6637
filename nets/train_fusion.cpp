#include "nets/train_fusion.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace mpncov {

bool train_fusion_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("MPNCOV_TRAIN_FUSION");
    return !(v && std::string(v) == "0");
  }();
  return enabled;
}

void TrainFusion::plan(const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<std::vector<int>>& inputs,
                       const std::vector<std::vector<int>>& consumers, const std::vector<bool>& in_place,
                       const std::vector<bool>& shared, bool allowed) {
  const size_t n = layers.size();
  fused_into_.assign(n, -1);
  residual_bn_.assign(n, -1);
  residual_add_.assign(n, -1);
  residual_input_.assign(n, -1);
  pairs_ = triples_ = 0;
  std::vector<bool> fused(n, false);
  if (allowed && train_fusion_enabled()) {
    for (size_t i = 0; i < n; ++i) {
      // In place on its input, which the net grants only to the input's sole reader.
      if (layers[i]->type() != "relu" || !in_place[i]) continue;
      const int j = inputs[i][0];
      if (layers[static_cast<size_t>(j)]->fuse_relu(true)) {
        fused_into_[i] = j;
        fused[static_cast<size_t>(j)] = true;
        ++pairs_;
      }
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (!fused[i]) layers[i]->fuse_relu(false);
  // Batch norm + add + ReLU. The batch norm must be the add's later input, so that the residual exists when
  // it runs; the add in place on its first input, so that the batch norm writes storage that is live from
  // that input on (the first input's own).
  std::vector<bool> residual(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (!fused[i] || layers[i]->type() != "add" || inputs[i].size() != 2 || !in_place[i] || shared[i]) continue;
    const int a = inputs[i][0], b = inputs[i][1];
    const int j = std::max(a, b);
    if (a == b || j < 0) continue;
    const size_t bn = static_cast<size_t>(j);
    if (consumers[bn].size() != 1 || shared[bn] || fused[bn] || !layers[bn]->fuse_residual_relu(true)) continue;
    residual_bn_[i] = j;
    residual_add_[bn] = static_cast<int>(i);
    residual_input_[i] = j == a ? 1 : 0;
    residual[bn] = true;
    ++triples_;
  }
  for (size_t i = 0; i < n; ++i)
    if (!residual[i]) layers[i]->fuse_residual_relu(false);
}

}  // namespace mpncov
