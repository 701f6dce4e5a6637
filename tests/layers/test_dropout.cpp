// The dropout layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("dropout: gradients in every configuration") { test::gradcheck_type("dropout"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("dropout: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("dropout", "{p: 1.0}", {"key 'p'", "[0, 1)"});
  test::expect_config_error("dropout", "{p: half}", {"key 'p'", "expected a number"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("dropout: matches PyTorch in evaluation (training masks differ by design)") {
  test::oracle_type("dropout", [](const LayerCase& c) { return !c.training; });
}
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("dropout: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("dropout", 1e-6);
}
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("dropout: inverted scaling, drop rate, same mask for the same step, new mask for the next") {
  LayerCase c;
  c.type = "dropout";
  c.yaml = "{p: 0.25}";
  std::unique_ptr<Layer> layer = make_case_layer(c);
  SetupContext ctx;
  ctx.dtype = DType::F64;
  ctx.name = "drop";
  const Shape s{4, 50, 10, 10};
  layer->setup({s}, ctx);
  Tensor x = Tensor::full(s, 2.0, DType::F64), y1 = Tensor::zeros(s, DType::F64), y2 = Tensor::zeros(s, DType::F64);
  layer->set_step(3);
  layer->forward({x}, {y1});
  layer->forward({x}, {y2});
  CHECK(test::max_rel_diff(y1, y2) == 0);
  int64_t zeros = 0;
  for (double v : y1.to_vector()) {
    if (v == 0) ++zeros;
    else CHECK(v == doctest::Approx(2.0 / 0.75));
  }
  CHECK(static_cast<double>(zeros) / static_cast<double>(s.numel()) == doctest::Approx(0.25).epsilon(0.1));
  layer->set_step(4);
  layer->forward({x}, {y2});
  CHECK(test::max_rel_diff(y1, y2) > 0);
  // Evaluation: identity, also in place.
  layer->set_training(false);
  layer->forward({x}, {x});
  CHECK(x.to_vector()[0] == 2.0);
}
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("dropout: processes holding every second row draw the masks of those rows in one process's batch") {
  LayerCase c;
  c.type = "dropout";
  c.yaml = "{p: 0.5}";
  SetupContext ctx;
  ctx.dtype = DType::F64;
  ctx.name = "drop";
  const Tensor x = test::random_tensor({4, 6, 3}, DType::F64, 7);
  const auto masked = [&](const Tensor& in, int64_t first, int64_t stride) {
    std::unique_ptr<Layer> layer = make_case_layer(c);
    layer->setup({in.shape()}, ctx);
    layer->set_step(5);
    layer->set_batch_rows(first, stride);
    Tensor y = Tensor::zeros(in.shape(), DType::F64);
    layer->forward({in}, {y});
    return y;
  };
  const Tensor whole = masked(x, 0, 1);
  const auto rows = [](const Tensor& t, std::vector<int64_t> which) {
    std::vector<double> v;
    for (int64_t r : which)
      for (double e : t.slice(r, r + 1).to_vector()) v.push_back(e);
    return v;
  };
  // Rank k of 2 holds rows k and k + 2 (data/sampler.h's interleaved shares).
  for (int64_t k = 0; k < 2; ++k) {
    Tensor share = Tensor::zeros({2, 6, 3}, DType::F64);
    share.slice(0, 1).copy_from(x.slice(k, k + 1));
    share.slice(1, 2).copy_from(x.slice(k + 2, k + 3));
    CHECK(masked(share, k, 2).to_vector() == rows(whole, {k, k + 2}));
  }
  CHECK(masked(x.slice(0, 2), 0, 1).to_vector() == rows(whole, {0, 1}));
  CHECK(rows(whole, {0}) != rows(whole, {1}));  // rows draw masks of their own
}
}  // TEST_SUITE
