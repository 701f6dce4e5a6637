// maxpool and avgpool: 2-D pooling with PyTorch's output-size rules. Keys: kernel_size (required),
// stride (default kernel_size), padding 0 (at most half the kernel), ceil_mode false, and for avgpool
// count_include_pad true.
#include "core/nn_ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

ops::Pool2dParams read_pool(Config& c, bool average) {
  ops::Pool2dParams p;
  require_key(c, "kernel_size");
  const auto k = c.get_pair("kernel_size", {1, 1});
  c.check(k.first > 0 && k.second > 0, "kernel_size", "must be positive");
  const auto s = c.get_pair("stride", k);
  c.check(s.first > 0 && s.second > 0, "stride", "must be positive");
  const auto pad = c.get_pair("padding", {0, 0});
  c.check(pad.first >= 0 && pad.second >= 0, "padding", "must be non-negative");
  c.check(2 * pad.first <= k.first && 2 * pad.second <= k.second, "padding",
          str("must be at most half of kernel_size (", pair_str(k), ")"));
  p.kernel_h = k.first;
  p.kernel_w = k.second;
  p.stride_h = s.first;
  p.stride_w = s.second;
  p.pad_h = pad.first;
  p.pad_w = pad.second;
  p.ceil_mode = c.get<bool>("ceil_mode", false);
  if (average) p.count_include_pad = c.get<bool>("count_include_pad", true);
  return p;
}

Shape pooled_shape(const Layer& layer, const std::vector<Shape>& in, const ops::Pool2dParams& p,
                   const SetupContext& ctx) {
  check_arity(layer, in, 1);
  MPNCOV_CHECK(in[0].ndim() == 4, layer.type(), " layer '", ctx.name, "': input must be (N, C, H, W), got ",
               in[0].str());
  try {
    return Shape{in[0][0], in[0][1], ops::pool_output_size(in[0][2], p.kernel_h, p.stride_h, p.pad_h, p.ceil_mode),
                 ops::pool_output_size(in[0][3], p.kernel_w, p.stride_w, p.pad_w, p.ceil_mode)};
  } catch (const Error& e) {
    throw Error(str(layer.type(), " layer '", ctx.name, "' on input ", in[0].str(), ": ", e.what()));
  }
}

class MaxPoolLayer : public Layer {
 public:
  explicit MaxPoolLayer(Config& c) : p_(read_pool(c, false)) {}
  std::string type() const override { return "maxpool"; }
  // Any layout (core/layout.h), the output in the input's.
  Layout output_layout(const std::vector<Layout>& in) const override { return in[0]; }
  bool accepts_layout(size_t, Layout in, Layout out) const override { return in == out; }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    return {pooled_shape(*this, in, p_, ctx)};
  }
  // Evaluation keeps no positions (int64, twice a float32 output's bytes): a backward after it finds them
  // again from its input.
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    if (training()) ensure_tensor(index_, out[0].shape(), DType::I64, out[0].device());
    else index_ = Tensor();
    ops::max_pool2d_forward(in[0], out[0], index_, p_);
  }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    if (!index_.defined()) {  // the forward ran in evaluation: the same maxima, now with their positions
      ensure_tensor(index_, out[0].shape(), DType::I64, out[0].device());
      ops::max_pool2d_forward(in[0], Tensor::empty(out[0].shape(), out[0].dtype(), out[0].device()).with_layout(out[0].layout()),
                              index_, p_);
    }
    ops::max_pool2d_backward(dout[0], index_, din[0], p_);
  }

 private:
  ops::Pool2dParams p_;
  Tensor index_;  // where each maximum came from, for the backward (none after an evaluation forward)
};

class AvgPoolLayer : public Layer {
 public:
  explicit AvgPoolLayer(Config& c) : p_(read_pool(c, true)) {}
  std::string type() const override { return "avgpool"; }
  bool average_pool(ops::Pool2dParams& params) const override {
    params = p_;
    return true;
  }
  // Any layout (core/layout.h), the output in the input's.
  Layout output_layout(const std::vector<Layout>& in) const override { return in[0]; }
  bool accepts_layout(size_t, Layout in, Layout out) const override { return in == out; }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    return {pooled_shape(*this, in, p_, ctx)};
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    ops::avg_pool2d_forward(in[0], out[0], p_);
  }
  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (din[0].defined()) ops::avg_pool2d_backward(dout[0], din[0], p_);
  }

 private:
  ops::Pool2dParams p_;
};

}  // namespace

MPNCOV_REGISTER_LAYER({"maxpool", "2-D max pooling (padding, ceil mode)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<MaxPoolLayer>(c); },
                       {},
                       {{"{kernel_size: 2}", {{2, 2, 4, 4}}},
                        {"{kernel_size: 3, stride: 2, padding: 1}", {{2, 2, 6, 6}}},
                        {"{kernel_size: 3, stride: 2, ceil_mode: true}", {{1, 2, 6, 7}}},
                        {"{kernel_size: [2, 3], stride: [1, 2], padding: [1, 1]}", {{1, 2, 5, 5}}},
                        // evaluation: the forward keeps no positions, the backward finds them again
                        {"{kernel_size: 3, stride: 2, padding: 1}", {{2, 2, 6, 6}}, false}}});
MPNCOV_REGISTER_LAYER({"avgpool", "2-D average pooling (padding, ceil mode, count_include_pad)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<AvgPoolLayer>(c); },
                       {},
                       {{"{kernel_size: 2}", {{2, 2, 4, 4}}},
                        {"{kernel_size: 3, stride: 2, padding: 1}", {{2, 2, 6, 6}}},
                        {"{kernel_size: 3, stride: 2, padding: 1, count_include_pad: false}", {{2, 2, 6, 6}}},
                        {"{kernel_size: 3, stride: 2, padding: 1, ceil_mode: true}", {{1, 2, 6, 7}}},
                        {"{kernel_size: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}",
                         {{1, 2, 6, 7}}}}});

}  // namespace mpncov
