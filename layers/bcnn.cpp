// bcnn: bilinear pooling (Lin et al., ICCV 2015) as fast-MPN-COV's BCNN module computes it:
//   Z = X X^T / M (no centring), y = sign(Z) sqrt(|Z| + thresh), flattened to (B, C^2), then divided by its
//   L2 norm (at least 1e-12, as F.normalize). Input (B, C, H, W) or (B, C, L). Key: thresh (1e-8).
// Backward: through the normalisation and the signed root to dL/dZ, then dX = (dZ + dZ^T) X / M.
#include "core/matrix_ops.h"
#include "core/ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

constexpr double kNormEps = 1e-12;

class BcnnLayer : public Layer {
 public:
  explicit BcnnLayer(Config& c) : thresh_(get_finite(c, "thresh", 1e-8)) {
    c.check(thresh_ >= 0, "thresh", "must be non-negative");
  }
  std::string type() const override { return "bcnn"; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext&) override {
    check_arity(*this, in, 1);
    const Shape& s = in[0];
    MPNCOV_CHECK(s.ndim() == 3 || s.ndim() == 4, "bcnn layer takes (B, C, H, W) or (B, C, L), got ", s.str());
    batch_ = s[0];
    channels_ = s[1];
    positions_ = s.numel() / std::max<int64_t>(1, batch_ * channels_);
    MPNCOV_CHECK(channels_ > 0 && positions_ > 0, "bcnn layer: empty feature map ", s.str());
    return {Shape({batch_, channels_ * channels_})};
  }

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor x = in[0].reshape({batch_, channels_, positions_});
    const Shape square({batch_, channels_, channels_});
    ensure_tensor(z_, square, x.dtype(), x.device());
    ensure_tensor(norm_, {batch_}, x.dtype(), x.device());
    ops::square_matmul(x, x, z_, ops::Structure::Symmetric, false, true, 1.0 / static_cast<double>(positions_));
    const Tensor y = out[0].reshape({batch_, channels_ * channels_});
    ops::signed_sqrt(z_, thresh_, y);
    ops::l2_normalize_rows(y, kNormEps, y, norm_);
  }

  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    const Shape square({batch_, channels_, channels_});
    ensure_tensor(dz_, square, dout[0].dtype(), dout[0].device());
    ensure_tensor(dzs_, square, dout[0].dtype(), dout[0].device());
    ops::l2_normalize_rows_backward(out[0], norm_, dout[0], kNormEps, dz_);
    ops::signed_sqrt_backward(z_, dz_, thresh_, dz_);
    ops::symmetric_combine(0.0, Tensor(), 1.0, dz_, 1, 0.0, Tensor(), dzs_);
    ops::gemm(false, false, channels_, positions_, channels_, 1.0 / static_cast<double>(positions_),
              {dzs_, 0, channels_, channels_ * channels_}, {in[0], 0, positions_, channels_ * positions_}, 0.0,
              din[0].reshape({batch_, channels_, positions_}), 0, positions_, channels_ * positions_, batch_);
  }

  double flops() const override {
    return 2.0 * static_cast<double>(batch_) * static_cast<double>(channels_ * channels_) *
           static_cast<double>(positions_);
  }

 private:
  double thresh_;
  int64_t batch_ = 0, channels_ = 0, positions_ = 0;
  Tensor z_, norm_, dz_, dzs_;  // Z and the norms are kept from forward to backward
};

}  // namespace

MPNCOV_REGISTER_LAYER({"bcnn", "bilinear pooling: X X^T / M, signed square root, L2 normalisation (key thresh)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<BcnnLayer>(c); },
                       {{2, 4, 3, 3}}});

}  // namespace mpncov
