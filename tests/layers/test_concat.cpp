// The concat layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("concat: gradients in every configuration") { test::gradcheck_type("concat"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("concat: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("concat", "{axis: 2}", {"unknown key 'axis'"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("concat: matches PyTorch in float32 and float64") { test::oracle_type("concat"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("concat: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("concat", 1e-6);
}
}  // TEST_SUITE
