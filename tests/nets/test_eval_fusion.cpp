// Evaluation-mode fusion (nets/eval_fusion.h): conv -> batch norm (-> ReLU) run as one oneDNN convolution
// gives the unfused net's results, float32 within 1e-5 of the largest value of the compared tensor, in the
// NCHW and the default (kernel) layouts; the folded map follows the batch norm's current values (after an
// SGD step, after loading other weights); it is off where a layer's own output is wanted and in training,
// which stays bit for bit the same.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/cpu/nn_cpu.h"
#include "core/layout.h"
#include "core/layout_ops.h"
#include "nets/model.h"
#include "nets/net.h"
#include "nets/weights.h"
#include "optim/sgd.h"
#include "tests/helpers.h"

using namespace mpncov;
using mpncov::test::scaled_diff;

namespace {

void scale_by(const Tensor& t, double s) { ops::binary_scalar(ops::Binary::Mul, t, s, t); }

struct ModeGuard {
  LayoutMode saved = layout_mode();
  ~ModeGuard() { set_layout_mode(saved); }
};

// conv -> bn -> relu (conv with bias), conv -> bn read twice (no ReLU), a 1x1 convolution whose batch norm
// has no affine parameters, and a residual add.
const char* kNet = R"(name: fuse
input: [3, 12, 12]
features:
  - {name: c1, type: conv, out_channels: 16, kernel_size: 3, padding: 1}
  - {name: b1, type: batchnorm}
  - {name: r1, type: relu}
  - {name: c2, type: conv, out_channels: 32, kernel_size: 3, stride: 2, padding: 1, bias: false}
  - {name: b2, type: batchnorm}
  - {name: c3, type: conv, out_channels: 32, kernel_size: 1, bias: false}
  - {name: b3, type: batchnorm, affine: false}
  - {name: r3, type: relu}
  - {name: add, type: add, inputs: [r3, b2]}
  - {name: c4, type: conv, out_channels: 16, kernel_size: 3, padding: 1}
  - {name: b4, type: batchnorm}
  - {name: r4, type: relu}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)";


// Batch norms far from the identity: random weights, biases, means and variances in [0.5, 2].
void randomise_batch_norms(Net& net, uint64_t seed) {
  for (int i = 0; i < net.size(); ++i) {
    if (net.layer(i).type() != "batchnorm") continue;
    for (Parameter& p : net.layer(i).parameters()) p.value.copy_from(test::random_tensor(p.value.shape(), DType::F32, seed++));
    const Shape c{net.output_shape(i)[1]};
    net.layer(i).buffer("running_mean").value.copy_from(test::random_tensor(c, DType::F32, seed++));
    net.layer(i).buffer("running_var").value.copy_from(test::random_tensor(c, DType::F32, seed++, 0.5, 2));
  }
}

// Another fuse net (weights from `seed`, batch norms from `bn_seed`), its weights saved as
// dir/other.safetensors.
Net other_net_saved(const std::filesystem::path& dir, uint64_t seed, uint64_t bn_seed) {
  Net other(parse_net(kNet, "fuse.yaml"));
  other.setup(Shape{2, 3, 12, 12}, DType::F32, Device::cpu(), seed);
  randomise_batch_norms(other, bn_seed);
  save_weights(other, (dir / "other.safetensors").string());
  return other;
}

// The eval output of `net` with fusion on and off; `fused` counts the convolutions the fused pass fused.
struct Both {
  Tensor on, off;
  int fused = 0;
};
Both eval_both(Net& net, const Tensor& x) {
  net.set_training(false);
  net.set_eval_fusion(false);
  Both b;
  b.off = net.forward(x).clone();
  for (int i = 0; i < net.size(); ++i) CHECK(!net.fused(i));
  net.set_eval_fusion(true);
  b.on = net.forward(x).clone();
  for (int i = 0; i < net.size(); ++i) b.fused += net.fused(i);
  return b;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("eval fusion: conv -> bn (-> relu) gives the unfused results in the NCHW and default layouts") {
  ModeGuard guard;
  for (LayoutMode mode : {LayoutMode::Off, LayoutMode::Auto}) {
    set_layout_mode(mode);
    Net net(parse_net(kNet, "fuse.yaml"));
    net.setup(Shape{2, 3, 12, 12});
    randomise_batch_norms(net, 3);
    const Both b = eval_both(net, test::random_tensor({2, 3, 12, 12}, DType::F32, 9));
    const char* layouts = mode == LayoutMode::Off ? "NCHW" : "default layouts";
    INFO(layouts);
    CHECK(scaled_diff(b.on, b.off) <= 1e-5);
    // Every run fuses, the NCHW 1x1 one with few channels too (through oneDNN, not the GEMM it runs unfused).
    for (const char* conv : {"c1", "c2", "c3", "c4"}) CHECK(net.fused(net.index_of(conv)));
    CHECK(net.fused_into(net.index_of("r1")) == net.index_of("c1"));
    CHECK(net.fused_into(net.index_of("add")) == -1);
    // The fused convolutions' own outputs were not written: asking for them is refused.
    CHECK_THROWS_WITH_AS(net.output("c1"), doctest::Contains("was not written: the last forward fused it"), Error);
    CHECK(net.output("r1").defined());
  }
}

// Residual blocks: identity ones (the shortcut computed before the convolution) after a 3x3 convolution
// (c2: Winograd, whose kernel takes no add, so the add runs in a pass of its own) and after a 1x1 one (c5:
// the add in the kernel), and a downsampling one, whose shortcut batch norm d1 is the add's later, second
// input (its run adds into the add's storage, which holds b3's output).
const char* kResidualNet = R"(name: residual
input: [16, 32, 32]
features:
  - {name: c0, type: conv, out_channels: 32, kernel_size: 3, padding: 1}
  - {name: b0, type: batchnorm}
  - {name: r0, type: relu}
  - {name: c1, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - {name: b1, type: batchnorm}
  - {name: r1, type: relu}
  - {name: c2, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - {name: b2, type: batchnorm}
  - {name: add1, type: add, inputs: [b2, r0]}
  - {name: r2, type: relu}
  - {name: c3, type: conv, out_channels: 64, kernel_size: 3, stride: 2, padding: 1, bias: false}
  - {name: b3, type: batchnorm}
  - {name: d0, type: conv, out_channels: 64, kernel_size: 1, stride: 2, bias: false, inputs: [r2]}
  - {name: d1, type: batchnorm}
  - {name: add2, type: add, inputs: [b3, d1]}
  - {name: r3, type: relu}
  - {name: c5, type: conv, out_channels: 64, kernel_size: 1, bias: false}
  - {name: b5, type: batchnorm}
  - {name: add3, type: add, inputs: [b5, r3]}
  - {name: r5, type: relu}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)";

TEST_CASE("eval fusion: a residual add and its ReLU fold into the convolution in a kernel layout") {
  ModeGuard guard;
  const Shape input{2, 16, 32, 32};
  const Tensor x = test::random_tensor(input, DType::F32, 9), dy = test::random_tensor({2, 5}, DType::F32, 4);
  for (LayoutMode mode : {LayoutMode::Off, LayoutMode::Auto}) {
    set_layout_mode(mode);
    const bool kernel_layout = mode != LayoutMode::Off;
    const char* layouts = kernel_layout ? "default layouts" : "NCHW";
    INFO(layouts);
    Net net(parse_net(kResidualNet, "residual.yaml"));
    net.setup(input);
    randomise_batch_norms(net, 3);
    // c2 runs Winograd: its add takes the separate pass (the other adds are in their kernels).
    ops::Conv2dParams p3;
    p3.pad_h = p3.pad_w = 1;
    REQUIRE(cpu::conv_wants_winograd(2, ops::conv_geometry(net.output_shape(net.index_of("r1")), {32, 32, 3, 3}, p3), 1));
    const Both b = eval_both(net, x);
    CHECK(b.fused == 6);
    CHECK(scaled_diff(b.on, b.off) <= 1e-5);
    // In a kernel layout the adds and the ReLUs after them are folded; in NCHW the runs end at the batch norm.
    for (const auto& [add, relu, conv] : {std::tuple{"add1", "r2", "c2"}, {"add2", "r3", "d0"}, {"add3", "r5", "c5"}}) {
      CAPTURE(add);
      CHECK(net.fused_into(net.index_of(add)) == (kernel_layout ? net.index_of(conv) : -1));
      CHECK(net.fused_into(net.index_of(relu)) == (kernel_layout ? net.index_of(conv) : -1));
    }
    CHECK(net.fused_into(net.index_of("b3")) == net.index_of("c3"));  // the add's earlier input: no add
    // d1, the add's second input, was folded into d0's run, which wrote add2's output (b3's storage): d1's
    // own output is refused, not read stale. b3's, the add's first input, is the add's output (in place).
    CHECK(net.output_written(net.index_of("d1")) == !kernel_layout);
    if (kernel_layout) CHECK_THROWS_WITH_AS(net.output("d1"), doctest::Contains("was not written"), Error);
    CHECK(net.output("b3").same_storage(net.output("add2")));
    // A backward after the fused forward sees the unfused one: the gradients bit for bit.
    std::vector<std::vector<double>> grads[2];
    for (bool fusion : {true, false}) {
      net.set_eval_fusion(fusion);
      net.forward(x);
      net.zero_grad();
      net.backward(dy);
      for (NetParameter& q : net.parameters()) grads[fusion].push_back(q.parameter->grad.to_vector());
    }
    CHECK(grads[0] == grads[1]);
  }
}

// Identity blocks whose add writes onto the shortcut's storage in evaluation (nets/eval_fusion.h): add1's
// shortcut r0 is read by c1 and add1 (onto: c2's Winograd kernel, which takes no second input, adds it as
// the sum it writes over), add2's shortcut r2 by c3 and add2 (onto, in c4's 1x1 kernel), add3's shortcut r4
// also by the concat after it (kept), add4's shortcut cat by the add's own convolution c6 (kept: the kernel
// would read what it writes).
const char* kOntoNet = R"(name: onto
input: [32, 32, 32]
features:
  - {name: c0, type: conv, out_channels: 32, kernel_size: 3, padding: 1}
  - {name: b0, type: batchnorm}
  - {name: r0, type: relu}
  - {name: c1, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - {name: b1, type: batchnorm}
  - {name: r1, type: relu}
  - {name: c2, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - {name: b2, type: batchnorm}
  - {name: add1, type: add, inputs: [b2, r0]}
  - {name: r2, type: relu}
  - {name: c3, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b3, type: batchnorm}
  - {name: r3, type: relu}
  - {name: c4, type: conv, out_channels: 32, kernel_size: 1, bias: false}
  - {name: b4, type: batchnorm}
  - {name: add2, type: add, inputs: [b4, r2]}
  - {name: r4, type: relu}
  - {name: c5a, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b5a, type: batchnorm}
  - {name: r5a, type: relu}
  - {name: c5, type: conv, out_channels: 32, kernel_size: 1, bias: false}
  - {name: b5, type: batchnorm}
  - {name: add3, type: add, inputs: [b5, r4]}
  - {name: r5, type: relu}
  - {name: cat, type: concat, inputs: [r5, r4]}
  - {name: c6, type: conv, out_channels: 64, kernel_size: 1, bias: false}
  - {name: b6, type: batchnorm}
  - {name: add4, type: add, inputs: [b6, cat]}
  - {name: r6, type: relu}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)";

TEST_CASE("eval fusion: an identity block's add writes onto its shortcut where nothing reads the shortcut after") {
  ModeGuard guard;
  set_layout_mode(LayoutMode::Auto);
  const Shape input{2, 32, 32, 32};
  const Tensor x = test::random_tensor(input, DType::F32, 9), dy = test::random_tensor({2, 5}, DType::F32, 4);
  Net net(parse_net(kOntoNet, "onto.yaml"));
  net.setup(input);
  randomise_batch_norms(net, 3);
  ops::Conv2dParams p3;
  p3.pad_h = p3.pad_w = 1;
  REQUIRE(cpu::conv_wants_winograd(2, ops::conv_geometry(input, {32, 32, 3, 3}, p3), 1));
  // Every output of the unfused evaluation, to compare the kept ones with.
  net.set_training(false);
  net.set_eval_fusion(false);
  net.forward(x);
  std::vector<Tensor> unfused;
  for (int i = 0; i < net.size(); ++i) unfused.push_back(net.output_written(i) ? net.output(net.layer_spec(i).name).clone() : Tensor());
  const Both b = eval_both(net, x);
  CHECK(scaled_diff(b.on, b.off) <= 1e-5);
  for (const char* add : {"add1", "add2", "add3", "add4"}) CHECK(net.fused_into(net.index_of(add)) >= 0);
  // The overwritten shortcuts (and add1, in r0's storage too) are refused, not read stale; so are the
  // batch norms' own outputs, which the runs left unwritten.
  for (const std::string gone : {"r0", "r2", "add1"}) {
    CAPTURE(gone);
    CHECK_FALSE(net.output_written(net.index_of(gone)));
    CHECK_THROWS_WITH_AS(net.output(gone), doctest::Contains("wrote a residual add's output over it"), Error);
  }
  for (const std::string unwritten : {"b2", "b4"}) CHECK_THROWS_WITH_AS(net.output(unwritten), doctest::Contains("was not written"), Error);
  // The kept outputs hold the unfused values.
  CHECK_THROWS_WITH_AS(net.output("add1"), doctest::Contains("wrote a residual add's output over it"), Error);
  for (const std::string kept : {"r4", "cat", "r5", "add4"}) {
    CAPTURE(kept);
    REQUIRE(net.output_written(net.index_of(kept)));
    CHECK(scaled_diff(net.output(kept), unfused[static_cast<size_t>(net.index_of(kept))]) <= 1e-5);
  }
  CHECK_FALSE(net.output("r4").same_storage(net.output("add3")));
  CHECK_FALSE(net.output("cat").same_storage(net.output("add4")));
  // A backward after the fused forward and a training step see the storage they planned: gradients bit
  // for bit those after an unfused forward.
  std::vector<std::vector<double>> grads[2];
  for (bool fusion : {true, false}) {
    net.set_eval_fusion(fusion);
    net.forward(x);
    net.zero_grad();
    net.backward(dy);
    for (NetParameter& q : net.parameters()) grads[fusion].push_back(q.parameter->grad.to_vector());
  }
  CHECK(grads[0] == grads[1]);
  // Training forwards keep every shortcut.
  net.set_training(true);
  net.forward(x);
  CHECK(net.output_written(net.index_of("r0")));
  CHECK_FALSE(net.output("r0").same_storage(net.output("add1")));
}

TEST_CASE("eval fusion: a backward after an evaluation forward that wrote onto a shortcut, nothing fused, runs it again") {
  // NHWC: every convolution here is 1x1, which keeps its GEMM there (no run fuses), but the add still wrote
  // onto r0, which c1's weight gradient reads.
  ModeGuard guard;
  set_layout_mode(LayoutMode::NHWC);
  Net net(parse_net(R"(name: unfused_onto
input: [16, 6, 6]
features:
  - {name: c0, type: conv, out_channels: 16, kernel_size: 1}
  - {name: r0, type: relu}
  - {name: c1, type: conv, out_channels: 8, kernel_size: 1, bias: false}
  - {name: b1, type: batchnorm}
  - {name: r1, type: relu}
  - {name: c2, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b2, type: batchnorm}
  - {name: add, type: add, inputs: [b2, r0]}
  - {name: r2, type: relu}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)", "unfused_onto.yaml"));
  const Shape input{2, 16, 6, 6};
  const Tensor x = test::random_tensor(input, DType::F32, 9), dy = test::random_tensor({2, 5}, DType::F32, 4);
  net.setup(input);
  randomise_batch_norms(net, 3);
  net.set_training(false);
  std::vector<std::vector<double>> grads[2];
  for (bool fusion : {true, false}) {
    net.set_eval_fusion(fusion);
    net.forward(x);
    for (int i = 0; i < net.size(); ++i) CHECK_FALSE(net.fused(i));
    CHECK(net.output_written(net.index_of("r0")) == !fusion);
    net.zero_grad();
    net.backward(dy);
    for (NetParameter& q : net.parameters()) grads[fusion].push_back(q.parameter->grad.to_vector());
  }
  CHECK(grads[0] == grads[1]);
}

TEST_CASE("eval fusion: a residual run whose convolution reads NCHW and writes NHWC adds in a pass of its own") {
  // 24 channels: NHWC in the default mode. t reads the net input (NCHW); its batch norm is the add's first
  // input and r0 a separate residual: only oneDNN's reference kernel takes that binary post-op writing
  // NHWC, which the plan refuses (a sum post-op too). The forward threw; now the add runs after the folded
  // convolution.
  ModeGuard guard;
  set_layout_mode(LayoutMode::Auto);
  Net net(parse_net(R"(name: nchw_in
input: [3, 7, 5]
features:
  - {name: c0, type: conv, out_channels: 24, kernel_size: 3, padding: 1, bias: false}
  - {name: b0, type: batchnorm}
  - {name: r0, type: relu}
  - {name: t, type: conv, out_channels: 24, kernel_size: 1, bias: false, inputs: input}
  - {name: bt, type: batchnorm}
  - {name: add, type: add, inputs: [bt, r0]}
  - {name: r, type: relu}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)", "nchw_in.yaml"));
  const Shape input{3, 3, 7, 5};
  net.setup(input);
  randomise_batch_norms(net, 3);
  REQUIRE(net.fused_into(net.index_of("add")) == net.index_of("t"));
  const Both b = eval_both(net, test::random_tensor(input, DType::F32, 9));
  CHECK(net.fused(net.index_of("t")));
  CHECK(scaled_diff(b.on, b.off) <= 1e-5);
  // The add wrote onto r0, its shortcut, from bt's own storage, which holds the batch norm's output.
  CHECK_FALSE(net.output_written(net.index_of("r0")));
  REQUIRE(net.output_written(net.index_of("bt")));
  const Tensor bt = net.output("bt").clone();
  net.set_in_place(false);  // every output its own
  net.forward(test::random_tensor(input, DType::F32, 9));
  CHECK(scaled_diff(bt, net.output("bt")) <= 1e-5);
}

// Average poolings before pointwise convolutions (nets/eval_fusion.h): p1 (counting the padding, as
// Inception's) and p2 (not counting it) commute into their runs; p3 (stride 2: another size), p4 (its
// convolution has a bias), p5 (read twice) and p6 (its convolution is 3x3) do not.
const char* kPoolNet = R"(name: pools
input: [32, 9, 9]
features:
  - {name: p1, type: avgpool, kernel_size: 3, stride: 1, padding: 1}
  - {name: c1, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b1, type: batchnorm}
  - {name: r1, type: relu}
  - {name: p2, type: avgpool, kernel_size: 3, stride: 1, padding: 1, count_include_pad: false, inputs: input}
  - {name: c2, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b2, type: batchnorm}
  - {name: p3, type: avgpool, kernel_size: 3, stride: 2, padding: 1, inputs: input}
  - {name: c3, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b3, type: batchnorm}
  - {name: r3, type: relu}
  - {name: p4, type: avgpool, kernel_size: 3, stride: 1, padding: 1, inputs: input}
  - {name: c4, type: conv, out_channels: 16, kernel_size: 1}
  - {name: b4, type: batchnorm}
  - {name: p5, type: avgpool, kernel_size: 3, stride: 1, padding: 1, inputs: input}
  - {name: c5, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: b5, type: batchnorm}
  - {name: p6, type: avgpool, kernel_size: 3, stride: 1, padding: 1, inputs: input}
  - {name: c6, type: conv, out_channels: 16, kernel_size: 3, padding: 1, bias: false}
  - {name: b6, type: batchnorm}
  - {name: r6, type: relu}
  - {name: cat, type: concat, inputs: [r1, b2, b4, b5, r6, p5]}
  - {name: s, type: avgpool, kernel_size: 2, stride: 2, padding: 1}
  - {name: cat2, type: concat, inputs: [s, r3]}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)";

TEST_CASE("eval fusion: an average pooling before a pointwise convolution runs after it, on its output channels") {
  ModeGuard guard;
  for (LayoutMode mode : {LayoutMode::Off, LayoutMode::Auto}) {
    set_layout_mode(mode);
    const char* layouts = mode == LayoutMode::Off ? "NCHW" : "default layouts";
    INFO(layouts);
    Net net(parse_net(kPoolNet, "pools.yaml"));
    net.setup(Shape{2, 32, 9, 9});
    randomise_batch_norms(net, 7);
    const Tensor x = test::random_tensor({2, 32, 9, 9}, DType::F32, 13);
    const Both b = eval_both(net, x);
    CHECK(scaled_diff(b.on, b.off) <= 1e-5);
    // The layers' outputs too: r1 and b2 come from the commuted runs (after the ReLU and without one).
    const std::vector<std::string> kept = {"r1", "b2", "r3", "b4", "b5", "r6", "p5"};
    std::vector<Tensor> fused_outputs;
    for (const std::string& name : kept) fused_outputs.push_back(ops::to_nchw(net.output(name)).clone());
    for (const char* pool : {"p1", "p2"}) {
      CHECK(net.fused_into(net.index_of(pool)) == net.index_of(pool) + 1);
      CHECK(net.fused(net.index_of(pool)));
      CHECK(net.folded(net.index_of(pool)));
      CHECK_THROWS_WITH_AS(net.output(pool), doctest::Contains("is not kept"), Error);  // nets/commuted_pooling.h
    }
    for (const char* pool : {"p3", "p4", "p5", "p6"}) {
      CHECK(net.fused_into(net.index_of(pool)) == -1);
      CHECK(!net.folded(net.index_of(pool)));
      CHECK(net.output(pool).defined());
    }
    for (const char* conv : {"c1", "c2", "c3", "c4", "c5", "c6"}) CHECK(net.fused(net.index_of(conv)));
    CHECK(net.folded(net.index_of("b1")));
    CHECK(!net.folded(net.index_of("c1")));
    net.set_eval_fusion(false);
    net.forward(x);
    for (size_t k = 0; k < kept.size(); ++k) {
      INFO(kept[k]);
      CHECK(scaled_diff(fused_outputs[k], ops::to_nchw(net.output(kept[k]))) <= 1e-5);
    }
  }
}

TEST_CASE("eval fusion: resnet18 and inception_v3 eval logits equal the unfused ones") {
  ModeGuard guard;
  for (LayoutMode mode : {LayoutMode::Off, LayoutMode::Auto}) {
    set_layout_mode(mode);
    for (const auto& [name, input] : {std::pair<std::string, Shape>{"resnet18", Shape{2, 3, 64, 64}},
                                      std::pair<std::string, Shape>{"inception_v3", Shape{1, 3, 80, 80}}}) {
      Net net(load_net(resolve_net_path(name)));
      net.setup(input);
      randomise_batch_norms(net, 5);
      const Both b = eval_both(net, test::random_tensor(input, DType::F32, 11));
      const char* layouts = mode == LayoutMode::Off ? " NCHW" : " default layouts";
      INFO(name, layouts, ": ", b.fused, " convolutions fused");
      CHECK(b.fused >= 10);
      CHECK(scaled_diff(b.on, b.off) <= 1e-5);
    }
  }
}

TEST_CASE("eval fusion: the folded map follows an SGD step and a weights load (nothing goes stale)") {
  Net net(parse_net(kNet, "fuse.yaml"));
  const Shape input{2, 3, 12, 12};
  net.setup(input);
  randomise_batch_norms(net, 3);
  const Tensor x = test::random_tensor({2, 3, 12, 12}, DType::F32, 9);
  Both first = eval_both(net, x);
  CHECK(first.fused > 0);
  // A training step: new running statistics (training forward) and new weights and batch-norm parameters.
  std::vector<NamedParameter> params;
  for (NetParameter& p : net.parameters()) params.push_back({p.name, p.parameter});
  ParamGroup group;
  group.name = "all";
  group.params = params;
  group.base_lr = group.lr = 0.5;
  SGD sgd({group});
  net.set_training(true);
  net.zero_grad();
  net.forward(x);
  net.backward(test::random_tensor({2, 5}, DType::F32, 4));
  sgd.step();
  net.set_training(false);
  const Tensor stepped = net.forward(x).clone();
  CHECK(net.fused(net.index_of("c1")));
  CHECK(scaled_diff(stepped, first.on) > 1e-2);  // the step changed the result
  net.set_eval_fusion(false);
  CHECK(scaled_diff(stepped, net.forward(x)) <= 1e-5);
  // Loading another net's weights while in evaluation mode.
  const auto dir = test::temp_dir("eval_fusion");
  Net other = other_net_saved(dir, 77, 40);
  net.set_eval_fusion(true);
  load_weights(net, (dir / "other.safetensors").string());
  const Tensor loaded = net.forward(x).clone();
  CHECK(net.fused(net.index_of("c4")));
  CHECK(scaled_diff(loaded, stepped) > 1e-2);
  other.set_training(false);
  CHECK(scaled_diff(loaded, other.forward(x)) <= 1e-5);
  std::filesystem::remove_all(dir);
}

TEST_CASE("eval fusion: off with in-place execution off (every output kept), in bfloat16 precision and float64") {
  Net net(parse_net(kNet, "fuse.yaml"));
  net.setup(Shape{2, 3, 12, 12});
  randomise_batch_norms(net, 3);
  const Tensor x = test::random_tensor({2, 3, 12, 12}, DType::F32, 9);
  net.set_training(false);
  const Tensor fused = net.forward(x).clone();
  net.set_in_place(false);
  const Tensor kept = net.forward(x).clone();
  for (int i = 0; i < net.size(); ++i) CHECK(!net.fused(i));
  CHECK(net.fused_into(net.index_of("b1")) == -1);
  CHECK(scaled_diff(kept, fused) <= 1e-5);
  // c1's own output, and b1's before the ReLU, are there.
  const std::vector<double> pre = ops::to_nchw(net.output("b1")).to_vector();
  CHECK(std::any_of(pre.begin(), pre.end(), [](double v) { return v < 0; }));
  CHECK(scaled_diff(net.output("c1"), net.output("b1")) > 1e-2);
  // A convolution in bfloat16 precision does not fuse (it keeps its own kernels).
  Layer& c1 = net.layer(net.index_of("c1"));
  Tensor scale = Tensor::zeros(Shape{16}, DType::F32), shift = Tensor::zeros(Shape{16}, DType::F32);
  c1.set_precision(Precision::BFloat16);
  CHECK(!c1.forward_affine({x}, {net.output("c1")}, scale, shift, true));
  c1.set_precision(Precision::Float32);
  CHECK(c1.forward_affine({x}, {net.output("c1")}, scale, shift, true));  // scale 0: the output is 0
  const std::vector<double> zero = ops::to_nchw(net.output("c1")).to_vector();
  CHECK(std::all_of(zero.begin(), zero.end(), [](double v) { return v == 0; }));
  // Nor does a float64 net.
  Net f64(parse_net(kNet, "fuse.yaml"));
  f64.setup(Shape{2, 3, 12, 12}, DType::F64);
  f64.set_training(false);
  f64.forward(test::random_tensor({2, 3, 12, 12}, DType::F64, 9));
  for (int i = 0; i < f64.size(); ++i) CHECK(!f64.fused(i));
}

TEST_CASE("eval fusion: training is untouched and a backward after a fused forward sees the unfused one") {
  const Tensor x = test::random_tensor({2, 3, 12, 12}, DType::F32, 9), dy = test::random_tensor({2, 5}, DType::F32, 4);
  // Per pass: the output and every parameter gradient.
  auto pass = [&](bool training, bool fusion) {
    Net net(parse_net(kNet, "fuse.yaml"));
    net.setup(Shape{2, 3, 12, 12});
    randomise_batch_norms(net, 3);
    net.set_training(training);
    net.set_eval_fusion(fusion);
    std::vector<std::vector<double>> out{net.forward(x).to_vector()};
    int fused = 0;
    for (int i = 0; i < net.size(); ++i) fused += net.fused(i);
    CHECK(fused == (!training && fusion ? 4 : 0));
    net.zero_grad();
    net.backward(dy);
    for (NetParameter& p : net.parameters()) out.push_back(p.parameter->grad.to_vector());
    return out;
  };
  CHECK(pass(true, true) == pass(true, false));  // bit for bit
  const auto fused = pass(false, true), unfused = pass(false, false);
  REQUIRE(fused.size() == unfused.size());
  for (size_t k = 1; k < fused.size(); ++k) CHECK(fused[k] == unfused[k]);  // the gradients: bit for bit
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("eval fusion: a backward after a fused forward, training turned on since, moves no running statistics") {
  const Tensor x = test::random_tensor({2, 3, 12, 12}, DType::F32, 9), dy = test::random_tensor({2, 5}, DType::F32, 4);
  auto pass = [&](bool fusion) {
    Net net(parse_net(kNet, "fuse.yaml"));
    net.setup(Shape{2, 3, 12, 12});
    randomise_batch_norms(net, 3);
    net.set_eval_fusion(fusion);
    net.set_training(false);
    net.forward(x);
    CHECK(net.fused(net.index_of("c1")) == fusion);
    net.set_training(true);
    net.zero_grad();
    net.backward(dy);
    std::vector<std::vector<double>> out;
    for (NamedTensor& t : net.state()) out.push_back(t.tensor.to_vector());  // running statistics included
    for (NetParameter& p : net.parameters()) out.push_back(p.parameter->grad.to_vector());
    return out;
  };
  CHECK(pass(true) == pass(false));  // bit for bit
}

}  // TEST_SUITE

TEST_SUITE("unit") {

// Fixed weights (Net::set_weights_fixed): the fused convolutions keep their scaled weights and folded bias
// between forwards, made again when a batch norm's statistics move, when fixed again, after a new setup or
// a weights load; never in training.
TEST_CASE("eval fusion: fixed weights keep the prepared weights between forwards, only while fixed") {
  Net net(parse_net(kNet, "fuse.yaml"));
  net.setup(Shape{2, 3, 12, 12});
  randomise_batch_norms(net, 3);
  const Tensor x = test::random_tensor({2, 3, 12, 12}, DType::F32, 9);
  net.set_training(false);
  const auto forward = [&] { return net.forward(x).to_vector(); };
  const std::vector<double> prepared_each_time = forward();
  Tensor w1 = net.layer(net.index_of("c1")).parameter("weight").value;
  {
    const FixedWeights fixed(net);
    CHECK(net.weights_fixed());
    CHECK(forward() == prepared_each_time);  // bit for bit: the same operands
    CHECK(forward() == prepared_each_time);  // the second forward runs from the kept ones
    CHECK(net.fused(net.index_of("c1")));
    // The contract: a weight changed while fixed is not seen (what was prepared is used)...
    scale_by(w1, 2.0);
    CHECK(forward() == prepared_each_time);
    // ...but a batch norm's statistics are compared at each forward: c1's run is prepared again, from the
    // weights as they are now.
    scale_by(net.layer(net.index_of("b1")).buffer("running_var").value, 1.5);
    const std::vector<double> moved = forward();
    CHECK(moved != prepared_each_time);
    net.set_weights_fixed(false);
    CHECK(forward() == moved);
    // Fixed again: prepared from the current weights.
    scale_by(net.layer(net.index_of("c4")).parameter("weight").value, 0.5);
    const std::vector<double> unfixed = forward();
    net.set_weights_fixed(true);
    CHECK(forward() == unfixed);
    CHECK(forward() == unfixed);
    // Another batch size sets the net up again: prepared for that problem.
    const Tensor x3 = test::random_tensor({3, 3, 12, 12}, DType::F32, 10);
    net.setup(x3.shape());
    const std::vector<double> three = net.forward(x3).to_vector();
    CHECK(net.weights_fixed());
    net.set_weights_fixed(false);
    CHECK(net.forward(x3).to_vector() == three);
    net.set_weights_fixed(true);
  }
  CHECK(!net.weights_fixed());  // the scope's end turns it off
  // Loading weights drops what was prepared, fixed or not.
  const auto dir = test::temp_dir("fixed_weights");
  Net other = other_net_saved(dir, 78, 50);
  net.setup(x.shape());
  net.set_weights_fixed(true);
  net.forward(x);
  load_weights(net, (dir / "other.safetensors").string());
  CHECK(net.weights_fixed());
  const std::vector<double> loaded = forward();
  other.set_training(false);
  CHECK(scaled_diff(net.forward(x), other.forward(x)) <= 1e-5);
  net.set_weights_fixed(false);
  CHECK(forward() == loaded);
  std::filesystem::remove_all(dir);
  net.set_weights_fixed(true);
  net.set_training(true);
  CHECK(!net.weights_fixed());  // so does training
}

TEST_CASE("eval fusion: conv2d_forward_affine prepares again for other weights, scale or shift") {
  const Tensor x = test::random_tensor({2, 8, 9, 9}, DType::F32, 1);
  const Tensor w = test::random_tensor({16, 8, 3, 3}, DType::F32, 2), b = test::random_tensor({16}, DType::F32, 3);
  const Tensor scale = test::random_tensor({16}, DType::F32, 4, 0.5, 2), shift = test::random_tensor({16}, DType::F32, 5);
  ops::Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  const auto run = [&](const Tensor& weight, const Tensor& s, const Tensor& t, ops::PreparedConv* kept) {
    Tensor y = Tensor::empty(Shape{2, 16, 9, 9}, DType::F32);
    REQUIRE(ops::conv2d_forward_affine(x, weight, b, y, p, s, t, true, kept));
    return y.to_vector();
  };
  ops::PreparedConv kept;
  const std::vector<double> base = run(w, scale, shift, nullptr);
  CHECK(run(w, scale, shift, &kept) == base);
  CHECK(kept.weights.plan != nullptr);
  CHECK(run(w, scale, shift, &kept) == base);
  const Tensor w2 = w.clone();  // other storage, other values
  scale_by(w2, -1.0);
  CHECK(run(w2, scale, shift, &kept) == run(w2, scale, shift, nullptr));
  const Tensor s2 = scale.clone(), t2 = shift.clone();
  scale_by(s2, 0.5);
  scale_by(t2, 3.0);
  CHECK(run(w2, s2, shift, &kept) == run(w2, s2, shift, nullptr));
  CHECK(run(w2, s2, t2, &kept) == run(w2, s2, t2, nullptr));
  CHECK(run(w2, s2, t2, &kept) != run(w, s2, t2, nullptr));
}

}  // TEST_SUITE
