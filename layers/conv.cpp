// conv: 2-D convolution (PyTorch's Conv2d). Keys: out_channels (required), kernel_size (required),
// stride 1, padding 0, dilation 1, groups 1, bias true, and the weight keys of layers/init.h.
// Parameters: weight (O, C/groups, kh, kw), bias (O).
#include "core/mixed_ops.h"
#include "core/nn_ops.h"
#include "layers/init.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class ConvLayer : public Layer {
 public:
  explicit ConvLayer(Config& c) {
    require_key(c, "out_channels");
    out_channels_ = c.require<int64_t>("out_channels");
    c.check(out_channels_ > 0, "out_channels", "must be positive");
    require_key(c, "kernel_size");
    kernel_ = c.get_pair("kernel_size", {1, 1});
    c.check(kernel_.first > 0 && kernel_.second > 0, "kernel_size", "must be positive");
    const auto stride = c.get_pair("stride", {1, 1});
    c.check(stride.first > 0 && stride.second > 0, "stride", "must be positive");
    const auto pad = c.get_pair("padding", {0, 0});
    c.check(pad.first >= 0 && pad.second >= 0, "padding", "must be non-negative");
    const auto dil = c.get_pair("dilation", {1, 1});
    c.check(dil.first > 0 && dil.second > 0, "dilation", "must be positive");
    p_.groups = c.get<int64_t>("groups", 1);
    c.check(p_.groups > 0, "groups", "must be positive");
    c.check(out_channels_ % p_.groups == 0, "groups", str("(", p_.groups, ") must divide out_channels (",
                                                           out_channels_, ")"));
    bias_ = c.get<bool>("bias", true);
    p_.stride_h = stride.first;
    p_.stride_w = stride.second;
    p_.pad_h = pad.first;
    p_.pad_w = pad.second;
    p_.dilation_h = dil.first;
    p_.dilation_w = dil.second;
    options_ = read_weight_options(c);
  }

  std::string type() const override { return "conv"; }

  // Backward reads the inputs, never the output: a ReLU may overwrite it in place.

  bool backward_uses_outputs() const override { return false; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1);
    MPNCOV_CHECK(in[0].ndim() == 4, "conv layer '", ctx.name, "': input must be (N, C, H, W), got ", in[0].str());
    const int64_t c = in[0][1];
    MPNCOV_CHECK(c % p_.groups == 0, "conv layer '", ctx.name, "': groups (", p_.groups, ") must divide the ", c,
                 " input channels");
    const Shape wshape{out_channels_, c / p_.groups, kernel_.first, kernel_.second};
    const ops::ConvGeometry g = ops::conv_geometry(in[0], wshape, p_);
    const bool fresh = parameters().empty();
    // Backward writes the weight gradient after a zero_grad rather than adding to zeros.
    add_parameter("weight", wshape, ctx).overwrite_grad = true;
    Tensor b;
    if (bias_) b = add_parameter("bias", Shape{out_channels_}, ctx).value;
    if (fresh) {
      const int64_t fan_in = wshape[1] * kernel_.first * kernel_.second;
      const int64_t fan_out = out_channels_ * kernel_.first * kernel_.second;
      init_weight_and_bias(options_, parameter("weight").value, b, fan_in, fan_out, ctx.seed,
                           stream_of(ctx.name, "weight"), stream_of(ctx.name, "bias"));
      apply_multipliers(options_, *this);
    }
    flops_ = 2.0 * static_cast<double>(in[0][0] * out_channels_ * g.out_h() * g.out_w() * g.col_rows());
    return {Shape{in[0][0], out_channels_, g.out_h(), g.out_w()}};
  }

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor b = bias_ ? parameter("bias").value : Tensor();
    const Tensor& w = parameter("weight").value;
    // Training forwards keep their bfloat16 weights for the backward pass (ops::ConvWeightCache); any other
    // forward drops the copy, so a backward after it never sees older weights.
    weights_bf16_.plan = nullptr;
    if (precision() == Precision::BFloat16)
      return ops::conv2d_forward_bf16(in[0], w, b, out[0], p_, training() ? &weights_bf16_ : nullptr);
    ops::conv2d_forward(in[0], w, b, out[0], p_);
  }

  bool forward_affine(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const Tensor& scale,
                      const Tensor& shift, bool relu, ops::PreparedConv* prepared, const Tensor& residual) override {
    if (precision() != Precision::Float32) return false;
    const Tensor b = bias_ ? parameter("bias").value : Tensor();
    return ops::conv2d_forward_affine(in[0], parameter("weight").value, b, out[0], p_, scale, shift, relu, prepared,
                                      residual);
  }

  bool pointwise() const override {
    return kernel_ == std::make_pair<int64_t, int64_t>(1, 1) && p_.stride_h == 1 && p_.stride_w == 1 && p_.pad_h == 0 &&
           p_.pad_w == 0 && p_.groups == 1 && !bias_;
  }

  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    Parameter& w = parameters()[0];
    Tensor dw = w.frozen ? Tensor() : w.grad;
    Tensor db;
    if (bias_ && !parameters()[1].frozen) db = parameters()[1].grad;
    // Written, not accumulated, when zero_grad left the zeroing to us (Parameter::grad_zero_pending).
    const bool accumulate = !(dw.defined() && w.grad_zero_pending);
    if (precision() == Precision::BFloat16) {
      MPNCOV_CHECK(!adds_input_grad(0), "conv: adding the input gradient is float32's (can_add_input_grad)");
      ops::conv2d_backward_bf16(in[0], w.value, dout[0], din[0], dw, db, p_, accumulate, &weights_bf16_);
    } else {
      weights_bf16_.plan = nullptr;
      ops::conv2d_backward(in[0], w.value, dout[0], din[0], dw, db, p_, accumulate, adds_input_grad(0));
    }
    if (dw.defined()) w.grad_zero_pending = false;
  }

  // In float32, where the route adds it in its own passes (a pointwise layer's, ops::conv2d_adds_input_grad).
  bool can_add_input_grad(size_t k, Layout in, Layout out, DType dtype, Device device) const override {
    return k == 0 && precision() == Precision::Float32 &&
           ops::conv2d_adds_input_grad(parameters()[0].value.shape(), p_, dtype, device, in, out);
  }

  double flops() const override { return flops_; }

  // Any input layout (oneDNN reorders an NCHW one); the output in the layout its kernels prefer.
  Layout output_layout(const std::vector<Layout>&) const override {
    return convolution_layout(precision() == Precision::BFloat16, out_channels_);
  }
  bool accepts_layout(size_t, Layout, Layout) const override { return true; }

 private:
  int64_t out_channels_ = 0;
  std::pair<int64_t, int64_t> kernel_;
  ops::Conv2dParams p_;
  bool bias_ = true;
  WeightOptions options_;
  double flops_ = 0;
  ops::ConvWeightCache weights_bf16_;  // the training forward's bfloat16 weights, for its backward pass
};

}  // namespace

MPNCOV_REGISTER_LAYER({"conv", "2-D convolution (groups, dilation, bias)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<ConvLayer>(c); },
                       {},
                       {{"{out_channels: 4, kernel_size: 3}", {{2, 3, 6, 6}}},
                        {"{out_channels: 4, kernel_size: 3, stride: 2, padding: 1, bias: false}", {{2, 3, 7, 7}}},
                        {"{out_channels: 3, kernel_size: [3, 2], stride: [1, 2], padding: [2, 1], dilation: 2}",
                         {{2, 2, 7, 6}}},
                        {"{out_channels: 6, kernel_size: 3, padding: 1, groups: 2}", {{2, 4, 5, 5}}},
                        {"{out_channels: 5, kernel_size: 1}", {{2, 3, 4, 4}}},
                        {"{out_channels: 4, kernel_size: 1, stride: 2, init: kaiming_normal_fan_out}",
                         {{1, 3, 5, 5}}}}});

}  // namespace mpncov
