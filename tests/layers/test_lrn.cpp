// The lrn layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("lrn: gradients in every configuration") { test::gradcheck_type("lrn"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("lrn: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("lrn", "{size: 0}", {"key 'size'", "at least 1"});
  test::expect_config_error("lrn", "{alpha: 1}", {"key 'size'", "is required"});
  test::expect_config_error("lrn", "{size: 3, k: 0}", {"key 'k'", "must be positive"});
  // YAML's .nan and .inf are numbers: a beta of .nan made every output NaN.
  test::expect_config_error("lrn", "{size: 3, beta: .nan}", {"key 'beta'", "expected a finite number, got nan"});
  test::expect_config_error("lrn", "{size: 3, k: .inf}", {"key 'k'", "expected a finite number, got inf"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("lrn: matches PyTorch in float32 and float64") { test::oracle_type("lrn"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("lrn: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("lrn", 1e-4);
}
}  // TEST_SUITE
