// The buffer plan of Net::setup for a training step: outputs, gradients and scratch buffers shared by
// lifetime must change no output or gradient (bit for bit, against the plan off and with every freed
// buffer poisoned with NaN), poisoning must catch a buffer reused while live, and resnet50's plan stays
// below a stated bound.
#include <cmath>

#include "nets/inspect.h"
#include "nets/net.h"
#include "nets/model.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

// The logits and every parameter gradient of L = sum(w * logits) after one forward and backward.
std::vector<std::vector<double>> run(Net& net, const Tensor& x, const Tensor& w) {
  net.zero_grad();
  std::vector<std::vector<double>> out{net.forward(x).to_vector()};
  net.backward(w);
  for (NetParameter& p : net.parameters()) out.push_back(p.parameter->grad.to_vector());
  return out;
}

bool finite(const std::vector<std::vector<double>>& values) {
  for (const auto& v : values)
    for (double e : v)
      if (!std::isfinite(e)) return false;
  return true;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("buffer plan: outputs and gradients bit for bit with the plan off and with freed buffers poisoned") {
  // Fan-out to an add (resnet18), to many concatenations and recomputed chains (a DenseNet); in bfloat16
  // most buffers hold bfloat16 activations (docs/layouts.md), shared by lifetime with float32 ones.
  for (const Precision precision : {Precision::Float32, Precision::BFloat16}) {
    for (const std::string name : {"resnet18", "small_densenet"}) {
      INFO(name, " ", precision_name(precision));
      Net net(name == "resnet18" ? load_net(resolve_net_path(name)) : parse_net(test::small_densenet_yaml(4, 3), "small_densenet.yaml"));
      const Shape shape{2, 3, 32, 32};
      net.set_precision(precision);
      net.setup(shape);
      const Tensor x = test::random_tensor(shape, DType::F32, 3);
      const Tensor w = test::random_tensor(net.output_shape(net.size() - 1), DType::F32, 4);
      const std::vector<std::vector<double>> planned = run(net, x, w);
      CHECK(finite(planned));
      net.set_memory_debug({true, false});
      CHECK(run(net, x, w) == planned);
      net.set_memory_debug({});
      net.set_in_place(false);  // every output, gradient and scratch buffer its own storage
      CHECK(run(net, x, w) == planned);
    }
  }
}

TEST_CASE("buffer plan: poisoning catches a gradient buffer reused while it is still read") {
  Net net(load_net(resolve_net_path("resnet18")));
  const Shape shape{2, 3, 32, 32};
  net.setup(shape);
  const Tensor x = test::random_tensor(shape, DType::F32, 3), w = test::random_tensor(Shape{2, 1000}, DType::F32, 4);
  const std::vector<std::vector<double>> right = run(net, x, w);
  net.set_memory_debug({true, true});  // the fault: every gradient's life one layer too short
  CHECK(!finite(run(net, x, w)));
  // Without poison this fault happens to leave the gradients right here (a buffer is overwritten only
  // after its last read, or with equal values): poisoning is what makes it visible.
  net.set_memory_debug({});
  CHECK(run(net, x, w) == right);
}

TEST_CASE("buffer plan: resnet50's training step at batch 8 plans at most 1.1 GiB") {
  Net net(load_net(resolve_net_path("resnet50")));
  net.setup(Shape{8, 3, 224, 224});  // allocates without touching the pages
  const MemoryPlan plan = net.memory_plan();
  INFO("parameters ", plan.parameters, " activations ", plan.activations, " gradients ", plan.activation_grads);
  double state = 0;
  for (const NamedTensor& t : net.state()) state += static_cast<double>(t.tensor.nbytes());
  CHECK(plan.parameters == state);
  CHECK(plan.parameter_grads == 25557032 * 4.0);
  CHECK(plan.total() + plan.parameter_grads <= 1.1 * 1024 * 1024 * 1024);  // 1051 MiB now
  CHECK(plan.activations <= 700.0 * 1024 * 1024);                         // 685 MiB: adds over the batch norms
  CHECK(plan.activation_grads <= 80.0 * 1024 * 1024);
}

TEST_CASE("buffer plan: in bfloat16 resnet50 stores its kernel-layout activations and gradients in half the memory") {
  test::LayoutModeGuard guard;
  set_layout_mode(LayoutMode::Auto);
  Net net(load_net(resolve_net_path("resnet50")));
  net.setup(Shape{8, 3, 224, 224});
  const MemoryPlan f32 = net.memory_plan();
  net.set_precision(Precision::BFloat16);  // sets the net up again: new types, new buffers
  const MemoryPlan bf16 = net.memory_plan();
  INFO("float32: activations ", f32.activations, " gradients ", f32.activation_grads, "; bfloat16: ", bf16.activations,
       " ", bf16.activation_grads);
  CHECK(bf16.parameters == f32.parameters);  // parameters, their gradients and SGD's state stay float32
  CHECK(bf16.parameter_grads == f32.parameter_grads);
  // Everything from conv1 to the pooling is in NHWC, so in bfloat16: all but the input and the logits.
  CHECK(bf16.activations <= 0.51 * f32.activations);
  CHECK(bf16.activation_grads <= 0.51 * f32.activation_grads);
  CHECK(net.output_dtype(net.index_of("layer1.0.conv1")) == DType::BF16);
  CHECK(net.output(std::string("layer4.2.relu")).dtype() == DType::BF16);
  CHECK(net.output_dtype(net.index_of("avgpool")) == DType::F32);  // global pooling writes float32 (N, C)
  CHECK(net.output_dtype(net.index_of("fc")) == DType::F32);
  set_layout_mode(LayoutMode::Off);  // no kernel layouts, nothing in bfloat16
  net.setup(Shape{8, 3, 224, 224});
  CHECK(net.memory_plan().activations == f32.activations);
}

TEST_CASE("buffer plan: a branch nothing reads on the way to the output gets zero gradients and changes no other") {
  // c1 (and its ReLU) read r0 but lead nowhere; d reads r0 after the others, so a plan that counted it
  // would leave r0's gradient to a backward that never runs. Its gradient must not reach r0: the other
  // gradients equal the net without the branch, bit for bit, with freed buffers poisoned too.
  const std::string head = R"(name: branch
input: [8, 9, 9]
features:
  - {name: c0, type: conv, out_channels: 16, kernel_size: 3, padding: 1}
  - {name: b0, type: batchnorm}
  - {name: r0, type: relu}
)";
  const std::string body = R"(  - {name: c2, type: conv, out_channels: 16, kernel_size: 1, inputs: r0}
  - {name: c3, type: conv, out_channels: 16, kernel_size: 3, padding: 1, inputs: r0}
)";
  const std::string tail = R"(  - {name: add, type: add, inputs: [c2, c3]}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)";
  const std::string branch = R"(  - {name: c1, type: conv, out_channels: 16, kernel_size: 1}
  - {name: r1, type: relu}
)";
  const std::string late = R"(  - {name: d, type: conv, out_channels: 4, kernel_size: 1, inputs: r0}
)";
  test::LayoutModeGuard guard;
  for (LayoutMode mode : {LayoutMode::Off, LayoutMode::Auto}) {
    for (bool poison : {false, true}) {
      set_layout_mode(mode);
      INFO("layout mode ", static_cast<int>(mode), ", poison ", poison);
      Net with(parse_net(head + branch + body + late + tail, "branch.yaml")), without(parse_net(head + body + tail, "plain.yaml"));
      const Shape shape{2, 8, 9, 9};
      for (Net* net : {&with, &without}) {
        net->set_memory_debug({poison, false});
        net->setup(shape);
      }
      std::vector<NamedTensor> from = without.state(), to = with.state();
      for (const NamedTensor& t : from)
        for (NamedTensor& u : to)
          if (u.name == t.name) u.tensor.copy_from(t.tensor);
      for (const char* name : {"c1", "r1", "d"}) CHECK(!with.reaches_output(with.index_of(name)));
      CHECK(with.reaches_output(with.index_of("r0")));
      CHECK(topology_table(with).find("unused: c1, r1, d (") != std::string::npos);
      CHECK(topology_table(without).find("unused") == std::string::npos);
      const Tensor x = test::random_tensor(shape, DType::F32, 3), w = test::random_tensor({2, 5}, DType::F32, 4);
      const std::vector<std::vector<double>> a = run(with, x, w), b = run(without, x, w);
      CHECK(a[0] == b[0]);  // the logits
      std::vector<NetParameter> pa = with.parameters(), pb = without.parameters();
      for (const NetParameter& p : pa) {
        CAPTURE(p.name);
        bool found = false;
        for (const NetParameter& q : pb)
          if (q.name == p.name) {
            found = true;
            CHECK(p.parameter->grad.to_vector() == q.parameter->grad.to_vector());
          }
        if (!found) {  // c1's and d's: nothing they compute reaches the loss
          zero_pending_grad(*p.parameter);
          for (double g : p.parameter->grad.to_vector()) CHECK(g == 0.0);
        }
      }
    }
  }
}

}  // TEST_SUITE
