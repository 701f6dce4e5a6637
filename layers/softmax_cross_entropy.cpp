// softmax_cross_entropy: the loss. Inputs: logits (N, K) and labels (N, int64); output: the mean over
// the batch of the cross-entropy, a scalar. Keys: label_smoothing 0 (PyTorch's meaning: the target is
// (1 - s) one-hot + s / K). The backward writes the logits' gradient times the incoming scalar gradient.
#include "core/nn_ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class SoftmaxCrossEntropyLayer : public Layer {
 public:
  explicit SoftmaxCrossEntropyLayer(Config& c) {
    smoothing_ = get_finite(c, "label_smoothing", 0.0);
    c.check(smoothing_ >= 0 && smoothing_ <= 1, "label_smoothing", "must lie in [0, 1]");
  }
  std::string type() const override { return "softmax_cross_entropy"; }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 2);
    MPNCOV_CHECK(in[0].ndim() == 2 && in[0][1] > 0, "softmax_cross_entropy layer '", ctx.name,
                 "': logits must be (N, K), got ", in[0].str());
    MPNCOV_CHECK(in[1].numel() == in[0][0], "softmax_cross_entropy layer '", ctx.name, "': ", in[1].numel(),
                 " labels for ", in[0][0], " rows of logits");
    return {Shape(std::vector<int64_t>{})};
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    ensure_tensor(prob_, in[0].shape(), in[0].dtype(), in[0].device());
    ops::softmax_cross_entropy_forward(in[0], in[1], prob_, out[0], smoothing_);
  }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    MPNCOV_CHECK(din.size() < 2 || !din[1].defined(), "softmax_cross_entropy: labels have no gradient");
    if (din[0].defined()) ops::softmax_cross_entropy_backward(prob_, in[1], dout[0], din[0], smoothing_);
  }
  // The softmax of the last forward (N, K), e.g. for accuracy.
  const Tensor& probabilities() const { return prob_; }

 private:
  double smoothing_ = 0;
  Tensor prob_;
};

}  // namespace

MPNCOV_REGISTER_LAYER({"softmax_cross_entropy", "softmax cross-entropy loss (mean over the batch, label smoothing)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<SoftmaxCrossEntropyLayer>(c); },
                       {},
                       {{"{}", {{4, 5}, {4}}, true, {1}},
                        {"{label_smoothing: 0.1}", {{4, 5}, {4}}, true, {1}}}});

}  // namespace mpncov
