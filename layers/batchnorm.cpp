// batchnorm: batch normalisation over dimension 1 (PyTorch's BatchNorm1d/2d). Keys: eps 1e-5,
// momentum 0.1 (running = (1 - momentum) running + momentum batch, unbiased variance; null: the cumulative
// average of every batch so far, PyTorch's momentum=None, whose factor is 1 / num_batches_tracked after this
// batch's count), affine true, and lr_mult/decay_mult. Parameters weight (C) = 1, bias (C) = 0; buffers running_mean, running_var,
// num_batches_tracked (int64, as torchvision saves it). Training normalises with the batch statistics,
// evaluation with the running ones.
//
// sync: true (set on every batch norm by the experiment's model.sync_bn) makes the batch statistics those
// of the batch over all processes of a data-parallel run (PyTorch's SyncBatchNorm): forward reduces the
// per-channel sums and then the centred sums of squares, backward the sums of dy and dy * xhat, so N
// processes of batch b compute what one process of batch N * b does. In one process it changes nothing.
//
// A ReLU fused in (fuse_relu, nets/train_fusion.h; 4-D and not synced): forward and recompute write
// max(0, y) and backward masks the gradient by the output (then the ReLU's) > 0, in the kernels' own passes.
// A residual add and its ReLU fused in (fuse_residual_relu, the same conditions): a training forward with a
// second input writes max(0, y + residual) into the add's output (the add's backward is unchanged).
//
// Recomputable in a chain (a net redoes it for backward, see docs/nets.md): recompute() rewrites the last
// forward's output without touching the running statistics or num_batches_tracked, and without
// communicating. After a training forward it normalises with that forward's batch statistics: the
// synced ones as kept; otherwise found again from the same input by the same deterministic kernel (per
// channel, fixed summation order on CPU and CUDA), which gives them bit for bit. The kernel normalises
// with the statistics in double precision and saves them rounded to the dtype, so normalising with the
// saved ones would change the last bits; the backward keeps using the saved ones either way.
#include "core/dist/communicator.h"
#include "core/nn_ops.h"
#include "layers/init.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class BatchNormLayer : public Layer {
 public:
  explicit BatchNormLayer(Config& c) {
    eps_ = get_finite(c, "eps", 1e-5);
    c.check(eps_ > 0, "eps", "must be positive");
    cumulative_ = c.has("momentum") && c.value("momentum").IsNull();
    if (cumulative_) {
      c.ignore("momentum");
    } else {
      momentum_ = get_finite(c, "momentum", 0.1);
      c.check(momentum_ >= 0 && momentum_ <= 1, "momentum", "must lie in [0, 1], or be null (the cumulative average)");
    }
    affine_ = c.get<bool>("affine", true);
    lr_mult_ = get_finite(c, "lr_mult", 1.0);
    c.check(lr_mult_ >= 0, "lr_mult", "must be non-negative");
    decay_mult_ = get_finite(c, "decay_mult", 1.0);
    c.check(decay_mult_ >= 0, "decay_mult", "must be non-negative");
    sync_ = c.get<bool>("sync", false);
  }

  std::string type() const override { return "batchnorm"; }

  // Backward reads the inputs, never the output: a ReLU may overwrite it in place.

  bool backward_uses_outputs() const override { return false; }
  bool recomputable_in_chain() const override { return true; }
  bool fuse_relu(bool on) override {
    relu_ = on && four_d_ && !sync_;
    return relu_ == on;
  }
  bool fuse_residual_relu(bool on) override {
    residual_ = on && four_d_ && !sync_;
    return residual_ == on;
  }

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
    four_d_ = in[0].ndim() == 4;
    return {in[0]};
  }

  // A 4-D input in any layout, the output in the same (synced statistics: NCHW only).
  Layout output_layout(const std::vector<Layout>& in) const override {
    return four_d_ && !sync_ ? in[0] : Layout::NCHW;
  }
  bool accepts_layout(size_t, Layout in, Layout out) const override {
    return in == out && (in == Layout::NCHW || (four_d_ && !sync_));
  }

  void state_written() override { tracked_ = -1; }  // a loaded num_batches_tracked counts on from its value

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor& x = in[0];
    const int64_t c = x.dim(1);
    // The statistics in float32 when the activations are stored in bfloat16, else in their type.
    const DType stats = x.dtype() == DType::BF16 ? DType::F32 : x.dtype();
    ensure_tensor(mean_, Shape{c}, stats, x.device());
    ensure_tensor(invstd_, Shape{c}, stats, x.device());
    const Tensor w = affine_ ? parameter("weight").value : Tensor();
    const Tensor b = affine_ ? parameter("bias").value : Tensor();
    const Tensor& rm = buffer("running_mean").value;
    const Tensor& rv = buffer("running_var").value;
    comm_ = sync_ && training() ? &dist::world() : nullptr;
    if (comm_ && comm_->size() == 1) comm_ = nullptr;
    const bool residual = in.size() == 2;
    MPNCOV_CHECK(!residual || (residual_ && training()),
                 "batchnorm: a residual input is for a training forward with a residual add fused in");
    if (training()) {
      // num_batches_tracked counts training steps; kept on the host and written back, so no device sync.
      Tensor& tracked = buffer("num_batches_tracked").value;
      if (tracked_ < 0) {
        const double loaded = tracked.item();
        MPNCOV_CHECK(loaded >= 0, "batchnorm: num_batches_tracked is ", loaded,
                     ": a count of training batches cannot be negative (a damaged or hand-edited weights file?)");
        tracked_ = static_cast<int64_t>(loaded);
      }
      // momentum: null averages every batch so far with equal weights (PyTorch: 1 / num_batches_tracked,
      // counting this batch).
      const double factor = cumulative_ ? 1.0 / static_cast<double>(tracked_ + 1) : momentum_;
      if (comm_) forward_synced(x, w, b, out[0], rm, rv, factor);
      else if (residual)
        ops::batch_norm_forward_train(x, w, b, out[0], mean_, invstd_, rm, rv, factor, eps_, true, in[1]);
      else ops::batch_norm_forward_train(x, w, b, out[0], mean_, invstd_, rm, rv, factor, eps_, relu_);
      ops::fill(tracked, static_cast<double>(++tracked_));
    } else {
      ops::batch_norm_forward_eval(x, w, b, out[0], mean_, invstd_, rm, rv, eps_, relu_);
    }
    stats_from_batch_ = training();
  }

  // Evaluation on running statistics: scale = weight / sqrt(running_var + eps), shift = bias - running_mean
  // scale, from the current values (read at every call, so they are never stale).
  bool eval_affine(Tensor& scale, Tensor& shift) const override {
    if (training() || sync_ || !four_d_) return false;
    const Tensor& rm = buffers()[0].value;
    const Tensor& rv = buffers()[1].value;
    ensure_tensor(scale, rv.shape(), rv.dtype(), rv.device());
    ensure_tensor(shift, rv.shape(), rv.dtype(), rv.device());
    ops::binary_scalar(ops::Binary::Add, rv, eps_, scale);
    ops::unary(ops::Unary::Sqrt, scale, scale);
    ops::unary(ops::Unary::Reciprocal, scale, scale);
    if (affine_) ops::binary(ops::Binary::Mul, scale, parameters()[0].value, scale);
    ops::binary(ops::Binary::Mul, rm, scale, shift);
    if (affine_) ops::binary(ops::Binary::Sub, parameters()[1].value, shift, shift);
    else ops::unary(ops::Unary::Neg, shift, shift);
    return true;
  }

  void recompute(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor& x = in[0];
    const int64_t c = x.dim(1);
    const DType stats = x.dtype() == DType::BF16 ? DType::F32 : x.dtype();
    ensure_tensor(recomputed_mean_, Shape{c}, stats, x.device());
    ensure_tensor(recomputed_invstd_, Shape{c}, stats, x.device());
    const Tensor w = affine_ ? parameter("weight").value : Tensor();
    const Tensor b = affine_ ? parameter("bias").value : Tensor();
    if (!stats_from_batch_)
      ops::batch_norm_forward_eval(x, w, b, out[0], recomputed_mean_, recomputed_invstd_, buffer("running_mean").value,
                                   buffer("running_var").value, eps_, relu_);
    else if (comm_)  // the last step of forward_synced, with its global statistics
      ops::batch_norm_forward_eval(x, w, b, out[0], recomputed_mean_, recomputed_invstd_, mean_global_, var_, eps_);
    else  // no running statistics: they were updated once, by forward
      ops::batch_norm_forward_train(x, w, b, out[0], recomputed_mean_, recomputed_invstd_, Tensor(), Tensor(),
                                    momentum_, eps_, relu_);
  }

  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    Tensor w, dw, db;
    if (affine_) {
      w = parameters()[0].value;
      if (!parameters()[0].frozen) dw = parameters()[0].grad;
      if (!parameters()[1].frozen) db = parameters()[1].grad;
    }
    if (comm_ && stats_from_batch_) return backward_synced(in[0], dout[0], w, din[0], dw, db);
    ops::batch_norm_backward(in[0], dout[0], w, mean_, invstd_, din[0], dw, db, stats_from_batch_,
                             relu_ ? out[0] : Tensor());
  }

 private:
  // The axes every statistic sums over: all but the channels.
  static std::vector<int> reduced_axes(const Tensor& x) {
    std::vector<int> axes{0};
    for (int d = 2; d < x.ndim(); ++d) axes.push_back(d);
    return axes;
  }

  // Training statistics over every process: the mean from the summed sums and counts, then the variance
  // from the summed centred squares (two passes, no cancellation); y is the scratch for (x - mean)^2.
  void forward_synced(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Tensor& rm,
                      const Tensor& rv, double momentum) {
    const int64_t c = x.dim(1);
    ensure_tensor(sums_, Shape{c + 1}, x.dtype(), x.device());
    ensure_tensor(var_, Shape{c}, x.dtype(), x.device());
    ensure_tensor(mean_global_, Shape{c}, x.dtype(), x.device());
    const std::vector<int> axes = reduced_axes(x);
    const Tensor sum = sums_.slice(0, c);
    ops::reduce(ops::Reduce::Sum, x, axes, sum);
    ops::fill(sums_.slice(c, c + 1), static_cast<double>(x.numel() / c));
    comm_->all_reduce(sums_);
    count_ = sums_.slice(c, c + 1).item();
    MPNCOV_CHECK(count_ > 1, "batchnorm (sync): training needs more than one value per channel over all processes");
    ops::binary_scalar(ops::Binary::Div, sum, count_, mean_global_);
    ops::binary(ops::Binary::Sub, x, mean_global_, y);
    ops::unary(ops::Unary::Square, y, y);
    ops::reduce(ops::Reduce::Sum, y, axes, var_);
    comm_->all_reduce(var_);
    // Running statistics PyTorch's way (unbiased variance), before var_ becomes the biased one.
    ops::axpby(momentum, mean_global_, 1 - momentum, rm);
    ops::axpby(momentum / (count_ - 1), var_, 1 - momentum, rv);
    ops::binary_scalar(ops::Binary::Div, var_, count_, var_);
    // Normalise with the global statistics (the evaluation kernel takes them as given); it writes mean_
    // and invstd_ for the backward.
    ops::batch_norm_forward_eval(x, w, b, y, mean_, invstd_, mean_global_, var_, eps_);
  }

  // dx = w invstd (dy - sum(dy) / m - xhat sum(dy xhat) / m), the sums over every process; the parameter
  // gradients keep this process's sums (the gradient reducer averages them as any other).
  void backward_synced(const Tensor& x, const Tensor& dy, const Tensor& w, const Tensor& dx, const Tensor& dw,
                       const Tensor& db) {
    const int64_t c = x.dim(1);
    ensure_tensor(grad_sums_, Shape{2 * c}, x.dtype(), x.device());
    const Tensor sum_dy_xhat = grad_sums_.slice(0, c), sum_dy = grad_sums_.slice(c, 2 * c);
    ops::fill(grad_sums_, 0.0);
    ops::batch_norm_backward(x, dy, Tensor(), mean_, invstd_, Tensor(), sum_dy_xhat, sum_dy, false);
    if (dw.defined()) ops::axpby(1.0, sum_dy_xhat, 1.0, dw);
    if (db.defined()) ops::axpby(1.0, sum_dy, 1.0, db);
    if (!dx.defined()) return;  // the same on every process: the net is the same
    comm_->all_reduce(grad_sums_);
    // Per channel: k2 = sum(dy xhat) invstd / m, k1 = sum(dy) / m, scale = w invstd.
    ensure_tensor(scale_, Shape{c}, x.dtype(), x.device());
    ops::binary(ops::Binary::Mul, sum_dy_xhat, invstd_, scale_);
    ops::binary_scalar(ops::Binary::Div, scale_, count_, scale_);
    ops::binary(ops::Binary::Sub, x, mean_, dx);
    ops::binary(ops::Binary::Mul, dx, scale_, dx);
    ops::axpby(1.0, dy, -1.0, dx);
    ops::binary_scalar(ops::Binary::Div, sum_dy, count_, sum_dy);
    ops::binary(ops::Binary::Sub, dx, sum_dy, dx);
    if (w.defined()) {
      ops::binary(ops::Binary::Mul, invstd_, w, scale_);
      ops::binary(ops::Binary::Mul, dx, scale_, dx);
    } else {
      ops::binary(ops::Binary::Mul, dx, invstd_, dx);
    }
  }

 private:
  double eps_ = 1e-5, momentum_ = 0.1, lr_mult_ = 1, decay_mult_ = 1;
  bool affine_ = true;
  bool cumulative_ = false;  // momentum: null
  bool stats_from_batch_ = true;
  bool sync_ = false;
  bool four_d_ = false;  // the input of the last setup is (N, C, H, W)
  bool relu_ = false;    // a ReLU fused in (fuse_relu)
  bool residual_ = false;  // a residual add and its ReLU fused in (fuse_residual_relu)
  dist::Communicator* comm_ = nullptr;  // set by a synced training forward, for its backward
  double count_ = 0;                    // values per channel over all processes, of that forward
  Tensor sums_, grad_sums_, scale_;       // scratch of the synced passes
  Tensor var_, mean_global_;              // the synced forward's global statistics (for recompute)
  Tensor recomputed_mean_, recomputed_invstd_;  // written by recompute, equal to mean_ and invstd_
  int64_t tracked_ = -1;  // host copy of num_batches_tracked; -1 until read (again after state_written)
  Tensor mean_, invstd_;  // of the last forward, for the backward
};

}  // namespace

MPNCOV_REGISTER_LAYER({"batchnorm", "batch normalisation over channels (dimension 1)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<BatchNormLayer>(c); },
                       {},
                       {{"{}", {{3, 4, 3, 3}}},
                        {"{}", {{3, 4, 3, 3}}, false},
                        {"{affine: false, eps: 0.001}", {{4, 3}}},
                        {"{momentum: 0.5}", {{5, 2, 2, 1}}},
                        {"{momentum: null}", {{5, 2, 2, 1}}}}});

}  // namespace mpncov
