// gavp: global average pooling, fast-MPN-COV's GAvP representation (AdaptiveAvgPool2d(1) then flatten):
// (B, C, H, W) or (B, C, L) -> (B, C). No keys.
#include "core/nn_ops.h"
#include "core/ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class GavpLayer : public Layer {
 public:
  explicit GavpLayer(Config&) {}
  std::string type() const override { return "gavp"; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext&) override {
    check_arity(*this, in, 1);
    const Shape& s = in[0];
    MPNCOV_CHECK(s.ndim() == 3 || s.ndim() == 4, "gavp layer takes (B, C, H, W) or (B, C, L), got ", s.str());
    four_d_ = s.ndim() == 4;
    batch_ = s[0];
    channels_ = s[1];
    positions_ = s.numel() / std::max<int64_t>(1, batch_ * channels_);
    MPNCOV_CHECK(channels_ > 0 && positions_ > 0, "gavp layer: empty feature map ", s.str());
    return {Shape({batch_, channels_})};
  }

  // A (B, C, H, W) input may come in any layout (core/layout.h); the output is (B, C).
  bool accepts_layout(size_t, Layout in, Layout) const override { return in == Layout::NCHW || four_d_; }

  // An input in a kernel layout or in bfloat16 (a float32 output) pools through the global pooling op, which
  // takes both; an NCHW one is viewed as (B, C, L, 1) for it.
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    if (pooling_op(in[0]))
      return ops::adaptive_avg_pool2d_forward(as_4d(in[0]), out[0].reshape({batch_, channels_, 1, 1}));
    ops::reduce(ops::Reduce::Mean, in[0].reshape({batch_, channels_, positions_}), {2}, out[0]);
  }

  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    if (pooling_op(din[0]))
      return ops::adaptive_avg_pool2d_backward(dout[0].reshape({batch_, channels_, 1, 1}), as_4d(din[0]));
    // dX[b, c, :] = dY[b, c] / M: 1/M everywhere, times each row's gradient (a per-channel broadcast).
    const Tensor dx = din[0].reshape({1, batch_ * channels_, positions_});
    ops::fill(dx, 1.0 / static_cast<double>(positions_));
    ops::binary(ops::Binary::Mul, dx, dout[0].reshape({batch_ * channels_}), dx);
  }

  double flops() const override { return static_cast<double>(batch_ * channels_ * positions_); }

 private:
  static bool pooling_op(const Tensor& t) { return t.layout() != Layout::NCHW || t.dtype() == DType::BF16; }
  Tensor as_4d(const Tensor& t) const {
    return t.layout() == Layout::NCHW ? t.reshape({batch_, channels_, positions_, 1}) : t;
  }

  int64_t batch_ = 0, channels_ = 0, positions_ = 0;
  bool four_d_ = false;
};

}  // namespace

MPNCOV_REGISTER_LAYER({"gavp", "global average pooling, (B, C, H, W) -> (B, C)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<GavpLayer>(c); },
                       {{2, 4, 3, 3}}});

}  // namespace mpncov
