// Winograd's F(7x7, 3x3) for 3x3 convolutions (core/cpu/conv_winograd_2d.cpp): where the rule takes it, and
// that its forward, plain and with the evaluation epilogue (batch norm scale and shift, residual add, ReLU,
// weights prepared once or made at every call as in training), and its input gradient match float64 within
// their rounding on maps that leave partial tiles, with tile counts that fill the 8 x 8 transposes and that
// leave some over.
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
  int64_t n, c, h, w, o, pad;
  bool bias;
};

const Case kCases[] = {
    {"14x14, two tiles a side, 8 tiles, 48 outputs: a panel of 32 and one of 16", 2, 32, 14, 14, 48, 1, false},
    {"7x7, one tile an image, 3 images: fewer tiles than a pass takes", 3, 16, 7, 7, 32, 1, true},
    {"10x12: partial tiles at the bottom and right, 12 tiles: one whole pass", 3, 48, 10, 12, 16, 1, true},
    {"unpadded 9x16: 7x14 out", 1, 16, 9, 16, 16, 0, false},
    {"padding 2 on 5x5: 7x7 out, one tile of mostly padding", 2, 16, 5, 5, 32, 2, false},
    {"28x21, 64 -> 64: 12 tiles an image, 2 images", 2, 64, 28, 21, 64, 1, true},
    {"21x21, 48 -> 80: 18 tiles (a pass of 12 and one of 6), panels of 32, 32 and 16", 2, 48, 21, 21, 80, 1, true},
};

// Against the largest output: F(7, 3)'s nine points over both axes round more than the direct sum (measured
// 2.4e-5 to 8.4e-5 here up to 64 channels, growing with them; oneDNN's F(4x4, 3x3) on the 256-channel case
// below 1.7e-6). With 256 channels and no batch norm to scale the outputs: 1.4e-4 (input gradient) and 1.6e-4
// (forward).
constexpr double kTolerance = 1.2e-4;
constexpr double kDeepTolerance = 2.5e-4;

ops::Conv2dParams params(const Case& k) {
  ops::Conv2dParams p;
  p.pad_h = p.pad_w = k.pad;
  return p;
}

ops::ConvGeometry geometry_of(const Case& k) {
  return ops::conv_geometry({k.n, k.c, k.h, k.w}, {k.o, k.c, 3, 3}, params(k));
}

struct Operands {
  Tensor x, w, b;  // float64
};
Operands operands(const Case& k) {
  return {random_tensor({k.n, k.c, k.h, k.w}, DType::F64, 51), random_tensor({k.o, k.c, 3, 3}, DType::F64, 52),
          k.bias ? random_tensor({k.o}, DType::F64, 53) : Tensor()};
}

Tensor output_like(const Case& k, DType dt, Layout l) {
  const ops::ConvGeometry g = geometry_of(k);
  return Tensor::zeros({k.n, k.o, g.out_h(), g.out_w()}, dt).with_layout(l);
}

// The float64 result, then scale * (it) + shift + residual and the ReLU where given (NCHW, float64 tensors).
std::vector<double> reference(const Case& k, const Operands& f, const Tensor& scale = Tensor(),
                              const Tensor& shift = Tensor(), const Tensor& residual = Tensor(), bool relu = false) {
  const Tensor y = output_like(k, DType::F64, Layout::NCHW);
  ops::conv2d_forward(f.x, f.w, f.b, y, params(k));
  std::vector<double> want = y.to_vector();
  if (!scale.defined()) return want;
  const std::vector<double> s = scale.to_vector(), t = shift.to_vector();
  const std::vector<double> r = residual.defined() ? residual.to_vector() : std::vector<double>(want.size(), 0.0);
  const int64_t plane = y.dim(2) * y.dim(3);
  for (size_t i = 0; i < want.size(); ++i) {
    const size_t o = static_cast<size_t>(static_cast<int64_t>(i) / plane % k.o);
    want[i] = s[o] * want[i] + t[o] + r[i];
    if (relu) want[i] = std::max(0.0, want[i]);
  }
  return want;
}

double relative_error(const std::vector<double>& got, const std::vector<double>& want) {
  double worst = 0, largest = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - want[i]));
    largest = std::max(largest, std::abs(want[i]));
  }
  return worst / largest;
}

// The F(7x7, 3x3) forward called directly (whatever the rule says), from and to nChw16c, back in NCHW.
Tensor forward_2d(const Case& k, const Operands& f, const cpu::ConvEpilogue& e = {}) {
  const Tensor x = test::in_layout(f.x.to(DType::F32), Layout::Blocked16);
  const Tensor w = f.w.to(DType::F32), b = f.b.defined() ? f.b.to(DType::F32) : Tensor();
  const Tensor y = output_like(k, DType::F32, Layout::Blocked16);
  cpu::conv2d_forward_winograd_2d(x.data<float>(), w.data<float>(), b.defined() ? b.data<float>() : nullptr,
                                  y.data<float>(), k.n, geometry_of(k), k.o, e);
  return ops::to_nchw(y);
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("conv winograd 2d: the rule takes deep 3x3 layers on whole 7x7 tiles with enough tiles, and their input gradients") {
  const auto geometry = [](int64_t c, int64_t side, int64_t stride = 1, int64_t dilation = 1) {
    ops::Conv2dParams p;
    p.stride_h = p.stride_w = stride;
    p.dilation_h = p.dilation_w = dilation;
    p.pad_h = p.pad_w = dilation;
    return ops::conv_geometry({1, c, side, side}, {c, c, 3, 3}, p);
  };
  const cpu::ConvLayouts blocked{Layout::Blocked16, Layout::Blocked16};
  const ops::ConvGeometry g14 = geometry(512, 14), g7 = geometry(512, 7);
  AlgorithmScope scope(cpu::ConvAlgorithm::Auto);
  CHECK(cpu::conv_winograd_2d_forward(g14, 512, 1, blocked, 8));  // mpncov_resnet50's layer4: 32 tiles
  CHECK(cpu::conv_winograd_2d_forward(geometry(256, 14), 256, 1, blocked, 8));  // resnet's layer3
  CHECK(cpu::conv_winograd_2d_forward(g7, 512, 1, blocked, 32));  // resnet's layer4 at batch 32
  CHECK(cpu::conv_winograd_2d_forward(geometry(256, 28), 256, 1, blocked, 2));  // 448x448 input
  CHECK_FALSE(cpu::conv_winograd_2d_forward(g14, 512, 1, blocked, 4));   // 16 tiles
  CHECK_FALSE(cpu::conv_winograd_2d_forward(g7, 512, 1, blocked, 8));    // 8 tiles: the one-axis route
  CHECK_FALSE(cpu::conv_winograd_2d_forward(geometry(128, 28), 128, 1, blocked, 8));  // shallow: oneDNN's
  CHECK_FALSE(cpu::conv_winograd_2d_forward(g14, 128, 1, blocked, 8));    // 128 outputs
  CHECK_FALSE(cpu::conv_winograd_2d_forward(geometry(512, 8), 512, 1, blocked, 32));  // partial tiles
  CHECK_FALSE(cpu::conv_winograd_2d_forward(geometry(512, 28, 2), 512, 1, blocked, 8));  // stride 2
  CHECK_FALSE(cpu::conv_winograd_2d_forward(geometry(512, 14, 1, 2), 512, 1, blocked, 8));  // dilation
  CHECK_FALSE(cpu::conv_winograd_2d_forward(g14, 512, 2, blocked, 8));    // groups
  CHECK_FALSE(cpu::conv_winograd_2d_forward(g14, 512, 1, {}, 8));         // NCHW
  CHECK_FALSE(cpu::conv_winograd_2d_forward(g14, 512, 1, {Layout::NHWC, Layout::NHWC}, 8));
  CHECK_FALSE(cpu::conv_winograd_2d_forward(g14, 512, 1, {Layout::Blocked16, Layout::Blocked16, true, true}, 8));
  // The input gradient where the forward goes, with padding 1 (dx on the same maps).
  CHECK(cpu::conv_winograd_2d_backward_data(g14, 512, 1, blocked, 8));
  CHECK(cpu::conv_winograd_2d_backward_data(geometry(256, 14), 256, 1, blocked, 8));
  CHECK_FALSE(cpu::conv_winograd_2d_backward_data(g14, 512, 1, blocked, 4));
  CHECK_FALSE(cpu::conv_winograd_2d_backward_data(geometry(128, 28), 128, 1, blocked, 8));
  CHECK_FALSE(cpu::conv_winograd_2d_backward_data(geometry(512, 14, 1, 2), 512, 1, blocked, 8));  // dilation 2
  // An unpadded layer (9x9 in, 7x7 out) whose forward the rule takes: its input gradient would need padding 2.
  ops::Conv2dParams unpadded;
  const ops::ConvGeometry g9 = ops::conv_geometry({1, 256, 9, 9}, {256, 256, 3, 3}, unpadded);
  CHECK(cpu::conv_winograd_2d_forward(g9, 256, 1, blocked, 32));
  CHECK_FALSE(cpu::conv_winograd_2d_backward_data(g9, 256, 1, blocked, 32));
  CHECK_FALSE(cpu::conv_winograd_2d_backward_data(g14, 512, 1, {}, 8));
  {
    AlgorithmScope direct(cpu::ConvAlgorithm::Direct);
    CHECK_FALSE(cpu::conv_winograd_2d_forward(g14, 512, 1, blocked, 8));
    CHECK_FALSE(cpu::conv_winograd_2d_backward_data(g14, 512, 1, blocked, 8));
  }
  {
    AlgorithmScope winograd(cpu::ConvAlgorithm::Winograd);  // oneDNN's F(4x4, 3x3) and the one-axis route
    CHECK_FALSE(cpu::conv_winograd_2d_forward(g14, 512, 1, blocked, 8));
    CHECK_FALSE(cpu::conv_winograd_2d_backward_data(g14, 512, 1, blocked, 8));
  }
}

TEST_CASE("conv winograd 2d: forward equals float64 within its rounding, partial tiles and padding included") {
  for (const Case& k : kCases) {
    CAPTURE(std::string(k.name));
    const Operands f = operands(k);
    const std::vector<double> want = reference(k, f);
    const double error = relative_error(forward_2d(k, f).to_vector(), want);
    CHECK(error < kTolerance);
    CHECK(error > 0);  // float32 transforms ran, not a float64 path
    MESSAGE(std::string(k.name), ": ", error);
  }
}

TEST_CASE("conv winograd 2d: the products on BLAS (CPUs without AVX-512) give the same results within rounding") {
  struct BlasScope {
    BlasScope() { cpu::set_winograd_2d_blas(true); }
    ~BlasScope() { cpu::set_winograd_2d_blas(false); }
  };
  for (const Case& k : {kCases[0], kCases[5], kCases[6]}) {
    CAPTURE(std::string(k.name));
    const Operands f = operands(k);
    const std::vector<double> want = reference(k, f), own = forward_2d(k, f).to_vector();
    std::vector<double> blas;
    const int64_t runs = cpu::winograd_2d_blas_runs();
    {
      BlasScope scope;
      blas = forward_2d(k, f).to_vector();
    }
    CHECK(cpu::winograd_2d_blas_runs() > runs);  // BLAS did multiply
    CHECK(relative_error(blas, want) < kTolerance);
    CHECK(relative_error(blas, own) < 1e-6);  // the same transforms and products in another kernel
  }
}

TEST_CASE("conv winograd 2d: tiles split into several groups give the same bits as one group") {
  struct GroupScope {
    explicit GroupScope(int64_t bytes) { cpu::set_winograd_2d_group_bytes(bytes); }
    ~GroupScope() { cpu::set_winograd_2d_group_bytes(0); }
  };
  for (const Case& k : {kCases[5], kCases[6]}) {  // 24 and 18 tiles
    CAPTURE(std::string(k.name));
    const Operands f = operands(k);
    const std::vector<double> whole = forward_2d(k, f).to_vector();
    const int64_t tile_bytes = 81 * (k.c + k.o) * 4;  // a tile's transformed input and products
    for (const int64_t tiles : {int64_t{7}, int64_t{5}, int64_t{1}}) {  // groups of at most 7, 5, 1 tiles
      CAPTURE(tiles);
      GroupScope scope(tiles * tile_bytes);
      CHECK(forward_2d(k, f).to_vector() == whole);
    }
  }
}

TEST_CASE("conv winograd 2d: the evaluation epilogue, a residual add and prepared weights") {
  for (const Case& k : {kCases[0], kCases[1], kCases[2], kCases[5], kCases[6]}) {
    CAPTURE(std::string(k.name));
    const Operands f = operands(k);
    const Tensor scale = random_tensor({k.o}, DType::F64, 54, 0.5, 2), shift = random_tensor({k.o}, DType::F64, 55);
    const Tensor residual = random_tensor({k.n, k.o, geometry_of(k).out_h(), geometry_of(k).out_w()}, DType::F64, 56);
    const Tensor s32 = scale.to(DType::F32), t32 = shift.to(DType::F32);
    const Tensor r32 = test::in_layout(residual.to(DType::F32), Layout::Blocked16);
    cpu::ConvEpilogue e{s32.data<float>(), t32.data<float>(), true, nullptr, r32.data<float>()};
    const Tensor fresh = forward_2d(k, f, e);
    CHECK(relative_error(fresh.to_vector(), reference(k, f, scale, shift, residual, true)) < kTolerance);
    // Prepared: made on the first call, reused on the second, the same bits as made afresh.
    ops::PreparedConv kept;
    e.prepared = &kept;
    CHECK(forward_2d(k, f, e).to_vector() == fresh.to_vector());
    CHECK(kept.weights.plan != nullptr);
    CHECK(forward_2d(k, f, e).to_vector() == fresh.to_vector());
    // Another scale through the same prepared weights: made again, not the old ones.
    const Tensor half = s32.clone();
    ops::binary_scalar(ops::Binary::Mul, half, 0.5, half);
    e.scale = half.data<float>();
    const Tensor halved = forward_2d(k, f, e);
    e.prepared = nullptr;
    CHECK(halved.to_vector() == forward_2d(k, f, e).to_vector());
    CHECK(halved.to_vector() != fresh.to_vector());
    // No ReLU, no residual: the affine map alone.
    cpu::ConvEpilogue affine{s32.data<float>(), t32.data<float>(), false, nullptr, nullptr};
    CHECK(relative_error(forward_2d(k, f, affine).to_vector(), reference(k, f, scale, shift)) < kTolerance);
  }
}

TEST_CASE("conv winograd 2d: a convolution the rule gives it (256 channels on 14x14, batch 8), U kept or not") {
  const Case k{"256 -> 256 on 14x14", 8, 256, 14, 14, 256, 1, false};
  const Operands f = operands(k);
  const Tensor scale = random_tensor({k.o}, DType::F32, 57, 0.5, 2), shift = random_tensor({k.o}, DType::F32, 58);
  const Tensor x = test::in_layout(f.x.to(DType::F32), Layout::Blocked16);
  const Tensor w = f.w.to(DType::F32);
  const auto run = [&](ops::PreparedConv* kept) {
    const Tensor y = output_like(k, DType::F32, Layout::Blocked16);
    REQUIRE(ops::conv2d_forward_affine(x, w, Tensor(), y, params(k), scale, shift, true, kept));
    return ops::to_nchw(y).to_vector();
  };
  AlgorithmScope scope(cpu::ConvAlgorithm::Auto);
  REQUIRE(cpu::conv_winograd_2d_forward(geometry_of(k), k.o, 1, {Layout::Blocked16, Layout::Blocked16}, k.n));
  ops::PreparedConv kept;
  const std::vector<double> ours = run(&kept);
  CHECK(run(&kept) == ours);  // from the kept U
  const cpu::ConvEpilogue e{scale.data<float>(), shift.data<float>(), true, nullptr, nullptr};
  CHECK(forward_2d(k, f, e).to_vector() == ours);  // this route ran
  CHECK(run(nullptr) == ours);  // U made afresh: the same bits as the kept U
  std::vector<double> onednn;
  {
    AlgorithmScope winograd(cpu::ConvAlgorithm::Winograd);  // oneDNN's F(4x4, 3x3)
    onednn = run(nullptr);
  }
  CHECK(onednn != ours);
  const std::vector<double> want = reference(k, f, scale.to(DType::F64), shift.to(DType::F64), Tensor(), true);
  CHECK(relative_error(ours, want) < kTolerance);
  MESSAGE("F(7x7, 3x3) ", relative_error(ours, want), ", oneDNN's F(4x4, 3x3) ", relative_error(onednn, want));
}
TEST_CASE("conv winograd 2d: the input gradient equals float64's, called directly and through the rule") {
  // Padding 1 only (the rule's); maps with partial tiles, tile counts that leave part of a pass, 16-wide panels.
  const Case cases[] = {kCases[0], kCases[1], kCases[2], kCases[5], kCases[6],
                        {"256 -> 256 on 14x14, batch 8", 8, 256, 14, 14, 256, 1, false}};
  for (const Case& k : cases) {
    CAPTURE(std::string(k.name));
    const Operands f = operands(k);
    const ops::ConvGeometry g = geometry_of(k);
    const Tensor dy = random_tensor({k.n, k.o, g.out_h(), g.out_w()}, DType::F64, 59);
    const Tensor want = Tensor::zeros({k.n, k.c, k.h, k.w}, DType::F64);
    ops::conv2d_backward(f.x, f.w, dy, want, Tensor(), Tensor(), params(k));
    const Tensor w = f.w.to(DType::F32), dy32 = test::in_layout(dy.to(DType::F32), Layout::Blocked16);
    const Tensor dx = Tensor::zeros({k.n, k.c, k.h, k.w}, DType::F32).with_layout(Layout::Blocked16);
    ops::fill(dx, 7.0);  // written, not added to
    cpu::conv2d_backward_data_winograd_2d(w.data<float>(), dy32.data<float>(), dx.data<float>(), k.n, g, k.o);
    const std::vector<double> ours = ops::to_nchw(dx).to_vector();
    const double error = relative_error(ours, want.to_vector());
    CHECK(error < (k.c >= 256 ? kDeepTolerance : kTolerance));
    CHECK(error > 0);
    MESSAGE(std::string(k.name), ": ", error);
    if (k.n != 8) continue;
    // Through the backward op where the rule takes it: the same bits; the weight gradient stays oneDNN's.
    AlgorithmScope scope(cpu::ConvAlgorithm::Auto);
    REQUIRE(cpu::conv_winograd_2d_backward_data(g, k.o, 1, {Layout::Blocked16, Layout::Blocked16}, k.n));
    const Tensor x32 = test::in_layout(f.x.to(DType::F32), Layout::Blocked16);
    const Tensor dx_op = Tensor::zeros({k.n, k.c, k.h, k.w}, DType::F32).with_layout(Layout::Blocked16);
    const Tensor dw = Tensor::zeros({k.o, k.c, 3, 3}, DType::F32), dw_want = Tensor::zeros({k.o, k.c, 3, 3}, DType::F64);
    ops::conv2d_backward(x32, w, dy32, dx_op, dw, Tensor(), params(k));
    CHECK(ops::to_nchw(dx_op).to_vector() == ours);
    ops::conv2d_backward(f.x, f.w, dy, Tensor(), dw_want, Tensor(), params(k));
    CHECK(relative_error(dw.to_vector(), dw_want.to_vector()) < 1e-5);
  }
}
}  // TEST_SUITE
