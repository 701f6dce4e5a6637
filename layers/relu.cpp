// relu: y = max(x, 0). No keys. Runs in place: the backward needs only the output.
#include "core/nn_ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class ReluLayer : public Layer {
 public:
  explicit ReluLayer(Config&) {}
  std::string type() const override { return "relu"; }
  bool can_run_in_place() const override { return true; }
  bool recomputable_in_chain() const override { return true; }  // a pure function

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext&) override {
    check_arity(*this, in, 1);
    return {in[0]};
  }
  // Elementwise: any layout, the output in the input's.
  Layout output_layout(const std::vector<Layout>& in) const override { return in[0]; }
  bool accepts_layout(size_t, Layout in, Layout out) const override { return in == out; }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    ops::unary(ops::Unary::Relu, in[0], out[0]);
  }
  void backward(const std::vector<Tensor>&, const std::vector<Tensor>& out, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (din[0].defined()) ops::relu_backward(out[0], dout[0], din[0]);
  }
};

}  // namespace

MPNCOV_REGISTER_LAYER({"relu", "rectified linear unit, in place",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<ReluLayer>(c); },
                       {},
                       {{"{}", {{2, 3, 4, 4}}}}});

}  // namespace mpncov
