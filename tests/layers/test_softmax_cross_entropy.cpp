// The softmax_cross_entropy layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("softmax_cross_entropy: gradients in every configuration") { test::gradcheck_type("softmax_cross_entropy"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("softmax_cross_entropy: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("softmax_cross_entropy", "{label_smoothing: 1.5}", {"key 'label_smoothing'", "[0, 1]"});
  test::expect_config_error("softmax_cross_entropy", "{label_smoothin: 0.1}", {"unknown key 'label_smoothin'", "did you mean 'label_smoothing'"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("softmax_cross_entropy: matches PyTorch in float32 and float64") { test::oracle_type("softmax_cross_entropy"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("softmax_cross_entropy: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("softmax_cross_entropy", 1e-5);
}
}  // TEST_SUITE
