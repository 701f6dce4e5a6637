// batchnorm: batch normalisation over dimension 1 (PyTorch's BatchNorm1d/2d). Keys: eps 1e-5,
// momentum 0.1 (running = (1 - momentum) running + momentum batch, unbiased variance), affine true, and
// lr_mult/decay_mult. Parameters weight (C) = 1, bias (C) = 0; buffers running_mean, running_var,
// num_batches_tracked (int64, as torchvision saves it). Training normalises with the batch statistics,
// evaluation with the running ones.
#include "core/nn_ops.h"
#include "layers/init.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class BatchNormLayer : public Layer {
 public:
  explicit BatchNormLayer(Config& c) {
    eps_ = c.get<double>("eps", 1e-5);
    c.check(eps_ > 0, "eps", "must be positive");
    momentum_ = c.get<double>("momentum", 0.1);
    c.check(momentum_ >= 0 && momentum_ <= 1, "momentum", "must lie in [0, 1]");
    affine_ = c.get<bool>("affine", true);
    lr_mult_ = c.get<double>("lr_mult", 1.0);
    c.check(lr_mult_ >= 0, "lr_mult", "must be non-negative");
    decay_mult_ = c.get<double>("decay_mult", 1.0);
    c.check(decay_mult_ >= 0, "decay_mult", "must be non-negative");
  }

  std::string type() const override { return "batchnorm"; }

  // Backward reads the inputs, never the output: a ReLU may overwrite it in place.

  bool backward_uses_outputs() const override { return false; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1);
    MPNCOV_CHECK(in[0].ndim() >= 2, "batchnorm layer '", ctx.name, "': input must be (N, C, ...), got ", in[0].str());
    const int64_t c = in[0][1];
    if (affine_ && parameters().empty()) {
      Parameter& w = add_parameter("weight", Shape{c}, ctx);
      ops::fill(w.value, 1.0);
      add_parameter("bias", Shape{c}, ctx);
      for (Parameter& p : parameters()) {
        p.lr_mult = lr_mult_;
        p.decay_mult = decay_mult_;
      }
    } else if (affine_) {
      add_parameter("weight", Shape{c}, ctx);  // checks the shape
    }
    if (buffers().empty()) {
      add_buffer("running_mean", Shape{c}, ctx, 0.0);
      add_buffer("running_var", Shape{c}, ctx, 1.0);
      buffers().push_back(Buffer{"num_batches_tracked", Tensor::zeros(Shape(std::vector<int64_t>{}), DType::I64,
                                                                       ctx.device)});
    }
    MPNCOV_CHECK(buffer("running_mean").value.numel() == c, "batchnorm layer '", ctx.name, "': has ",
                 buffer("running_mean").value.numel(), " channels, the input ", in[0].str(), " has ", c);
    return {in[0]};
  }

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor& x = in[0];
    const int64_t c = x.dim(1);
    ensure_tensor(mean_, Shape{c}, x.dtype(), x.device());
    ensure_tensor(invstd_, Shape{c}, x.dtype(), x.device());
    const Tensor w = affine_ ? parameter("weight").value : Tensor();
    const Tensor b = affine_ ? parameter("bias").value : Tensor();
    const Tensor& rm = buffer("running_mean").value;
    const Tensor& rv = buffer("running_var").value;
    if (training()) {
      ops::batch_norm_forward_train(x, w, b, out[0], mean_, invstd_, rm, rv, momentum_, eps_);
      // num_batches_tracked counts training steps; kept on the host and written back, so no device sync.
      Tensor& tracked = buffer("num_batches_tracked").value;
      if (tracked_ < 0) tracked_ = static_cast<int64_t>(tracked.item());
      ops::fill(tracked, static_cast<double>(++tracked_));
    } else {
      ops::batch_norm_forward_eval(x, w, b, out[0], mean_, invstd_, rm, rv, eps_);
    }
    stats_from_batch_ = training();
  }

  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    Tensor w, dw, db;
    if (affine_) {
      w = parameters()[0].value;
      if (!parameters()[0].frozen) dw = parameters()[0].grad;
      if (!parameters()[1].frozen) db = parameters()[1].grad;
    }
    ops::batch_norm_backward(in[0], dout[0], w, mean_, invstd_, din[0], dw, db, stats_from_batch_);
  }

 private:
  double eps_ = 1e-5, momentum_ = 0.1, lr_mult_ = 1, decay_mult_ = 1;
  bool affine_ = true;
  bool stats_from_batch_ = true;
  int64_t tracked_ = -1;  // host copy of num_batches_tracked; -1 until first read
  Tensor mean_, invstd_;  // of the last forward, for the backward
};

}  // namespace

MPNCOV_REGISTER_LAYER({"batchnorm", "batch normalisation over channels (dimension 1)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<BatchNormLayer>(c); },
                       {},
                       {{"{}", {{3, 4, 3, 3}}},
                        {"{}", {{3, 4, 3, 3}}, false},
                        {"{affine: false, eps: 0.001}", {{4, 3}}},
                        {"{momentum: 0.5}", {{5, 2, 2, 1}}}}});

}  // namespace mpncov
