// Batch norm with a fused ReLU (core/nn_ops.h batch_norm_*'s relu and relu_out): forward is the batch norm
// then Unary::Relu, backward relu_backward then the batch norm backward, bit for bit (add_relu_* likewise), on float32 and
// bfloat16 storage in NCHW, NHWC and nChw16c (float64 in NCHW), training and evaluation, with outputs
// exactly zero (both signs), NaN where the ReLU's output is 0, and the per-block and general kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/layout_ops.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

std::vector<unsigned char> bytes_of(const Tensor& t) {
  std::vector<unsigned char> out(t.nbytes());
  std::memcpy(out.data(), t.raw(), out.size());
  return out;
}

// A float32 NCHW tensor in dtype d and layout l.
Tensor as(const Tensor& x, DType d, Layout l) {
  if (d == DType::F64) return x.to(DType::F64);
  Tensor y = Tensor::empty(x.shape(), d).with_layout(l);
  ops::to_layout(x, y);
  return y;
}

struct Result {
  Tensor y, dx, mean, invstd, rm, rv, dw, db;
};

// One forward and backward, fused or as the two ops; dy is the gradient of the ReLU's output.
Result run(const Tensor& x, const Tensor& dy, const Tensor& w, const Tensor& b, bool training, bool fused) {
  const int64_t c = x.dim(1);
  const DType stats = x.dtype() == DType::F64 ? DType::F64 : DType::F32;
  Result r;
  r.y = Tensor::zeros(x.shape(), x.dtype()).with_layout(x.layout());
  r.dx = Tensor::zeros(x.shape(), x.dtype()).with_layout(x.layout());
  r.mean = Tensor::zeros(Shape({c}), stats);
  r.invstd = Tensor::zeros(Shape({c}), stats);
  r.rm = test::random_tensor(Shape({c}), stats, 10);
  r.rv = test::random_tensor(Shape({c}), stats, 11, 0.5, 2);
  r.dw = Tensor::full(Shape({c}), 0.25, stats);
  r.db = Tensor::full(Shape({c}), -0.5, stats);  // accumulated into
  if (training) ops::batch_norm_forward_train(x, w, b, r.y, r.mean, r.invstd, r.rm, r.rv, 0.1, 1e-5, fused);
  else ops::batch_norm_forward_eval(x, w, b, r.y, r.mean, r.invstd, r.rm, r.rv, 1e-5, fused);
  if (!fused) ops::unary(ops::Unary::Relu, r.y, r.y);
  if (fused) {
    ops::batch_norm_backward(x, dy, w, r.mean, r.invstd, r.dx, r.dw, r.db, training, r.y);
  } else {
    Tensor g = Tensor::empty(x.shape(), x.dtype()).with_layout(x.layout());
    ops::relu_backward(r.y, dy, g);
    ops::batch_norm_backward(x, g, w, r.mean, r.invstd, r.dx, r.dw, r.db, training);
  }
  return r;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("bn relu fusion: fused batch norm + ReLU equals the two ops bit for bit, forward and backward") {
  // (4, 32, 6, 6): nChw16c with 32 channels runs the per-block kernels, with 16 the general ones; threaded.
  for (int64_t c : {32, 16}) {
    const Shape shape({4, c, 6, 6});
    Tensor x = test::random_tensor(shape, DType::F32, 1, -2, 2), dy = test::random_tensor(shape, DType::F32, 2);
    // Channel 0 normalises to exactly 0 (weight 0, bias 0), channel 1 to a negative constant: ReLU's ties.
    Tensor w = test::random_tensor(Shape({c}), DType::F32, 3, 0.5, 2), b = test::random_tensor(Shape({c}), DType::F32, 4);
    w.data<float>()[0] = 0.0f;
    b.data<float>()[0] = 0.0f;
    w.data<float>()[1] = 0.0f;
    b.data<float>()[1] = -1.0f;
    // NaN gradients where the ReLU's output is 0 must not leak (relu_backward's select): channel 1.
    float* g = dy.data<float>();
    for (int64_t i = 0; i < 4; ++i) g[(i * c + 1) * 36 + 5] = std::numeric_limits<float>::quiet_NaN();
    for (DType d : {DType::F32, DType::BF16, DType::F64}) {
      for (Layout l : {Layout::NCHW, Layout::NHWC, Layout::Blocked16}) {
        if (d == DType::F64 && l != Layout::NCHW) continue;
        for (bool training : {true, false}) {
          INFO("channels ", c, ", ", dtype_name(d), ", layout ", std::string(layout_name(l)), ", training ", training);
          const Tensor xs = as(x, d, l), dys = as(dy, d, l);
          const Tensor ws = d == DType::F64 ? w.to(DType::F64) : w, bs = d == DType::F64 ? b.to(DType::F64) : b;
          const Result fused = run(xs, dys, ws, bs, training, true), plain = run(xs, dys, ws, bs, training, false);
          CHECK(bytes_of(fused.y) == bytes_of(plain.y));
          CHECK(bytes_of(fused.dx) == bytes_of(plain.dx));
          for (const auto& [a, e] : {std::pair{fused.mean, plain.mean}, {fused.invstd, plain.invstd}, {fused.rm, plain.rm},
                                     {fused.rv, plain.rv}, {fused.dw, plain.dw}, {fused.db, plain.db}})
            CHECK(bytes_of(a) == bytes_of(e));
          // The test sees ties and a live gradient: zeros in y, and the NaN masked away.
          const std::vector<double> yv = ops::to_nchw(fused.y).to(DType::F64).to_vector();
          CHECK(std::count(yv.begin(), yv.end(), 0.0) >= 2 * 4 * 36);
          for (double v : ops::to_nchw(fused.dx).to(DType::F64).to_vector()) REQUIRE(!std::isnan(v));
          // In place, as a net runs it: the ReLU's output over the batch norm's, dx over dy.
          Tensor yi = xs.clone(), dxi = dys.clone();
          const int64_t cc = xs.dim(1);
          const DType st = d == DType::F64 ? DType::F64 : DType::F32;
          Tensor mean = Tensor::zeros(Shape({cc}), st), invstd = Tensor::zeros(Shape({cc}), st);
          Tensor rm = test::random_tensor(Shape({cc}), st, 10), rv = test::random_tensor(Shape({cc}), st, 11, 0.5, 2);
          if (training) ops::batch_norm_forward_train(yi, ws, bs, yi, mean, invstd, rm, rv, 0.1, 1e-5, true);
          else ops::batch_norm_forward_eval(yi, ws, bs, yi, mean, invstd, rm, rv, 1e-5, true);
          CHECK(bytes_of(yi) == bytes_of(plain.y));
          ops::batch_norm_backward(xs, dxi, ws, mean, invstd, dxi, Tensor(), Tensor(), training, yi);
          CHECK(bytes_of(dxi) == bytes_of(plain.dx));
        }
      }
    }
  }
}

TEST_CASE("bn relu fusion: a NaN normalised value gives 0 as the ReLU does - bad ReLU outputs are refused") {
  // Evaluation normalises each value alone: a NaN input stays NaN there, and the ReLU makes it 0.
  const Shape shape({2, 16, 3, 3});
  Tensor x = test::random_tensor(shape, DType::F32, 5);
  x.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();
  x.data<float>()[8] = -std::numeric_limits<float>::quiet_NaN();
  const Tensor w = test::random_tensor(Shape({16}), DType::F32, 6), b = test::random_tensor(Shape({16}), DType::F32, 7);
  const Tensor dy = test::random_tensor(shape, DType::F32, 8);
  for (DType d : {DType::F32, DType::BF16}) {
    for (Layout l : {Layout::NCHW, Layout::Blocked16}) {
      INFO(dtype_name(d), ", layout ", std::string(layout_name(l)));
      const Tensor xs = as(x, d, l), dys = as(dy, d, l);
      const Result fused = run(xs, dys, w, b, false, true), plain = run(xs, dys, w, b, false, false);
      CHECK(bytes_of(fused.y) == bytes_of(plain.y));
      CHECK(bytes_of(fused.dx) == bytes_of(plain.dx));
      CHECK(ops::to_nchw(fused.y).to(DType::F64).to_vector()[7] == 0.0);
    }
  }
  const Tensor mean = Tensor::zeros(Shape({16})), invstd = Tensor::full(Shape({16}), 1.0), dx = Tensor::zeros(shape);
  CHECK_THROWS_WITH_AS(ops::batch_norm_backward(x, dy, w, mean, invstd, dx, Tensor(), Tensor(), true,
                                                Tensor::zeros(Shape({2, 16, 3, 2}))),
                       doctest::Contains("batch_norm_backward"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm_backward(x, dy, w, mean, invstd, dx, Tensor(), Tensor(), true,
                                                Tensor::zeros(shape, DType::F64)),
                       doctest::Contains("batch_norm_backward"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm_backward(x, dy, w, mean, invstd, dx, Tensor(), Tensor(), true,
                                                Tensor::zeros(shape).with_layout(Layout::NHWC)),
                       doctest::Contains("batch_norm_backward"), Error);
}

TEST_CASE("bn relu fusion: add + ReLU in one pass equals the two ops bit for bit, forward and backward") {
  const Shape shape({2, 32, 5, 5});
  Tensor a = test::random_tensor(shape, DType::F32, 1), b = test::random_tensor(shape, DType::F32, 2);
  Tensor dy = test::random_tensor(shape, DType::F32, 3);
  float* pa = a.data<float>();
  float* pb = b.data<float>();
  for (int64_t i = 0; i < a.numel(); i += 5) pb[i] = -pa[i];  // sums exactly 0
  pa[1] = std::numeric_limits<float>::quiet_NaN();             // a NaN sum: the ReLU makes it 0
  for (int64_t i = 0; i < a.numel(); i += 10) dy.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  for (DType d : {DType::F32, DType::BF16, DType::F64}) {
    for (Layout l : {Layout::NCHW, Layout::Blocked16}) {
      if (d == DType::F64 && l != Layout::NCHW) continue;
      INFO(dtype_name(d), ", layout ", std::string(layout_name(l)));
      const Tensor as_ = as(a, d, l), bs = as(b, d, l), dys = as(dy, d, l);
      const auto empty = [&] { return Tensor::zeros(shape, d).with_layout(l); };
      Tensor want = empty(), got = empty();
      ops::binary(ops::Binary::Add, as_, bs, want);
      ops::unary(ops::Unary::Relu, want, want);
      ops::add_relu_forward(as_, bs, got);
      CHECK(bytes_of(got) == bytes_of(want));
      Tensor g = empty();
      ops::relu_backward(want, dys, g);
      Tensor dx0 = empty(), dx1 = empty();
      ops::add_relu_backward(got, dys, dx0, dx1);
      CHECK(bytes_of(dx0) == bytes_of(g));
      CHECK(bytes_of(dx1) == bytes_of(g));
      // In place, as a net runs it: y over a, the first gradient over dy; or only the second wanted.
      Tensor y = as_.clone(), d0 = dys.clone(), d1 = empty();
      ops::add_relu_forward(y, bs, y);
      CHECK(bytes_of(y) == bytes_of(want));
      ops::add_relu_backward(y, d0, d0, d1);
      CHECK(bytes_of(d0) == bytes_of(g));
      CHECK(bytes_of(d1) == bytes_of(g));
      Tensor only = empty();
      ops::add_relu_backward(y, dys, Tensor(), only);
      CHECK(bytes_of(only) == bytes_of(g));
      const std::vector<double> yv = ops::to_nchw(got).to(DType::F64).to_vector();
      CHECK(yv[0] == 0.0);
      CHECK(yv[1] == 0.0);
    }
  }
  CHECK_THROWS_WITH_AS(ops::add_relu_forward(a, b, Tensor::zeros(Shape({2, 32, 5, 4}))),
                       doctest::Contains("add_relu_forward"), Error);
  CHECK_THROWS_WITH_AS(ops::add_relu_backward(a, dy, Tensor::zeros(shape).with_layout(Layout::NHWC), Tensor()),
                       doctest::Contains("add_relu_backward"), Error);
}

TEST_CASE("bn relu fusion: batch norm + residual add + ReLU in one pass equals batch norm then add + ReLU") {
  // Per-block (32 channels in nChw16c) and general (16) kernels; float32, bfloat16 (the normalised value
  // rounded before the add, as the batch norm stores it) and float64; the output over the residual in place.
  for (int64_t c : {32, 16}) {
    const Shape shape({3, c, 5, 5});
    const Tensor x = test::random_tensor(shape, DType::F32, 1, -2, 2), dy = test::random_tensor(shape, DType::F32, 2);
    Tensor r = test::random_tensor(shape, DType::F32, 3);
    Tensor w = test::random_tensor(Shape({c}), DType::F32, 4, 0.5, 2), b = test::random_tensor(Shape({c}), DType::F32, 5);
    w.data<float>()[0] = 0.0f;  // channel 0 normalises to exactly 0.5: with a residual of -0.5 the sum is 0
    b.data<float>()[0] = 0.5f;
    for (int64_t i = 0; i < 3; ++i) r.data<float>()[i * c * 25 + 3] = -0.5f;
    for (DType d : {DType::F32, DType::BF16, DType::F64}) {
      for (Layout l : {Layout::NCHW, Layout::NHWC, Layout::Blocked16}) {
        if (d == DType::F64 && l != Layout::NCHW) continue;
        INFO("channels ", c, ", ", dtype_name(d), ", layout ", std::string(layout_name(l)));
        const Tensor xs = as(x, d, l), rs = as(r, d, l);
        const Tensor ws = d == DType::F64 ? w.to(DType::F64) : w, bs = d == DType::F64 ? b.to(DType::F64) : b;
        const DType st = d == DType::F64 ? DType::F64 : DType::F32;
        const auto stats = [&](Tensor& mean, Tensor& invstd, Tensor& rm, Tensor& rv) {
          mean = Tensor::zeros(Shape({c}), st);
          invstd = Tensor::zeros(Shape({c}), st);
          rm = test::random_tensor(Shape({c}), st, 10);
          rv = test::random_tensor(Shape({c}), st, 11, 0.5, 2);
        };
        Tensor m1, i1, rm1, rv1, m2, i2, rm2, rv2;
        stats(m1, i1, rm1, rv1);
        stats(m2, i2, rm2, rv2);
        Tensor want = Tensor::zeros(shape, d).with_layout(l);
        ops::batch_norm_forward_train(xs, ws, bs, want, m1, i1, rm1, rv1, 0.1, 1e-5);
        ops::add_relu_forward(want, rs, want);
        Tensor got = rs.clone();  // in place over the residual, as a net runs it for the add's second input
        ops::batch_norm_forward_train(xs, ws, bs, got, m2, i2, rm2, rv2, 0.1, 1e-5, true, got);
        CHECK(bytes_of(got) == bytes_of(want));
        for (const auto& [a, e] : {std::pair{m2, m1}, {i2, i1}, {rm2, rm1}, {rv2, rv1}}) CHECK(bytes_of(a) == bytes_of(e));
        const std::vector<double> yv = ops::to_nchw(got).to(DType::F64).to_vector();
        CHECK(yv[3] == 0.0);
        CHECK(std::count(yv.begin(), yv.end(), 0.0) > 0);
        CHECK(std::count_if(yv.begin(), yv.end(), [](double v) { return v > 0; }) > 0);
      }
    }
  }
  const Shape shape({2, 16, 3, 3});
  const Tensor x = test::random_tensor(shape, DType::F32, 6), y = Tensor::zeros(shape);
  const Tensor mean = Tensor::zeros(Shape({16})), invstd = Tensor::zeros(Shape({16}));
  CHECK_THROWS_WITH_AS(ops::batch_norm_forward_train(x, Tensor(), Tensor(), y, mean, invstd, Tensor(), Tensor(), 0.1,
                                                     1e-5, false, Tensor::zeros(shape)),
                       doctest::Contains("comes with its ReLU"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm_forward_train(x, Tensor(), Tensor(), y, mean, invstd, Tensor(), Tensor(), 0.1,
                                                     1e-5, true, Tensor::zeros(Shape({2, 16, 3, 2}))),
                       doctest::Contains("residual"), Error);
}

}  // TEST_SUITE
