// adaptive_avgpool: average pooling to a fixed output size (PyTorch's AdaptiveAvgPool2d); the default
// output_size 1 is global average pooling. Keys: output_size 1 (an integer or [h, w]).
#include "core/nn_ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class AdaptiveAvgPoolLayer : public Layer {
 public:
  explicit AdaptiveAvgPoolLayer(Config& c) {
    size_ = c.get_pair("output_size", {1, 1});
    c.check(size_.first > 0 && size_.second > 0, "output_size", "must be positive");
  }
  std::string type() const override { return "adaptive_avgpool"; }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1);
    MPNCOV_CHECK(in[0].ndim() == 4 && in[0][2] > 0 && in[0][3] > 0, "adaptive_avgpool layer '", ctx.name,
                 "': input must be a non-empty (N, C, H, W), got ", in[0].str());
    return {Shape{in[0][0], in[0][1], size_.first, size_.second}};
  }
  // Global pooling takes its input in any layout; its (N, C, 1, 1) output is the same in all, kept NCHW.
  bool accepts_layout(size_t, Layout in, Layout) const override {
    return in == Layout::NCHW || (size_.first == 1 && size_.second == 1);
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    ops::adaptive_avg_pool2d_forward(in[0], out[0]);
  }
  void backward(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (din[0].defined()) ops::adaptive_avg_pool2d_backward(dout[0], din[0]);
  }

 private:
  std::pair<int64_t, int64_t> size_;
};

}  // namespace

MPNCOV_REGISTER_LAYER({"adaptive_avgpool", "average pooling to a fixed output size (1: global average pooling)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<AdaptiveAvgPoolLayer>(c); },
                       {},
                       {{"{}", {{2, 3, 5, 7}}},
                        {"{output_size: [2, 3]}", {{2, 2, 5, 7}}}}});

}  // namespace mpncov
