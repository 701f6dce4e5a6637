// The linear layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include <cmath>

#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("linear: gradients in every configuration") { test::gradcheck_type("linear"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("linear: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("linear", "{out_features: -1}", {"key 'out_features'", "must be positive"});
  test::expect_config_error("linear", "{out_features: 3, bias: 2}", {"key 'bias'", "expected true or false"});
  test::expect_config_error("linear", "{out_features: 3, biass: true}", {"unknown key 'biass'", "did you mean 'bias'"});
  test::expect_config_error("linear", "{out_features: 3, lr_mult: -1}", {"key 'lr_mult'", "non-negative"});
  test::expect_config_error("linear", "{out_features: 3, init: constant, init_value: .nan}",
                            {"key 'init_value'", "expected a finite number, got nan"});
  test::expect_config_error("linear", "{out_features: 3, decay_mult: .inf}", {"key 'decay_mult'", "expected a finite number"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("linear: matches PyTorch in float32 and float64") { test::oracle_type("linear"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("linear: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("linear", 2e-3);
}
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("linear: zero_grad leaves the weight gradient to the next backward, which writes it - later ones add") {
  // As the convolution's (tests/layers/test_conv.cpp): the weight gradient's old contents (NaN) must not
  // show after zero_grad and a backward pass, which must equal passes accumulating into explicit zeros.
  LayerCase c;
  c.type = "linear";
  c.yaml = "{out_features: 5}";
  c.inputs = {{4, 7}};
  for (const Precision precision : {Precision::Float32, Precision::BFloat16}) {
    CAPTURE(precision_name(precision));
    std::unique_ptr<Layer> layer = make_case_layer(c);
    layer->set_precision(precision);
    SetupContext ctx;
    ctx.name = "fc";
    const Shape ys = layer->setup({c.inputs[0]}, ctx)[0];
    const Tensor x = test::random_tensor(c.inputs[0], DType::F32, 3), dy = test::random_tensor(ys, DType::F32, 4);
    Tensor y = Tensor::zeros(ys), dx = Tensor::zeros(c.inputs[0]);
    Parameter& w = layer->parameter("weight");
    REQUIRE(w.overwrite_grad);
    const auto pass = [&] {
      layer->forward({x}, {y});
      layer->backward({x}, {y}, {dy}, {dx});
      return w.grad.to_vector();
    };
    w.grad.zero();  // explicit zeros, accumulated into
    const std::vector<double> once = pass(), twice = pass();
    w.grad.fill(NAN);
    layer->zero_grad();
    CHECK(w.grad_zero_pending);
    CHECK(pass() == once);
    CHECK_FALSE(w.grad_zero_pending);
    CHECK(pass() == twice);
  }
}
}  // TEST_SUITE
