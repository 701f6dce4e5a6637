// Gradients added as they are computed (Net::set_grad_adding, Layer::can_add_input_grad): a pointwise
// convolution that reads an input other layers read too adds its input gradient to what they wrote, in its
// kernel's pass, instead of writing a scratch buffer added after. The steps equal the scratch route's
// (float32 within 1e-5 relative: the kernel sums in its own order), with freed buffers poisoned; the scratch
// buffers are gone from the plan; only float32 kernel layouts take it.
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

// r0 is read by c1 (pointwise, first: it adds), c2 (3x3: scratch and a pass), c3 (pointwise with a
// stride: scratch) and the add (last: writes r0's gradient). r1 is read by c4 (pointwise, adds) and c5
// (pointwise, last: writes).
const char* kNet = R"(name: adding
input: [16, 9, 9]
features:
  - {name: c0, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - {name: b0, type: batchnorm}
  - {name: r0, type: relu}
  - {name: c1, type: conv, out_channels: 16, kernel_size: 1, bias: false}
  - {name: c2, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false, inputs: r0}
  - {name: c3, type: conv, out_channels: 16, kernel_size: 1, stride: 2, bias: false, inputs: r0}
  - {name: b1, type: batchnorm, inputs: c2}
  - {name: add, type: add, inputs: [b1, r0]}
  - {name: r1, type: relu}
  - {name: c4, type: conv, out_channels: 48, kernel_size: 1, bias: false}
  - {name: c5, type: conv, out_channels: 32, kernel_size: 1, bias: true, inputs: r1}
  - {name: cat, type: concat, inputs: [c1, c4, c5]}
  - {name: s, type: avgpool, kernel_size: 3, stride: 2, padding: 1}
  - {name: cat2, type: concat, inputs: [s, c3]}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)";

// Two training steps and an evaluation forward and backward (L = sum(w * logits)): the logits and every
// parameter gradient of each, then every parameter and buffer.
std::vector<Tensor> steps(Net& net, const Tensor& x, const Tensor& w) {
  std::vector<Tensor> results;
  for (bool training : {true, true, false}) {
    net.set_training(training);
    net.zero_grad();
    results.push_back(net.forward(x).clone());
    net.backward(w);
    for (NetParameter& p : net.parameters()) results.push_back(p.parameter->grad.clone());
  }
  for (const NamedTensor& t : net.state()) results.push_back(t.tensor.clone());
  return results;
}

std::vector<std::string> adding_layers(const Net& net) {
  std::vector<std::string> names;
  for (int i = 0; i < net.size(); ++i)
    if (net.adds_grad(i, 0)) names.push_back(net.layer_spec(i).name);
  return names;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("gradient adding: pointwise convolutions add their input gradients in their pass, as the scratch route") {
  test::LayoutModeGuard guard;
  set_layout_mode(LayoutMode::Auto);
  for (bool poison : {false, true}) {
    for (bool in_place : {true, false}) {
      INFO("poison ", poison, ", in place ", in_place);
      const Shape shape{3, 16, 9, 9};
      Net adding(parse_net(kNet, "adding.yaml")), scratch(parse_net(kNet, "adding.yaml"));
      scratch.set_grad_adding(false);
      for (Net* net : {&adding, &scratch}) {
        net->set_memory_debug({poison, false});
        net->set_in_place(in_place);
        net->setup(shape);
      }
      CHECK(adding_layers(adding) == std::vector<std::string>{"c1", "c4"});
      CHECK(adding_layers(scratch).empty());
      // Two scratch buffers fewer: r0's (32 channels) and r1's (32), where they do not share storage.
      const double image = 9 * 9 * 3 * 4.0;
      if (!in_place)
        CHECK(scratch.memory_plan().activation_grads - adding.memory_plan().activation_grads == doctest::Approx(2 * 32 * image));
      else
        CHECK(scratch.memory_plan().activation_grads >= adding.memory_plan().activation_grads);
      std::vector<NamedTensor> from = adding.state(), to = scratch.state();
      for (size_t k = 0; k < from.size(); ++k) to[k].tensor.copy_from(from[k].tensor);
      const Tensor x = test::random_tensor(shape, DType::F32, 3), w = test::random_tensor({3, 5}, DType::F32, 4);
      const std::vector<Tensor> a = steps(adding, x, w), b = steps(scratch, x, w);
      REQUIRE(a.size() == b.size());
      for (size_t k = 0; k < a.size(); ++k) {
        CAPTURE(k);
        CHECK(scaled_diff(ops::to_nchw(a[k]), ops::to_nchw(b[k])) <= 1e-5);
      }
    }
  }
}

TEST_CASE("gradient adding: only float32 kernel layouts take it, and resnet50 adds at every block first convolution") {
  test::LayoutModeGuard guard;
  set_layout_mode(LayoutMode::Off);  // NCHW: the oneDNN route would reorder, so no adding
  Net net(parse_net(kNet, "adding.yaml"));
  net.setup(Shape{2, 16, 9, 9});
  CHECK(adding_layers(net).empty());
  set_layout_mode(LayoutMode::Auto);
  Net f64(parse_net(kNet, "adding.yaml"));
  f64.setup(Shape{2, 16, 9, 9}, DType::F64);  // float64 keeps NCHW and im2col
  CHECK(adding_layers(f64).empty());
  Net mixed(parse_net(kNet, "adding.yaml"));
  mixed.set_precision(Precision::BFloat16);
  mixed.setup(Shape{2, 16, 9, 9});
  CHECK(adding_layers(mixed).empty());
  mixed.set_precision(Precision::Float32);  // sets up again
  CHECK(adding_layers(mixed) == std::vector<std::string>{"c1", "c4"});

  Net resnet(load_net(resolve_net_path("resnet50")));
  resnet.setup(Shape{1, 3, 64, 64});
  std::vector<std::string> expected;
  for (const auto& [stage, blocks] : std::vector<std::pair<int, int>>{{1, 3}, {2, 4}, {3, 6}, {4, 3}})
    for (int b = 0; b < blocks; ++b) expected.push_back(str("layer", stage, ".", b, ".conv1"));
  CHECK(adding_layers(resnet) == expected);
}

}  // TEST_SUITE
