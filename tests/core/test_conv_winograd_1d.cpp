// Winograd's F(m, r) for 1 x r, r x 1, 5x5 and short-lined 3x3 convolutions (core/cpu/conv_winograd_1d.cpp):
// where the rule takes it, and that its forward, plain and with the evaluation epilogue (batch norm scale and
// shift, residual add, ReLU, weights prepared once), matches float64 within its rounding at sizes that leave
// partial tiles, in chunks per thread and all tiles at once.
#include <cmath>

#include "core/cpu/nn_cpu.h"
#include "core/layout_ops.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"

using namespace mpncov;
using test::AlgorithmScope;
using test::random_tensor;
using test::scaled_diff;

namespace {

struct Case {
  const char* name;
  int64_t n, c, h, w, o, kh, kw, ph, pw;
  bool bias;
};

const Case kCases[] = {
    {"1x7 on 17x17 (Inception's), 32 -> 48 channels", 2, 32, 17, 17, 48, 1, 7, 0, 3, false},
    {"7x1 on 17x17, with bias", 2, 32, 17, 17, 16, 7, 1, 3, 0, true},
    {"1x3 on 8x8 (two whole tiles)", 1, 48, 8, 8, 32, 1, 3, 0, 1, true},
    {"3x1 on 11x9", 3, 16, 11, 9, 16, 3, 1, 1, 0, false},
    {"1x5 without padding: 3 outputs, less than a tile", 1, 16, 6, 7, 32, 1, 5, 0, 0, true},
    {"5x1 with padding 1: 8 of 10 rows out", 2, 16, 10, 5, 16, 5, 1, 1, 0, false},
    {"5x5 on 13x11 (Inception's 5x5), padding 2", 2, 16, 13, 11, 32, 5, 5, 2, 2, true},
    {"5x5 on 9x12 without padding", 1, 16, 9, 12, 16, 5, 5, 0, 0, false},
    {"3x3 on 7x7 (resnet's layer4): F(7, 3), all tiles at once, 128 -> 64", 2, 128, 7, 7, 64, 3, 3, 1, 1, false},
    {"3x3 on 8x8 (Inception's): F(8, 3), with bias", 2, 32, 8, 8, 16, 3, 3, 1, 1, true},
    {"3x3 on 9x9 without padding: 7x7 out", 1, 16, 9, 9, 32, 3, 3, 0, 0, true},
};

// The largest error against float64, relative to the largest output, that a case's transform may leave:
// the twelve points of F(6, 7) and the nine or ten of F(7, 3) and F(8, 3) round more than F(4, 3)'s five.
double tolerance(const Case& k) { return k.kh == 7 || k.kw == 7 || (k.kh == 3 && k.kw == 3) ? 4e-5 : 4e-6; }

ops::Conv2dParams params(const Case& k) {
  ops::Conv2dParams p;
  p.pad_h = k.ph;
  p.pad_w = k.pw;
  return p;
}

// x, weights and bias of a case, float64.
struct Operands {
  Tensor x, w, b;
};
Operands operands(const Case& k) {
  return {random_tensor({k.n, k.c, k.h, k.w}, DType::F64, 41), random_tensor({k.o, k.c, k.kh, k.kw}, DType::F64, 42),
          k.bias ? random_tensor({k.o}, DType::F64, 43) : Tensor()};
}

Tensor output_like(const Case& k, const Tensor& x, const Tensor& w, DType dt, Layout l) {
  const ops::ConvGeometry g = ops::conv_geometry(x.shape(), w.shape(), params(k));
  return Tensor::zeros({k.n, k.o, g.out_h(), g.out_w()}, dt).with_layout(l);
}

// The float32 forward in nChw16c under the algorithm setting, back in NCHW.
Tensor forward_f32(const Case& k, const Operands& f) {
  const Tensor x = test::in_layout(f.x.to(DType::F32), Layout::Blocked16);
  const Tensor w = f.w.to(DType::F32), b = f.b.defined() ? f.b.to(DType::F32) : Tensor();
  const Tensor y = output_like(k, f.x, f.w, DType::F32, Layout::Blocked16);
  ops::conv2d_forward(x, w, b, y, params(k));
  return ops::to_nchw(y);
}

// The float32 input gradient (and weight gradient, written) in nChw16c for a dy of seed 46, back in NCHW.
struct Gradients {
  Tensor dx, dw;
};
Gradients backward_f32(const Case& k, const Operands& f) {
  const Tensor x = test::in_layout(f.x.to(DType::F32), Layout::Blocked16);
  const Tensor w = f.w.to(DType::F32);
  const Tensor y = output_like(k, f.x, f.w, DType::F32, Layout::NCHW);
  const Tensor dy = test::in_layout(random_tensor(y.shape(), DType::F32, 46), Layout::Blocked16);
  Gradients r{Tensor::full(x.shape(), NAN, DType::F32).with_layout(Layout::Blocked16),
              Tensor::full(w.shape(), NAN, DType::F32)};
  ops::conv2d_backward(x, w, dy, r.dx, r.dw, Tensor(), params(k), /*accumulate_dweight=*/false);
  r.dx = ops::to_nchw(r.dx);
  return r;
}

// The `winograd` setting, having checked that the rule takes the case there.
cpu::ConvAlgorithm ours(const Case& k) {
  AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
  const ops::ConvGeometry g = ops::conv_geometry({k.n, k.c, k.h, k.w}, {k.o, k.c, k.kh, k.kw}, params(k));
  CHECK(cpu::conv_winograd_1d(g, k.o, 1, {Layout::Blocked16, Layout::Blocked16}));
  return cpu::ConvAlgorithm::Winograd;
}

Tensor reference(const Case& k, const Operands& f) {
  const Tensor y = output_like(k, f.x, f.w, DType::F64, Layout::NCHW);
  ops::conv2d_forward(f.x, f.w, f.b, y, params(k));
  return y;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("conv winograd 1d: the rule takes long 1 x r, r x 1, 5x5 and short 3x3 layers on blocked float32") {
  const auto geometry = [](int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride = 1,
                           int64_t dilation = 1) {
    ops::Conv2dParams p;
    p.stride_h = p.stride_w = stride;
    p.dilation_h = p.dilation_w = dilation;
    p.pad_h = kh / 2 * dilation;
    p.pad_w = kw / 2 * dilation;
    return ops::conv_geometry({1, c, h, w}, {c, c, kh, kw}, p);
  };
  const cpu::ConvLayouts blocked{Layout::Blocked16, Layout::Blocked16};
  const ops::ConvGeometry row7 = geometry(192, 17, 17, 1, 7), column7 = geometry(192, 17, 17, 7, 1),
                          row3 = geometry(384, 8, 8, 1, 3), small = geometry(128, 3, 3, 1, 7);
  {
    AlgorithmScope scope(cpu::ConvAlgorithm::Auto);
    CHECK(cpu::conv_winograd_1d(row7, 192, 1, blocked));  // at any batch
    CHECK(cpu::conv_winograd_1d(column7, 192, 1, blocked));
    CHECK(cpu::conv_winograd_1d(row3, 384, 1, blocked));
    CHECK(cpu::conv_winograd_1d(geometry(48, 35, 35, 1, 5), 64, 1, blocked));
    CHECK(cpu::conv_winograd_1d(geometry(48, 35, 35, 5, 5), 64, 1, blocked));  // five rows of 1x5 taps
    CHECK(cpu::conv_winograd_1d(geometry(448, 8, 8, 3, 3), 384, 1, blocked));    // 3x3: one F(8, 3) a row
    CHECK(cpu::conv_winograd_1d(geometry(512, 7, 7, 3, 3), 512, 1, blocked));    // one F(7, 3) a row
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(256, 14, 14, 3, 3), 256, 1, blocked));  // oneDNN's F(4x4, 3x3)
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(512, 7, 7, 3, 3, 2), 512, 1, blocked));  // stride 2
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(48, 35, 35, 5, 3), 64, 1, blocked));  // neither
    CHECK_FALSE(cpu::conv_winograd_1d(small, 128, 1, blocked));    // lines of 3 outputs
    CHECK_FALSE(cpu::conv_winograd_1d(row7, 192, 1, {}));          // NCHW
    CHECK_FALSE(cpu::conv_winograd_1d(row7, 192, 1, {Layout::NHWC, Layout::NHWC}));
    CHECK_FALSE(cpu::conv_winograd_1d(row7, 192, 1, {Layout::Blocked16, Layout::Blocked16, true, true}));
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(192, 17, 17, 1, 7, 2), 192, 1, blocked));  // stride 2
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(192, 17, 17, 1, 7, 1, 2), 192, 1, blocked));  // dilation 2
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(192, 17, 17, 1, 9), 192, 1, blocked));   // r = 9
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(192, 17, 17, 1, 1), 192, 1, blocked));   // 1x1
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(192, 17, 17, 1, 7), 24, 1, blocked));    // 24 outputs
    CHECK_FALSE(cpu::conv_winograd_1d(geometry(96, 17, 17, 1, 7), 192, 2, blocked));    // groups
    ops::ConvGeometry across = row7;  // padding across the axis widens the output: not a strip
    across.pad_h = 1;
    CHECK_FALSE(cpu::conv_winograd_1d(across, 192, 1, blocked));
    // A forward's 3x3 layer: with transformed weights kept between calls, a batch of 48 rows or more, and
    // where oneDNN's F(4x4, 3x3) is not wanted; strips at any batch, kept or not.
    const ops::ConvGeometry square7 = geometry(512, 7, 7, 3, 3), square8 = geometry(448, 8, 8, 3, 3);
    CHECK(cpu::conv_winograd_1d_forward(square7, 512, 1, blocked, 8, true));
    CHECK(cpu::conv_winograd_1d_forward(square8, 384, 1, blocked, 8, true));
    CHECK_FALSE(cpu::conv_winograd_1d_forward(square7, 512, 1, blocked, 8, false));  // training: made every step
    CHECK_FALSE(cpu::conv_winograd_1d_forward(square7, 512, 1, blocked, 1, true));   // 7 rows
    CHECK_FALSE(cpu::conv_winograd_1d_forward(square7, 512, 1, blocked, 32, true));  // oneDNN's 128 tiles
    CHECK_FALSE(cpu::conv_winograd_1d_forward(square7, 512, 1, blocked, 12, true));  // 48: from there oneDNN's
    CHECK(cpu::conv_winograd_1d_forward(row7, 192, 1, blocked, 1, false));
    CHECK_FALSE(cpu::conv_winograd_1d_forward(small, 128, 1, blocked, 8, true));
  }
  {
    AlgorithmScope scope(cpu::ConvAlgorithm::Direct);
    CHECK_FALSE(cpu::conv_winograd_1d(row7, 192, 1, blocked));
  }
  {
    AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
    CHECK(cpu::conv_winograd_1d(small, 128, 1, blocked));
    CHECK(cpu::conv_winograd_1d(row3, 384, 1, blocked));
    CHECK(cpu::conv_winograd_1d_forward(geometry(512, 7, 7, 3, 3), 512, 1, blocked, 1, false));
    CHECK_FALSE(cpu::conv_winograd_1d(row7, 192, 1, {}));
  }
}

TEST_CASE("conv winograd 1d: forward equals float64 within its rounding, partial tiles and padding included") {
  for (const Case& k : kCases) {
    CAPTURE(std::string(k.name));
    const Operands f = operands(k);
    const Tensor want = reference(k, f);
    Tensor direct, wino;
    {
      AlgorithmScope scope(cpu::ConvAlgorithm::Direct);
      direct = forward_f32(k, f);
    }
    {
      AlgorithmScope scope(ours(k));
      wino = forward_f32(k, f);
    }
    // Against the largest output: the direct kernel's sums are within a few 1e-7; the transforms add
    // roundings of their own, most for F(6, 7) with its twelve points (measured 5e-7 to 1.1e-6 for r = 3
    // and 5, 9e-6 for r = 7, 3e-6 to 1e-5 for F(7, 3) and F(8, 3); oneDNN's F(4x4, 3x3) up to 5e-5,
    // tests/core/test_conv_winograd.cpp).
    CHECK(scaled_diff(direct, want) < 1e-6);
    CHECK(scaled_diff(wino, want) < tolerance(k));
    CHECK(wino.to_vector() != direct.to_vector());  // another algorithm ran
    MESSAGE(std::string(k.name), ": Winograd ", scaled_diff(wino, want), ", direct ", scaled_diff(direct, want));
  }
}

TEST_CASE("conv winograd 1d: input and weight gradients equal float64 within its rounding, written and accumulated") {
  for (const Case& k : kCases) {
    if (k.kh == k.kw) continue;  // square kernels keep oneDNN's input gradient
    CAPTURE(std::string(k.name));
    const Operands f = operands(k);
    const Tensor y = output_like(k, f.x, f.w, DType::F64, Layout::NCHW);
    const Tensor dy = random_tensor(y.shape(), DType::F32, 46).to(DType::F64);
    const Tensor dx = Tensor::zeros(f.x.shape(), DType::F64), dw = Tensor::zeros(f.w.shape(), DType::F64);
    ops::conv2d_backward(f.x, f.w, dy, dx, dw, Tensor(), params(k));
    Gradients direct, wino;
    {
      AlgorithmScope scope(cpu::ConvAlgorithm::Direct);
      direct = backward_f32(k, f);
    }
    {
      AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
      const ops::ConvGeometry g = ops::conv_geometry(f.x.shape(), f.w.shape(), params(k));
      CHECK(cpu::conv_winograd_1d_backward_data(g, k.o, 1, {Layout::Blocked16, Layout::Blocked16}));
      CHECK(cpu::conv_winograd_1d_backward_weights(g, k.o, 1, {Layout::Blocked16, Layout::Blocked16}));
      wino = backward_f32(k, f);
    }
    CHECK(scaled_diff(direct.dx, dx) < 1e-6);
    CHECK(scaled_diff(wino.dx, dx) < (k.kh == 7 || k.kw == 7 ? 4e-5 : 4e-6));  // 1.5e-5 and 1e-6 measured
    CHECK(wino.dx.to_vector() != direct.dx.to_vector());  // another algorithm ran
    CHECK(wino.dw.to_vector() != direct.dw.to_vector());
    CHECK(scaled_diff(direct.dw, dw) < 1e-6);
    CHECK(scaled_diff(wino.dw, dw) < (k.kh == 7 || k.kw == 7 ? 4e-5 : 4e-6));  // written over NaN: never read
    MESSAGE(std::string(k.name), ": input gradient, Winograd ", scaled_diff(wino.dx, dx), ", direct ",
            scaled_diff(direct.dx, dx), "; weight gradient, Winograd ", scaled_diff(wino.dw, dw), ", direct ",
            scaled_diff(direct.dw, dw));
    {  // accumulated: added to what dw held
      AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
      const Tensor x = test::in_layout(f.x.to(DType::F32), Layout::Blocked16);
      const Tensor dy32 = test::in_layout(dy.to(DType::F32), Layout::Blocked16);
      const Tensor sum = Tensor::full(f.w.shape(), 1.0, DType::F32);
      ops::conv2d_backward(x, f.w.to(DType::F32), dy32, Tensor(), sum, Tensor(), params(k), true);
      const Tensor want = Tensor::full(f.w.shape(), 1.0, DType::F64);
      ops::binary(ops::Binary::Add, want, dw, want);
      CHECK(scaled_diff(sum, want) < 4e-5);
    }
  }
  // Padding beyond r - 1 along the axis (outputs past the input's edge) keeps oneDNN's input gradient.
  ops::Conv2dParams wide;
  wide.pad_w = 7;
  AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
  CHECK_FALSE(cpu::conv_winograd_1d_backward_data(ops::conv_geometry({1, 16, 4, 4}, {16, 16, 1, 7}, wide), 16, 1,
                                                  {Layout::Blocked16, Layout::Blocked16}));
}

TEST_CASE("conv winograd 1d: the evaluation epilogue (scale, shift, ReLU) and its prepared weights") {
  for (const Case& k : {kCases[0], kCases[1], kCases[4], kCases[6], kCases[7], kCases[8], kCases[9]}) {
    CAPTURE(std::string(k.name));
    AlgorithmScope scope(ours(k));
    const Operands f = operands(k);
    const Tensor scale = random_tensor({k.o}, DType::F64, 44, 0.5, 2), shift = random_tensor({k.o}, DType::F64, 45);
    // float64: relu(scale * (conv + b) + shift)
    const Tensor conv = reference(k, f);
    std::vector<double> want = conv.to_vector(), s = scale.to_vector(), t = shift.to_vector();
    const int64_t plane = conv.dim(2) * conv.dim(3);
    for (size_t i = 0; i < want.size(); ++i) {
      const size_t o = static_cast<size_t>(static_cast<int64_t>(i) / plane % k.o);
      want[i] = std::max(0.0, s[o] * want[i] + t[o]);
    }
    const Tensor x = test::in_layout(f.x.to(DType::F32), Layout::Blocked16);
    const Tensor w = f.w.to(DType::F32), b = f.b.defined() ? f.b.to(DType::F32) : Tensor();
    const auto run = [&](const Tensor& sc, const Tensor& sh, ops::PreparedConv* kept) {
      const Tensor y = output_like(k, f.x, f.w, DType::F32, Layout::Blocked16);
      REQUIRE(ops::conv2d_forward_affine(x, w, b, y, params(k), sc, sh, true, kept));
      return ops::to_nchw(y);
    };
    ops::PreparedConv kept;
    const Tensor fresh = run(scale.to(DType::F32), shift.to(DType::F32), nullptr);
    const Tensor made = run(scale.to(DType::F32), shift.to(DType::F32), &kept);
    const Tensor reused = run(scale.to(DType::F32), shift.to(DType::F32), &kept);
    CHECK(kept.weights.plan != nullptr);
    CHECK(made.to_vector() == fresh.to_vector());
    CHECK(reused.to_vector() == fresh.to_vector());
    double worst = 0, largest = 0;
    const std::vector<double> got = fresh.to_vector();
    for (size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::abs(got[i] - want[i]));
      largest = std::max(largest, std::abs(want[i]));
    }
    CHECK(worst < 4e-5 * largest);
    // Another scale through the same prepared operands: made again, not the old ones.
    const Tensor half = scale.to(DType::F32);
    ops::binary_scalar(ops::Binary::Mul, half, 0.5, half);
    CHECK(run(half, shift.to(DType::F32), &kept).to_vector() == run(half, shift.to(DType::F32), nullptr).to_vector());
    CHECK(run(half, shift.to(DType::F32), &kept).to_vector() != fresh.to_vector());
  }
}
TEST_CASE("conv winograd 1d: a residual add before the ReLU, from another tensor and in place") {
  for (const Case& k : {kCases[0], kCases[8], kCases[9]}) {
    CAPTURE(std::string(k.name));
    AlgorithmScope scope(ours(k));
    const Operands f = operands(k);
    const Tensor scale = random_tensor({k.o}, DType::F64, 44, 0.5, 2), shift = random_tensor({k.o}, DType::F64, 45);
    const Tensor conv = reference(k, f);
    const Tensor residual = random_tensor(conv.shape(), DType::F64, 47);
    // float64: relu(scale * (conv + b) + shift + residual)
    std::vector<double> want = conv.to_vector(), s = scale.to_vector(), t = shift.to_vector();
    const std::vector<double> r = residual.to_vector();
    const int64_t plane = conv.dim(2) * conv.dim(3);
    for (size_t i = 0; i < want.size(); ++i) {
      const size_t o = static_cast<size_t>(static_cast<int64_t>(i) / plane % k.o);
      want[i] = std::max(0.0, s[o] * want[i] + t[o] + r[i]);
    }
    const Tensor x = test::in_layout(f.x.to(DType::F32), Layout::Blocked16);
    const Tensor w = f.w.to(DType::F32), b = f.b.defined() ? f.b.to(DType::F32) : Tensor();
    const Tensor res = test::in_layout(residual.to(DType::F32), Layout::Blocked16);
    const Tensor apart = output_like(k, f.x, f.w, DType::F32, Layout::Blocked16);
    REQUIRE(ops::conv2d_forward_affine(x, w, b, apart, params(k), scale.to(DType::F32), shift.to(DType::F32), true,
                                       nullptr, res));
    const Tensor in_place = res.clone();  // y holds the residual on entry
    REQUIRE(ops::conv2d_forward_affine(x, w, b, in_place, params(k), scale.to(DType::F32), shift.to(DType::F32), true,
                                       nullptr, in_place));
    const std::vector<double> got = ops::to_nchw(apart).to_vector();
    CHECK(ops::to_nchw(in_place).to_vector() == got);
    double worst = 0, largest = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::abs(got[i] - want[i]));
      largest = std::max(largest, std::abs(want[i]));
    }
    CHECK(worst < tolerance(k) * largest);
  }
}
}  // TEST_SUITE
