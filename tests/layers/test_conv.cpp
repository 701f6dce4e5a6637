// The conv layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include <cmath>

#include "core/mixed_ops.h"
#include "optim/sgd.h"
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("conv: gradients in every configuration") { test::gradcheck_type("conv"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("conv: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("conv", "{out_channels: 4, kernal_size: 3}", {"<case>:1:", "key 'kernel_size' is required (is 'kernal_size' a misspelling?)"});
  test::expect_config_error("conv", "{out_channels: 4, kernel_size: 3, dilations: 2}", {"<case>:1:", "unknown key 'dilations'", "did you mean 'dilation'"});
  test::expect_config_error("conv", "{out_channels: 4, kernel_size: 3, stride: abc}", {"key 'stride'", "expected an integer or a list of two integers"});
  test::expect_config_error("conv", "{out_channels: 4, kernel_size: 3, groups: 0}", {"key 'groups'", "must be positive"});
  test::expect_config_error("conv", "{out_channels: 4, kernel_size: 3, groups: 3}", {"key 'groups'", "must divide out_channels"});
  test::expect_config_error("conv", "{kernel_size: 3}", {"key 'out_channels'", "is required"});
  test::expect_config_error("conv", "{out_channels: 4}", {"key 'kernel_size'", "is required"});
  test::expect_config_error("conv", "{out_channels: 4, kernel_size: 3, padding: -1}", {"key 'padding'", "non-negative"});
  test::expect_config_error("conv", "{out_channels: 4, kernel_size: 3, init: kaiming}", {"key 'init'", "unknown value 'kaiming'", "kaiming_uniform"});
  test::expect_config_error("conv", "{out_channels: 4, kernel_size: 3, bias: maybe}", {"key 'bias'", "expected true or false"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("conv: matches PyTorch in float32 and float64") { test::oracle_type("conv"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("conv: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("conv", 2e-3);
}
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("conv: zero_grad leaves the weight gradient to the next backward, which writes it - later ones add") {
  // The layer's weight gradient after zero_grad is written by the next backward (the zeroing pass saved);
  // its old contents (NaN here) must not show, and passes without zero_grad in between must add, bit for bit
  // the op accumulating into explicit zeros. An SGD step with no backward since zero_grad sees zeros.
  LayerCase c;
  c.type = "conv";
  c.yaml = "{out_channels: 8, kernel_size: 3, padding: 1}";
  c.inputs = {{2, 16, 6, 6}};
  ops::Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  struct Run {
    Precision precision;
    DType dt;
  };
  for (const Run run : {Run{Precision::Float32, DType::F32}, Run{Precision::BFloat16, DType::F32},
                        Run{Precision::Float32, DType::F64}}) {
    const Precision precision = run.precision;
    const DType dt = run.dt;
    CAPTURE(dtype_name(dt));
    CAPTURE(precision == Precision::BFloat16);
    std::unique_ptr<Layer> layer = make_case_layer(c);
    if (precision == Precision::BFloat16) layer->set_precision(precision);
    SetupContext ctx;
    ctx.dtype = dt;
    ctx.name = "conv";
    const Shape ys = layer->setup({c.inputs[0]}, ctx)[0];
    const Tensor x = test::random_tensor(c.inputs[0], DType::F64, 3).to(dt);
    const Tensor dy = test::random_tensor(ys, DType::F64, 4).to(dt);
    Tensor y = Tensor::zeros(ys, dt), dx = Tensor::zeros(c.inputs[0], dt);
    Parameter& w = layer->parameter("weight");
    Parameter& b = layer->parameter("bias");
    REQUIRE(w.overwrite_grad);
    REQUIRE(!b.overwrite_grad);

    // The op itself, accumulating into explicit zeros: after one pass and after two.
    Tensor once = Tensor::zeros(w.value.shape(), dt);
    const auto backward_op = [&](const Tensor& dw) {
      if (precision == Precision::BFloat16) ops::conv2d_backward_bf16(x, w.value, dy, Tensor(), dw, Tensor(), p);
      else ops::conv2d_backward(x, w.value, dy, Tensor(), dw, Tensor(), p);
    };
    backward_op(once);
    Tensor twice = once.clone();
    backward_op(twice);

    w.grad.fill(NAN);
    b.grad.fill(NAN);
    layer->zero_grad();
    CHECK(w.grad_zero_pending);
    CHECK(b.grad.to_vector() == std::vector<double>(8, 0.0));
    layer->forward({x}, {y});
    layer->backward({x}, {y}, {dy}, {dx});
    CHECK_FALSE(w.grad_zero_pending);
    CHECK(w.grad.to_vector() == once.to_vector());
    layer->forward({x}, {y});
    layer->backward({x}, {y}, {dy}, {dx});
    CHECK(w.grad.to_vector() == twice.to_vector());

    // zero_grad, then an update with no backward in between: a zero gradient (plain SGD: no change).
    ParamGroup g;
    g.name = "all";
    g.params = {{"weight", &w}};
    g.base_lr = g.lr = 0.1;
    SGD sgd({g});
    const std::vector<double> before = w.value.to_vector();
    w.grad.fill(NAN);
    sgd.zero_grad();
    CHECK(w.grad_zero_pending);
    sgd.step();
    CHECK_FALSE(w.grad_zero_pending);
    CHECK(w.grad.to_vector() == std::vector<double>(static_cast<size_t>(w.grad.numel()), 0.0));
    CHECK(w.value.to_vector() == before);
  }
}
}  // TEST_SUITE
