// bfloat16 mixed precision on CUDA (core/cuda_mixed_backend.h) against the CPU's (oneDNN) on the same float32
// tensors: convolution forward and both backward passes (from non-zero parameter gradients: they accumulate),
// matrix products, rounding and the bfloat16 dtype's conversions, and a small net's training losses. Both sides multiply the same bfloat16
// operands and accumulate in float32; cuDNN also rounds its results to bfloat16, so the convolutions agree
// within one bfloat16 rounding of the result (2^-8 relative) plus float32 summation order. Skipped without a
// CUDA device.
#include <cmath>

#include "core/mixed_ops.h"
#include "nets/net_spec.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "tests/helpers.h"
#include "train/step.h"

using namespace mpncov;
using mpncov::test::gpu_present;
using mpncov::test::random_tensor;

namespace {

const Device kGpu = Device::cuda(0);

// Largest |a - b| over the largest |b|.
double scaled_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> av = a.to(Device::cpu()).to_vector(), bv = b.to(Device::cpu()).to_vector();
  REQUIRE(av.size() == bv.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    worst = std::max(worst, std::isnan(av[i]) ? INFINITY : std::abs(av[i] - bv[i]));
    scale = std::max(scale, std::abs(bv[i]));
  }
  return worst / std::max(scale, 1e-30);
}

// The losses of 10 SGD steps of a small conv + linear net on one batch, on a device, in bfloat16.
std::vector<double> bf16_losses(Device device) {
  Net net(parse_net(R"(name: bf16_gpu_net
input: [3, 16, 16]
features:
  - {name: conv1, type: conv, out_channels: 16, kernel_size: 3, padding: 1}
  - {name: bn1, type: batchnorm}
  - {name: relu1, type: relu}
  - {name: conv2, type: conv, out_channels: 16, kernel_size: 3, stride: 2, padding: 1, groups: 2}
  - {name: relu2, type: relu}
representation: {name: pool, type: gavp}
classifier:
  - {name: fc, type: linear, out_features: 4}
)",
                    "bf16_gpu_net.yaml"));
  net.set_precision(Precision::BFloat16);
  net.setup(Shape({8, 3, 16, 16}), DType::F32, device, 3);
  std::vector<NamedParameter> all;
  for (const NetParameter& p : net.parameters()) all.push_back({p.name, p.parameter});
  ParamGroup g;
  g.name = "all";
  g.params = all;
  g.base_lr = g.lr = 0.05;
  g.momentum = 0.9;
  SGD sgd({g});
  TrainStep step(net, sgd);
  const Tensor x = random_tensor({8, 3, 16, 16}, DType::F32, 5).to(device);
  const Tensor y = Tensor::from_vector({0, 1, 2, 3, 3, 2, 1, 0}, {8}, DType::I64).to(device);
  std::vector<double> out;
  for (int i = 0; i < 10; ++i) {
    step.run(x, y);
    out.push_back(step.loss());
  }
  return out;
}

}  // namespace

TEST_SUITE("gpu") {

TEST_CASE("gpu bf16: convolution forward and both backward passes follow the CPU's bfloat16" *
          doctest::skip(!gpu_present())) {
  ops::Conv2dParams strided;
  strided.stride_h = strided.stride_w = 2;
  strided.pad_h = strided.pad_w = 1;
  strided.groups = 2;
  ops::Conv2dParams padded;
  padded.pad_h = padded.pad_w = 1;
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 16, 9, 9}, {32, 16, 3, 3}}, {{2, 16, 8, 8}, {16, 8, 3, 3}}, {{3, 32, 5, 5}, {16, 32, 1, 1}}};
  const ops::Conv2dParams params[] = {padded, strided, {}};
  uint64_t seed = 20;
  for (size_t k = 0; k < shapes.size(); ++k) {
    const auto& [xs, ws] = shapes[k];
    const ops::Conv2dParams& p = params[k];
    CAPTURE(xs.str());
    const ops::ConvGeometry g = ops::conv_geometry(xs, ws, p);
    const Shape ys{xs[0], ws[0], g.out_h(), g.out_w()};
    const Tensor x = random_tensor(xs, DType::F32, ++seed), w = random_tensor(ws, DType::F32, ++seed);
    const Tensor b = random_tensor({ws[0]}, DType::F32, ++seed), dy = random_tensor(ys, DType::F32, ++seed);
    const Tensor dw0 = random_tensor(ws, DType::F32, ++seed), db0 = random_tensor({ws[0]}, DType::F32, ++seed);

    Tensor y = Tensor::empty(ys), dx = Tensor::empty(xs), dw = dw0.clone(), db = db0.clone();
    ops::conv2d_forward_bf16(x, w, b, y, p);
    ops::conv2d_backward_bf16(x, w, dy, dx, dw, db, p);
    Tensor gy = Tensor::empty(ys, DType::F32, kGpu), gdx = Tensor::empty(xs, DType::F32, kGpu);
    Tensor gdw = dw0.to(kGpu), gdb = db0.to(kGpu);
    ops::conv2d_forward_bf16(x.to(kGpu), w.to(kGpu), b.to(kGpu), gy, p);
    ops::conv2d_backward_bf16(x.to(kGpu), w.to(kGpu), dy.to(kGpu), gdx, gdw, gdb, p);
    CHECK(scaled_diff(gy, y) < 1e-2);
    CHECK(scaled_diff(gdx, dx) < 1e-2);
    CHECK(scaled_diff(gdw, dw) < 1e-2);
    CHECK(scaled_diff(gdb, db) < 1e-5);  // float32 on both
    // ... and they are bfloat16 results: float32's differ by more than float32 rounding.
    Tensor fy = Tensor::empty(ys);
    ops::conv2d_forward(x, w, b, fy, p);
    CHECK(scaled_diff(y, fy) > 1e-5);
  }
}

TEST_CASE("gpu bf16: matrix products and rounding equal the CPU's" * doctest::skip(!gpu_present())) {
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const Tensor a = random_tensor(ta ? Shape{3, 40, 24} : Shape{3, 24, 40}, DType::F32, 31);
      const Tensor b = random_tensor(tb ? Shape{3, 16, 40} : Shape{3, 40, 16}, DType::F32, 32);
      const Tensor c0 = random_tensor({3, 24, 16}, DType::F32, 33);
      Tensor c = c0.clone(), gc = c0.to(kGpu);
      ops::matmul_bf16(a, b, c, ta, tb, 0.5, 2.0);
      ops::matmul_bf16(a.to(kGpu), b.to(kGpu), gc, ta, tb, 0.5, 2.0);
      CHECK(scaled_diff(gc, c) < 1e-5);  // the same exact products, float32 sums in another order
    }
  const Tensor v = Tensor::from_vector({1.0, 1.00390625, 1.01171875, -3.3, NAN, INFINITY, 1e-40}, {7}, DType::F32);
  Tensor r = Tensor::empty({7}), gr = Tensor::empty({7}, DType::F32, kGpu);
  ops::round_to_bf16(v, r);
  ops::round_to_bf16(v.to(kGpu), gr);
  // The bfloat16 dtype's conversions on the GPU: float32 -> bfloat16 -> float32 is the same rounding.
  const Tensor cast = v.to(kGpu).to(DType::BF16).to(DType::F32);
  CHECK(v.to(kGpu).to(DType::BF16).dtype() == DType::BF16);
  const std::vector<double> want = r.to_vector(), got = gr.to(Device::cpu()).to_vector();
  const std::vector<double> casted = cast.to(Device::cpu()).to_vector();
  const std::vector<double> host_cast = v.to(DType::BF16).to(DType::F32).to_vector();
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK((std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i]));  // bit for bit, ties to even
    CHECK((std::isnan(host_cast[i]) ? std::isnan(casted[i]) : casted[i] == host_cast[i]));
  }
}

TEST_CASE("gpu bf16: a small net's training losses follow the CPU's bfloat16 losses" *
          doctest::skip(!gpu_present())) {
  const std::vector<double> cpu = bf16_losses(Device::cpu()), gpu = bf16_losses(kGpu);
  for (size_t i = 0; i < cpu.size(); ++i) {
    CAPTURE(i);
    CAPTURE(cpu[i]);
    CAPTURE(gpu[i]);
    CHECK(std::abs(gpu[i] - cpu[i]) <= 0.02 * cpu[i]);  // bfloat16 results on the GPU: within 2% over 10 steps
  }
  CHECK(gpu.back() < 0.7 * gpu.front());
}

}  // TEST_SUITE
