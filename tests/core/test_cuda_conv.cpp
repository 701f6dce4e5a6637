// cuDNN convolutions against the CPU float64 reference over the shapes a net meets (1x1, 3x3 at stride 1
// and 2, 7x7/2, dilation, groups, depthwise; batch 1, odd and large), with TF32 off and on, from
// non-zero parameter gradients (they accumulate); the algorithm, math type and workspace of each are
// printed as RESULT lines for the GPU check's log. Then a ResNet stem run twice under the deterministic
// switch must give the same bits. Skipped without a CUDA device.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/cuda_backend.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"
#ifdef MPNCOV_HAS_CUDA
#include "core/cuda/conv_plan.h"
#endif

using namespace mpncov;

namespace {

const Device kGpu = Device::cuda(0);

// Sets the device's convolution math for a scope, then back to the default (both off).
struct MathScope {
#ifdef MPNCOV_HAS_CUDA
  MathScope(bool tf32, bool deterministic) { cuda::set_math(0, tf32, deterministic); }
  ~MathScope() { cuda::set_math(0, false, false); }
#else
  MathScope(bool, bool) {}
#endif
};

struct ConvCase {
  const char* name;
  int64_t n, c, h, w, o, k, stride, pad, dilation, groups;
};

// max |got - want| / max(max |want|, 1e-3).
double scaled_error(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  REQUIRE(g.size() == w.size());
  double scale = 1e-3, err = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::abs(g[i] - w[i]);
    err = std::isnan(d) ? INFINITY : std::max(err, d);
  }
  return err / scale;
}

// Forward and backward of one case on the GPU (float32) and the CPU (float64) from the same float32
// values; returns the worst scaled error over y, dx, dw, db.
double conv_error(const ConvCase& cc, uint64_t seed, const char* math) {
  ops::Conv2dParams p;
  p.stride_h = p.stride_w = cc.stride;
  p.pad_h = p.pad_w = cc.pad;
  p.dilation_h = p.dilation_w = cc.dilation;
  p.groups = cc.groups;
  const Shape xs{cc.n, cc.c, cc.h, cc.w}, ws{cc.o, cc.c / cc.groups, cc.k, cc.k};
  const ops::ConvGeometry g = ops::conv_geometry(xs, ws, p);
  const Shape ys{cc.n, cc.o, g.out_h(), g.out_w()};
  const Tensor x = test::random_tensor(xs, DType::F32, seed), w = test::random_tensor(ws, DType::F32, seed + 1);
  const Tensor b = test::random_tensor({cc.o}, DType::F32, seed + 2), dy = test::random_tensor(ys, DType::F32, seed + 3);
  const Tensor dw0 = test::random_tensor(ws, DType::F32, seed + 4), db0 = test::random_tensor({cc.o}, DType::F32, seed + 5);

  const Tensor ry = Tensor::empty(ys, DType::F64), rdx = Tensor::empty(xs, DType::F64);
  const Tensor rdw = dw0.to(DType::F64), rdb = db0.to(DType::F64);
  ops::conv2d_forward(x.to(DType::F64), w.to(DType::F64), b.to(DType::F64), ry, p);
  ops::conv2d_backward(x.to(DType::F64), w.to(DType::F64), dy.to(DType::F64), rdx, rdw, rdb, p);

  const Tensor gy = Tensor::empty(ys, DType::F32, kGpu), gdx = Tensor::empty(xs, DType::F32, kGpu);
  const Tensor gdw = dw0.to(kGpu), gdb = db0.to(kGpu);
  ops::conv2d_forward(x.to(kGpu), w.to(kGpu), b.to(kGpu), gy, p);
  ops::conv2d_backward(x.to(kGpu), w.to(kGpu), dy.to(kGpu), gdx, gdw, gdb, p);
  const double err = std::max({scaled_error(gy.to(Device::cpu()), ry), scaled_error(gdx.to(Device::cpu()), rdx),
                               scaled_error(gdw.to(Device::cpu()), rdw), scaled_error(gdb.to(Device::cpu()), rdb)});
  std::string plan = "(no CUDA backend)";
#ifdef MPNCOV_HAS_CUDA
  plan = cuda::conv_plan_description(0, cc.n, g, cc.o, cc.groups);
#endif
  std::printf("RESULT conv case=%s math=%s error=%.3g plan=\"%s\"\n", cc.name, math, err, plan.c_str());
  return err;
}

const ConvCase kCases[] = {
    {"1x1", 2, 16, 9, 9, 24, 1, 1, 0, 1, 1},
    {"3x3s1_odd_batch", 3, 8, 13, 13, 16, 3, 1, 1, 1, 1},
    {"3x3s2_batch1", 1, 16, 14, 14, 32, 3, 2, 1, 1, 1},
    {"7x7s2", 2, 3, 33, 33, 16, 7, 2, 3, 1, 1},
    {"3x3_dilation2", 2, 8, 15, 15, 8, 3, 1, 2, 2, 1},
    {"3x3_groups4", 2, 16, 11, 11, 32, 3, 1, 1, 1, 4},
    {"3x3_depthwise", 2, 32, 12, 12, 32, 3, 1, 1, 1, 32},
    {"3x3_large_batch", 64, 64, 28, 28, 64, 3, 1, 1, 1, 1},
};

}  // namespace

TEST_SUITE("gpu") {

TEST_CASE("cuda conv: every shape matches the CPU float64 with FP32 math and accumulates parameter gradients" *
          doctest::skip(!mpncov::test::gpu_present())) {
  MathScope math(false, false);
  for (const ConvCase& cc : kCases) {
    INFO(cc.name);
    // FP32 math: float32 rounding (and the FFT and Winograd algorithms' own error), below TF32's 1e-3.
    CHECK(conv_error(cc, 11, "fp32") <= 5e-4);
#ifdef MPNCOV_HAS_CUDA
    ops::Conv2dParams p;
    p.stride_h = p.stride_w = cc.stride;
    p.pad_h = p.pad_w = cc.pad;
    p.dilation_h = p.dilation_w = cc.dilation;
    p.groups = cc.groups;
    const ops::ConvGeometry g = ops::conv_geometry({cc.n, cc.c, cc.h, cc.w}, {cc.o, cc.c / cc.groups, cc.k, cc.k}, p);
    const std::string plan = cuda::conv_plan_description(0, cc.n, g, cc.o, cc.groups);
    CHECK(plan.find("tensor-op") == std::string::npos);  // TF32 is not allowed
    CHECK(plan.find("math=fma") != std::string::npos);
#endif
  }
}

TEST_CASE("cuda conv: with TF32 allowed every shape stays within TF32's rounding of the CPU" *
          doctest::skip(!mpncov::test::gpu_present())) {
  MathScope math(true, false);
  for (const ConvCase& cc : kCases) {
    INFO(cc.name);
    CHECK(conv_error(cc, 12, "tf32") <= 2e-2);
  }
}

TEST_CASE("cuda conv: a ResNet stem forward and backward twice gives the same bits under the deterministic switch" *
          doctest::skip(!mpncov::test::gpu_present())) {
  MathScope math(false, true);
  const Shape xs{8, 3, 112, 112}, ws{64, 3, 7, 7};
  ops::Conv2dParams cp;
  cp.stride_h = cp.stride_w = 2;
  cp.pad_h = cp.pad_w = 3;
  ops::Pool2dParams pp;
  pp.kernel_h = pp.kernel_w = 3;
  pp.stride_h = pp.stride_w = 2;
  pp.pad_h = pp.pad_w = 1;
  const Tensor x = test::random_tensor(xs, DType::F32, 21).to(kGpu), w = test::random_tensor(ws, DType::F32, 22).to(kGpu);
  const Tensor gamma = test::random_tensor({64}, DType::F32, 23, 0.5, 1.5).to(kGpu);
  const Tensor beta = test::random_tensor({64}, DType::F32, 24).to(kGpu);
  const Shape cs{8, 64, 56, 56};
  const int64_t ph = ops::pool_output_size(56, 3, 2, 1, false);
  const Shape ps{8, 64, ph, ph};
  const Tensor dy = test::random_tensor(ps, DType::F32, 25).to(kGpu);

  auto run = [&] {
    const Tensor c = Tensor::empty(cs, DType::F32, kGpu), bn = Tensor::empty(cs, DType::F32, kGpu);
    const Tensor mean = Tensor::empty({64}, DType::F32, kGpu), invstd = Tensor::empty({64}, DType::F32, kGpu);
    const Tensor rm = Tensor::zeros({64}, DType::F32, kGpu), rv = Tensor::zeros({64}, DType::F32, kGpu);
    ops::conv2d_forward(x, w, Tensor(), c, cp);
    ops::batch_norm_forward_train(c, gamma, beta, bn, mean, invstd, rm, rv, 0.1, 1e-5);
    ops::unary(ops::Unary::Relu, bn, bn);
    const Tensor y = Tensor::empty(ps, DType::F32, kGpu), index = Tensor::empty(ps, DType::I64, kGpu);
    ops::max_pool2d_forward(bn, y, index, pp);
    const Tensor dpool = Tensor::empty(cs, DType::F32, kGpu), dbn = Tensor::empty(cs, DType::F32, kGpu);
    const Tensor dc = Tensor::empty(cs, DType::F32, kGpu);
    ops::max_pool2d_backward(dy, index, dpool, pp);
    ops::relu_backward(bn, dpool, dbn);
    const Tensor dgamma = Tensor::zeros({64}, DType::F32, kGpu), dbeta = Tensor::zeros({64}, DType::F32, kGpu);
    ops::batch_norm_backward(c, dbn, gamma, mean, invstd, dc, dgamma, dbeta, true);
    const Tensor dx = Tensor::empty(xs, DType::F32, kGpu), dw = Tensor::zeros(ws, DType::F32, kGpu);
    ops::conv2d_backward(x, w, dc, dx, dw, Tensor(), cp);
    return std::vector<Tensor>{y.to(Device::cpu()), dx.to(Device::cpu()), dw.to(Device::cpu()),
                               dgamma.to(Device::cpu()), dbeta.to(Device::cpu())};
  };
  const std::vector<Tensor> a = run(), b = run();
  const char* names[] = {"pooled output", "input gradient", "weight gradient", "gamma gradient", "beta gradient"};
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(names[i]);
    CHECK(a[i].to_vector() == b[i].to_vector());
  }
#ifdef MPNCOV_HAS_CUDA
  const ops::ConvGeometry g = ops::conv_geometry(xs, ws, cp);
  std::printf("RESULT conv case=stem_deterministic plan=\"%s\"\n",
              cuda::conv_plan_description(0, 8, g, 64, 1).c_str());
#endif
}

}  // TEST_SUITE("gpu")
