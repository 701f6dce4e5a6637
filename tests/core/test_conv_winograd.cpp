// Winograd 3x3 convolutions (core/cpu/conv_onednn.cpp): where the rule takes them, and that forward and
// both gradients match float64 im2col + GEMM within Winograd's rounding, in NCHW and the blocked layout,
// accumulated and written weight gradients alike.
#include <cmath>

#include "core/cpu/nn_cpu.h"
#include "core/layout_ops.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"

using namespace mpncov;
using test::max_rel_diff;
using test::AlgorithmScope;
using test::random_tensor;

namespace {

struct Case {
  const char* name;
  int64_t n, c, h, w, o, pad;
  bool bias;
};

const Case kCases[] = {
    {"resnet-like 3x3, 16 -> 32 channels", 2, 16, 12, 12, 32, 1, false},
    {"odd sizes, with bias", 3, 32, 13, 11, 16, 1, true},
    {"no padding", 2, 16, 10, 10, 16, 0, false},
    {"64 channels, one image of 28x28", 1, 64, 28, 28, 64, 1, true},
    {"channels not a multiple of 16", 2, 5, 9, 9, 7, 1, true},
};

struct Results {
  Tensor y, dx, dw, db;
};

Results run(const Case& k, DType dt, Layout layout = Layout::NCHW, bool accumulate_dw = true) {
  ops::Conv2dParams p;
  p.pad_h = p.pad_w = k.pad;
  const auto in_layout = [&](const Tensor& t) { return test::in_layout(t, layout); };
  const Tensor x = in_layout(random_tensor({k.n, k.c, k.h, k.w}, DType::F64, 31).to(dt));
  const Tensor w = random_tensor({k.o, k.c, 3, 3}, DType::F64, 32).to(dt);
  const Tensor b = k.bias ? random_tensor({k.o}, DType::F64, 33).to(dt) : Tensor();
  const ops::ConvGeometry g = ops::conv_geometry(x.shape(), w.shape(), p);
  Results r;
  r.y = in_layout(Tensor::zeros({k.n, k.o, g.out_h(), g.out_w()}, dt));
  ops::conv2d_forward(x, w, b, r.y, p);
  const Tensor dy = in_layout(random_tensor(r.y.shape(), DType::F64, 34).to(dt));
  r.dx = in_layout(Tensor::full(x.shape(), 9.0, dt));
  // Accumulated: into non-zero contents, which must be added to; written: NaN contents, never read.
  r.dw = accumulate_dw ? random_tensor(w.shape(), DType::F64, 35).to(dt) : Tensor::full(w.shape(), NAN, dt);
  if (k.bias) r.db = random_tensor({k.o}, DType::F64, 36).to(dt);
  ops::conv2d_backward(x, w, dy, r.dx, r.dw, r.db, p, accumulate_dw);
  r.y = ops::to_nchw(r.y);
  r.dx = ops::to_nchw(r.dx);
  return r;
}

bool same_bits(const Tensor& a, const Tensor& b) { return a.to_vector() == b.to_vector(); }

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("conv winograd: the rule takes 3x3 stride-1 layers with enough 4x4 output tiles, the setting overrides") {
  const auto geometry = [](int64_t c, int64_t size, int64_t k, int64_t stride, int64_t dilation) {
    ops::Conv2dParams p;
    p.stride_h = p.stride_w = stride;
    p.pad_h = p.pad_w = k / 2 * dilation;
    p.dilation_h = p.dilation_w = dilation;
    return ops::conv_geometry({1, c, size, size}, {c, c, k, k}, p);
  };
  const ops::ConvGeometry body56 = geometry(64, 56, 3, 1, 1), body14 = geometry(256, 14, 3, 1, 1),
                          body7 = geometry(512, 7, 3, 1, 1);
  {
    AlgorithmScope scope(cpu::ConvAlgorithm::Auto);
    CHECK(cpu::conv_wants_winograd(8, body56, 1));
    CHECK(cpu::conv_wants_winograd(1, body56, 1));
    CHECK(cpu::conv_wants_winograd(1, geometry(128, 28, 3, 1, 1), 1));  // 49 tiles
    CHECK(cpu::conv_wants_winograd(16, body7, 1));  // 16 images x 4 tiles
    CHECK(cpu::conv_wants_winograd(3, body14, 1));  // 3 x 16 tiles
    // 32 tiles: Winograd only where the cores split 512-bit FMAs (Zen 4), the direct kernel elsewhere.
    const bool halves = cpu::avx512_in_halves();
    CHECK(cpu::conv_wants_winograd(8, body7, 1) == halves);
    CHECK(cpu::conv_wants_winograd(2, body14, 1) == halves);
    CHECK(cpu::winograd_tiles(8, body7) == 32);
    CHECK(cpu::winograd_least_tiles(true) == 32);
    CHECK(cpu::winograd_least_tiles(false) == cpu::kWinogradManyTiles);
    CHECK(cpu::conv_wants_winograd(12, body7, 1));        // 48 tiles: on either kind of core
    CHECK_FALSE(cpu::conv_wants_winograd(7, body7, 1));   // 28 tiles: on neither
    CHECK_FALSE(cpu::conv_wants_winograd(1, body14, 1));  // 16 tiles: too few for the threads
    CHECK_FALSE(cpu::conv_wants_winograd(1, body7, 1));
    CHECK_FALSE(cpu::conv_wants_winograd(8, geometry(64, 56, 3, 2, 1), 1));  // stride 2
    CHECK_FALSE(cpu::conv_wants_winograd(8, geometry(64, 56, 3, 1, 2), 1));  // dilation 2
    CHECK_FALSE(cpu::conv_wants_winograd(8, geometry(64, 56, 1, 1, 1), 1));  // 1x1
    CHECK_FALSE(cpu::conv_wants_winograd(8, geometry(64, 56, 5, 1, 1), 1));  // 5x5
    CHECK_FALSE(cpu::conv_wants_winograd(8, body56, 2));                     // groups
  }
  {
    AlgorithmScope scope(cpu::ConvAlgorithm::Direct);
    CHECK_FALSE(cpu::conv_wants_winograd(8, body56, 1));
  }
  {
    AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
    CHECK(cpu::conv_wants_winograd(1, body7, 1));
    CHECK_FALSE(cpu::conv_wants_winograd(8, geometry(64, 56, 3, 2, 1), 1));
  }
  CHECK(cpu::conv_algorithm_named("auto") == cpu::ConvAlgorithm::Auto);
  CHECK(cpu::conv_algorithm_named("direct") == cpu::ConvAlgorithm::Direct);
  CHECK(cpu::conv_algorithm_named("winograd") == cpu::ConvAlgorithm::Winograd);
  CHECK_THROWS_WITH(cpu::conv_algorithm_named("wino"),
                    doctest::Contains("MPNCOV_CONV_ALGORITHM=wino: expected auto, direct or winograd"));
}

TEST_CASE("conv winograd: forward, input and weight gradients equal float64 within Winograd's rounding") {
  for (const Case& k : kCases) {
    CAPTURE(std::string(k.name));
    const Results d = run(k, DType::F64);
    Results direct, wino;
    {
      AlgorithmScope scope(cpu::ConvAlgorithm::Direct);
      direct = run(k, DType::F32);
    }
    {
      AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
      wino = run(k, DType::F32);
    }
    // Direct float32 sums of up to 576 products: a few 1e-6 relative (1.6e-5 at
    // most here). Winograd's transforms add roundings of their own: up to 5e-5 here (64 channels).
    const double tol = 2e-4;
    CHECK(max_rel_diff(wino.y, d.y) < tol);
    CHECK(max_rel_diff(wino.dx, d.dx) < tol);
    CHECK(max_rel_diff(wino.dw, d.dw) < tol);
    if (k.bias) CHECK(max_rel_diff(wino.db, d.db) < tol);
    CHECK(max_rel_diff(direct.y, d.y) < tol);
    // A different algorithm ran: its rounding differs from the direct kernel's.
    CHECK_FALSE(same_bits(wino.y, direct.y));
    CHECK_FALSE(same_bits(wino.dx, direct.dx));
    CHECK_FALSE(same_bits(wino.dw, direct.dw));
    MESSAGE(std::string(k.name), ": Winograd against float64 ", max_rel_diff(wino.y, d.y), " ", max_rel_diff(wino.dx, d.dx), " ",
            max_rel_diff(wino.dw, d.dw), ", direct ", max_rel_diff(direct.y, d.y), " ", max_rel_diff(direct.dx, d.dx),
            " ", max_rel_diff(direct.dw, d.dw));
  }
}

TEST_CASE("conv winograd: blocked layout equals NCHW bit for bit, written weight gradients match float64 and repeat") {
  AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
  for (const Case& k : {kCases[0], kCases[1], kCases[3]}) {
    CAPTURE(std::string(k.name));
    const Results nchw = run(k, DType::F32);
    const Results blocked = run(k, DType::F32, Layout::Blocked16);
    CHECK(same_bits(nchw.y, blocked.y));
    CHECK(same_bits(nchw.dx, blocked.dx));
    CHECK(same_bits(nchw.dw, blocked.dw));
    // A written gradient (NaN contents before, never read): float64's product within Winograd's rounding,
    // the same bits on a second call.
    const Results written = run(k, DType::F32, Layout::NCHW, /*accumulate_dw=*/false);
    const Results written_again = run(k, DType::F32, Layout::NCHW, false);
    CHECK(same_bits(written.dw, written_again.dw));
    CHECK(same_bits(written.y, nchw.y));
    const Results d = run(k, DType::F64, Layout::NCHW, false);
    CHECK(max_rel_diff(written.dw, d.dw) < 2e-4);
  }
}

TEST_CASE("conv winograd: a pass over the scratchpad cap runs on halves of the batch with the same results") {
  AlgorithmScope scope(cpu::ConvAlgorithm::Winograd);
  // Large maps: oneDNN's forward and input-gradient scratchpads shrink with the batch (25, 16, 11 MB for 4, 2
  // and 1 images), so the halves are taken.
  const Case k{"four images of 128x128, with bias", 4, 16, 128, 128, 16, 1, true};
  const size_t cap = cpu::conv_scratchpad_cap();
  CHECK(cap == size_t{64} << 20);
  for (Layout layout : {Layout::NCHW, Layout::Blocked16})
    for (bool accumulate : {true, false}) {
      CAPTURE(static_cast<int>(layout));
      CAPTURE(accumulate);
      const Results whole = run(k, DType::F32, layout, accumulate);
      const int64_t before = cpu::conv_batch_splits();
      cpu::set_conv_scratchpad_cap(1);  // every pass whose halves need less splits
      Results halves;
      try {
        halves = run(k, DType::F32, layout, accumulate);
      } catch (...) {
        cpu::set_conv_scratchpad_cap(cap);
        throw;
      }
      cpu::set_conv_scratchpad_cap(cap);
      // 4 -> 2 + 2 -> 1 + 1 + 1 + 1 where each half needs less: at least once in each pass.
      CHECK(cpu::conv_batch_splits() - before >= 2);
      const Results d = run(k, DType::F64, Layout::NCHW, accumulate);
      CHECK(max_rel_diff(halves.y, d.y) < 2e-4);
      CHECK(max_rel_diff(halves.dx, d.dx) < 2e-4);
      CHECK(max_rel_diff(halves.dw, d.dw) < 2e-4);  // accumulated over the halves, into ours when asked
      CHECK(max_rel_diff(halves.db, d.db) < 2e-4);
      CHECK(max_rel_diff(halves.y, whole.y) < 2e-4);
    }
}
}  // TEST_SUITE
