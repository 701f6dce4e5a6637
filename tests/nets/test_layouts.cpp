// Planned layouts (core/layout.h, nets/layout_plan.h): a zoo net with its activations kept in the
// convolution kernels' layouts gives the NCHW net's outputs and gradients, float32 within 1e-5 relative
// to the largest value of each tensor; and the plan keeps the layout through conv -> bn -> relu -> add
// chains and converts only where a layer that needs NCHW reads.
#include <algorithm>
#include <cmath>

#include "core/layout_ops.h"
#include "nets/model.h"
#include "nets/net.h"
#include "tests/helpers.h"

using namespace mpncov;
using mpncov::test::scaled_diff;

namespace {


struct Pass {
  Tensor output;
  std::vector<Tensor> grads;       // every parameter gradient, in order
  std::vector<std::vector<bool>> masks;  // which outputs of each relu are positive
  int planned = 0;                 // outputs the plan put in another layout than NCHW
};

// One forward and backward of a zoo net with its seeded weights, in training or evaluation mode.
Pass run(const std::string& name, const Shape& input, LayoutMode mode, Precision precision, bool training) {
  set_layout_mode(mode);
  Net net(load_net(resolve_net_path(name)));
  net.setup(input);
  net.set_precision(precision);
  net.set_training(training);
  // Unfused: a backward after a fused evaluation forward runs that forward again unfused (nets/eval_fusion.h),
  // so the ReLU signs below must come from an unfused one. Fusion's own equality: test_eval_fusion.cpp.
  net.set_eval_fusion(false);
  Pass p;
  for (int i = 0; i < net.size(); ++i)  // (a commuted pooling's output is not stored: nets/commuted_pooling.h)
    if (net.pooled_by(i) < 0) p.planned += net.output(net.layer_spec(i).name).layout() != Layout::NCHW;
  p.output = net.forward(test::random_tensor(input, DType::F32, 7)).clone();
  // Each ReLU's signs as its backward sees them: a ReLU in shared storage (after a DenseNet's concatenation)
  // is recomputed just before it, and after the forward its storage holds another layer's output.
  net.set_backward_hook([&](int i) {
    if (net.layer(i).type() != "relu") return;
    std::vector<bool> mask;
    for (double v : ops::to_nchw(net.output(net.layer_spec(i).name)).to_vector()) mask.push_back(v > 0);
    p.masks.push_back(mask);
  });
  net.zero_grad();
  net.backward(test::random_tensor(p.output.shape(), DType::F32, 8));
  for (NetParameter& q : net.parameters()) p.grads.push_back(q.parameter->grad.clone());
  return p;
}

// Evaluation mode (batch norm a fixed affine map) must agree within `tolerance`. Training mode's batch
// statistics of a batch of 2 amplify rounding (there the NCHW float32 path is itself up to 1e-2 from
// float64), so it gets `train_tolerance`. Gradients are compared when every ReLU saw the same signs: a
// pre-activation within rounding of zero may flip between summation orders, which changes its gradient
// by all of it (the derivative jumps); such flips are counted and must stay rare. Evaluation-mode
// gradients get `gradient_scale` times the tolerance where a net's backward amplifies rounding.
void check_same_as_nchw(const std::string& name, const Shape& input, LayoutMode mode,
                        Precision precision = Precision::Float32, double tolerance = 1e-5,
                        double train_tolerance = 1e-3, bool eval_only = false, double max_flips = 1e-5,
                        double gradient_scale = 1) {
  test::LayoutModeGuard guard;
  for (bool training : {false, true}) {
    if (training && eval_only) continue;
    const double tol = training ? train_tolerance : tolerance;
    const Pass ref = run(name, input, LayoutMode::Off, precision, training);
    const Pass got = run(name, input, mode, precision, training);
    INFO(name, " ", input.str(), training ? " training" : " evaluation", ": ", got.planned,
         " outputs planned in a kernel layout");
    CHECK(ref.planned == 0);
    CHECK(got.planned > 0);  // the plan did keep activations in the kernels' layout
    CHECK(scaled_diff(got.output, ref.output) <= tol);
    REQUIRE(got.masks.size() == ref.masks.size());
    int64_t flips = 0, total = 0;
    for (size_t r = 0; r < ref.masks.size(); ++r)
      for (size_t e = 0; e < ref.masks[r].size(); ++e, ++total) flips += ref.masks[r][e] != got.masks[r][e];
    INFO(flips, " of ", total, " ReLU signs differ");
    CHECK(static_cast<double>(flips) <= max_flips * static_cast<double>(total));
    if (flips > 0) continue;
    REQUIRE(got.grads.size() == ref.grads.size());
    double worst = 0;
    for (size_t i = 0; i < ref.grads.size(); ++i) worst = std::max(worst, scaled_diff(got.grads[i], ref.grads[i]));
    INFO("worst parameter gradient difference ", worst);
    CHECK(worst <= (training ? tol : tol * gradient_scale));
  }
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("layouts: resnet18 in nChw16c and NHWC gives the NCHW results") {
  check_same_as_nchw("resnet18", Shape({2, 3, 64, 64}), LayoutMode::Blocked16);
  check_same_as_nchw("resnet18", Shape({2, 3, 64, 64}), LayoutMode::NHWC);
}

TEST_CASE("layouts: bfloat16 resnet18 in NHWC gives the NCHW bfloat16 results") {
  // Both round the same values to bfloat16, but a float32 sum that differs in its last bit may round to a
  // neighbouring bfloat16 (2^-8 apart) in the next layer; and in NHWC the activations are stored in
  // bfloat16 (batch norm, ReLU and add outputs rounded too), where NCHW keeps them in float32. The output
  // differs by 0.5% (evaluation) and 2.8% (training: batch statistics of 2 images amplify it) of its
  // largest value, as much as NCHW bfloat16 differs from float32 (0.4%, 1.7%). Gradients are compared
  // only when no ReLU sign differs, which in bfloat16 some do (0.3% here).
  check_same_as_nchw("resnet18", Shape({2, 3, 64, 64}), LayoutMode::Auto, Precision::BFloat16, 1e-2, 5e-2, false,
                     5e-3);
}

TEST_CASE("layouts: the plan keeps conv -> bn -> relu -> add in the kernel layout, NCHW only at the boundaries") {
  test::LayoutModeGuard guard;
  set_layout_mode(LayoutMode::Auto);
  Net net(load_net(resolve_net_path("resnet18")));
  net.setup(Shape({1, 3, 32, 32}));
  const auto layout = [&](const std::string& layer) { return net.output(layer).layout(); };
  CHECK(layout("conv1") == Layout::Blocked16);
  CHECK(layout("maxpool") == Layout::Blocked16);
  CHECK(layout("layer1.0.conv1") == Layout::Blocked16);
  CHECK(layout("layer1.0.bn1") == Layout::Blocked16);
  CHECK(layout("layer4.1.bn2") == Layout::Blocked16);
  CHECK(layout("layer4.1.add") == Layout::Blocked16);
  CHECK(layout("layer4.1.relu") == Layout::Blocked16);
  CHECK(layout("avgpool") == Layout::NCHW);  // global pooling reads blocked, writes (N, C)
  CHECK(layout("fc") == Layout::NCHW);
  net.set_precision(Precision::BFloat16);  // bfloat16 kernels prefer NHWC: the plan follows
  CHECK(layout("layer1.0.conv1") == Layout::NHWC);
  set_layout_mode(LayoutMode::Off);
  net.setup(Shape({1, 3, 32, 32}));
  CHECK(layout("layer1.0.conv1") == Layout::NCHW);
}

// Average pooling and concatenation keep their inputs' layout: inception_v3 runs from its stem to the
// global pooling without a conversion, in bfloat16 precision with every activation of it stored in bfloat16.
// A concatenation of inputs in different layouts writes NCHW and its inputs are planned NCHW.
TEST_CASE("layouts: the plan keeps inception_v3 in the kernel layout from the stem to the global pooling") {
  test::LayoutModeGuard guard;
  set_layout_mode(LayoutMode::Auto);
  Net net(load_net(resolve_net_path("inception_v3")));
  net.setup(Shape({1, 3, 75, 75}));
  for (bool bfloat16 : {false, true}) {
    net.set_precision(bfloat16 ? Precision::BFloat16 : Precision::Float32);
    const Layout want = bfloat16 ? Layout::NHWC : Layout::Blocked16;
    int checked = 0;
    for (int i = 0; i < net.size() && net.layer(i).type() != "gavp"; ++i, ++checked) {
      if (net.pooled_by(i) >= 0) continue;  // not stored: its convolution pools (nets/commuted_pooling.h)
      const Tensor& out = net.output(net.layer_spec(i).name);
      INFO(net.layer_spec(i).name, " (", net.layer(i).type(), "): ", out.str(), " in ", layout_name(out.layout()));
      CHECK(out.layout() == want);
      CHECK(out.dtype() == (bfloat16 ? DType::BF16 : DType::F32));
    }
    CHECK(checked > 300);  // every layer but the representation and the classifier
    CHECK(net.output("Mixed_7c.cat").layout() == want);
    // In float32 the branch pools run after their convolutions, their outputs not stored; bfloat16 stores them.
    const int pool = net.index_of("Mixed_5b.pool");
    CHECK((net.pooled_by(pool) >= 0) == !bfloat16);
    if (bfloat16) CHECK(net.output("Mixed_5b.pool").layout() == want);
  }
  // nChw16c needs multiples of 16 channels: a 24-channel branch is NHWC, so a concatenation with it and a
  // 32-channel (nChw16c) branch is NCHW, and so are both branches (the pooled one up to its convolution);
  // branches of 16 and 32 channels concatenate in nChw16c.
  const std::string yaml = R"(name: mixed_concat
input: [3, 8, 8]
features:
  - {name: a, type: conv, out_channels: 24, kernel_size: 1}
  - {name: b, type: conv, inputs: input, out_channels: 32, kernel_size: 1}
  - {name: pool, type: avgpool, inputs: b, kernel_size: 3, stride: 1, padding: 1}
  - {name: cat, type: concat, inputs: [a, pool]}
  - {name: c, type: conv, out_channels: 16, kernel_size: 1}
  - {name: d, type: conv, inputs: cat, out_channels: 32, kernel_size: 1}
  - {name: cat2, type: concat, inputs: [c, d]}
representation: {name: gavp, type: gavp}
)";
  Net mixed(parse_net(yaml, "mixed_concat.yaml"));
  mixed.setup(Shape({1, 3, 8, 8}));
  for (const char* name : {"a", "b", "pool", "cat"}) {
    INFO(name);
    CHECK(mixed.output(name).layout() == Layout::NCHW);
  }
  for (const char* name : {"c", "d", "cat2"}) {
    INFO(name);
    CHECK(mixed.output(name).layout() == Layout::Blocked16);
  }
}

}  // TEST_SUITE

// The other zoo families (about two minutes on 2 busy cores).
TEST_SUITE("slow") {

TEST_CASE("layouts: resnet50, mpncov_resnet50, alexnet, vgg11_bn, inception_v3, densenet121 give the NCHW results") {
  check_same_as_nchw("resnet50", Shape({2, 3, 64, 64}), LayoutMode::Auto);
  // The iSQRT-COV backward (Newton-Schulz iterations through a 256x256 covariance) amplifies the
  // rounding of the layers below: its gradients differ by up to 1.03e-5 (a batch norm weight's, a sum
  // with cancellation; most 4e-6 to 7e-6), so they get 2e-5; its outputs stay within 1e-5.
  check_same_as_nchw("mpncov_resnet50", Shape({2, 3, 64, 64}), LayoutMode::Auto, Precision::Float32, 1e-5, 1e-3,
                     false, 1e-5, 2);
  check_same_as_nchw("alexnet", Shape({2, 3, 64, 64}), LayoutMode::NHWC);
  // Evaluation only: their max pooling (NCHW here, after concatenations) turns a near-tie that rounding
  // decides differently into a gradient at another position, as a ReLU sign does (see above).
  check_same_as_nchw("vgg11_bn", Shape({2, 3, 32, 32}), LayoutMode::Auto, Precision::Float32, 1e-5, 0, true);
  check_same_as_nchw("inception_v3", Shape({2, 3, 75, 75}), LayoutMode::Auto, Precision::Float32, 1e-5, 0, true);
  check_same_as_nchw("densenet121", Shape({2, 3, 32, 32}), LayoutMode::Auto, Precision::Float32, 1e-5, 0, true);
  // bfloat16 (NHWC, every activation from the stem to the global pooling stored in bfloat16, the average
  // poolings and concatenations included, DenseNet's in shared storage) against NCHW bfloat16, as resnet18.
  check_same_as_nchw("inception_v3", Shape({2, 3, 75, 75}), LayoutMode::Auto, Precision::BFloat16, 1e-2, 0, true,
                     5e-3);
  check_same_as_nchw("densenet121", Shape({2, 3, 32, 32}), LayoutMode::Auto, Precision::BFloat16, 1e-2, 0, true,
                     5e-3);
}

}  // TEST_SUITE
