// The add layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("add: gradients in every configuration") { test::gradcheck_type("add"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("add: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("add", "{scale: 2}", {"unknown key 'scale'"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("add: matches PyTorch in float32 and float64") { test::oracle_type("add"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("add: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("add", 1e-6);
}
}  // TEST_SUITE
