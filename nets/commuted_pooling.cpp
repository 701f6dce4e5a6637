#include "nets/commuted_pooling.h"

#include <algorithm>

namespace mpncov {
namespace {

// Whether a pooling's output has its input's size (stride 1, the padding making up for the window).
bool keeps_size(const ops::Pool2dParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && 2 * p.pad_h == p.kernel_h - 1 && 2 * p.pad_w == p.kernel_w - 1;
}

}  // namespace

void CommutedPooling::plan(const std::vector<std::unique_ptr<Layer>>& layers,
                           const std::vector<std::vector<int>>& inputs, const std::vector<std::vector<int>>& consumers,
                           const std::vector<bool>& shared, const std::vector<Layout>& layouts,
                           const std::vector<Shape>& output_shapes, const std::vector<DType>& output_dtypes,
                           DType dtype, Device device, bool allowed) {
  const size_t n = layers.size();
  conv_of_.assign(n, -1);
  pool_of_.assign(n, -1);
  params_.assign(n, ops::Pool2dParams());
  scratch_ = Tensor();
  int64_t largest = 0;
  for (size_t pool = 0; allowed && pool + 1 < n; ++pool) {
    const size_t conv = pool + 1;
    // The pooling's input must still hold its forward values at the convolution's backward: a kept output
    // or the net input, not one a recomputed chain overwrites. The convolution reads the pooling alone.
    const bool pair = inputs[pool].size() == 1 && consumers[pool].size() == 1 && !shared[pool] &&
                      inputs[conv].size() == 1 && inputs[conv][0] == static_cast<int>(pool) &&
                      (inputs[pool][0] < 0 || !shared[static_cast<size_t>(inputs[pool][0])]) &&
                      (inputs[pool][0] < 0 || layouts[static_cast<size_t>(inputs[pool][0])] == layouts[pool]) &&
                      layers[pool]->average_pool(params_[pool]) && keeps_size(params_[pool]) &&
                      layers[conv]->pointwise() && output_dtypes[pool] == dtype && output_dtypes[conv] == dtype;
    if (!pair) continue;
    conv_of_[pool] = static_cast<int>(conv);
    pool_of_[conv] = static_cast<int>(pool);
    largest = std::max(largest, output_shapes[conv].numel());
  }
  if (largest > 0) scratch_ = Tensor::empty(Shape{largest}, dtype, device);
}

Tensor CommutedPooling::scratch_for(const Tensor& like) const {
  return scratch_.view(like.dtype(), like.shape()).with_layout(like.layout());
}

void CommutedPooling::forward(int conv, Layer& layer, const Tensor& x, const Tensor& out) {
  const Tensor unpooled = scratch_for(out);
  layer.forward({x}, {unpooled});
  ops::avg_pool2d_forward(unpooled, out, params(pool_of(conv)));
}

void CommutedPooling::backward(int conv, Layer& layer, const Tensor& x, const Tensor& out, const Tensor& dout,
                               const Tensor& dx) {
  const Tensor pooled_back = scratch_for(dout);
  ops::avg_pool2d_backward(dout, pooled_back, params(pool_of(conv)));
  layer.backward({x}, {out}, {pooled_back}, {dx});
}

}  // namespace mpncov
