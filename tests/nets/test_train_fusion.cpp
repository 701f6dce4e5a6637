// Batch norm + ReLU fusion (nets/train_fusion.h): a net with its ReLUs run inside their batch norms and
// residual adds, and its residual adds run inside the batch norms before them, gives the unfused net's logits,
// parameter gradients and running statistics bit for bit, in float32 and in bfloat16 precision, in the kernel
// layouts and in NCHW, with recomputed chains (a DenseNet), with freed buffers poisoned, and in evaluation.
#include <cmath>
#include <cstring>
#include <utility>

#include "nets/model.h"
#include "nets/net.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

NetSpec spec_of(const std::string& name) {
  return name == "resnet18" ? load_net(resolve_net_path(name)) : parse_net(test::small_densenet_yaml(3, 2), "small_densenet.yaml");
}

std::vector<unsigned char> bytes_of(const Tensor& t) {
  std::vector<unsigned char> out(t.nbytes());
  std::memcpy(out.data(), t.raw(), out.size());
  return out;
}

// Two training steps' logits and gradients (L = sum(w * logits)), then an evaluation forward and backward,
// then every parameter and buffer (running statistics, num_batches_tracked) and parameter gradient.
std::vector<std::vector<unsigned char>> steps(Net& net, const Tensor& x, const Tensor& w) {
  std::vector<std::vector<unsigned char>> out;
  for (bool training : {true, true, false}) {
    net.set_training(training);
    net.zero_grad();
    out.push_back(bytes_of(net.forward(x)));
    net.backward(w);
    for (NetParameter& p : net.parameters()) out.push_back(bytes_of(p.parameter->grad));
  }
  for (const NamedTensor& t : net.state()) out.push_back(bytes_of(t.tensor));
  return out;
}

int fused_pairs(const Net& net) {
  int pairs = 0;
  for (int i = 0; i < net.size(); ++i) pairs += net.relu_fused_into(i) >= 0;
  return pairs;
}

// Adds (with their ReLUs) run by the batch norm before them in training.
int fused_adds(const Net& net) {
  int adds = 0;
  for (int i = 0; i < net.size(); ++i) adds += net.add_fused_into(i) >= 0;
  return adds;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("train fusion: batch norm + ReLU fused gives the unfused net's steps bit for bit (resnet18, DenseNet)") {
  test::LayoutModeGuard guard;
  // resnet18 also in NCHW (the NCHW batch norm kernel; the kernel layouts run the blocked ones).
  for (const auto& [name, layouts] : {std::pair<std::string, LayoutMode>{"resnet18", LayoutMode::Auto},
                                      {"resnet18", LayoutMode::Off}, {"small_densenet", LayoutMode::Auto}}) {
    set_layout_mode(layouts);
    for (Precision precision : {Precision::Float32, Precision::BFloat16}) {
      for (bool poison : {false, true}) {
        if (layouts == LayoutMode::Off && poison) continue;
        INFO(name, ", ", std::string(precision_name(precision)), ", poison ", poison, ", layout mode ",
             static_cast<int>(layouts));
        const Shape shape = name == "resnet18" ? Shape{2, 3, 64, 64} : Shape{2, 3, 16, 16};
        Net fused(spec_of(name)), plain(spec_of(name));
        plain.set_train_fusion(false);
        for (Net* net : {&fused, &plain}) {
          net->set_precision(precision);
          net->set_memory_debug({poison, false});
          net->setup(shape);
        }
        // resnet18: the stem's ReLU, every block's first (after a batch norm) and its last (after the add);
        // the DenseNet: all.
        CHECK(fused_pairs(fused) == (name == "resnet18" ? 17 : 11));
        if (name == "resnet18")
          CHECK(fused.relu_fused_into(fused.index_of("layer2.0.relu")) == fused.index_of("layer2.0.add"));
        CHECK(fused_pairs(plain) == 0);
        // resnet18's eight adds: run by the block's last batch norm, or by the shortcut's where there is one
        // (the add's later input).
        CHECK(fused_adds(fused) == (name == "resnet18" ? 8 : 0));
        CHECK(fused_adds(plain) == 0);
        if (name == "resnet18") {
          CHECK(fused.add_fused_into(fused.index_of("layer1.1.add")) == fused.index_of("layer1.1.bn2"));
          CHECK(fused.add_fused_into(fused.index_of("layer2.0.add")) == fused.index_of("layer2.0.downsample.1"));
        }
        if (name == "small_densenet") {  // the chains' ReLUs are fused, recomputed by their batch norms
          const int relu = fused.index_of("block1.denselayer2.relu1");
          CHECK(fused.shares_storage(relu));
          CHECK(fused.relu_fused_into(relu) == fused.index_of("block1.denselayer2.norm1"));
        }
        const Tensor x = test::random_tensor(shape, DType::F32, 3);
        const Tensor w = test::random_tensor(fused.output_shape(fused.size() - 1), DType::F32, 4);
        const auto a = steps(fused, x, w), b = steps(plain, x, w);
        REQUIRE(a.size() == b.size());
        for (size_t k = 0; k < a.size(); ++k) {
          INFO("tensor ", k);
          CHECK(a[k] == b[k]);
        }
        // The values are live: finite logits that vary.
        const std::vector<double> logits = fused.forward(x).to_vector();
        for (double v : logits) REQUIRE(std::isfinite(v));
        CHECK(logits[0] != logits[1]);
      }
    }
  }
}

TEST_CASE("train fusion: off without in-place execution, on the float64 net, and when turned off") {
  Net net(spec_of("resnet18"));
  net.setup(Shape{1, 3, 32, 32});
  CHECK(fused_pairs(net) == 17);
  CHECK(fused_adds(net) == 8);
  net.set_in_place(false);  // extract keeps every layer's output: nothing runs in place, nothing fuses
  CHECK(fused_pairs(net) == 0);
  CHECK(fused_adds(net) == 0);
  net.set_in_place(true);
  CHECK(fused_pairs(net) == 17);
  CHECK(fused_adds(net) == 8);
  net.set_train_fusion(false);
  CHECK(fused_pairs(net) == 0);
  CHECK(fused_adds(net) == 0);
  net.set_train_fusion(true);
  CHECK(fused_pairs(net) == 17);
  CHECK(fused_adds(net) == 8);
  // A training forward leaves a shortcut batch norm's own output unwritten (it wrote the add's): refused.
  net.setup(Shape{2, 3, 32, 32});
  net.set_training(true);
  net.forward(test::random_tensor(Shape{2, 3, 32, 32}, DType::F32, 5));
  CHECK_THROWS_WITH_AS(net.output("layer2.0.downsample.1"), doctest::Contains("layer2.0.add"), Error);
  CHECK(!net.output_written(net.index_of("layer2.0.downsample.1")));
  CHECK(net.output_written(net.index_of("layer2.0.conv1")));
  CHECK(net.output("layer1.1.bn2").same_storage(net.output("layer1.1.add")));  // in place: the add's output
  Net f64(spec_of("resnet18"));
  f64.setup(Shape{1, 3, 32, 32}, DType::F64);
  CHECK(fused_pairs(f64) == 0);
  CHECK(fused_adds(f64) == 0);
}

}  // TEST_SUITE
