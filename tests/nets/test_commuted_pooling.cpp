// Commuted average pooling (nets/commuted_pooling.h): a net whose size-keeping average poolings run after
// their pointwise convolutions gives the plain net's logits, parameter gradients and running statistics
// (float64 within 1e-12, float32 within 1e-5 relative) in training and evaluation, in NCHW and the kernel
// layouts, with freed buffers poisoned; stores neither the poolings' outputs nor their gradients; and
// keeps every output with in-place execution off.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/layout.h"
#include "core/layout_ops.h"
#include "nets/model.h"
#include "nets/net.h"
#include "tests/helpers.h"

using namespace mpncov;
using mpncov::test::scaled_diff;

namespace {

// r0 is read by c1, p1 and p2: p1's input gradient goes through a scratch buffer (r0's middle reader), p2's
// straight into r0's gradient (its last reader), so the stem's gradients depend on both. p1 counts the
// padding in its divisor (as Inception's), p2 does not; p3 (stride 2), p4 (a bias) and p5 (a 3x3
// convolution) stay as they are.
const char* kNet = R"(name: commuted
input: [8, 9, 9]
features:
  - {name: c0, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - {name: b0, type: batchnorm}
  - {name: r0, type: relu}
  - {name: c1, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: p1, type: avgpool, kernel_size: 3, stride: 1, padding: 1, inputs: r0}
  - {name: c2, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b2, type: batchnorm}
  - {name: r2, type: relu}
  - {name: p3, type: avgpool, kernel_size: 3, stride: 2, padding: 1, inputs: r0}
  - {name: c3, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: p4, type: avgpool, kernel_size: 3, stride: 1, padding: 1, inputs: r0}
  - {name: c4, type: conv, out_channels: 16, kernel_size: 1}
  - {name: p5, type: avgpool, kernel_size: 3, stride: 1, padding: 1, inputs: r0}
  - {name: c5, type: conv, out_channels: 16, kernel_size: 3, padding: 1, bias: false}
  - {name: p2, type: avgpool, kernel_size: 3, stride: 1, padding: 1, count_include_pad: false, inputs: r0}
  - {name: c6, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b6, type: batchnorm}
  - {name: r6, type: relu}
  - {name: cat, type: concat, inputs: [c1, r2, c4, c5, r6]}
  - {name: s, type: avgpool, kernel_size: 2, stride: 2, padding: 1}
  - {name: cat2, type: concat, inputs: [s, c3]}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)";

struct Step {
  std::vector<Tensor> results;  // logits, then every parameter gradient, per pass; then the state
};

// Two training steps and an evaluation forward and backward (L = sum(w * logits)), then every parameter
// and buffer.
Step steps(Net& net, const Tensor& x, const Tensor& w) {
  Step s;
  for (bool training : {true, true, false}) {
    net.set_training(training);
    net.zero_grad();
    s.results.push_back(net.forward(x).clone());
    net.backward(w);
    for (NetParameter& p : net.parameters()) s.results.push_back(p.parameter->grad.clone());
  }
  for (const NamedTensor& t : net.state()) s.results.push_back(t.tensor.clone());
  return s;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("commuted pooling: poolings run after their pointwise convolutions give the plain net's steps") {
  test::LayoutModeGuard guard;
  for (LayoutMode mode : {LayoutMode::Off, LayoutMode::Auto}) {
    for (DType dtype : {DType::F64, DType::F32}) {
      if (dtype == DType::F64 && mode != LayoutMode::Off) continue;  // kernel layouts are float32's
      for (bool poison : {false, true}) {
        set_layout_mode(mode);
        INFO(dtype_name(dtype), ", layout mode ", static_cast<int>(mode), ", poison ", poison);
        const Shape shape{3, 8, 9, 9};
        Net commuted(parse_net(kNet, "commuted.yaml")), plain(parse_net(kNet, "commuted.yaml"));
        plain.set_pooling_commuted(false);
        for (Net* net : {&commuted, &plain}) {
          net->set_memory_debug({poison, false});
          net->setup(shape, dtype);
        }
        for (const char* pool : {"p1", "p2"}) {
          CAPTURE(pool);
          CHECK(commuted.pooled_by(commuted.index_of(pool)) == commuted.index_of(pool) + 1);
          CHECK(plain.pooled_by(plain.index_of(pool)) == -1);
          CHECK_THROWS_WITH_AS(commuted.output(pool), doctest::Contains("is not kept"), Error);
          CHECK(!commuted.output_written(commuted.index_of(pool)));
        }
        for (const char* pool : {"p3", "p4", "p5", "s"}) CHECK(commuted.pooled_by(commuted.index_of(pool)) == -1);
        // Not stored: the two poolings' outputs (32 channels each), in their place the scratch (the
        // larger convolution output, 16 channels).
        const double image = 9 * 9 * 3 * static_cast<double>(dtype_size(dtype));
        CHECK(plain.memory_plan().activations - commuted.memory_plan().activations == doctest::Approx(2 * 32 * image - 16 * image));
        // Same weights: the commuted net's, copied.
        std::vector<NamedTensor> from = commuted.state(), to = plain.state();
        for (size_t k = 0; k < from.size(); ++k) to[k].tensor.copy_from(from[k].tensor);
        const Tensor x = test::random_tensor(shape, dtype, 3), w = test::random_tensor({3, 5}, dtype, 4);
        const Step a = steps(commuted, x, w), b = steps(plain, x, w);
        REQUIRE(a.results.size() == b.results.size());
        const double tol = dtype == DType::F64 ? 1e-12 : 1e-5;
        for (size_t k = 0; k < a.results.size(); ++k) {
          CAPTURE(k);
          CHECK(scaled_diff(ops::to_nchw(a.results[k]), ops::to_nchw(b.results[k])) <= tol);
        }
      }
    }
  }
}

TEST_CASE("commuted pooling: off with in-place execution off (every output kept) and in bfloat16 storage") {
  test::LayoutModeGuard guard;
  set_layout_mode(LayoutMode::Auto);
  Net net(parse_net(kNet, "commuted.yaml"));
  net.setup(Shape{2, 8, 9, 9});
  const int p1 = net.index_of("p1");
  CHECK(net.pooled_by(p1) == p1 + 1);
  net.set_in_place(false);
  CHECK(net.pooled_by(p1) == -1);
  net.forward(test::random_tensor({2, 8, 9, 9}, DType::F32, 5));
  CHECK(net.output("p1").defined());
  net.set_in_place(true);
  CHECK(net.pooled_by(p1) == p1 + 1);
  // bfloat16 mixed precision stores kernel-layout activations in bfloat16: the pair runs as two layers.
  net.set_precision(Precision::BFloat16);
  CHECK(net.pooled_by(p1) == -1);
}

// inception_v3's nine branch poolings are commuted: its planned activations drop by their outputs.
TEST_CASE("commuted pooling: inception_v3's branch poolings are not stored") {
  Net commuted(load_net(resolve_net_path("inception_v3"))), plain(load_net(resolve_net_path("inception_v3")));
  plain.set_pooling_commuted(false);
  commuted.setup(Shape{1, 3, 299, 299});
  plain.setup(Shape{1, 3, 299, 299});
  double pooled = 0;
  int pools = 0;
  for (int i = 0; i < commuted.size(); ++i) {
    if (commuted.pooled_by(i) < 0) continue;
    ++pools;
    CHECK(commuted.layer(i).type() == "avgpool");
    pooled += static_cast<double>(commuted.output_shape(i).numel()) * 4;
  }
  CHECK(pools == 9);
  CHECK(pooled > 7 * (1 << 20));  // 244 MiB at batch 32
  const double saved = plain.memory_plan().activations - commuted.memory_plan().activations;
  CHECK(saved > pooled - (1 << 20));  // less the scratch: the largest branch convolution's output
  CHECK(saved < pooled);
}

}  // TEST_SUITE
