// The ops on activations in a convolution kernel's layout (core/layout.h, core/layout_ops.h): each gives
// the NCHW op's results (float32 within 1e-5), in NHWC and nChw16c, forward and backward.
#include "core/layout_ops.h"
#include "core/mixed_ops.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"

#include <algorithm>
#include <cmath>

using namespace mpncov;
using mpncov::test::in_layout;

namespace {

Tensor rnd(const Shape& s, uint64_t seed) { return test::random_tensor(s, DType::F32, seed); }


Tensor like(const Tensor& x, Layout l) { return Tensor::zeros(x.shape()).with_layout(l); }

// Largest |got - want| over the largest |want|.
double diff(const Tensor& got, const Tensor& want) {
  CHECK(want.layout() == Layout::NCHW);
  const std::vector<double> a = ops::to_nchw(got).to_vector(), b = want.to_vector();
  REQUIRE(a.size() == b.size());
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(b[i]));
    worst = std::max(worst, std::abs(a[i] - b[i]));
  }
  return worst / scale;
}

const Layout kLayouts[] = {Layout::NHWC, Layout::Blocked16};

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("layouts: to_layout places every element where the layout says and converts back exactly") {
  const Tensor x = rnd(Shape({2, 32, 3, 5}), 1);
  const std::vector<double> v = x.to_vector();
  for (Layout l : kLayouts) {
    const Tensor y = in_layout(x, l);
    CHECK(y.layout() == l);
    const std::vector<double> w = y.to_vector();
    const int64_t b = layout_block(l, 32);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 32; ++c)
        for (int64_t p = 0; p < 15; ++p)
          REQUIRE(w[static_cast<size_t>(((n * (32 / b) + c / b) * 15 + p) * b + c % b)] ==
                  v[static_cast<size_t>((n * 32 + c) * 15 + p)]);
    CHECK(ops::to_nchw(y).to_vector() == v);
  }
  CHECK(layout_block(Layout::NHWC, 32) == 32);
  CHECK_THROWS(Tensor::empty(Shape({2, 24, 3, 3})).with_layout(Layout::Blocked16));  // 24 is no multiple of 16
  CHECK_THROWS(in_layout(x, Layout::NHWC).reshape({2, 32, 15}));  // shape changes need NCHW
}

TEST_CASE("layouts: convolution forward and backward in NHWC and nChw16c equal NCHW (float32 and bfloat16)") {
  struct Case {
    int64_t cin, cout, kernel, stride, pad, size;
  };
  // 3 input channels: a first layer, whose NCHW input stays NCHW; then 3x3 and pointwise layers as in ResNets.
  const Case cases[] = {{3, 16, 3, 2, 1, 9}, {32, 16, 3, 2, 1, 9}, {64, 128, 1, 2, 0, 4}, {1024, 2048, 1, 2, 0, 4},
                        {64, 64, 1, 1, 0, 5}, {256, 1024, 1, 1, 0, 4}, {1024, 256, 1, 1, 0, 4}, {256, 256, 3, 1, 1, 4}};
  for (bool bf16 : {false, true}) {
    for (const Case& c : cases) {
      ops::Conv2dParams p;
      p.stride_h = p.stride_w = c.stride;
      p.pad_h = p.pad_w = c.pad;
      const int64_t out = (c.size + 2 * c.pad - c.kernel) / c.stride + 1;
      const Tensor x = rnd(Shape({2, c.cin, c.size, c.size}), 2), w = rnd(Shape({c.cout, c.cin, c.kernel, c.kernel}), 3);
      const Tensor b = rnd(Shape({c.cout}), 4), dy = rnd(Shape({2, c.cout, out, out}), 5);
      const auto fwd = [&](const Tensor& xi, const Tensor& yi) {
        bf16 ? ops::conv2d_forward_bf16(xi, w, b, yi, p) : ops::conv2d_forward(xi, w, b, yi, p);
      };
      const auto bwd = [&](const Tensor& xi, const Tensor& dyi, const Tensor& dxi, const Tensor& dwi, const Tensor& dbi) {
        bf16 ? ops::conv2d_backward_bf16(xi, w, dyi, dxi, dwi, dbi, p) : ops::conv2d_backward(xi, w, dyi, dxi, dwi, dbi, p);
      };
      Tensor y = Tensor::zeros(dy.shape()), dx = Tensor::zeros(x.shape()), dw = Tensor::zeros(w.shape()),
             db = Tensor::zeros(b.shape());
      fwd(x, y);
      bwd(x, dy, dx, dw, db);
      for (Layout l : kLayouts) {
        INFO("bf16 ", bf16, ", ", c.cin, " -> ", c.cout, " kernel ", c.kernel, " stride ", c.stride, ", layout ",
             layout_name(l));
        const Layout lx = c.cin == 3 ? Layout::NCHW : l;
        const Tensor xl = in_layout(x, lx), yl = like(y, l), dxl = like(dx, lx);
        const Tensor dwl = Tensor::zeros(w.shape()), dbl = Tensor::zeros(b.shape());
        fwd(xl, yl);
        bwd(xl, in_layout(dy, l), dxl, dwl, dbl);
        CHECK(diff(yl, y) <= 1e-5);
        CHECK(diff(dxl, dx) <= 1e-5);
        CHECK(diff(dwl, dw) <= 1e-5);
        CHECK(diff(dbl, db) <= 1e-5);
      }
    }
  }
}

TEST_CASE("layouts: batch norm (training, evaluation, backward) in NHWC and nChw16c equals NCHW") {
  const Tensor x = rnd(Shape({3, 32, 4, 5}), 6), dy = rnd(x.shape(), 7);
  const Tensor w = rnd(Shape({32}), 8), b = rnd(Shape({32}), 9);
  for (bool training : {true, false}) {
    const auto pass = [&](Layout l, Tensor& y, Tensor& dx, Tensor& stats, Tensor& dw, Tensor& db) {
      Tensor mean = Tensor::zeros(Shape({32})), invstd = Tensor::zeros(Shape({32}));
      Tensor rm = rnd(Shape({32}), 10), rv = test::random_tensor(Shape({32}), DType::F32, 11, 0.5, 2);
      y = like(x, l);
      dx = like(x, l);
      dw = Tensor::zeros(Shape({32}));
      db = Tensor::zeros(Shape({32}));
      const Tensor xl = in_layout(x, l);
      if (training) ops::batch_norm_forward_train(xl, w, b, y, mean, invstd, rm, rv, 0.1, 1e-5);
      else ops::batch_norm_forward_eval(xl, w, b, y, mean, invstd, rm, rv, 1e-5);
      ops::batch_norm_backward(xl, in_layout(dy, l), w, mean, invstd, dx, dw, db, training);
      std::vector<double> all;
      for (const Tensor& t : {mean, invstd, rm, rv})
        for (double v : t.to_vector()) all.push_back(v);
      stats = Tensor::from_vector(all, Shape({static_cast<int64_t>(all.size())}));
    };
    Tensor y, dx, stats, dw, db;
    pass(Layout::NCHW, y, dx, stats, dw, db);
    for (Layout l : kLayouts) {
      INFO("training ", training, ", layout ", layout_name(l));
      Tensor yl, dxl, statsl, dwl, dbl;
      pass(l, yl, dxl, statsl, dwl, dbl);
      CHECK(diff(yl, y) <= 1e-5);
      CHECK(diff(dxl, dx) <= 1e-5);
      CHECK(diff(statsl, stats) <= 1e-5);
      CHECK(diff(dwl, dw) <= 1e-5);
      CHECK(diff(dbl, db) <= 1e-5);
    }
  }
  // Operands in different layouts are refused, not misread.
  Tensor mean = Tensor::zeros(Shape({32})), invstd = Tensor::zeros(Shape({32}));
  CHECK_THROWS(ops::batch_norm_forward_train(in_layout(x, Layout::NHWC), w, b, Tensor::zeros(x.shape()), mean, invstd,
                                             Tensor(), Tensor(), 0.1, 1e-5));
}

TEST_CASE("layouts: global average pooling from NHWC and nChw16c equals NCHW, forward and backward") {
  const Tensor x = rnd(Shape({2, 32, 3, 4}), 12), dy = rnd(Shape({2, 32, 1, 1}), 13);
  Tensor y = Tensor::zeros(dy.shape()), dx = Tensor::zeros(x.shape());
  ops::adaptive_avg_pool2d_forward(x, y);
  ops::adaptive_avg_pool2d_backward(dy, dx);
  for (Layout l : kLayouts) {
    Tensor yl = Tensor::zeros(dy.shape()), dxl = like(x, l);
    ops::adaptive_avg_pool2d_forward(in_layout(x, l), yl);
    ops::adaptive_avg_pool2d_backward(dy, dxl);
    CHECK(yl.to_vector() == y.to_vector());  // the same sums in the same order
    CHECK(diff(dxl, dx) == 0);
  }
  CHECK_THROWS(ops::adaptive_avg_pool2d_forward(in_layout(x, Layout::NHWC), Tensor::zeros(Shape({2, 32, 2, 2}))));
}

TEST_CASE("layouts: max pooling in NHWC and nChw16c equals NCHW, forward and backward") {
  for (bool ceil : {false, true}) {
    ops::Pool2dParams p;
    p.kernel_h = p.kernel_w = 3;
    p.stride_h = p.stride_w = 2;
    p.pad_h = p.pad_w = 1;
    p.ceil_mode = ceil;
    const Tensor x = rnd(Shape({2, 32, 7, 8}), 14);
    const int64_t oh = ops::pool_output_size(7, 3, 2, 1, ceil), ow = ops::pool_output_size(8, 3, 2, 1, ceil);
    const Tensor dy = rnd(Shape({2, 32, oh, ow}), 15);
    Tensor y = Tensor::zeros(dy.shape()), dx = Tensor::zeros(x.shape());
    Tensor index = Tensor::zeros(dy.shape(), DType::I64);
    ops::max_pool2d_forward(x, y, index, p);
    ops::max_pool2d_backward(dy, index, dx, p);
    for (Layout l : kLayouts) {
      INFO("ceil ", ceil, ", layout ", layout_name(l));
      Tensor yl = like(y, l), dxl = like(x, l), il = Tensor::zeros(dy.shape(), DType::I64);
      ops::max_pool2d_forward(in_layout(x, l), yl, il, p);
      ops::max_pool2d_backward(in_layout(dy, l), il, dxl, p);
      CHECK(diff(yl, y) == 0);
      CHECK(diff(dxl, dx) == 0);  // the same indices: each gradient lands where NCHW's does
    }
  }
}

// The kernels take channels in tiles (of 32, the rest on their own) with the window taps outside: ties go
// to the first tap in row-major order and a NaN wins (the last one), as NCHW's scan, at batch 1 too.
// A 1x1 window with stride 2 leaves rows no window reaches (between windows and below the last), whose
// gradient must still be zeroed.
TEST_CASE("layouts: max pooling with ties and NaNs, batch 1 and channels past a tile, with or without indices, equals NCHW") {
  for (int64_t kernel : {3, 1})
  for (int64_t n : {1, 2})
    for (int64_t c : {16, 24, 48}) {  // NHWC: one 16-wide tile; a 24-wide remainder; 32 + 16
      std::vector<double> v = rnd(Shape({n, c, 10, 7}), 16).to_vector();
      for (size_t i = 0; i < v.size(); ++i) {
        v[i] = std::round(v[i] * 2.0) / 2.0;  // few levels: many ties in each window
        if (i % 37 == 5 || i % 53 == 11) v[i] = std::nan("");
      }
      const Tensor x = Tensor::from_vector(v, Shape({n, c, 10, 7}));
      ops::Pool2dParams p;
      p.kernel_h = p.kernel_w = kernel;
      p.stride_h = p.stride_w = 2;
      p.pad_h = p.pad_w = kernel / 2;  // 10x7 -> 5x4 either way
      const Tensor dy = rnd(Shape({n, c, 5, 4}), 17);
      Tensor y = Tensor::zeros(dy.shape()), dx = Tensor::zeros(x.shape());
      Tensor index = Tensor::zeros(dy.shape(), DType::I64);
      ops::max_pool2d_forward(x, y, index, p);
      ops::max_pool2d_backward(dy, index, dx, p);
      const std::vector<double> want = y.to_vector();
      CHECK(std::count_if(want.begin(), want.end(), [](double e) { return std::isnan(e); }) > 0);
      for (Layout l : kLayouts) {
        if (!layout_fits(l, c)) continue;
        INFO("kernel ", kernel, ", n ", n, ", c ", c, ", layout ", layout_name(l));
        // dx starts as garbage: the kernels must write every element.
        Tensor yl = like(y, l), dxl = in_layout(rnd(x.shape(), 18), l), il = Tensor::zeros(dy.shape(), DType::I64);
        ops::max_pool2d_forward(in_layout(x, l), yl, il, p);
        ops::max_pool2d_backward(in_layout(dy, l), il, dxl, p);
        const std::vector<double> got = ops::to_nchw(yl).to_vector();
        bool same = true;
        for (size_t i = 0; i < got.size(); ++i)
          same = same && (got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i])));
        CHECK(same);
        CHECK(diff(dxl, dx) == 0);  // ties and NaNs resolved to the same taps
        // Without indices (evaluation): the same maxima.
        Tensor yo = like(y, l);
        ops::max_pool2d_forward(in_layout(x, l), yo, Tensor(), p);
        const std::vector<double> only = ops::to_nchw(yo).to_vector();
        bool same_only = true;
        for (size_t i = 0; i < only.size(); ++i)
          same_only = same_only && (only[i] == want[i] || (std::isnan(only[i]) && std::isnan(want[i])));
        CHECK(same_only);
      }
    }
}

// Average pooling in the kernel layouts sums each window in the NCHW kernel's order, and its backward
// gathers each input's gradient in the order NCHW's scatter adds it: equal bit for bit. Inception's 3x3
// stride-1 windows, DenseNet's 2x2 stride 2, ceil mode without padding counted, a 1x1 window with stride 2
// (rows and columns no window reaches, whose gradient must still be written), at batch 1 and 2, with 16
// channels (one nChw16c block) and 48 (NHWC: a tile of 32 and the rest).
TEST_CASE("layouts: average pooling in NHWC and nChw16c equals NCHW bit for bit, forward and backward") {
  struct Case {
    int64_t kernel, stride, pad;
    bool ceil, count_pad;
  };
  for (const Case& k : {Case{3, 1, 1, false, true}, Case{2, 2, 0, false, true}, Case{3, 2, 1, true, false},
                        Case{3, 2, 1, true, true}, Case{1, 2, 0, false, true}})
    for (int64_t n : {1, 2})
      for (int64_t c : {16, 48}) {
        ops::Pool2dParams p;
        p.kernel_h = p.kernel_w = k.kernel;
        p.stride_h = p.stride_w = k.stride;
        p.pad_h = p.pad_w = k.pad;
        p.ceil_mode = k.ceil;
        p.count_include_pad = k.count_pad;
        const Tensor x = rnd(Shape({n, c, 9, 8}), 19);
        const int64_t oh = ops::pool_output_size(9, k.kernel, k.stride, k.pad, k.ceil);
        const int64_t ow = ops::pool_output_size(8, k.kernel, k.stride, k.pad, k.ceil);
        const Tensor dy = rnd(Shape({n, c, oh, ow}), 20);
        Tensor y = Tensor::zeros(dy.shape()), dx = Tensor::zeros(x.shape());
        ops::avg_pool2d_forward(x, y, p);
        ops::avg_pool2d_backward(dy, dx, p);
        for (Layout l : kLayouts) {
          INFO("kernel ", k.kernel, ", stride ", k.stride, ", ceil ", k.ceil, ", count_include_pad ", k.count_pad,
               ", n ", n, ", c ", c, ", layout ", layout_name(l));
          // Outputs start as garbage: the kernels must write every element.
          Tensor yl = in_layout(rnd(y.shape(), 21), l), dxl = in_layout(rnd(x.shape(), 22), l);
          ops::avg_pool2d_forward(in_layout(x, l), yl, p);
          ops::avg_pool2d_backward(in_layout(dy, l), dxl, p);
          CHECK(ops::to_nchw(yl).to_vector() == y.to_vector());
          CHECK(ops::to_nchw(dxl).to_vector() == dx.to_vector());
        }
      }
  // Operands in different layouts are refused, naming the op.
  const Tensor x = rnd(Shape({1, 16, 4, 4}), 23);
  ops::Pool2dParams p;
  p.kernel_h = p.kernel_w = 2;
  p.stride_h = p.stride_w = 2;
  CHECK_THROWS_WITH_AS(ops::avg_pool2d_forward(in_layout(x, Layout::NHWC), like(Tensor::zeros(Shape({1, 16, 2, 2})),
                                                                                 Layout::Blocked16), p),
                       doctest::Contains("avg_pool2d_forward: operands in different layouts"), Error);
  CHECK_THROWS_WITH_AS(ops::avg_pool2d_backward(Tensor::zeros(Shape({1, 16, 2, 2})), like(x, Layout::NHWC), p),
                       doctest::Contains("avg_pool2d_backward: operands in different layouts"), Error);
}

// Concatenation and its backward copy channel ranges (ops::copy_channels). In nChw16c a range whose offsets
// are multiples of 16 is whole blocks; other offsets split blocks between ranges, which must land exactly
// where NCHW puts them too.
TEST_CASE("layouts: channel_bias adds each channel's bias (and the ReLU) in NCHW, NHWC and nChw16c") {
  const Tensor x = rnd(Shape({2, 32, 3, 5}), 31), bias = rnd(Shape({32}), 32);
  const std::vector<double> xv = x.to_vector(), bv = bias.to_vector();
  for (bool relu : {false, true}) {
    // Reference: element (n, c, h, w) of NCHW plus bias[c].
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      const double v = static_cast<float>(xv[i] + bv[(i / 15) % 32]);
      want[i] = relu && !(v > 0) ? 0.0 : v;
    }
    for (Layout l : {Layout::NCHW, Layout::NHWC, Layout::Blocked16}) {
      INFO(layout_name(l), relu ? ", relu" : "");
      const Tensor y = in_layout(x, l);
      ops::channel_bias(y, bias, relu);
      CHECK(ops::to_nchw(y).to_vector() == want);
    }
  }
  const Tensor d = x.to(DType::F64);  // float64 too (NCHW)
  ops::channel_bias(d, bias.to(DType::F64), false);
  const std::vector<double> dv = d.to_vector();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(dv[i] == xv[i] + bv[(i / 15) % 32]);
  CHECK_THROWS_WITH_AS(ops::channel_bias(x, rnd(Shape({31}), 1), false), doctest::Contains("bias"), Error);
}

TEST_CASE("layouts: copy_channels in NHWC and nChw16c equals NCHW, aligned and straddling blocks") {
  const Tensor src = rnd(Shape({2, 48, 5, 3}), 24);
  struct Range {
    int64_t src_offset, dst_offset, count;
  };
  for (int64_t n : {1, 2})
    for (const Range& r : {Range{0, 16, 32}, Range{16, 0, 16}, Range{5, 13, 27}, Range{0, 33, 31}, Range{47, 0, 1}}) {
      const Tensor s = src.slice(0, n).clone();
      const Tensor start = rnd(Shape({n, 64, 5, 3}), 25);  // what the copy must leave alone
      Tensor want = start.clone();
      ops::copy_channels(s, r.src_offset, want, r.dst_offset, r.count);
      for (Layout l : kLayouts) {
        INFO("n ", n, ", channels [", r.src_offset, ", +", r.count, ") to ", r.dst_offset, ", layout ",
             layout_name(l));
        Tensor got = in_layout(start, l);
        ops::copy_channels(in_layout(s, l), r.src_offset, got, r.dst_offset, r.count);
        CHECK(ops::to_nchw(got).to_vector() == want.to_vector());
      }
    }
  CHECK_THROWS_WITH_AS(ops::copy_channels(in_layout(src, Layout::NHWC), 0, like(src, Layout::Blocked16), 0, 16),
                       doctest::Contains("copy_channels: operands in different layouts"), Error);
}

}  // TEST_SUITE
