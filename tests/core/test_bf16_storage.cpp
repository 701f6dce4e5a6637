// bfloat16 storage (core/bfloat16.h): the ops that run on a bfloat16 net's activations take DType::BF16
// CPU tensors in NCHW, NHWC and nChw16c. Each result must be the float32 op's on the same (widened) inputs,
// rounded to bfloat16. Where the bfloat16 op runs the float32 kernel's arithmetic unchanged (the same
// kernel, the same order) that holds bit for bit, and the tests ask for it; where the float32 reference
// runs another kernel (bfloat16 NCHW batch norm goes through the layout kernels of core/cpu/blocked.cpp with
// blocks of one channel, float32 NCHW through core/cpu/batchnorm.cpp) the sums differ in order, by float32
// rounding, which may move a result across a bfloat16 rounding boundary: within 1 bfloat16 ulp there.
#include <cmath>
#include <cstring>
#include <limits>
#include <yaml-cpp/yaml.h>

#include "core/bfloat16.h"
#include "core/layout_ops.h"
#include "core/nn_ops.h"
#include "layers/layer.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

const Layout kAll[] = {Layout::NCHW, Layout::NHWC, Layout::Blocked16};

// Uniform values in [-2, 2) with exact zeros (both signs) sprinkled in: ReLU's ties.
Tensor values(const Shape& s, uint64_t seed) {
  Tensor t = test::random_tensor(s, DType::F32, seed, -2, 2);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (i % 7 == 3) p[i] = 0.0f;
    if (i % 11 == 5) p[i] = -0.0f;
  }
  return t;
}

// A float32 NCHW tensor as bfloat16 in layout l (to_layout converts and reorders in one pass).
Tensor bf16(const Tensor& x, Layout l) { return test::in_layout(x, l, DType::BF16); }

// The float32 values of a bfloat16 tensor, in its layout (exact).
Tensor widened(const Tensor& x) {
  REQUIRE(x.dtype() == DType::BF16);
  Tensor y = x.to(DType::F32);
  REQUIRE(y.layout() == x.layout());
  return y;
}

// A float32 tensor rounded to bfloat16, in its layout.
Tensor rounded(const Tensor& x) {
  REQUIRE(x.dtype() == DType::F32);
  return x.to(DType::BF16);
}

Tensor zeros_bf16(const Shape& s, Layout l) { return Tensor::zeros(s, DType::BF16).with_layout(l); }
Tensor zeros_f32(const Shape& s, Layout l) { return Tensor::zeros(s, DType::F32).with_layout(l); }

std::vector<uint16_t> bits(const Tensor& t) {
  REQUIRE(t.dtype() == DType::BF16);
  std::vector<uint16_t> out(static_cast<size_t>(t.numel()));
  std::memcpy(out.data(), t.raw(), out.size() * 2);
  return out;
}

// got (bfloat16) is want (float32, same layout) rounded, bit for bit.
void check_exact(const Tensor& got, const Tensor& want) {
  REQUIRE(got.layout() == want.layout());
  const std::vector<uint16_t> a = bits(got), b = bits(rounded(want));
  size_t wrong = 0;
  for (size_t i = 0; i < a.size(); ++i) wrong += a[i] != b[i];
  CHECK(wrong == 0);
}

// got (bfloat16) is within one bfloat16 ulp of want (float32, same layout) rounded.
void check_within_ulp(const Tensor& got, const Tensor& want) {
  REQUIRE(got.layout() == want.layout());
  const std::vector<uint16_t> a = bits(got), b = bits(rounded(want));
  // Bit patterns as a monotonic integer scale (negative values mirrored), so adjacent values differ by one.
  const auto ordered = [](uint16_t u) { return u & 0x8000 ? -static_cast<int>(u & 0x7fff) : static_cast<int>(u); };
  size_t wrong = 0, off = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int d = std::abs(ordered(a[i]) - ordered(b[i]));
    wrong += d > 1;
    off += d == 1;
  }
  CHECK(wrong == 0);
  CHECK(off * 100 <= a.size());  // rounding noise, not a different computation
}

// got (bfloat16) has the values of want (float32, same layout) rounded, zeros of either sign alike.
void check_values(const Tensor& got, const Tensor& want) {
  REQUIRE(got.layout() == want.layout());
  CHECK(got.to_vector() == rounded(want).to_vector());
}

// Float32 tensors equal within float32 rounding (per-channel statistics from another kernel): the largest
// difference relative to the largest element.
void check_close(const Tensor& got, const Tensor& want) {
  const std::vector<double> a = got.to_vector(), b = want.to_vector();
  REQUIRE(a.size() == b.size());
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  CHECK(worst <= 1e-5 * scale);
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("bf16 storage: relu and copy are the float32 ops rounded, NaN included, in place too") {
  Tensor x = values(Shape({2, 32, 3, 5}), 1);
  x.data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  x.data<float>()[2] = -std::numeric_limits<float>::infinity();
  x.data<float>()[4] = std::numeric_limits<float>::infinity();
  for (Layout l : kAll) {
    INFO("layout ", std::string(layout_name(l)));
    const Tensor xb = bf16(x, l);
    // The NaN is kept as a NaN.
    CHECK(std::isnan(ops::to_nchw_float(xb).data<float>()[1]));
    Tensor want = zeros_f32(x.shape(), l);
    ops::unary(ops::Unary::Relu, widened(xb), want);
    Tensor y = zeros_bf16(x.shape(), l);
    ops::unary(ops::Unary::Relu, xb, y);
    check_exact(y, want);
    Tensor in_place = xb.clone();
    ops::unary(ops::Unary::Relu, in_place, in_place);
    check_exact(in_place, want);
    // Copy keeps the stored bits, the NaN's included.
    Tensor c = zeros_bf16(x.shape(), l);
    ops::unary(ops::Unary::Copy, xb, c);
    CHECK(bits(c) == bits(xb));
    ops::unary(ops::Unary::Copy, c, c);
    CHECK(bits(c) == bits(xb));
  }
}

TEST_CASE("bf16 storage: relu and its backward over every bfloat16 value equal the float32 ones rounded") {
  // ReLU works on the stored bits (core/cpu/elementwise.cpp): every pattern, NaNs, infinities, zeros and
  // denormals of both signs included, against the float32 ReLU of the widened values.
  Tensor all = Tensor::empty(Shape({65536}), DType::BF16);
  for (int64_t i = 0; i < 65536; ++i) all.data<bfloat16>()[i].bits = static_cast<uint16_t>(i);
  Tensor want = Tensor::zeros(all.shape()), y = zeros_bf16(all.shape(), Layout::NCHW);
  ops::unary(ops::Unary::Relu, widened(all), want);
  ops::unary(ops::Unary::Relu, all, y);
  check_exact(y, want);
  const Tensor dy = bf16(values(all.shape(), 21), Layout::NCHW);
  Tensor want_dx = Tensor::zeros(all.shape()), dx = zeros_bf16(all.shape(), Layout::NCHW);
  ops::relu_backward(widened(all), widened(dy), want_dx);
  ops::relu_backward(all, dy, dx);
  check_exact(dx, want_dx);
}

TEST_CASE("bf16 storage: relu backward is the float32 one rounded, dx in place of dy") {
  const Tensor x = values(Shape({2, 16, 4, 3}), 2), g = values(x.shape(), 3);
  for (Layout l : kAll) {
    INFO("layout ", std::string(layout_name(l)));
    Tensor y = zeros_bf16(x.shape(), l);
    ops::unary(ops::Unary::Relu, bf16(x, l), y);  // zeros: the ties the backward passes no gradient through
    const Tensor dy = bf16(g, l);
    Tensor want = zeros_f32(x.shape(), l);
    ops::relu_backward(widened(y), widened(dy), want);
    Tensor dx = zeros_bf16(x.shape(), l);
    ops::relu_backward(y, dy, dx);
    check_exact(dx, want);
    Tensor in_place = dy.clone();
    ops::relu_backward(y, in_place, in_place);
    check_exact(in_place, want);
  }
}

TEST_CASE("bf16 storage: add and axpby are the float32 ops rounded, in place too") {
  const Tensor a = values(Shape({2, 32, 5, 4}), 4), b = values(a.shape(), 5);
  for (Layout l : kAll) {
    INFO("layout ", std::string(layout_name(l)));
    const Tensor ab = bf16(a, l), bb = bf16(b, l);
    Tensor want = zeros_f32(a.shape(), l);
    ops::binary(ops::Binary::Add, widened(ab), widened(bb), want);
    Tensor sum = zeros_bf16(a.shape(), l);
    ops::binary(ops::Binary::Add, ab, bb, sum);
    check_exact(sum, want);
    Tensor in_place = ab.clone();
    ops::binary(ops::Binary::Add, in_place, bb, in_place);
    check_exact(in_place, want);
    for (double beta : {0.0, 1.0, -0.75}) {
      INFO("beta ", beta);
      Tensor want_y = widened(bb);
      ops::axpby(0.3, widened(ab), beta, want_y);
      Tensor y = bb.clone();
      ops::axpby(0.3, ab, beta, y);
      check_exact(y, want_y);
    }
  }
}

TEST_CASE("bf16 storage: batch norm (training, evaluation, backward) is the float32 kernel's, rounded") {
  // (4, 32, 12, 12) runs the threaded paths; nChw16c with 32 channels its per-block path, with 16 the general one.
  for (int64_t c : {32, 16}) {
    const Shape shape({4, c, 12, 12});
    const Tensor x = values(shape, 6), g = values(shape, 7);
    const Tensor w = test::random_tensor(Shape({c}), DType::F32, 8), b = test::random_tensor(Shape({c}), DType::F32, 9);
    for (Layout l : kAll) {
      for (bool training : {true, false}) {
        INFO("channels ", c, ", layout ", std::string(layout_name(l)), ", training ", training);
        const Tensor xb = bf16(x, l), dyb = bf16(g, l);
        struct Run {
          Tensor y, dx, mean, invstd, rm, rv, dw, db;
        };
        // Runs the forward and backward on (x, dy), either both bfloat16 or both float32.
        const auto run = [&](const Tensor& xs, const Tensor& dys) {
          Run r;
          r.y = Tensor::zeros(shape, xs.dtype()).with_layout(l);
          r.dx = Tensor::zeros(shape, xs.dtype()).with_layout(l);
          r.mean = Tensor::zeros(Shape({c}));
          r.invstd = Tensor::zeros(Shape({c}));
          r.rm = test::random_tensor(Shape({c}), DType::F32, 10);
          r.rv = test::random_tensor(Shape({c}), DType::F32, 11, 0.5, 2);
          r.dw = Tensor::full(Shape({c}), 0.25);
          r.db = Tensor::full(Shape({c}), -0.5);  // accumulated into
          if (training) ops::batch_norm_forward_train(xs, w, b, r.y, r.mean, r.invstd, r.rm, r.rv, 0.1, 1e-5);
          else ops::batch_norm_forward_eval(xs, w, b, r.y, r.mean, r.invstd, r.rm, r.rv, 1e-5);
          ops::batch_norm_backward(xs, dys, w, r.mean, r.invstd, r.dx, r.dw, r.db, training);
          return r;
        };
        const Run got = run(xb, dyb), want = run(widened(xb), widened(dyb));
        if (l == Layout::NCHW) {  // another kernel for float32 NCHW: the same math, sums in another order
          check_within_ulp(got.y, want.y);
          check_within_ulp(got.dx, want.dx);
          for (const auto& [a, e] : {std::pair{got.mean, want.mean}, {got.invstd, want.invstd}, {got.rm, want.rm},
                                     {got.rv, want.rv}, {got.dw, want.dw}, {got.db, want.db}})
            check_close(a, e);
        } else {  // the same kernel on the same float values
          check_exact(got.y, want.y);
          check_exact(got.dx, want.dx);
          for (const auto& [a, e] : {std::pair{got.mean, want.mean}, {got.invstd, want.invstd}, {got.rm, want.rm},
                                     {got.rv, want.rv}, {got.dw, want.dw}, {got.db, want.db}})
            CHECK(a.to_vector() == e.to_vector());
        }
        // In place (y over x, dx over dy), as a net may run them.
        Tensor yi = xb.clone(), dxi = dyb.clone();
        Tensor mean = Tensor::zeros(Shape({c})), invstd = Tensor::zeros(Shape({c}));
        Tensor rm = test::random_tensor(Shape({c}), DType::F32, 10);
        Tensor rv = test::random_tensor(Shape({c}), DType::F32, 11, 0.5, 2);
        if (training) ops::batch_norm_forward_train(yi, w, b, yi, mean, invstd, rm, rv, 0.1, 1e-5);
        else ops::batch_norm_forward_eval(yi, w, b, yi, mean, invstd, rm, rv, 1e-5);
        CHECK(bits(yi) == bits(got.y));
        ops::batch_norm_backward(xb, dxi, w, mean, invstd, dxi, Tensor(), Tensor(), training);
        CHECK(bits(dxi) == bits(got.dx));
      }
    }
  }
}

TEST_CASE("bf16 storage: max pooling is the float32 op's, forward and backward, bit for bit") {
  // The maxima are stored values; the gradient sums of overlapping windows run in float32, rounded once.
  ops::Pool2dParams p;
  p.kernel_h = p.kernel_w = 3;
  p.stride_h = p.stride_w = 2;
  p.pad_h = p.pad_w = 1;
  const Tensor x = values(Shape({2, 32, 9, 8}), 12);
  const int64_t oh = ops::pool_output_size(9, 3, 2, 1, false), ow = ops::pool_output_size(8, 3, 2, 1, false);
  const Tensor g = values(Shape({2, 32, oh, ow}), 13);
  for (Layout l : kAll) {
    INFO("layout ", std::string(layout_name(l)));
    const Tensor xb = bf16(x, l), dyb = bf16(g, l);
    Tensor want_y = zeros_f32(g.shape(), l), want_dx = zeros_f32(x.shape(), l);
    Tensor want_index = Tensor::zeros(g.shape(), DType::I64);
    ops::max_pool2d_forward(widened(xb), want_y, want_index, p);
    ops::max_pool2d_backward(widened(dyb), want_index, want_dx, p);
    Tensor y = zeros_bf16(g.shape(), l), dx = zeros_bf16(x.shape(), l), index = Tensor::zeros(g.shape(), DType::I64);
    ops::max_pool2d_forward(xb, y, index, p);
    ops::max_pool2d_backward(dyb, index, dx, p);
    CHECK(index.to_vector() == want_index.to_vector());
    check_exact(y, want_y);
    check_exact(dx, want_dx);
  }
}

TEST_CASE("bf16 storage: average pooling is the float32 op's, forward and backward, bit for bit") {
  // Inception's 3x3 stride-1 windows and a strided one in ceil mode without the padding counted; the
  // window sums and the gradient sums run in float32, rounded once. 48 channels: NHWC's block is a tile
  // of 32 and the rest.
  for (bool inception : {true, false}) {
    ops::Pool2dParams p;
    p.kernel_h = p.kernel_w = 3;
    p.stride_h = p.stride_w = inception ? 1 : 2;
    p.pad_h = p.pad_w = 1;
    p.ceil_mode = !inception;
    p.count_include_pad = inception;
    const Tensor x = values(Shape({2, 48, 9, 8}), 21);
    const int64_t oh = ops::pool_output_size(9, 3, p.stride_h, 1, p.ceil_mode);
    const int64_t ow = ops::pool_output_size(8, 3, p.stride_w, 1, p.ceil_mode);
    const Tensor g = values(Shape({2, 48, oh, ow}), 22);
    for (Layout l : kAll) {
      INFO("stride ", p.stride_h, ", layout ", std::string(layout_name(l)));
      const Tensor xb = bf16(x, l), dyb = bf16(g, l);
      Tensor want_y = zeros_f32(g.shape(), l), want_dx = zeros_f32(x.shape(), l);
      ops::avg_pool2d_forward(widened(xb), want_y, p);
      ops::avg_pool2d_backward(widened(dyb), want_dx, p);
      Tensor y = zeros_bf16(g.shape(), l), dx = zeros_bf16(x.shape(), l);
      ops::avg_pool2d_forward(xb, y, p);
      ops::avg_pool2d_backward(dyb, dx, p);
      check_exact(y, want_y);
      check_exact(dx, want_dx);
    }
  }
}

TEST_CASE("bf16 storage: copy_channels (concat) moves the stored bits, in every layout, any offsets") {
  const Tensor a = values(Shape({2, 32, 3, 5}), 23), b = values(Shape({2, 48, 3, 5}), 24);
  for (Layout l : kAll) {
    INFO("layout ", std::string(layout_name(l)));
    // A concatenation of a and b, then b's channels [5, 30) over channels [3, 28) of it (straddling blocks).
    const Tensor ab = bf16(a, l), bb = bf16(b, l);
    Tensor want = zeros_f32(Shape({2, 80, 3, 5}), l), got = zeros_bf16(want.shape(), l);
    ops::copy_channels(widened(ab), 0, want, 0, 32);
    ops::copy_channels(widened(bb), 0, want, 32, 48);
    ops::copy_channels(widened(bb), 5, want, 3, 25);
    ops::copy_channels(ab, 0, got, 0, 32);
    ops::copy_channels(bb, 0, got, 32, 48);
    ops::copy_channels(bb, 5, got, 3, 25);
    check_exact(got, want);
  }
  // Both operands of one dtype.
  CHECK_THROWS_WITH_AS(ops::copy_channels(bf16(a, Layout::NHWC), 0, zeros_f32(a.shape(), Layout::NHWC), 0, 32),
                       doctest::Contains("copy_channels"), Error);
}

TEST_CASE("bf16 storage: global average pooling from bfloat16 into float32 and back, in every layout") {
  const Tensor x = values(Shape({3, 32, 5, 6}), 14), dy = values(Shape({3, 32, 1, 1}), 15);
  for (Layout l : kAll) {
    INFO("layout ", std::string(layout_name(l)));
    const Tensor xb = bf16(x, l);
    Tensor want = Tensor::zeros(dy.shape()), y = Tensor::zeros(dy.shape());
    ops::adaptive_avg_pool2d_forward(widened(xb), want);
    ops::adaptive_avg_pool2d_forward(xb, y);
    CHECK(y.to_vector() == want.to_vector());  // the same float sums in the same order
    Tensor want_dx = zeros_f32(x.shape(), l), dx = zeros_bf16(x.shape(), l);
    ops::adaptive_avg_pool2d_backward(dy, want_dx);
    ops::adaptive_avg_pool2d_backward(dy, dx);
    // bfloat16 NCHW runs the layout kernel (blocks of one channel), which writes dy / (H W) where the float32
    // NCHW kernel adds it to a zero: the same values, but a -0 gradient is +0 there.
    if (l == Layout::NCHW) check_values(dx, want_dx);
    else check_exact(dx, want_dx);
  }
  // Not global: refused, naming the op and the tensor; and the pooled output must be float32.
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d_forward(bf16(x, Layout::NCHW), Tensor::zeros(Shape({3, 32, 2, 2}))),
                       doctest::Contains("adaptive_avg_pool2d_forward: input bfloat16 (3, 32, 5, 6)"), Error);
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d_forward(bf16(x, Layout::NHWC), zeros_bf16(dy.shape(), Layout::NCHW)),
                       doctest::Contains("should be float32"), Error);
}

TEST_CASE("bf16 storage: the gavp and adaptive_avgpool layers pool a bfloat16 NCHW input into float32") {
  const Tensor x = values(Shape({2, 8, 3, 4}), 16), dy = values(Shape({2, 8}), 17);
  const Tensor xb = bf16(x, Layout::NCHW), xf = widened(xb);
  for (const char* type : {"gavp", "adaptive_avgpool"}) {
    INFO(std::string(type));
    Config config(YAML::Load("{}"), "test", std::string("layer '") + type + "'");
    std::unique_ptr<Layer> layer = make_layer(type, config);
    SetupContext ctx;
    ctx.name = type;
    const Shape out = layer->setup({x.shape()}, ctx).at(0);
    Tensor y = Tensor::zeros(out), want = Tensor::zeros(out);
    layer->forward({xb}, {y});
    layer->forward({xf}, {want});
    CHECK(test::max_rel_diff(y, want) <= 1e-6);  // gavp's float32 NCHW path is a mean reduction: another order
    Tensor dx = zeros_bf16(x.shape(), Layout::NCHW), want_dx = zeros_f32(x.shape(), Layout::NCHW);
    layer->backward({xb}, {y}, {dy.reshape(out.dims())}, {dx});
    layer->backward({xf}, {want}, {dy.reshape(out.dims())}, {want_dx});
    // gavp's float32 NCHW backward multiplies by 1 / (H W) where the pooling op divides: within an ulp.
    check_within_ulp(dx, want_dx);
  }
}

TEST_CASE("bf16 storage: to_layout converts dtype and layout in one pass, to_nchw_float gives float32 NCHW") {
  Tensor x = values(Shape({2, 32, 3, 5}), 18);
  x.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();
  const Tensor r = rounded(x);  // NCHW bfloat16, by the element-wise cast
  const Tensor want = widened(r);
  for (Layout from : kAll) {
    const Tensor b = bf16(x, from);
    for (Layout to : kAll) {
      INFO(std::string(layout_name(from)), " -> ", std::string(layout_name(to)));
      // bfloat16 -> float32 in another layout, and back to NCHW float32: the rounded values.
      Tensor f = zeros_f32(x.shape(), to);
      ops::to_layout(b, f);
      CHECK(bits(rounded(ops::to_nchw(f))) == bits(r));
      // bfloat16 -> bfloat16 keeps the stored bits (the NaN's too).
      Tensor b2 = zeros_bf16(x.shape(), to);
      ops::to_layout(b, b2);
      CHECK(bits(ops::to_nchw(b2)) == bits(r));
      // float32 (in `from`) -> bfloat16 (in `to`) rounds as the cast does.
      Tensor f_from = zeros_f32(x.shape(), from);
      ops::to_layout(x, f_from);
      Tensor b3 = zeros_bf16(x.shape(), to);
      ops::to_layout(f_from, b3);
      CHECK(bits(ops::to_nchw(b3)) == bits(r));
    }
    const Tensor back = ops::to_nchw_float(b);
    CHECK(back.dtype() == DType::F32);
    CHECK(back.layout() == Layout::NCHW);
    const std::vector<double> got = back.to_vector(), exp = want.to_vector();
    CHECK(std::isnan(got[7]));
    for (size_t i = 0; i < got.size(); ++i)
      if (i != 7) CHECK(got[i] == exp[i]);
  }
  // A float32 tensor passes through to_nchw_float unconverted.
  const Tensor same = ops::to_nchw_float(x);
  CHECK(same.same_storage(x));
  // Conversions to other dtypes than these two are refused when a layout changes.
  CHECK_THROWS_WITH_AS(ops::to_layout(x, Tensor::zeros(x.shape(), DType::F64).with_layout(Layout::NHWC)),
                       doctest::Contains("float32 and bfloat16 only"), Error);
}

TEST_CASE("bf16 storage: fill, copy_from and to_vector") {
  Tensor t = zeros_bf16(Shape({2, 16, 2, 3}), Layout::NHWC);
  ops::fill(t, 1.00390625);  // 1 + 2^-8: halfway between two bfloat16 values, rounds to even (1)
  for (double v : t.to_vector()) CHECK(v == 1.0);
  ops::fill(t, -3.5);
  for (double v : t.to_vector()) CHECK(v == -3.5);
  const Tensor src = bf16(values(t.shape(), 19), Layout::NHWC);
  t.copy_from(src);
  CHECK(bits(t) == bits(src));
  const std::vector<double> v = src.to_vector(), w = widened(src).to_vector();
  CHECK(v == w);  // storage order, exact values
}

TEST_CASE("bf16 storage: refusals name the op and the tensor") {
  const Tensor a = bf16(values(Shape({2, 16, 2, 2}), 20), Layout::NHWC);
  Tensor out = zeros_bf16(a.shape(), Layout::NHWC);
  CHECK_THROWS_WITH_AS(ops::unary(ops::Unary::Exp, a, out),
                       doctest::Contains("unary: bfloat16 storage takes copy and relu only"), Error);
  CHECK_THROWS_WITH_AS(ops::binary(ops::Binary::Mul, a, a, out),
                       doctest::Contains("binary: bfloat16 storage takes the sum of two tensors of one shape only"),
                       Error);
  const Tensor per_channel = Tensor::zeros(Shape({16}), DType::BF16);
  CHECK_THROWS_WITH_AS(ops::binary(ops::Binary::Add, a, per_channel, out), doctest::Contains("bfloat16 (16,)"), Error);
  // Mixed dtypes where one is needed.
  CHECK_THROWS_WITH_AS(ops::binary(ops::Binary::Add, a, widened(a), out), doctest::Contains("different dtypes"),
                       Error);
  // Batch norm's per-channel tensors stay float32.
  const Tensor w = Tensor::zeros(Shape({16}), DType::BF16), mean = Tensor::zeros(Shape({16}));
  CHECK_THROWS_WITH_AS(
      ops::batch_norm_forward_train(a, w, Tensor(), out, mean, Tensor::zeros(Shape({16})), Tensor(), Tensor(), 0.1,
                                    1e-5),
      doctest::Contains("batch_norm_forward_train: bfloat16 (16,) on cpu should be float32"), Error);
  // Ops that have not opted in refuse bfloat16 storage by dtype.
  CHECK_THROWS_WITH_AS(ops::lrn_forward(a, out, out, {}), doctest::Contains("lrn_forward: needs float32 or float64"),
                       Error);
  if (test::gpu_present()) {  // the CUDA backend computes float32 only
    const Tensor g = Tensor::zeros(Shape({4}), DType::BF16, Device::cuda(0));
    CHECK_THROWS_WITH_AS(ops::unary(ops::Unary::Relu, g, g), doctest::Contains("bfloat16 storage is for CPU tensors"),
                         Error);
  }
}

}  // TEST_SUITE
