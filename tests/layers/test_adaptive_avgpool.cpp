// The adaptive_avgpool layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("adaptive_avgpool: gradients in every configuration") { test::gradcheck_type("adaptive_avgpool"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("adaptive_avgpool: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("adaptive_avgpool", "{output_size: 0}", {"key 'output_size'", "must be positive"});
  test::expect_config_error("adaptive_avgpool", "{output_size: [1, 2, 3]}", {"key 'output_size'", "expected an integer or a list of two integers"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("adaptive_avgpool: matches PyTorch in float32 and float64") { test::oracle_type("adaptive_avgpool"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("adaptive_avgpool: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("adaptive_avgpool", 1e-6);
}
}  // TEST_SUITE
