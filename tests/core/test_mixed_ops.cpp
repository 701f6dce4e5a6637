// bfloat16 mixed precision (core/mixed_ops.h): convolution (forward, both backward passes) and matrix
// products against float64 on the same bfloat16-rounded operands, and against PyTorch's CPU autocast.
#include <cmath>

#include "core/layout_ops.h"
#include "core/mixed_ops.h"
#include "core/npy.h"
#include "tests/helpers.h"

using namespace mpncov;
using mpncov::test::max_rel_diff;
using mpncov::test::random_tensor;
using mpncov::test::scaled_diff;

namespace {

// x rounded to bfloat16, as float64 (the reference computes on exactly the values the kernels see).
Tensor rounded64(const Tensor& x) { return x.to(DType::BF16).to(DType::F64); }


struct ConvCase {
  Shape x, w;
  ops::Conv2dParams p;
};

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("bf16 convolution: forward and both backward passes equal float64 on the rounded operands") {
  ops::Conv2dParams strided;
  strided.stride_h = strided.stride_w = 2;
  strided.pad_h = strided.pad_w = 1;
  strided.groups = 2;
  ops::Conv2dParams padded;
  padded.pad_h = padded.pad_w = 1;
  padded.dilation_h = padded.dilation_w = 2;
  const std::vector<ConvCase> cases = {{{2, 16, 9, 9}, {32, 16, 3, 3}, padded},
                                       {{2, 16, 8, 8}, {16, 8, 3, 3}, strided},
                                       {{3, 32, 5, 5}, {16, 32, 1, 1}, {}}};
  uint64_t seed = 10;
  for (const ConvCase& c : cases) {
    CAPTURE(c.x.str());
    CAPTURE(c.w.str());
    const ops::ConvGeometry g = ops::conv_geometry(c.x, c.w, c.p);
    const Shape ys{c.x[0], c.w[0], g.out_h(), g.out_w()};
    Tensor x = random_tensor(c.x, DType::F32, ++seed), w = random_tensor(c.w, DType::F32, ++seed);
    Tensor b = random_tensor({c.w[0]}, DType::F32, ++seed), dy = random_tensor(ys, DType::F32, ++seed);

    Tensor y = Tensor::empty(ys);
    ops::conv2d_forward_bf16(x, w, b, y, c.p);
    Tensor y64 = Tensor::empty(ys, DType::F64), y64_unrounded = Tensor::empty(ys, DType::F64);
    ops::conv2d_forward(rounded64(x), rounded64(w), b.to(DType::F64), y64, c.p);
    ops::conv2d_forward(x.to(DType::F64), w.to(DType::F64), b.to(DType::F64), y64_unrounded, c.p);
    // float32 accumulation of exact bf16 products: ~1e-6 of the scale; skipping the rounding: ~1e-3.
    CHECK(scaled_diff(y, y64) < 2e-6);
    CHECK(scaled_diff(y, y64_unrounded) > 1e-4);

    // Gradients accumulate into dw and db: start them at 1.
    Tensor dx = Tensor::full(c.x, 7.0), dw = Tensor::full(c.w, 1.0), db = Tensor::full({c.w[0]}, 1.0);
    ops::conv2d_backward_bf16(x, w, dy, dx, dw, db, c.p);
    Tensor dx64 = Tensor::empty(c.x, DType::F64), dw64 = Tensor::full(c.w, 1.0, DType::F64);
    Tensor db64 = Tensor::full({c.w[0]}, 1.0, DType::F64);
    ops::conv2d_backward(rounded64(x), rounded64(w), rounded64(dy), dx64, dw64, db64, c.p);
    CHECK(scaled_diff(dx, dx64) < 2e-6);
    CHECK(scaled_diff(dw, dw64) < 2e-6);
    CHECK(scaled_diff(db, db64) < 2e-6);

    // The weight gradient alone (no dx) is the same.
    Tensor dw_only = Tensor::full(c.w, 1.0);
    ops::conv2d_backward_bf16(x, w, dy, Tensor(), dw_only, Tensor(), c.p);
    CHECK(max_rel_diff(dw_only, dw) == 0);
  }
}

TEST_CASE("bf16 convolution: activations stored in bfloat16 give the float32-stored results, rounded") {
  // A net in mixed precision keeps activations in bfloat16 (docs/layouts.md): the kernels then read them
  // as they are and write bfloat16. Same products and float32 sums as with float32 storage of the same
  // values; only the result's rounding to bfloat16 is added (at most half a bfloat16 step, 2^-9 relative,
  // plus the float32 sums' order, which the two kernels may choose differently).
  ops::Conv2dParams padded;
  padded.pad_h = padded.pad_w = 1;
  const std::vector<ConvCase> cases = {{{2, 32, 9, 9}, {32, 32, 3, 3}, padded}, {{3, 32, 5, 5}, {64, 32, 1, 1}, {}}};
  uint64_t seed = 40;
  for (Layout layout : {Layout::NHWC, Layout::NCHW, Layout::Blocked16})
    for (const ConvCase& c : cases) {
      CAPTURE(layout_name(layout));
      CAPTURE(c.x.str());
      const ops::ConvGeometry g = ops::conv_geometry(c.x, c.w, c.p);
      const Shape ys{c.x[0], c.w[0], g.out_h(), g.out_w()};
      // Values that are bfloat16 already, in float32 and in bfloat16, in the layout.
      const auto in_layout = [&](const Tensor& t) { return test::in_layout(t, layout); };
      Tensor x = in_layout(random_tensor(c.x, DType::F32, ++seed).to(DType::BF16).to(DType::F32));
      Tensor dy = in_layout(random_tensor(ys, DType::F32, ++seed).to(DType::BF16).to(DType::F32));
      Tensor w = random_tensor(c.w, DType::F32, ++seed), b = random_tensor({c.w[0]}, DType::F32, ++seed);
      Tensor x16 = x.to(DType::BF16), dy16 = dy.to(DType::BF16);
      REQUIRE(x16.layout() == layout);

      Tensor y = Tensor::empty(ys).with_layout(layout), y16 = Tensor::empty(ys, DType::BF16).with_layout(layout);
      ops::conv2d_forward_bf16(x, w, b, y, c.p);
      ops::conv2d_forward_bf16(x16, w, b, y16, c.p);
      CHECK(scaled_diff(y16.to(DType::F32), y) < 4e-3);
      CHECK(scaled_diff(y16.to(DType::F32), y.to(DType::BF16).to(DType::F32)) < 4e-3);

      Tensor dx = Tensor::empty(c.x).with_layout(layout), dx16 = Tensor::empty(c.x, DType::BF16).with_layout(layout);
      Tensor dw = Tensor::zeros(c.w), dw16 = Tensor::zeros(c.w), db = Tensor::zeros({c.w[0]}), db16 = Tensor::zeros({c.w[0]});
      ops::conv2d_backward_bf16(x, w, dy, dx, dw, db, c.p);
      ops::conv2d_backward_bf16(x16, w, dy16, dx16, dw16, db16, c.p);
      CHECK(scaled_diff(dx16.to(DType::F32), dx) < 4e-3);
      CHECK(scaled_diff(dw16, dw) < 2e-6);  // float32 results from the same bfloat16 operands
      CHECK(scaled_diff(db16, db) < 2e-6);
      // A float32 input with a bfloat16 output (a net's boundary) and the reverse.
      Tensor y_mixed = Tensor::empty(ys, DType::BF16).with_layout(layout);
      ops::conv2d_forward_bf16(x, w, b, y_mixed, c.p);
      CHECK(scaled_diff(y_mixed.to(DType::F32), y) < 4e-3);
      ops::conv2d_forward_bf16(x16, w, b, y, c.p);
      CHECK(scaled_diff(y16.to(DType::F32), y) < 4e-3);
    }
  // The input and its gradient share a type.
  Tensor x16 = Tensor::zeros({1, 16, 4, 4}, DType::BF16), w = Tensor::zeros({16, 16, 1, 1});
  Tensor dy = Tensor::zeros({1, 16, 4, 4}), dx = Tensor::zeros({1, 16, 4, 4});
  CHECK_THROWS_WITH_AS(ops::conv2d_backward_bf16(x16, w, dy, dx, Tensor(), Tensor(), {}),
                       doctest::Contains("differ in layout or type"), Error);
}

TEST_CASE("bf16 convolution: the forward's bfloat16 weights serve its backward pass, never older weights") {
  // A training layer passes a ConvWeightCache: forward keeps its bfloat16 weights, the backward pass reads
  // the input-gradient kernel's from them. Same bfloat16 values either way, so the results must be those
  // without the cache bit for bit, including after the weights change between steps (an update, a load).
  ops::Conv2dParams padded;
  padded.pad_h = padded.pad_w = 1;
  ops::Conv2dParams strided;
  strided.stride_h = strided.stride_w = 2;
  strided.pad_h = strided.pad_w = 1;
  strided.groups = 2;
  ops::Conv2dParams downsample;  // 1x1 stride 2, on an odd and an even size
  downsample.stride_h = downsample.stride_w = 2;
  const std::vector<ConvCase> cases = {{{2, 32, 9, 9}, {64, 32, 3, 3}, padded},
                                       {{3, 64, 5, 5}, {32, 64, 1, 1}, {}},
                                       {{2, 16, 8, 8}, {16, 8, 3, 3}, strided},
                                       {{2, 32, 9, 9}, {48, 32, 1, 1}, downsample},
                                       {{2, 32, 8, 6}, {16, 32, 1, 1}, downsample}};
  uint64_t seed = 60;
  // NHWC: the pointwise case's weight gradient is one matrix product (conv_onednn.cpp).
  for (Layout layout : {Layout::NCHW, Layout::NHWC, Layout::Blocked16})
    for (const ConvCase& c : cases) {
      CAPTURE(layout_name(layout));
      CAPTURE(c.x.str());
      const ops::ConvGeometry g = ops::conv_geometry(c.x, c.w, c.p);
      const Shape ys{c.x[0], c.w[0], g.out_h(), g.out_w()};
      const auto in_layout = [&](const Tensor& t) { return test::in_layout(t, layout); };
      const Tensor x = in_layout(random_tensor(c.x, DType::F32, ++seed).to(DType::BF16));
      const Tensor dy = in_layout(random_tensor(ys, DType::F32, ++seed).to(DType::BF16));
      const Tensor b = random_tensor({c.w[0]}, DType::F32, ++seed);
      // Forward and backward without a cache: the reference for weights w.
      const auto reference = [&](const Tensor& w, Tensor& y, Tensor& dx, Tensor& dw) {
        y = in_layout(Tensor::zeros(ys, DType::BF16));
        dx = in_layout(Tensor::zeros(c.x, DType::BF16));
        dw = Tensor::zeros(c.w);
        ops::conv2d_forward_bf16(x, w, b, y, c.p);
        ops::conv2d_backward_bf16(x, w, dy, dx, dw, Tensor(), c.p);
      };
      Tensor w = random_tensor(c.w, DType::F32, ++seed);
      const Tensor w_first = w.clone();
      const Tensor w_next = random_tensor(c.w, DType::F32, ++seed);
      Tensor y_ref, dx_ref, dw_ref, y_next, dx_next, dw_next;
      reference(w, y_ref, dx_ref, dw_ref);
      reference(w_next, y_next, dx_next, dw_next);
      REQUIRE(dx_ref.to_vector() != dx_next.to_vector());
      // Whatever route the weight gradient takes (NHWC 1x1: a matmul), it is float64's on the same operands.
      Tensor dw64 = Tensor::zeros(c.w, DType::F64);
      ops::conv2d_backward(ops::to_nchw_float(x).to(DType::F64), rounded64(w), ops::to_nchw_float(dy).to(DType::F64),
                           Tensor(), dw64, Tensor(), c.p);
      CHECK(scaled_diff(dw_ref, dw64) < 2e-6);
      Tensor dx64 = Tensor::empty(c.x, DType::F64);  // the input gradient, rounded to bfloat16
      ops::conv2d_backward(ops::to_nchw_float(x).to(DType::F64), rounded64(w), ops::to_nchw_float(dy).to(DType::F64),
                           dx64, Tensor(), Tensor(), c.p);
      CHECK(scaled_diff(ops::to_nchw_float(dx_ref), dx64) < 4e-3);

      ops::ConvWeightCache cache;
      Tensor y = in_layout(Tensor::zeros(ys, DType::BF16)), dx = in_layout(Tensor::zeros(c.x, DType::BF16));
      // The weight gradient written over garbage (accumulate_dweight false) and then accumulated.
      Tensor dw = Tensor::full(c.w, NAN);
      for (int step = 0; step < 2; ++step) {
        ops::conv2d_forward_bf16(x, w, b, y, c.p, &cache);
        CHECK(cache.plan != nullptr);
        ops::conv2d_backward_bf16(x, w, dy, dx, dw, Tensor(), c.p, /*accumulate_dweight=*/step > 0, &cache);
        CHECK(cache.plan == nullptr);  // used once
        CHECK(y.to_vector() == y_ref.to_vector());
        CHECK(dx.to_vector() == dx_ref.to_vector());
      }
      Tensor dw_twice = dw_ref.clone();
      ops::axpby(1.0, dw_ref, 1.0, dw_twice);
      CHECK(dw.to_vector() == dw_twice.to_vector());

      // The weights change in place between steps (an SGD update, a checkpoint load): the next step's
      // backward pass must use the new ones.
      w.copy_from(w_next);
      ops::conv2d_forward_bf16(x, w, b, y, c.p, &cache);
      ops::conv2d_backward_bf16(x, w, dy, dx, dw, Tensor(), c.p, false, &cache);
      CHECK(y.to_vector() == y_next.to_vector());
      CHECK(dx.to_vector() == dx_next.to_vector());
      CHECK(dw.to_vector() == dw_next.to_vector());
      // A backward pass with other weights than its forward's, or with no forward before it, converts them.
      ops::conv2d_forward_bf16(x, w, b, y, c.p, &cache);
      ops::conv2d_backward_bf16(x, w_first, dy, dx, dw, Tensor(), c.p, false, &cache);
      CHECK(dx.to_vector() == dx_ref.to_vector());
      ops::conv2d_backward_bf16(x, w_next, dy, dx, dw, Tensor(), c.p, false, &cache);
      CHECK(dx.to_vector() == dx_next.to_vector());
    }
}

TEST_CASE("bf16 matmul and rounding: bfloat16 products, float32 accumulation") {
  Tensor a = random_tensor({5, 40}, DType::F32, 3), b = random_tensor({7, 40}, DType::F32, 4);
  Tensor c = Tensor::full({5, 7}, 2.0);
  ops::matmul_bf16(a, b, c, false, true, 1.0, 1.0);
  Tensor c64 = Tensor::full({5, 7}, 2.0, DType::F64);
  ops::matmul(rounded64(a), rounded64(b), c64, false, true, 1.0, 1.0);
  CHECK(scaled_diff(c, c64) < 2e-6);
  Tensor exact = Tensor::full({5, 7}, 2.0, DType::F64);
  ops::matmul(a.to(DType::F64), b.to(DType::F64), exact, false, true, 1.0, 1.0);
  CHECK(scaled_diff(c, exact) > 1e-4);

  Tensor r = a.clone();
  ops::round_to_bf16(r, r);
  CHECK(max_rel_diff(r, a.to(DType::BF16).to(DType::F32)) == 0);
}

TEST_CASE("bf16 ops: float64 and bfloat16 tensors are refused") {
  Tensor x = Tensor::zeros({1, 2, 4, 4}, DType::F64), w = Tensor::zeros({2, 2, 3, 3}, DType::F64);
  Tensor y = Tensor::zeros({1, 2, 2, 2}, DType::F64);
  CHECK_THROWS_WITH_AS(ops::conv2d_forward_bf16(x, w, Tensor(), y, {}),
                       doctest::Contains("mixed precision takes float32 tensors"), Error);
  Tensor a = Tensor::zeros({2, 2}, DType::BF16);
  CHECK_THROWS_WITH_AS(ops::matmul_bf16(a, a, Tensor::zeros({2, 2})), doctest::Contains("bfloat16"), Error);
  CHECK_THROWS_WITH_AS(ops::conv2d_forward_bf16(Tensor::zeros({1, 2, 4, 4}), Tensor::zeros({2, 2, 3, 3}), Tensor(),
                                                Tensor::zeros({1, 2, 3, 3}), {}),
                       doctest::Contains("output has shape"), Error);
}

}  // TEST_SUITE

TEST_SUITE("oracle") {

TEST_CASE("bf16 convolution and linear against PyTorch's CPU autocast") {
  const auto dir = test::temp_dir("mixed_ops_oracle");
  ops::Conv2dParams p;
  p.stride_h = p.stride_w = 2;
  p.pad_h = p.pad_w = 1;
  p.groups = 2;
  const Shape xs{2, 8, 9, 9}, ws{12, 4, 3, 3};
  const ops::ConvGeometry g = ops::conv_geometry(xs, ws, p);
  const Shape ys{2, 12, g.out_h(), g.out_w()};
  Tensor x = random_tensor(xs, DType::F32, 21), w = random_tensor(ws, DType::F32, 22);
  Tensor b = random_tensor({12}, DType::F32, 23), dy = random_tensor(ys, DType::F32, 24);
  Tensor lx = random_tensor({4, 30}, DType::F32, 25), lw = random_tensor({6, 30}, DType::F32, 26);
  Tensor lb = random_tensor({6}, DType::F32, 27), ldy = random_tensor({4, 6}, DType::F32, 28);
  const std::vector<std::pair<std::string, Tensor>> inputs = {{"x", x},   {"w", w},   {"b", b},   {"dy", dy},
                                                              {"lx", lx}, {"lw", lw}, {"lb", lb}, {"ldy", ldy}};
  for (const auto& [name, t] : inputs) save_npy((dir / (name + ".npy")).string(), t);
  test::run_oracle("conv_bf16_reference.py", {dir.string(), "2", "1", "2"});
  auto ref = [&](const std::string& name) { return load_npy((dir / (name + ".npy")).string()); };

  // PyTorch rounds its outputs and gradients to bfloat16 (2^-9 relative); ours stay float32.
  const double tol = 1e-2;
  Tensor y = Tensor::empty(ys);
  ops::conv2d_forward_bf16(x, w, b, y, p);
  CHECK(scaled_diff(y, ref("y")) < tol);
  Tensor dx = Tensor::empty(xs), dw = Tensor::zeros(ws), db = Tensor::zeros({12});
  ops::conv2d_backward_bf16(x, w, dy, dx, dw, db, p);
  CHECK(scaled_diff(dx, ref("dx")) < tol);
  CHECK(scaled_diff(dw, ref("dw")) < tol);
  CHECK(scaled_diff(db, ref("db")) < tol);

  // Linear: y = x w^T + b, dx = dy w, dw = dy^T x.
  Tensor ly = Tensor::empty({4, 6});
  for (int64_t i = 0; i < 4; ++i) ly.slice(i, i + 1).copy_from(lb.reshape({1, 6}));
  ops::matmul_bf16(lx, lw, ly, false, true, 1.0, 1.0);
  CHECK(scaled_diff(ly, ref("ly")) < tol);
  Tensor ldx = Tensor::empty({4, 30}), ldw = Tensor::empty({6, 30});
  ops::matmul_bf16(ldy, lw, ldx);
  ops::matmul_bf16(ldy, lx, ldw, true, false);
  CHECK(scaled_diff(ldx, ref("ldx")) < tol);
  CHECK(scaled_diff(ldw, ref("ldw")) < tol);
}

}  // TEST_SUITE
