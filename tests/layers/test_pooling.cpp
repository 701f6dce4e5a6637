// The maxpool, avgpool layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "core/nn_ops.h"
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("maxpool: gradients in every configuration") { test::gradcheck_type("maxpool"); }
TEST_CASE("avgpool: gradients in every configuration") { test::gradcheck_type("avgpool"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("maxpool: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("maxpool", "{kernel_size: 3, padding: 2}", {"key 'padding'", "at most half of kernel_size"});
  test::expect_config_error("maxpool", "{stride: 2}", {"key 'kernel_size'", "is required"});
  test::expect_config_error("maxpool", "{kernel_size: 2, ceil_mod: true}", {"unknown key 'ceil_mod'", "did you mean 'ceil_mode'"});
  test::expect_config_error("maxpool", "{kernel_size: 2, count_include_pad: false}", {"unknown key 'count_include_pad'"});
  test::expect_config_error("avgpool", "{kernel_size: 2, count_include_pad: 3}", {"key 'count_include_pad'", "expected true or false"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("maxpool: matches PyTorch in float32 and float64") { test::oracle_type("maxpool"); }
TEST_CASE("avgpool: matches PyTorch in float32 and float64") { test::oracle_type("avgpool"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("maxpool: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("maxpool", 1e-6);
}
TEST_CASE("avgpool: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("avgpool", 1e-6);
}
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("pooling: PyTorch's output sizes, floor and ceil") {
  using ops::pool_output_size;
  CHECK(pool_output_size(6, 3, 2, 0, false) == 2);
  CHECK(pool_output_size(6, 3, 2, 0, true) == 3);
  CHECK(pool_output_size(112, 3, 2, 1, false) == 56);   // ResNet's stem
  CHECK(pool_output_size(5, 2, 2, 1, true) == 3);       // the last window would start in the right padding
  CHECK(pool_output_size(7, 2, 2, 0, true) == 4);
  CHECK(pool_output_size(147, 3, 2, 0, false) == 73);   // Inception's
  CHECK_THROWS_WITH_AS(pool_output_size(2, 3, 1, 0, false), doctest::Contains("larger than the padded input"), Error);
}
}  // TEST_SUITE
