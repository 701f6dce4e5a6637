// The relu layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("relu: gradients in every configuration") { test::gradcheck_type("relu"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("relu: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("relu", "{inplace: true}", {"unknown key 'inplace'"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("relu: matches PyTorch in float32 and float64") { test::oracle_type("relu"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("relu: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("relu", 1e-6);
}
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("relu: runs in place, backward from the output") {
  LayerCase c;
  c.type = "relu";
  std::unique_ptr<Layer> layer = make_case_layer(c);
  CHECK(layer->can_run_in_place());
  SetupContext ctx;
  ctx.dtype = DType::F64;
  Tensor x = Tensor::from_vector({-1, 2, 0, 3}, {4}, DType::F64);
  layer->setup({x.shape()}, ctx);
  layer->forward({x}, {x});
  CHECK(x.to_vector() == std::vector<double>{0, 2, 0, 3});
  Tensor g = Tensor::from_vector({5, 6, 7, 8}, {4}, DType::F64);
  layer->backward({x}, {x}, {g}, {g});
  CHECK(g.to_vector() == std::vector<double>{0, 6, 0, 8});
}
}  // TEST_SUITE
