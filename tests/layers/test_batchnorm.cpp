// The batchnorm layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include <fstream>

#include "core/ops.h"
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("batchnorm: gradients in every configuration") { test::gradcheck_type("batchnorm"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("batchnorm: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("batchnorm", "{momentum: 2}", {"key 'momentum'", "[0, 1], or be null"});
  test::expect_config_error("batchnorm", "{momentum: fast}", {"key 'momentum'", "expected a number"});
  test::expect_config_error("batchnorm", "{eps: 0}", {"key 'eps'", "must be positive"});
  test::expect_config_error("batchnorm", "{eps: .inf}", {"key 'eps'", "expected a finite number, got inf"});
  test::expect_config_error("batchnorm", "{lr_mult: .inf}", {"key 'lr_mult'", "expected a finite number"});
  test::expect_config_error("batchnorm", "{affine: yes_please}", {"key 'affine'", "expected true or false"});
  test::expect_config_error("batchnorm", "{epsilon: 0.1}", {"unknown key 'epsilon'"});
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("batchnorm: matches PyTorch in float32 and float64") { test::oracle_type("batchnorm"); }

// momentum: null is PyTorch's momentum=None: the running statistics are the cumulative average of every batch,
// the factor 1 / num_batches_tracked counting on from a loaded count. Several steps, as one step (factor 1 from
// a count of 0) would not tell it from momentum 1; momentum 0.3 alongside as the exponential average.
TEST_CASE("batchnorm: momentum null (cumulative average) and 0.3 match PyTorch's running statistics over 6 steps") {
  const int steps = 6;
  const Shape shape({4, 3, 3, 2});
  int index = 0;
  for (const char* keys : {"{momentum: null}", "{momentum: 0.3}"})
    for (DType dtype : {DType::F64, DType::F32}) {
      INFO(keys, " ", dtype_name(dtype));
      const std::filesystem::path dir = test::temp_dir(str("bn-steps-", index++));
      LayerCase c;
      c.type = "batchnorm";
      c.yaml = keys;
      std::unique_ptr<Layer> layer = make_case_layer(c);
      SetupContext ctx;
      ctx.dtype = dtype;
      ctx.name = "bn";
      layer->setup({shape}, ctx);
      // A loaded state: running statistics away from the defaults, 3 batches already counted.
      layer->buffers()[0].value.copy_from(test::random_tensor(Shape{3}, DType::F64, 11).to(dtype));
      layer->buffers()[1].value.copy_from(Tensor::from_vector({0.5, 2.0, 1.5}, Shape{3}, dtype));
      ops::fill(layer->buffers()[2].value, 3.0);
      layer->state_written();
      std::ofstream((dir / "keys.yaml").string()) << keys << "\n";
      for (size_t b = 0; b < 3; ++b)
        save_npy((dir / (layer->buffers()[b].name + ".npy")).string(), layer->buffers()[b].value);
      // Batches of other means and spreads, so that every step moves the statistics.
      std::vector<Tensor> xs;
      for (int k = 0; k < steps; ++k) {
        Tensor x = test::random_tensor(shape, DType::F64, 20 + static_cast<uint64_t>(k));
        ops::binary_scalar(ops::Binary::Mul, x, 1.0 + k, x);
        ops::binary_scalar(ops::Binary::Add, x, 0.5 * k - 1, x);
        xs.push_back(x.to(dtype));
      }
      std::vector<double> all;
      for (const Tensor& x : xs)
        for (double v : x.to_vector()) all.push_back(v);
      save_npy((dir / "x.npy").string(),
               Tensor::from_vector(all, Shape({steps, shape[0], shape[1], shape[2], shape[3]}), dtype));
      test::run_oracle("batchnorm_steps.py", {dir.string()});
      const Tensor means = load_npy((dir / "means.npy").string()), vars = load_npy((dir / "vars.npy").string());
      const Tensor outs = load_npy((dir / "out.npy").string());
      const std::vector<double> tracked = load_npy((dir / "tracked.npy").string()).to_vector();
      const double tol = dtype == DType::F64 ? 1e-12 : 1e-5;
      layer->set_training(true);
      Tensor y = Tensor::empty(shape, dtype);
      for (int k = 0; k < steps; ++k) {
        INFO("step ", k + 1);
        layer->forward({xs[static_cast<size_t>(k)]}, {y});
        CHECK(test::rel_inf_error(y, outs.slice(k, k + 1)) <= tol);
        CHECK(test::rel_inf_error(layer->buffers()[0].value, means.slice(k, k + 1)) <= tol);
        CHECK(test::rel_inf_error(layer->buffers()[1].value, vars.slice(k, k + 1)) <= tol);
        CHECK(layer->buffers()[2].value.item() == tracked[static_cast<size_t>(k)]);
      }
      CHECK(tracked.back() == 3 + steps);
      layer->set_training(false);
      layer->forward({xs.back()}, {y});
      CHECK(test::rel_inf_error(y, load_npy((dir / "eval.npy").string())) <= tol);
    }
}

}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("batchnorm: a negative num_batches_tracked loaded is refused by the next training forward") {
  LayerCase c;
  c.type = "batchnorm";
  c.yaml = "{momentum: null}";
  std::unique_ptr<Layer> layer = make_case_layer(c);
  SetupContext ctx;
  ctx.name = "bn";
  ctx.dtype = DType::F64;
  const Shape shape({2, 3, 2, 2});
  layer->setup({shape}, ctx);
  ops::fill(layer->buffers()[2].value, -1.0);
  layer->state_written();
  layer->set_training(true);
  const Tensor x = test::random_tensor(shape, DType::F64, 5), y = Tensor::empty(shape, DType::F64);
  CHECK_THROWS_WITH_AS(layer->forward({x}, {y}), doctest::Contains("num_batches_tracked is -1"), Error);
  ops::fill(layer->buffers()[2].value, 2.0);  // a count again: trains
  layer->state_written();
  layer->forward({x}, {y});
  CHECK(layer->buffers()[2].value.item() == 3);
}
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("batchnorm: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("batchnorm", 2e-3);
}
}  // TEST_SUITE
