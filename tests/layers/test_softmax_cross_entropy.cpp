// The softmax_cross_entropy layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include <cmath>
#include <limits>

#include "core/nn_ops.h"
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

// A -inf logit (a masked class) has probability 0. Without smoothing PyTorch's loss is then finite: only the
// labels' log-probabilities count. With smoothing the uniform target gives it weight, so the loss is infinite.
TEST_CASE("softmax_cross_entropy: a -inf logit leaves the loss finite without label smoothing, as PyTorch") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor logits = Tensor::from_vector({0, -inf, 1, 2, 0.5, -1}, Shape({2, 3}), dt);
    const Tensor labels = Tensor::from_vector({0, 1}, Shape({2}), DType::I64);
    const Tensor prob = Tensor::zeros(Shape({2, 3}), dt), loss = Tensor::zeros(Shape(std::vector<int64_t>{}), dt);
    ops::softmax_cross_entropy_forward(logits, labels, prob, loss, 0.0);
    const double row0 = std::log(1 + std::exp(1.0));
    const double row1 = std::log(std::exp(2.0) + std::exp(0.5) + std::exp(-1.0)) - 0.5;
    INFO(dtype_name(dt));
    CHECK(loss.item() == doctest::Approx((row0 + row1) / 2).epsilon(1e-6));  // PyTorch: 1.5273
    const Tensor dlogits = Tensor::zeros(Shape({2, 3}), dt);
    ops::softmax_cross_entropy_backward(prob, labels, Tensor::from_vector({1}, Shape({1}), dt), dlogits, 0.0);
    for (double g : dlogits.to_vector()) CHECK(std::isfinite(g));
    CHECK(dlogits.to_vector()[1] == 0.0);
    ops::softmax_cross_entropy_forward(logits, labels, prob, loss, 0.1);
    CHECK(loss.item() == inf);  // PyTorch: inf
  }
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
