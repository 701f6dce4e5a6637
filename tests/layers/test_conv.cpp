// The conv layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
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
