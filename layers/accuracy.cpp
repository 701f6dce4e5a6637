#include "layers/accuracy.h"

#include <algorithm>
#include <cmath>

namespace mpncov {

std::vector<int64_t> topk_correct(const Tensor& scores, const Tensor& labels, const std::vector<int64_t>& ks) {
  MPNCOV_CHECK(scores.ndim() == 2, "accuracy: scores must be (N, K), got ", scores.str());
  MPNCOV_CHECK(labels.dtype() == DType::I64 && labels.numel() == scores.dim(0), "accuracy: need ", scores.dim(0),
               " int64 labels, got ", labels.str());
  for (int64_t k : ks) MPNCOV_CHECK(k >= 1, "accuracy: k must be at least 1, got ", k);
  const int64_t n = scores.dim(0), classes = scores.dim(1);
  const std::vector<double> s = scores.to_vector();
  const std::vector<double> l = labels.to_vector();
  std::vector<int64_t> correct(ks.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = static_cast<int64_t>(l[static_cast<size_t>(i)]);
    if (label < 0 || label >= classes) continue;
    const double target = s[static_cast<size_t>(i * classes + label)];
    // Rank of the label: classes scoring higher, or equal with a lower index. NaN is above every number
    // and equal to NaN, as torch.topk orders it: a NaN label score must not rank first by comparing false.
    int64_t rank = 0;
    for (int64_t j = 0; j < classes; ++j) {
      const double v = s[static_cast<size_t>(i * classes + j)];
      const bool higher = std::isnan(v) ? !std::isnan(target) : v > target;
      const bool equal = std::isnan(v) ? std::isnan(target) : v == target;
      if (higher || (equal && j < label)) ++rank;
    }
    for (size_t q = 0; q < ks.size(); ++q)
      if (rank < ks[q]) ++correct[q];
  }
  return correct;
}

}  // namespace mpncov
