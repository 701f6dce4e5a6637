// concat: joins one or more inputs along the channels (dimension 1); every other dimension must agree.
// No keys. A copy that a net may redo instead of keeping (recomputable), e.g. in a DenseNet's dense blocks.
#include "core/nn_ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

class ConcatLayer : public Layer {
 public:
  explicit ConcatLayer(Config&) {}
  std::string type() const override { return "concat"; }
  bool recomputable() const override { return true; }
  // Inputs all in one layout (core/layout.h) give the output in it; otherwise NCHW, and the plan makes
  // the inputs NCHW too. Channel offsets that are not multiples of a block are copied correctly, only
  // slower (ops::copy_channels).
  Layout output_layout(const std::vector<Layout>& in) const override {
    for (Layout l : in)
      if (l != in[0]) return Layout::NCHW;
    return in[0];
  }
  bool accepts_layout(size_t, Layout in, Layout out) const override { return in == out; }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1, true);
    std::vector<int64_t> dims = in[0].dims();
    MPNCOV_CHECK(dims.size() >= 2, "concat layer '", ctx.name, "': inputs must be (N, C, ...), got ", in[0].str());
    dims[1] = 0;
    for (const Shape& s : in) {
      bool same = s.ndim() == in[0].ndim();
      for (int i = 0; same && i < s.ndim(); ++i) same = i == 1 || s[i] == in[0][i];
      MPNCOV_CHECK(same, "concat layer '", ctx.name, "': input ", s.str(), " differs from ", in[0].str(),
                   " in a dimension other than the channels");
      dims[1] += s[1];
    }
    return {Shape(dims)};
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    int64_t offset = 0;
    for (const Tensor& t : in) {
      ops::copy_channels(t, 0, out[0], offset, t.dim(1));
      offset += t.dim(1);
    }
  }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    int64_t offset = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      if (din[i].defined()) ops::copy_channels(dout[0], offset, din[i], 0, in[i].dim(1));
      offset += in[i].dim(1);
    }
  }
};

}  // namespace

MPNCOV_REGISTER_LAYER({"concat", "joins its inputs along the channels",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<ConcatLayer>(c); },
                       {},
                       {{"{}", {{2, 2, 3, 3}, {2, 3, 3, 3}}},
                        {"{}", {{2, 1, 2}, {2, 2, 2}, {2, 3, 2}}}}});

}  // namespace mpncov
