// The batchnorm layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("batchnorm: gradients in every configuration") { test::gradcheck_type("batchnorm"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("batchnorm: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("batchnorm", "{momentum: 2}", {"key 'momentum'", "[0, 1]"});
  test::expect_config_error("batchnorm", "{eps: 0}", {"key 'eps'", "must be positive"});
  test::expect_config_error("batchnorm", "{eps: .inf}", {"key 'eps'", "expected a finite number, got inf"});
  test::expect_config_error("batchnorm", "{lr_mult: .inf}", {"key 'lr_mult'", "expected a finite number"});
  test::expect_config_error("batchnorm", "{affine: yes_please}", {"key 'affine'", "expected true or false"});
  test::expect_config_error("batchnorm", "{epsilon: 0.1}", {"unknown key 'epsilon'"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("batchnorm: matches PyTorch in float32 and float64") { test::oracle_type("batchnorm"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("batchnorm: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("batchnorm", 2e-3);
}
}  // TEST_SUITE
