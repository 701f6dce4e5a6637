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
//
// Batch norm + add + ReLU (the residual block's last batch norm, its add and the ReLU after it): where an add
// with its ReLU fused in runs in place on its first input and its later-computed input is a batch norm read
// by it alone (outside recomputed chains), a training forward runs the batch norm with the add's other input
// as a residual, writing max(0, bn(x) + residual) straight into the add's output, and skips the add: a
// write and a read of the activation less than batch norm, then add + ReLU. Backward is unchanged: the add
// masks its output gradient into both inputs' gradients, which measured faster than masking inside the
// batch norm's two passes. Bit for bit the three layers (core/nn_ops.h batch_norm_forward_train's residual).
// Evaluation runs the batch norm and the add + ReLU as before (the batch norm is usually folded into its
// convolution there, nets/eval_fusion.h).
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
  // consumers: each layer's readers; shared: whether a layer's output is in a recomputed chain.
  void plan(const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<std::vector<int>>& inputs,
            const std::vector<std::vector<int>>& consumers, const std::vector<bool>& in_place,
            const std::vector<bool>& shared, bool allowed);
  // The layer a ReLU is fused into (-1: none); such a ReLU's forward and backward are skipped.
  int fused_into(int i) const { return fused_into_.empty() ? -1 : fused_into_[static_cast<size_t>(i)]; }
  bool skips(int i) const { return fused_into(i) >= 0; }
  int pairs() const { return pairs_; }
  // Batch norm + add + ReLU: for an add, the batch norm that does its training forward (-1: none); for that
  // batch norm, the add; for the add, which of its inputs (0 or 1) is the residual (the other one).
  int residual_bn_of(int add) const { return at(residual_bn_, add); }
  int residual_add_of(int bn) const { return at(residual_add_, bn); }
  int residual_input_of(int add) const { return at(residual_input_, add); }
  int triples() const { return triples_; }

 private:
  static int at(const std::vector<int>& v, int i) { return v.empty() ? -1 : v[static_cast<size_t>(i)]; }
  std::vector<int> fused_into_, residual_bn_, residual_add_, residual_input_;
  int pairs_ = 0, triples_ = 0;
};

}  // namespace mpncov
