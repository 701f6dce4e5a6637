// The flatten layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("flatten: gradients in every configuration") { test::gradcheck_type("flatten"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("flatten: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("flatten", "{start_dim: -1}", {"key 'start_dim'", "non-negative"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("flatten: matches PyTorch in float32 and float64") { test::oracle_type("flatten"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("flatten: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("flatten", 1e-6);
}
}  // TEST_SUITE
