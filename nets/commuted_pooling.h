// Commuted average pooling: an average pooling that keeps its input's spatial size (Inception's branch
// pools: 3x3, stride 1, padding 1), read only by a pointwise convolution right after it (1x1, stride 1,
// unpadded, no bias: Layer::pointwise). The pooling is a linear map over pixels (a fixed weight per tap and
// pixel, whether or not its divisor counts the padding), the convolution one over channels, so they commute
// and the net never stores the pooling's output. Forward runs the convolution on the pooling's input and
// pools the convolution's output, over its fewer channels (32-192 against 192-2048 in inception_v3).
// Backward pools the output gradient with the pooling's adjoint, dy' = P^T dy (avg_pool2d_backward), and
// runs the convolution's backward on the pooling's input with it: dW = dy' x^T = dy (P x)^T, and
// dx = W^T dy' = P^T (W^T dy), the pooling's input gradient, written where the pooling's backward would
// write it. No pooling output (inception_v3 at batch 32: 244 MiB of activations), no gradient of it, and
// both pooling passes over fewer channels. A bias would not commute (a pooling that counts the padding does
// not keep a constant at the borders), hence none.
//
// With in-place execution on (Net::set_in_place(false) keeps every output) and the activations stored in
// the net's type (not bfloat16 storage), on every device; Net::set_pooling_commuted(false) turns it off.
// Evaluation fusion (nets/eval_fusion.h) folds the batch norm after such a convolution into the same run.
#pragma once
#include <memory>
#include <vector>

#include "core/nn_ops.h"
#include "layers/layer.h"

namespace mpncov {

class CommutedPooling {
 public:
  // Finds the pairs from each layer's inputs (net indices, -1 the net input) and readers, whether its
  // output lives in a recomputed chain (shared), its layout and storage type; allocates the scratch (the largest such
  // convolution's output) when there is a pair. Nothing commutes unless `allowed`.
  void plan(const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<std::vector<int>>& inputs,
            const std::vector<std::vector<int>>& consumers, const std::vector<bool>& shared,
            const std::vector<Layout>& layouts, const std::vector<Shape>& output_shapes,
            const std::vector<DType>& output_dtypes, DType dtype, Device device, bool allowed);
  // For a commuted pooling, the convolution that runs it (-1: none); for that convolution, the pooling.
  int conv_of(int pool) const { return at(conv_of_, pool); }
  int pool_of(int conv) const { return at(pool_of_, conv); }
  const ops::Pool2dParams& params(int pool) const { return params_[static_cast<size_t>(pool)]; }
  size_t scratch_bytes() const { return scratch_.defined() ? scratch_.nbytes() : 0; }
  // The scratch as a tensor like `like` (a paired convolution's output or its gradient).
  Tensor scratch_for(const Tensor& like) const;

  // The pair's forward, at the convolution's turn: conv(x) into the scratch, pooled into out.
  void forward(int conv, Layer& layer, const Tensor& x, const Tensor& out);
  // The pair's backward, at the convolution's turn: dout pooled back into the scratch, then the
  // convolution's backward on x with it (parameter gradients added; dx written unless undefined).
  void backward(int conv, Layer& layer, const Tensor& x, const Tensor& out, const Tensor& dout, const Tensor& dx);

 private:
  static int at(const std::vector<int>& v, int i) { return v.empty() ? -1 : v[static_cast<size_t>(i)]; }
  std::vector<int> conv_of_, pool_of_;
  std::vector<ops::Pool2dParams> params_;  // per commuted pooling
  Tensor scratch_;                         // a convolution's output before pooling; its gradient pooled back
};

}  // namespace mpncov
