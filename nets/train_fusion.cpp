#include "nets/train_fusion.h"

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
                       const std::vector<bool>& in_place, bool allowed) {
  const size_t n = layers.size();
  fused_into_.assign(n, -1);
  pairs_ = 0;
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
}

}  // namespace mpncov
