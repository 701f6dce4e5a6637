// The linear layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
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
