// The top-k accuracy metric.
#include "layers/accuracy.h"

#include <cmath>

#include "tests/helpers.h"

using namespace mpncov;

TEST_SUITE("unit") {
TEST_CASE("accuracy: top-1 and top-k counts, ties towards the lower index, bad labels never count") {
  const Tensor scores = Tensor::from_vector({0.1, 0.7, 0.2,   // label 1: top-1
                                             0.5, 0.3, 0.2,   // label 2: rank 3
                                             0.4, 0.4, 0.2,   // label 1: tie with class 0, rank 2
                                             0.3, 0.3, 0.4},  // label 7: invalid
                                            {4, 3}, DType::F32);
  const Tensor labels = Tensor::from_vector({1, 2, 1, 7}, {4}, DType::I64);
  CHECK(topk_correct(scores, labels, {1, 2, 3, 5}) == std::vector<int64_t>{1, 2, 3, 3});
  CHECK_THROWS_AS(topk_correct(scores, labels, {0}), Error);
  CHECK_THROWS_AS(topk_correct(scores, Tensor::from_vector({1}, {1}, DType::I64), {1}), Error);
}

// torch.topk (the seed's accuracy) orders NaN above every number. A NaN score used to rank nowhere: a label
// scored NaN counted as top-1 (a model whose logits are all NaN scored 100%, and validation would save it
// as the best model), and a NaN elsewhere never ranked above the label.
TEST_CASE("accuracy: a NaN score ranks above every number, as in torch.topk, ties among NaNs to the lower index") {
  const double nan = std::nan("");
  const Tensor scores = Tensor::from_vector({nan, nan, nan,   // label 2: rank 3 among equal NaNs
                                             nan, nan, nan,   // label 0: top-1
                                             0.1, nan, 0.7,   // label 2: below the NaN, rank 2
                                             0.9, 0.2, nan},  // label 1: rank 3
                                            {4, 3}, DType::F32);
  const Tensor labels = Tensor::from_vector({2, 0, 2, 1}, {4}, DType::I64);
  CHECK(topk_correct(scores, labels, {1, 2, 3}) == std::vector<int64_t>{1, 2, 4});
}
}  // TEST_SUITE
