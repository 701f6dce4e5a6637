// Batch norm + ReLU and add + ReLU fusion: a ReLU that runs in place on a batch norm's output (the batch
// norm 4-D, not synchronised) or on a residual add's (two inputs), the ReLU its only reader, runs inside
// that layer's own passes, in training and in evaluation. Forward writes max(0, a x + b) (max(0, a + b))
// directly, one pass over the activation less; backward takes the gradient of the ReLU's output and masks it
// by that output > 0 within its passes (the batch norm's two; the add's copy to its inputs' gradients), with
// no relu_backward pass. Results are those of the two layers bit for bit (core/nn_ops.h batch_norm_*'s relu,
// add_relu_*). The ReLU layer then does nothing: its output is the producer's buffer, its gradient the
// producer's.
//
// Only on the CPU for float32 nets (activations stored in float32 or bfloat16, every layout); CUDA and
// float64 nets, in-place execution off (Net::set_in_place(false)), Net::set_train_fusion(false) or
// MPNCOV_TRAIN_FUSION=0 in the environment run the layers one by one. In evaluation, a batch norm that
// evaluation fusion (nets/eval_fusion.h) folds into its convolution does nothing either; when that
// convolution cannot fuse, the batch norm runs with its ReLU. A recomputed chain (Net::recompute) redoes the
// batch norm with its ReLU and skips the ReLU.
#pragma once
#include <memory>
#include <vector>

#include "layers/layer.h"

namespace mpncov {

// Whether MPNCOV_TRAIN_FUSION allows fusion (read once per process; anything but "0" does).
bool train_fusion_enabled();

class TrainFusion {
 public:
  // Finds the pairs from each layer's inputs (net indices, -1 the net input) and whether it runs in place on
  // its first input, and turns the ReLU on in their batch norms (off in every other layer). Nothing fuses
  // unless `allowed` (CPU, float32 net, on) and the environment allows it.
  void plan(const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<std::vector<int>>& inputs,
            const std::vector<bool>& in_place, bool allowed);
  // The layer a ReLU is fused into (-1: none); such a ReLU's forward and backward are skipped.
  int fused_into(int i) const { return fused_into_.empty() ? -1 : fused_into_[static_cast<size_t>(i)]; }
  bool skips(int i) const { return fused_into(i) >= 0; }
  int pairs() const { return pairs_; }

 private:
  std::vector<int> fused_into_;
  int pairs_ = 0;
};

}  // namespace mpncov
