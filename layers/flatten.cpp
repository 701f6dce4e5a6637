// flatten: joins dimensions start_dim.. into one (PyTorch's Flatten). Keys: start_dim 1. In place it is
// free: the output views the input's storage.
#include "core/ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class FlattenLayer : public Layer {
 public:
  explicit FlattenLayer(Config& c) {
    start_ = c.get<int>("start_dim", 1);
    c.check(start_ >= 0, "start_dim", "must be non-negative");
  }
  std::string type() const override { return "flatten"; }
  bool can_run_in_place() const override { return true; }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1);
    MPNCOV_CHECK(start_ < in[0].ndim(), "flatten layer '", ctx.name, "': start_dim ", start_, " is out of range for ",
                 in[0].str());
    std::vector<int64_t> dims(in[0].dims().begin(), in[0].dims().begin() + start_);
    dims.push_back(in[0].product(start_, in[0].ndim()));
    return {Shape(dims)};
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    if (!out[0].same_storage(in[0])) ops::unary(ops::Unary::Copy, in[0], out[0]);
  }
  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (din[0].defined() && !din[0].same_storage(dout[0])) ops::unary(ops::Unary::Copy, dout[0], din[0]);
  }

 private:
  int start_ = 1;
};

}  // namespace

MPNCOV_REGISTER_LAYER({"flatten", "joins the dimensions from start_dim on into one",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<FlattenLayer>(c); },
                       {},
                       {{"{}", {{2, 3, 2, 2}}},
                        {"{start_dim: 2}", {{2, 3, 2, 2}}}}});

}  // namespace mpncov
