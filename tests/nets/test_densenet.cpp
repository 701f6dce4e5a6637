// DenseNets: dense connectivity in net files (`dense: true`, `names_from`), the shared storage of the
// growing concatenations (recomputed for backward), the zoo's DenseNets (torchvision's names, the seed's
// split) and a DenseNet with MPN-COV training a step. The logits against torchvision are in test_zoo.cpp.
#include <algorithm>
#include <cmath>

#include "core/safetensors.h"
#include "core/text.h"
#include "nets/model.h"
#include "nets/net.h"
#include "nets/net_gradcheck.h"
#include "nets/weights.h"
#include "optim/sgd.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

const char* kSmallDenseNet = R"(name: small_densenet
input: [3, 12, 10]
blocks:
  layer:
    args: {growth: 3}
    layers:
      - {name: norm1, type: batchnorm}
      - {name: relu1, type: relu}
      - {name: conv1, type: conv, out_channels: 4, kernel_size: 1, bias: false, init: kaiming_normal}
      - {name: norm2, type: batchnorm}
      - {name: relu2, type: relu}
      - {name: conv2, type: conv, out_channels: $growth, kernel_size: 3, padding: 1, bias: false}
  transition:
    layers:
      - {name: norm, type: batchnorm}
      - {name: relu, type: relu}
      - {name: conv, type: conv, out_channels: 5, kernel_size: 1, bias: false}
      - {name: pool, type: avgpool, kernel_size: 2, stride: 2}
features:
  - {name: conv0, type: conv, out_channels: 4, kernel_size: 3, padding: 1, bias: false}
  - {name: block1, block: layer, repeat: 3, dense: true, names_from: denselayer1}
  - {name: transition1, block: transition}
  - {name: block2, block: layer, repeat: 2, dense: true, names_from: denselayer1, args: {growth: 2}}
  - {name: norm5, type: batchnorm}
  - {name: relu5, type: relu}
representation: {name: avgpool, type: gavp}
classifier:
  - {name: classifier, type: linear, out_features: 3}
)";

// L = sum(w * logits) for fixed w.
double loss(Net& net, const Tensor& x, const Tensor& w) {
  const std::vector<double> y = net.forward(x).to_vector(), wv = w.to_vector();
  double total = 0;
  for (size_t i = 0; i < y.size(); ++i) total += y[i] * wv[i];
  return total;
}

// Every parameter gradient of L after one forward and backward.
std::vector<std::vector<double>> gradients(Net& net, const Tensor& x, const Tensor& w) {
  net.zero_grad();
  loss(net, x, w);
  net.backward(w);
  std::vector<std::vector<double>> out;
  for (NetParameter& p : net.parameters()) out.push_back(p.parameter->grad.to_vector());
  return out;
}

std::string error_of(const std::string& features) {
  try {
    Net net(parse_net("name: x\nblocks: {b: {layers: [{type: relu}]}}\nfeatures:\n" + features, "bad.yaml"));
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("nets: dense: true feeds every repetition the concatenation of everything before it") {
  const NetSpec spec = parse_net(kSmallDenseNet, "small.yaml");
  const auto inputs = [&](const std::string& name) { return spec.layers[static_cast<size_t>(spec.find(name))].inputs; };
  CHECK(inputs("block1.denselayer1.norm1") == std::vector<std::string>{"conv0"});
  CHECK(inputs("block1.denselayer2.concat") == std::vector<std::string>{"conv0", "block1.denselayer1.conv2"});
  CHECK(inputs("block1.denselayer3.norm1") == std::vector<std::string>{"block1.denselayer3.concat"});
  CHECK(inputs("block1.concat") == std::vector<std::string>{"conv0", "block1.denselayer1.conv2", "block1.denselayer2.conv2",
                                                            "block1.denselayer3.conv2"});
  CHECK(inputs("transition1.norm") == std::vector<std::string>{"block1.concat"});
  CHECK(spec.find("block1.0.norm1") < 0);
  CHECK(spec.feature_children == 6);
  Net net(spec);
  net.setup(Shape({2, 3, 12, 10}));
  CHECK(net.output_shape(net.index_of("block1.concat")) == Shape({2, 13, 12, 10}));  // 4 + 3 x 3
  CHECK(net.output_shape(net.index_of("block2.concat")) == Shape({2, 9, 6, 5}));     // 5 + 2 x 2

  CHECK(error_of("  - {block: b, dense: true}\n").find("bad.yaml:4: 'dense' needs 'repeat'") != std::string::npos);
  CHECK(error_of("  - {block: b, repeat: 2, names_from: layer}\n").find("names_from must end with the first number") !=
        std::string::npos);
  CHECK(error_of("  - {block: b, repeat: 2, dense: maybe}\n").find("dense must be true or false") != std::string::npos);
  CHECK(error_of("  - {block: b, repeat: 2, dens: true}\n").find("did you mean 'dense'?") != std::string::npos);
}

TEST_CASE("net: concatenations, their batch norms and ReLUs live in shared storage, recomputed for backward - "
          "outputs, gradients and running statistics bit for bit as without, gradients equal finite differences") {
  Net net(parse_net(kSmallDenseNet, "small.yaml"));
  net.setup(Shape({2, 3, 12, 10}), DType::F64);
  // Chains: denselayer2/3's concat, norm1, relu1 in block1, denselayer2's in block2, and each block's
  // output concat with the batch norm and ReLU after it (transition1.norm/relu, norm5/relu5).
  std::vector<std::string> shared;
  for (int i = 0; i < net.size(); ++i)
    if (net.shares_storage(i)) shared.push_back(net.layer_spec(i).name);
  CHECK(shared.size() == 15);
  for (const char* name : {"block1.denselayer3.concat", "block1.denselayer3.norm1", "block1.denselayer3.relu1",
                           "block1.concat", "transition1.norm", "transition1.relu", "norm5", "relu5"})
    CHECK(std::find(shared.begin(), shared.end(), std::string(name)) != shared.end());
  CHECK(!net.shares_storage(net.index_of("block1.denselayer1.norm1")));  // reads conv0: no copy to redo
  CHECK(!net.shares_storage(net.index_of("block1.denselayer3.conv1")));  // the reader keeps its output
  CHECK(net.runs_in_place(net.index_of("block1.denselayer3.relu1")));
  // Two buffers (the concat's, the batch norm's, ReLU in place), each of the largest: 13 channels.
  CHECK(net.shared_bytes() == 2 * 2 * 13 * 12 * 10 * sizeof(double));
  const Tensor x = test::random_tensor({2, 3, 12, 10}, DType::F64, 7), w = test::random_tensor({2, 3}, DType::F64, 8);
  // Parameters and running statistics (float64); restore() puts back their values before the first pass.
  const auto values = [&] {
    std::vector<std::vector<double>> out;
    for (const NamedTensor& t : net.state())
      if (t.tensor.dtype() == DType::F64) out.push_back(t.tensor.to_vector());
    return out;
  };
  const std::vector<std::vector<double>> initial = values();
  const auto restore = [&] {
    size_t k = 0;
    for (NamedTensor& t : net.state())
      if (t.tensor.dtype() == DType::F64) t.tensor.copy_from(Tensor::from_vector(initial[k++], t.tensor.shape(), DType::F64));
  };
  const int bn = net.index_of("block1.denselayer3.norm1");
  const auto batches = [&] { return net.layer(bn).buffer("num_batches_tracked").value.item(); };
  for (bool training : {false, true}) {
    INFO("training ", training);
    net.set_training(training);
    restore();
    const double before = batches();
    const std::vector<std::vector<double>> with_sharing = gradients(net, x, w);
    CHECK(batches() == before + (training ? 1 : 0));  // recomputing counts no batch
    const std::vector<double> logits = net.output().to_vector();
    const std::vector<std::vector<double>> state = values();
    CHECK((state != initial) == training);  // the running statistics moved in training
    net.set_in_place(false);  // every layer keeps its own output
    CHECK(!net.shares_storage(net.index_of("block1.concat")));
    CHECK(net.shared_bytes() == 0);
    restore();
    const std::vector<std::vector<double>> without = gradients(net, x, w);
    CHECK(net.output().to_vector() == logits);
    CHECK(values() == state);  // moved once per forward: recomputing did not move them again
    net.set_in_place(true);
    CHECK(with_sharing == without);
  }
  // Against central differences (batch norm on running statistics: smooth), every 5th element.
  net.set_training(false);
  net.zero_grad();
  loss(net, x, w);
  net.backward(w);
  for (NetParameter& p : net.parameters()) {
    double* v = p.parameter->value.data<double>();
    const std::vector<double> grad = p.parameter->grad.to_vector();
    for (int64_t i = 0; i < p.parameter->value.numel(); i += 5) {
      const double keep = v[i];
      v[i] = keep + 1e-7;  // small: a ReLU input lies within 1e-6 of its kink here
      const double up = loss(net, x, w);
      v[i] = keep - 1e-7;
      const double down = loss(net, x, w);
      v[i] = keep;
      INFO(p.name, "[", i, "]");
      CHECK(std::abs((up - down) / 2e-7 - grad[static_cast<size_t>(i)]) <= 1e-6 * std::max(1.0, std::abs(grad[static_cast<size_t>(i)])));
    }
  }
}

TEST_CASE("zoo: the DenseNets have torchvision's names, the seed's split and 13 freezable feature items") {
  const struct { const char* name; const char* last; } nets[] = {{"densenet121", "features.denseblock4.denselayer16"},
                                                                 {"densenet161", "features.denseblock4.denselayer24"},
                                                                 {"densenet169", "features.denseblock4.denselayer32"},
                                                                 {"densenet201", "features.denseblock4.denselayer32"}};
  for (const auto& n : nets) {
    INFO(n.name);
    const NetSpec spec = load_net(resolve_net_path(n.name));
    CHECK(spec.feature_children == 13);  // conv0 norm0 relu0 pool0, 4 blocks, 3 transitions, norm5, last_relu
    CHECK(spec.find(str(n.last, ".conv2")) >= 0);
    CHECK(spec.find(str(n.last, ".concat")) >= 0);
    CHECK(spec.layers.back().name == "classifier");
  }
  // Parameters and buffers (the other nets' counts and names are checked against torchvision in test_zoo).
  Net net(load_net(resolve_net_path("densenet121")));
  net.setup(Shape({1, 3, 64, 64}));
  const int rep = net.index_of("avgpool");
  CHECK(net.layer_spec(rep).part == NetPart::Representation);
  CHECK(net.input_shapes(rep)[0] == Shape({1, 1024, 2, 2}));
  CHECK(net.layer_spec(rep - 1).name == "features.last_relu");
  std::vector<std::string> names;
  for (const NamedTensor& t : net.state()) names.push_back(t.name);
  for (const char* want : {"features.conv0.weight", "features.denseblock1.denselayer1.norm1.running_var",
                           "features.denseblock4.denselayer16.conv2.weight", "features.transition3.conv.weight",
                           "features.norm5.num_batches_tracked", "classifier.bias"})
    CHECK(std::find(names.begin(), names.end(), std::string(want)) != names.end());
  // torchvision's initialisation of the classifier: default (kaiming uniform) weight, bias 0.
  const int fc = net.index_of("classifier");
  const std::vector<double> bias = net.layer(fc).parameter("bias").value.to_vector();
  CHECK(std::all_of(bias.begin(), bias.end(), [](double b) { return b == 0; }));
  const std::vector<double> weight = net.layer(fc).parameter("weight").value.to_vector();
  const double bound = 1 / std::sqrt(1024.0);
  CHECK(std::all_of(weight.begin(), weight.end(), [&](double v) { return std::abs(v) <= bound; }));
  CHECK(*std::max_element(weight.begin(), weight.end()) > 0.9 * bound);
  net.freeze(12);  // everything but the final ReLU (which has no parameters)
  for (NetParameter& p : net.parameters()) CHECK(p.parameter->frozen == (p.part == NetPart::Features));
}

TEST_CASE("weights: torchvision's published DenseNet names (denselayer1.norm.1, conv.2) load as norm1, conv2") {
  const auto dir = test::temp_dir("densenet_old_names");
  Net a(parse_net(kSmallDenseNet, "small_densenet.yaml"));
  a.setup(Shape({2, 3, 12, 10}));
  std::vector<std::pair<std::string, Tensor>> old;  // as densenet121-a639ec97.pth names them, 'module.' too
  size_t renamed = 0;
  for (const NamedTensor& t : a.state()) {
    std::string name = t.name;
    for (const char* m : {"norm", "relu", "conv"})
      for (const char* k : {"1", "2"}) {
        const std::string now = str(".", m, k, "."), before = str(".", m, ".", k, ".");
        const size_t at = name.find(now);
        if (name.find("denselayer") != std::string::npos && at != std::string::npos) {
          name.replace(at, now.size(), before);
          ++renamed;
        }
      }
    old.emplace_back("module." + name, t.tensor);
  }
  REQUIRE(renamed == 5 * 12);  // 5 dense layers: norm1, norm2 (5 tensors each), conv1, conv2
  const std::string path = (dir / "old.safetensors").string();
  save_safetensors(path, old);
  Net b(parse_net(kSmallDenseNet, "small_densenet.yaml"));
  b.setup(Shape({2, 3, 12, 10}), DType::F32, Device::cpu(), 7);
  const WeightsLoadReport r = load_weights(b, path);  // strict
  CHECK(r.loaded.size() == old.size());
  CHECK(r.stripped_prefix == "module.");
  const std::vector<NamedTensor> sa = a.state(), sb = b.state();
  for (size_t i = 0; i < sa.size(); ++i) CHECK(sa[i].tensor.to_vector() == sb[i].tensor.to_vector());
  Net c(parse_net(kSmallDenseNet, "small_densenet.yaml"));
  c.setup(Shape({2, 3, 12, 10}));
  CHECK(load_pretrained(c, path).ignored.empty());
}

TEST_CASE("model: densenet121 with MPN-COV (reduce 64) composes and a training step lowers the loss") {
  const NetSpec spec = compose_model(read_model_config(
      YAML::Load("net: densenet121\nrepresentation: {type: mpncov, reduce: 64, iterations: 3}\nclasses: 4\n"), "e.yaml"));
  Net net(spec);
  net.setup(Shape({2, 3, 64, 64}));
  CHECK(net.input_shapes(net.index_of("representation.conv_dr_block.0"))[0] == Shape({2, 1024, 2, 2}));
  CHECK(net.output_shape(net.index_of("representation")) == Shape({2, 64 * 65 / 2}));
  CHECK(net.output().shape() == Shape({2, 4}));
  const Tensor x = test::random_tensor({2, 3, 64, 64}, DType::F32, 9), w = test::random_tensor({2, 4}, DType::F32, 10);
  net.zero_grad();
  const double before = loss(net, x, w);
  net.backward(w);
  ParamGroup all;
  all.name = "all";
  all.base_lr = all.lr = 1e-3;
  for (NetParameter& p : net.parameters()) all.params.push_back({p.name, p.parameter});
  SGD sgd({all});
  sgd.step();
  const double after = loss(net, x, w);
  INFO("loss ", before, " -> ", after);
  CHECK(std::isfinite(after));
  CHECK(after < before);
}

}  // TEST_SUITE

TEST_SUITE("gradcheck") {

TEST_CASE("zoo gradcheck: a small DenseNet in float64, layer by layer") {
  GradCheckOptions options;
  options.max_elements = 12;
  const std::vector<NetGradCheckRow> rows = gradcheck_net(parse_net(kSmallDenseNet, "small.yaml"), Shape({2, 3, 12, 10}), options);
  CHECK(rows.size() == 45);
  for (const NetGradCheckRow& r : rows) {
    INFO(r.layer, "\n", r.report.table());
    CHECK(r.report.pass());
  }
}

}  // TEST_SUITE
