// The CPU convolution op: float32 (oneDNN, or a plain GEMM for pointwise kernels with few channels)
// against float64 (im2col + GEMM, the path the gradient checks prove) on the same data, over the
// geometries the zoo uses and the corners oneDNN's layout and padding rules could get wrong.
#include <cmath>

#include "core/layout_ops.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"

using namespace mpncov;
using test::max_rel_diff;
using test::random_tensor;

namespace {

struct Case {
  const char* name;
  int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  bool bias;
};

// A case's operands in one dtype and layout: x, w and dy drawn from seed, seed + 1, seed + 2.
struct Operands {
  ops::Conv2dParams p;
  Tensor x, w, dy;
};

ops::Conv2dParams params_of(const Case& k) {
  ops::Conv2dParams p;
  p.stride_h = k.sh; p.stride_w = k.sw; p.pad_h = k.ph; p.pad_w = k.pw;
  p.dilation_h = k.dh; p.dilation_w = k.dw; p.groups = k.groups;
  return p;
}

// Kernel layouts are float32's, and nChw16c holds whole blocks of 16 channels.
bool fits(const Case& k, DType dt, Layout layout) {
  if (dt == DType::F64 && layout != Layout::NCHW) return false;
  return layout != Layout::Blocked16 || (k.c % 16 == 0 && k.o % 16 == 0);
}

Operands operands(const Case& k, DType dt, Layout layout, uint64_t seed) {
  Operands o;
  o.p = params_of(k);
  o.x = test::in_layout(random_tensor({k.n, k.c, k.h, k.w}, DType::F64, seed).to(dt), layout);
  o.w = random_tensor({k.o, k.c / k.groups, k.kh, k.kw}, DType::F64, seed + 1).to(dt);
  const ops::ConvGeometry g = ops::conv_geometry(o.x.shape(), o.w.shape(), o.p);
  o.dy = test::in_layout(random_tensor({k.n, k.o, g.out_h(), g.out_w()}, DType::F64, seed + 2).to(dt), layout);
  return o;
}

// Every combination of requested gradients; the weight and bias gradients start non-zero to prove they
// accumulate, and the input gradient starts as garbage to prove it is overwritten.
struct Results {
  Tensor y, dx, dw, db;
};

Results run(const Case& k, DType dt, bool want_dx, bool want_dw, bool want_db) {
  const ops::Conv2dParams p = params_of(k);
  const Tensor x = random_tensor({k.n, k.c, k.h, k.w}, DType::F64, 11).to(dt);
  const Tensor w = random_tensor({k.o, k.c / k.groups, k.kh, k.kw}, DType::F64, 12).to(dt);
  const Tensor b = k.bias ? random_tensor({k.o}, DType::F64, 13).to(dt) : Tensor();
  const ops::ConvGeometry g = ops::conv_geometry(x.shape(), w.shape(), p);
  Results r;
  r.y = Tensor::full({k.n, k.o, g.out_h(), g.out_w()}, 7.0, dt);
  ops::conv2d_forward(x, w, b, r.y, p);
  const Tensor dy = random_tensor(r.y.shape(), DType::F64, 14).to(dt);
  if (want_dx) r.dx = Tensor::full(x.shape(), 9.0, dt);
  if (want_dw) r.dw = random_tensor(w.shape(), DType::F64, 15).to(dt);
  if (want_db) r.db = random_tensor({k.o}, DType::F64, 16).to(dt);
  ops::conv2d_backward(x, w, dy, r.dx, r.dw, r.db, p);
  return r;
}

const Case kCases[] = {
    {"3x3 pad 1 (resnet body)", 2, 16, 9, 9, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
    {"3x3 stride 2 pad 1, odd size", 3, 32, 11, 13, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, true},
    {"7x7 stride 2 pad 3 on RGB (stem)", 2, 3, 20, 18, 8, 7, 7, 2, 2, 3, 3, 1, 1, 1, false},
    {"11x11 stride 4 pad 2 (alexnet)", 1, 3, 35, 35, 8, 11, 11, 4, 4, 2, 2, 1, 1, 1, true},
    {"1x3 and 3x1 padding (inception)", 2, 8, 7, 7, 12, 1, 3, 1, 1, 0, 1, 1, 1, 1, true},
    {"3x1 with stride 2 vertical", 2, 8, 9, 6, 12, 3, 1, 2, 1, 1, 0, 1, 1, 1, false},
    {"1x1 stride 2 (downsample)", 2, 24, 10, 10, 16, 1, 1, 2, 2, 0, 0, 1, 1, 1, false},
    {"1x1 pointwise (plain GEMM)", 3, 20, 6, 5, 12, 1, 1, 1, 1, 0, 0, 1, 1, 1, true},
    {"1x1 pointwise, many channels (oneDNN)", 2, 1024, 3, 3, 512, 1, 1, 1, 1, 0, 0, 1, 1, 1, true},
    {"3x3 dilation 2, groups 2", 2, 8, 12, 10, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, true},
    {"5x5 groups 4, no padding", 1, 16, 9, 9, 8, 5, 5, 1, 1, 0, 0, 1, 1, 4, false},
    {"single image, channels not a multiple of 16", 1, 5, 6, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
};

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("conv op: float32 equals float64 in forward and every gradient combination") {
  for (const Case& k : kCases) {
    CAPTURE(k.name);
    for (int mask = 0; mask < 8; ++mask) {
      const bool dx = mask & 1, dw = mask & 2, db = (mask & 4) && k.bias;
      CAPTURE(mask);
      const Results f = run(k, DType::F32, dx, dw, db);
      const Results d = run(k, DType::F64, dx, dw, db);
      // float32 sums of up to 1024 products (values of order 10) against float64: a few 1e-6 relative.
      const double tol = 5e-5;
      CHECK(max_rel_diff(f.y, d.y) < tol);
      if (dx) CHECK(max_rel_diff(f.dx, d.dx) < tol);
      if (dw) CHECK(max_rel_diff(f.dw, d.dw) < tol);
      if (db) CHECK(max_rel_diff(f.db, d.db) < tol);
    }
  }
}

TEST_CASE("conv op: float32 results repeat bit for bit across calls and interleaved shapes") {
  // Plans and scratch buffers are reused across calls; another shape in between must not disturb them,
  // and the weight gradient must not depend on the run (bit-exact resume relies on it).
  const Results first = run(kCases[0], DType::F32, true, true, false);
  (void)run(kCases[1], DType::F32, true, true, true);
  (void)run(kCases[2], DType::F32, true, true, false);
  const Results again = run(kCases[0], DType::F32, true, true, false);
  CHECK(first.y.to_vector() == again.y.to_vector());
  CHECK(first.dx.to_vector() == again.dx.to_vector());
  CHECK(first.dw.to_vector() == again.dw.to_vector());
}

TEST_CASE("conv op: a written weight gradient equals one accumulated into zeros, bit for bit, old contents unread") {
  // accumulate_dweight false (a gradient zero_grad left to the layer): every route writes dw; NaN in the old
  // contents would show if one read them. Routes: oneDNN (NCHW and kernel layouts), NHWC pointwise GEMM,
  // plain im2col + GEMM (float64).
  for (const Case& k : {kCases[0], kCases[2], kCases[6], kCases[7], kCases[8], kCases[9], kCases[11]})
    for (DType dt : {DType::F32, DType::F64})
      for (Layout layout : {Layout::NCHW, Layout::NHWC, Layout::Blocked16}) {
        if (!fits(k, dt, layout)) continue;
        const std::string what = str(k.name, ", ", dtype_name(dt), ", ", layout_name(layout));
        CAPTURE(what);
        const auto [p, x, w, dy] = operands(k, dt, layout, 21);
        for (bool want_dx : {false, true}) {
          Tensor dx = want_dx ? test::in_layout(Tensor::zeros(x.shape(), dt), layout) : Tensor();
          Tensor accumulated = Tensor::zeros(w.shape(), dt), written = Tensor::full(w.shape(), NAN, dt);
          ops::conv2d_backward(x, w, dy, dx, accumulated, Tensor(), p);
          ops::conv2d_backward(x, w, dy, dx, written, Tensor(), p, /*accumulate_dweight=*/false);
          CHECK(written.to_vector() == accumulated.to_vector());
          // A second pass adds to what the first wrote: the sum, bit for bit the accumulating route's.
          Tensor twice = accumulated.clone();
          ops::conv2d_backward(x, w, dy, dx, twice, Tensor(), p);
          ops::conv2d_backward(x, w, dy, dx, written, Tensor(), p);
          CHECK(written.to_vector() == twice.to_vector());
        }
      }
}

TEST_CASE("conv op: an added input gradient is the written one plus what dx held, in every route") {
  // accumulate_dx (a net's input read by several layers): oneDNN adds a float32 pointwise layer's in its
  // kernel's pass (conv2d_adds_input_grad; the kernel sums in its own order, hence the tolerance), the
  // other routes through a buffer added after (bit for bit).
  const Case pointwise{"1x1 pointwise, 48 -> 32 on 7x5", 2, 48, 7, 5, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1, false};
  for (const Case& k : {kCases[0], kCases[1], kCases[6], kCases[7], kCases[8], pointwise})
    for (DType dt : {DType::F32, DType::F64})
      for (Layout layout : {Layout::NCHW, Layout::NHWC, Layout::Blocked16}) {
        if (!fits(k, dt, layout)) continue;
        const std::string what = str(k.name, ", ", dtype_name(dt), ", ", layout_name(layout));
        CAPTURE(what);
        const auto [p, x, w, dy] = operands(k, dt, layout, 31);
        const Tensor held = test::in_layout(random_tensor(x.shape(), DType::F64, 34).to(dt), layout);
        const Tensor written = test::in_layout(Tensor::full(x.shape(), NAN, dt), layout);
        ops::conv2d_backward(x, w, dy, written, Tensor(), Tensor(), p);
        const Tensor expected = held.clone();
        ops::axpby(1.0, written, 1.0, expected);
        // The weight gradient alongside is unchanged by the adding.
        const Tensor dw_alone = Tensor::zeros(w.shape(), dt), dw = Tensor::zeros(w.shape(), dt);
        ops::conv2d_backward(x, w, dy, Tensor(), dw_alone, Tensor(), p);
        const Tensor added = held.clone();
        ops::conv2d_backward(x, w, dy, added, dw, Tensor(), p, /*accumulate_dweight=*/true, /*accumulate_dx=*/true);
        const bool in_pass = ops::conv2d_adds_input_grad(w.shape(), p, dt, Device::cpu(), layout, layout);
        CHECK(in_pass == (dt == DType::F32 && layout == Layout::Blocked16 && k.kh == 1 && k.kw == 1 && k.sh == 1));
        if (in_pass) CHECK(max_rel_diff(added, expected) < 1e-6);
        else CHECK(added.to_vector() == expected.to_vector());
        CHECK(dw.to_vector() == dw_alone.to_vector());
      }
}
}  // TEST_SUITE
