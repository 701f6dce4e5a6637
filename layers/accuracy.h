// Top-k accuracy: a metric, not a layer. A sample counts when its label is among the k largest scores
// (ties broken towards the lower class index, as torch.topk on CPU in practice; NaN above every number and
// equal to NaN, as torch.topk orders it, so a model whose scores are NaN does not score 100%).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mpncov {

// scores (N, K) float on any device, labels (N) int64: for each k in ks, the number of samples whose label
// is in the top k (copies to the host; k larger than K counts every valid label).
std::vector<int64_t> topk_correct(const Tensor& scores, const Tensor& labels, const std::vector<int64_t>& ks);

}  // namespace mpncov
