// lrn: local response normalisation across channels (PyTorch's LocalResponseNorm):
// y = x / (k + alpha/size * sum of x^2 over `size` neighbouring channels)^beta.
// Keys: size (required), alpha 1e-4, beta 0.75, k 1. Input (N, C, L) or (N, C, H, W), not (N, C).
#include "core/nn_ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class LrnLayer : public Layer {
 public:
  explicit LrnLayer(Config& c) {
    require_key(c, "size");
    p_.size = c.require<int64_t>("size");
    c.check(p_.size >= 1, "size", "must be at least 1");
    p_.alpha = get_finite(c, "alpha", 1e-4);
    p_.beta = get_finite(c, "beta", 0.75);
    p_.k = get_finite(c, "k", 1.0);
    c.check(p_.k > 0, "k", "must be positive");
    c.check(p_.alpha >= 0, "alpha", "must be non-negative");
  }
  std::string type() const override { return "lrn"; }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1);
    // PyTorch's LocalResponseNorm refuses a 2-D (N, C) input too: its channel window runs over a
    // feature map or sequence.
    MPNCOV_CHECK(in[0].ndim() >= 3, "lrn layer '", ctx.name, "': input must have 3 or more dimensions, (N, C, L) or ",
                 "(N, C, H, W), as PyTorch's LocalResponseNorm requires; got ", in[0].str(),
                 " (put it before the layer that flattens the features)");
    return {in[0]};
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    ensure_tensor(scale_, in[0].shape(), in[0].dtype(), in[0].device());
    ops::lrn_forward(in[0], out[0], scale_, p_);
  }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (din[0].defined()) ops::lrn_backward(in[0], out[0], scale_, dout[0], din[0], p_);
  }

 private:
  ops::LrnParams p_;
  Tensor scale_;
};

}  // namespace

MPNCOV_REGISTER_LAYER({"lrn", "local response normalisation across channels",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<LrnLayer>(c); },
                       {},
                       {{"{size: 3, alpha: 0.5, beta: 0.75, k: 1.5}", {{2, 6, 3, 3}}},
                        {"{size: 4, alpha: 1.0, beta: 0.6, k: 2.0}", {{2, 5, 2, 2}}}}});

}  // namespace mpncov
