// add: the elementwise sum of two or more inputs of one shape (residual connections). No keys. May run in
// place on its first input: the backward needs no inputs. With a ReLU fused in (fuse_relu, two inputs:
// nets/train_fusion.h) forward writes max(0, a + b) and backward masks the gradient by that output > 0.
#include "core/nn_ops.h"
#include "core/ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class AddLayer : public Layer {
 public:
  explicit AddLayer(Config&) {}
  std::string type() const override { return "add"; }
  // Backward reads the inputs, never the output: a ReLU may overwrite it in place.
  bool backward_uses_outputs() const override { return false; }
  bool can_run_in_place() const override { return true; }
  bool fuse_relu(bool on) override {
    relu_ = on && inputs_ == 2;
    return relu_ == on;
  }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 2, true);
    inputs_ = in.size();
    for (const Shape& s : in)
      MPNCOV_CHECK(s == in[0], "add layer '", ctx.name, "': inputs differ in shape: ", in[0].str(), " and ", s.str());
    return {in[0]};
  }
  // Elementwise: any layout shared by all inputs, the output in it.
  Layout output_layout(const std::vector<Layout>& in) const override {
    for (Layout l : in)
      if (l != in[0]) return Layout::NCHW;
    return in[0];
  }
  bool accepts_layout(size_t, Layout in, Layout out) const override { return in == out; }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    if (relu_) return ops::add_relu_forward(in[0], in[1], out[0]);
    ops::binary(ops::Binary::Add, in[0], in[1], out[0]);
    for (size_t i = 2; i < in.size(); ++i) ops::axpby(1.0, in[i], 1.0, out[0]);
  }
  void backward(const std::vector<Tensor>&, const std::vector<Tensor>& out, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (relu_) return ops::add_relu_backward(out[0], dout[0], din[0], din[1]);
    for (const Tensor& d : din)
      if (d.defined() && !d.same_storage(dout[0])) ops::unary(ops::Unary::Copy, dout[0], d);
  }

 private:
  size_t inputs_ = 0;  // of the last setup
  bool relu_ = false;  // a ReLU fused in (fuse_relu)
};

}  // namespace

MPNCOV_REGISTER_LAYER({"add", "elementwise sum of its inputs (residuals), in place",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<AddLayer>(c); },
                       {},
                       {{"{}", {{2, 3, 2, 2}, {2, 3, 2, 2}}},
                        {"{}", {{2, 3}, {2, 3}, {2, 3}}}}});

}  // namespace mpncov
