// The three stages of the seed's iSQRT-COV meta-layer as separate layers, for users composing them and
// for stage-by-stage parity with fast-MPN-COV (its CovpoolLayer, SqrtmLayer and TriuvecLayer). The mpncov
// layer fuses them and is faster; these share its ops and the Newton-Schulz code.
//   covpool  (B, C, H, W) or (B, C, L) -> (B, C, C): Sigma = Xc Xc^T / M
//   sqrtm    (B, n, n) symmetric -> (B, n, n): sqrt(tr) * Newton-Schulz root of Sigma / tr (keys iterations
//            (5), eps (1e-10)); its backward returns the exact gradient for any upstream G, where the seed's
//            returns its transpose (docs/representations.md)
//   triuvec  (B, n, n) -> (B, n(n+1)/2): the row-major upper triangle (the seed gives (B, K, 1))
#include "core/matrix_ops.h"
#include "core/ops.h"
#include "layers/layer_util.h"
#include "layers/newton_schulz.h"

namespace mpncov {
namespace {

void check_square_input(const Layer& layer, const Shape& s) {
  MPNCOV_CHECK(s.ndim() == 3 && s[1] == s[2] && s[1] > 0, layer.type(),
               " layer takes a batch of square matrices (B, n, n), got ", s.str());
}

class CovpoolLayer : public Layer {
 public:
  explicit CovpoolLayer(Config&) {}
  std::string type() const override { return "covpool"; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext&) override {
    check_arity(*this, in, 1);
    const Shape& s = in[0];
    MPNCOV_CHECK(s.ndim() == 3 || s.ndim() == 4, "covpool layer takes (B, C, H, W) or (B, C, L), got ", s.str());
    batch_ = s[0];
    channels_ = s[1];
    positions_ = s.numel() / std::max<int64_t>(1, batch_ * channels_);
    MPNCOV_CHECK(channels_ > 0 && positions_ > 0, "covpool layer: empty feature map ", s.str());
    // One position has zero covariance in every image: the output would be constant and nothing before
    // the layer would learn (the trace guard keeps it finite, so training would run on silently).
    MPNCOV_CHECK(positions_ > 1, "covpool layer: its input ", s.str(), " has one spatial position, whose covariance is ",
                 "zero for every image, so nothing before it would learn; give the net a larger input (data.image_size, ",
                 "--input) or pool an earlier, larger feature map");
    return {Shape({batch_, channels_, channels_})};
  }

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor x = in[0].reshape({batch_, channels_, positions_});
    ensure_tensor(xc_, x.shape(), x.dtype(), x.device());
    ops::center_rows(x, xc_);
    ops::square_matmul(xc_, xc_, out[0], ops::Structure::Symmetric, false, true,
                       1.0 / static_cast<double>(positions_));
  }

  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    ensure_tensor(g_, dout[0].shape(), dout[0].dtype(), dout[0].device());
    // dX = (G + G^T) Xc / M
    ops::symmetric_combine(0.0, Tensor(), 1.0, dout[0], 1, 0.0, Tensor(), g_);
    ops::gemm(false, false, channels_, positions_, channels_, 1.0 / static_cast<double>(positions_),
              {g_, 0, channels_, channels_ * channels_}, {xc_, 0, positions_, channels_ * positions_}, 0.0,
              din[0].reshape({batch_, channels_, positions_}), 0, positions_, channels_ * positions_, batch_);
  }

  double flops() const override {
    return 2.0 * static_cast<double>(batch_) * static_cast<double>(channels_ * channels_) *
           static_cast<double>(positions_);
  }

 private:
  int64_t batch_ = 0, channels_ = 0, positions_ = 0;
  Tensor xc_, g_;
};

class SqrtmLayer : public Layer {
 public:
  // Full products: the layer's input may be any (symmetric) matrix, not only a covariance this layer made.
  explicit SqrtmLayer(Config& c) : ns_(c.get<int>("iterations", 5), get_finite(c, "eps", 1e-10), false) {
    c.check(ns_.iterations() >= 1 && ns_.iterations() <= kMaxNewtonSchulzIterations, "iterations",
            str("must lie in [1, ", kMaxNewtonSchulzIterations, "] (the iteration has converged by then), got ",
                ns_.iterations()));
    c.check(ns_.eps() > 0, "eps", "must be positive");
  }
  std::string type() const override { return "sqrtm"; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext&) override {
    check_arity(*this, in, 1);
    check_square_input(*this, in[0]);
    return {in[0]};
  }

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    ns_.forward(in[0], training());
    ops::add_identity(ns_.root(), 1.0, 0.0, out[0], ns_.scale());
  }

  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    ensure_tensor(part_, dout[0].shape(), dout[0].dtype(), dout[0].device());
    // G = its symmetric part + its skew part; each runs the structure-keeping backward (P = sqrt(t) G).
    ops::symmetric_combine(0.0, Tensor(), 0.5, dout[0], 1, 0.0, Tensor(), part_);
    ops::add_identity(part_, 1.0, 0.0, part_, ns_.scale());
    ns_.backward(part_, 1, din[0]);
    ops::symmetric_combine(0.0, Tensor(), 0.5, dout[0], -1, 0.0, Tensor(), part_);
    ops::add_identity(part_, 1.0, 0.0, part_, ns_.scale());
    ns_.backward(part_, -1, din[0], true);
  }

  std::map<std::string, double> diagnostics() const override {
    return {{"guarded_samples", static_cast<double>(ns_.guarded())}};
  }

 private:
  NewtonSchulzSqrt ns_;
  Tensor part_;
};

class TriuvecLayer : public Layer {
 public:
  explicit TriuvecLayer(Config&) {}
  std::string type() const override { return "triuvec"; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext&) override {
    check_arity(*this, in, 1);
    check_square_input(*this, in[0]);
    return {Shape({in[0][0], in[0][1] * (in[0][1] + 1) / 2})};
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    ops::triu_gather(in[0], Tensor(), out[0]);
  }
  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (din[0].defined()) ops::triu_scatter(dout[0], Tensor(), din[0], false);
  }
};

}  // namespace

MPNCOV_REGISTER_LAYER({"covpool", "covariance pooling Xc Xc^T / M, (B, C, H, W) -> (B, C, C)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<CovpoolLayer>(c); },
                       {{2, 4, 3, 3}}});
MPNCOV_REGISTER_LAYER({"sqrtm",
                       "trace-normalised Newton-Schulz square root of symmetric matrices (keys iterations, eps)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<SqrtmLayer>(c); },
                       {{2, 4, 4}}});
MPNCOV_REGISTER_LAYER({"triuvec", "upper triangle of square matrices, row-major, (B, n, n) -> (B, n(n+1)/2)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<TriuvecLayer>(c); },
                       {{2, 4, 4}}});

}  // namespace mpncov
