// linear: y = x W^T + b over the last dimension (PyTorch's Linear). Keys: out_features (required),
// bias true, and the weight keys of layers/init.h. Parameters: weight (out, in), bias (out).
#include "core/mixed_ops.h"
#include "core/ops.h"
#include "layers/init.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class LinearLayer : public Layer {
 public:
  explicit LinearLayer(Config& c) {
    require_key(c, "out_features");
    out_ = c.require<int64_t>("out_features");
    c.check(out_ > 0, "out_features", "must be positive");
    bias_ = c.get<bool>("bias", true);
    options_ = read_weight_options(c);
  }

  std::string type() const override { return "linear"; }

  // Backward reads the inputs, never the output: a ReLU may overwrite it in place.

  bool backward_uses_outputs() const override { return false; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1);
    MPNCOV_CHECK(in[0].ndim() >= 1 && in[0][-1] > 0, "linear layer '", ctx.name,
                 "': input needs features in its last dimension, got ", in[0].str());
    in_ = in[0][-1];
    const bool fresh = parameters().empty();
    // Backward writes the weight gradient after a zero_grad rather than adding to zeros.
    add_parameter("weight", Shape{out_, in_}, ctx).overwrite_grad = true;
    Tensor b;
    if (bias_) b = add_parameter("bias", Shape{out_}, ctx).value;
    if (fresh) {
      init_weight_and_bias(options_, parameter("weight").value, b, in_, out_, ctx.seed, stream_of(ctx.name, "weight"),
                           stream_of(ctx.name, "bias"));
      apply_multipliers(options_, *this);
    }
    std::vector<int64_t> dims = in[0].dims();
    dims.back() = out_;
    rows_ = in[0].numel() / in_;
    return {Shape(dims)};
  }

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor& w = parameter("weight").value;
    const int64_t rows = in[0].numel() / in_;
    if (bf16())  // bfloat16 operands, float32 accumulation (core/mixed_ops.h; cuBLAS's bfloat16 GEMM on a GPU)
      ops::matmul_bf16(in[0].reshape({rows, in_}), w, out[0].reshape({rows, out_}), false, true);
    else
      ops::gemm(false, true, rows, out_, in_, 1.0, {in[0], 0, in_, 0}, {w, 0, in_, 0}, 0.0, out[0], 0, out_, 0);
    if (bias_) {
      const Tensor y2 = out[0].reshape({rows, out_});
      ops::binary(ops::Binary::Add, y2, parameter("bias").value, y2);
    }
  }

  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    Parameter& w = parameters()[0];
    const Tensor& dy = dout[0];
    const int64_t rows = in[0].numel() / in_;
    // In bfloat16 the products take the rounded dy, x and weight.
    if (din[0].defined()) {
      if (bf16())
        ops::matmul_bf16(dy.reshape({rows, out_}), w.value, din[0].reshape({rows, in_}));
      else
        ops::gemm(false, false, rows, in_, out_, 1.0, {dy, 0, out_, 0}, {w.value, 0, in_, 0}, 0.0, din[0], 0, in_, 0);
    }
    if (!w.frozen) {
      // Written (beta 0: the old contents are not read) when zero_grad left the zeroing to us.
      const double beta = w.grad_zero_pending ? 0.0 : 1.0;
      if (bf16())
        ops::matmul_bf16(dy.reshape({rows, out_}), in[0].reshape({rows, in_}), w.grad, true, false, 1.0, beta);
      else
        ops::gemm(true, false, out_, in_, rows, 1.0, {dy, 0, out_, 0}, {in[0], 0, in_, 0}, beta, w.grad, 0, in_, 0);
      w.grad_zero_pending = false;
    }
    if (bias_ && !parameters()[1].frozen) {
      // db += 1^T dy, as a GEMM with a vector of ones (kept between steps).
      if (!ones_.defined() || ones_.numel() != rows || ones_.device() != dy.device() || ones_.dtype() != dy.dtype()) {
        ones_ = Tensor::empty(Shape{rows}, dy.dtype(), dy.device());
        ops::fill(ones_, 1.0);
      }
      ops::gemm(false, false, 1, out_, rows, 1.0, {ones_, 0, rows, 0}, {dout[0], 0, out_, 0}, 1.0,
                parameters()[1].grad, 0, out_, 0);
    }
  }

  double flops() const override { return 2.0 * static_cast<double>(rows_ * in_ * out_); }

 private:
  bool bf16() const { return precision() == Precision::BFloat16; }

  int64_t out_ = 0, in_ = 0, rows_ = 0;
  bool bias_ = true;
  WeightOptions options_;
  Tensor ones_;
};

}  // namespace

MPNCOV_REGISTER_LAYER({"linear", "fully connected layer over the last dimension",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<LinearLayer>(c); },
                       {},
                       {{"{out_features: 4}", {{3, 5}}},
                        {"{out_features: 2, bias: false, init: normal, init_std: 0.5}", {{2, 3, 4}}}}});

}  // namespace mpncov
