// mpncov: iSQRT-COV global covariance pooling (fast-MPN-COV's MPNCOV module without its optional 1x1
// reduction, which the net builder expands into conv/batchnorm/relu layers before this one).
//   input  (B, C, H, W), or (B, C, L) for one-dimensional features; M = H W (or L) positions
//   Sigma  = Xc Xc^T / M with Xc = X minus each channel's mean (= X I_hat X^T, never forming I_hat)
//   sqrt   (default true): sqrt(tr Sigma) * Newton-Schulz root of Sigma / tr Sigma (layers/newton_schulz.h)
//   vectorize (default true): the upper triangle with the diagonal, row-major, (B, C(C+1)/2) (32896 for
//          C = 256: the column order of the seed's released fc weights); else the (B, C, C) matrix
// Keys: iterations (5), sqrt (true), vectorize (true), eps (1e-10, the trace guard), spectral_min (128: from
// this C on, a training forward on the CPU evaluates the same iteration polynomial by eigendecomposition,
// layers/newton_schulz.h).
//
// Backward: dX = (G_Sigma + G_Sigma^T) Xc / M. Only the symmetric part of the gradient reaching Sigma
// matters, so the upstream gradient is symmetrised first ((G + G^T)/2; for the vector, each off-diagonal
// value halved into both places) and the square root's backward runs on symmetric matrices only. The
// result is the exact gradient (the seed's differs before covariance pooling, not after: see
// docs/representations.md).
#include "core/matrix_ops.h"
#include "core/ops.h"
#include "layers/layer_util.h"
#include "layers/newton_schulz.h"

namespace mpncov {
namespace {

class MpncovLayer : public Layer {
 public:
  explicit MpncovLayer(Config& c)
      : sqrt_(c.get<bool>("sqrt", true)),
        vectorize_(c.get<bool>("vectorize", true)),
        ns_(c.get<int>("iterations", 5), get_finite(c, "eps", 1e-10), true, c.get<int64_t>("spectral_min", 128)) {
    c.check(ns_.iterations() >= 1 && ns_.iterations() <= kMaxNewtonSchulzIterations, "iterations",
            str("must lie in [1, ", kMaxNewtonSchulzIterations, "] (the iteration has converged by then), got ",
                ns_.iterations()));
    c.check(ns_.eps() > 0, "eps", "must be positive");
  }
  std::string type() const override { return "mpncov"; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext&) override {
    check_arity(*this, in, 1);
    const Shape& s = in[0];
    MPNCOV_CHECK(s.ndim() == 3 || s.ndim() == 4, "mpncov layer takes (B, C, H, W) or (B, C, L), got ", s.str());
    batch_ = s[0];
    channels_ = s[1];
    positions_ = s.numel() / std::max<int64_t>(1, batch_ * channels_);
    MPNCOV_CHECK(channels_ > 0 && positions_ > 0, "mpncov layer: empty feature map ", s.str());
    // One position has zero covariance in every image: the output would be constant and nothing before
    // the layer would learn (the trace guard keeps it finite, so training would run on silently).
    MPNCOV_CHECK(positions_ > 1, "mpncov layer: its input ", s.str(), " has one spatial position, whose covariance is ",
                 "zero for every image, so nothing before it would learn; give the net a larger input (data.image_size, ",
                 "--input) or pool an earlier, larger feature map");
    if (vectorize_) return {Shape({batch_, channels_ * (channels_ + 1) / 2})};
    return {Shape({batch_, channels_, channels_})};
  }

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor x = in[0].reshape({batch_, channels_, positions_});
    const DType dt = x.dtype();
    const Device dev = x.device();
    ensure_tensor(xc_, x.shape(), dt, dev);
    ensure_tensor(sigma_, {batch_, channels_, channels_}, dt, dev);
    ops::center_rows(x, xc_);
    ops::square_matmul(xc_, xc_, sigma_, ops::Structure::Symmetric, false, true,
                       1.0 / static_cast<double>(positions_));
    if (!sqrt_) {
      if (vectorize_) ops::triu_gather(sigma_, Tensor(), out[0]);
      else ops::unary(ops::Unary::Copy, sigma_, out[0]);
      return;
    }
    ns_.forward(sigma_, training());
    if (vectorize_) ops::triu_gather(ns_.root(), ns_.scale(), out[0]);
    else ops::add_identity(ns_.root(), 1.0, 0.0, out[0], ns_.scale());
  }

  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    const DType dt = dout[0].dtype();
    const Device dev = dout[0].device();
    const Shape square({batch_, channels_, channels_});
    ensure_tensor(g_, square, dt, dev);
    ensure_tensor(dsigma_, square, dt, dev);
    // g_ = the symmetric part of dL/d(output matrix), times sqrt(t) when the root is post-compensated.
    const Tensor scale = sqrt_ ? ns_.scale() : Tensor();
    if (vectorize_) {
      ops::triu_scatter(dout[0], scale, g_, true);
    } else {
      ops::symmetric_combine(0.0, Tensor(), 0.5, dout[0].reshape({batch_, channels_, channels_}), 1, 0.0, Tensor(),
                             g_);
      if (sqrt_) ops::add_identity(g_, 1.0, 0.0, g_, scale);
    }
    const Tensor& gs = sqrt_ ? dsigma_ : g_;
    if (sqrt_) ns_.backward(g_, 1, dsigma_);
    // dX = (dSigma + dSigma^T) Xc / M = 2 dSigma Xc / M.
    const Tensor dx = din[0].reshape({batch_, channels_, positions_});
    ops::gemm(false, false, channels_, positions_, channels_, 2.0 / static_cast<double>(positions_),
              {gs, 0, channels_, channels_ * channels_}, {xc_, 0, positions_, channels_ * positions_}, 0.0, dx, 0,
              positions_, channels_ * positions_, batch_);
  }

  std::map<std::string, double> diagnostics() const override {
    if (!sqrt_) return {};
    return {{"guarded_samples", static_cast<double>(ns_.guarded())}};
  }

  double flops() const override {
    const double b = static_cast<double>(batch_), c = static_cast<double>(channels_);
    const double m = static_cast<double>(positions_);
    return b * (2 * c * c * m + (sqrt_ ? ns_.forward_products() * 2 * c * c * c : 0.0));
  }

 private:
  bool sqrt_, vectorize_;
  NewtonSchulzSqrt ns_;
  int64_t batch_ = 0, channels_ = 0, positions_ = 0;
  Tensor xc_, sigma_, g_, dsigma_;  // Xc is kept from forward to backward
};

}  // namespace

MPNCOV_REGISTER_LAYER({"mpncov",
                       "iSQRT-COV: covariance pooling, Newton-Schulz square root, upper-triangle vector (keys "
                       "iterations, sqrt, vectorize, eps, spectral_min)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<MpncovLayer>(c); },
                       {{2, 6, 4, 5}}});

}  // namespace mpncov
