// dropout: inverted dropout. Training zeroes each element with probability p and scales the rest by
// 1/(1-p); evaluation passes x through. The mask comes from Philox keyed by the run seed, the layer's
// name and the step, so a repeated step (gradient check, resumed run) draws the same mask on any device,
// and per row of the batch one process would take (Layer::set_batch_rows), so N data-parallel processes
// draw what one process draws.
// Keys: p 0.5, in [0, 1). Runs in place.
#include <algorithm>

#include "core/ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class DropoutLayer : public Layer {
 public:
  explicit DropoutLayer(Config& c) {
    p_ = get_finite(c, "p", 0.5);
    c.check(p_ >= 0 && p_ < 1, "p", "must lie in [0, 1)");
  }
  std::string type() const override { return "dropout"; }
  bool can_run_in_place() const override { return true; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1);
    seed_ = ctx.seed;
    name_ = ctx.name;
    return {in[0]};
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    masked_ = training() && p_ > 0;
    if (!masked_) {
      if (!out[0].same_storage(in[0])) ops::unary(ops::Unary::Copy, in[0], out[0]);
      return;
    }
    ensure_tensor(mask_, in[0].shape(), in[0].dtype(), in[0].device());
    const uint64_t stream = stream_of(name_, str("mask/", step()));
    const int64_t rows = mask_.dim(0), row = mask_.numel() / std::max<int64_t>(rows, 1);
    if (row_stride() == 1) {
      ops::fill_bernoulli(mask_, 1 - p_, seed_, stream, static_cast<uint64_t>(row_first() * row));
    } else {
      for (int64_t j = 0; j < rows; ++j)
        ops::fill_bernoulli(mask_.slice(j, j + 1), 1 - p_, seed_, stream,
                            static_cast<uint64_t>((row_first() + j * row_stride()) * row));
    }
    ops::binary_scalar(ops::Binary::Mul, mask_, 1 / (1 - p_), mask_);
    ops::binary(ops::Binary::Mul, in[0], mask_, out[0]);
  }
  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    if (masked_) ops::binary(ops::Binary::Mul, dout[0], mask_, din[0]);
    else if (!din[0].same_storage(dout[0])) ops::unary(ops::Unary::Copy, dout[0], din[0]);
  }

 private:
  double p_ = 0.5;
  uint64_t seed_ = 1;
  std::string name_;
  bool masked_ = false;
  Tensor mask_;  // 0 or 1/(1-p) per element, of the last training forward
};

}  // namespace

MPNCOV_REGISTER_LAYER({"dropout", "inverted dropout with a counter-based random mask, in place",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<DropoutLayer>(c); },
                       {},
                       {{"{p: 0.3}", {{3, 4, 2, 2}}},
                        {"{p: 0.3}", {{3, 4, 2, 2}}, false}}});

}  // namespace mpncov
