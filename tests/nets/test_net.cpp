// Net files and the Net runtime: names, blocks, errors with file and line, and backward through fan-out,
// in-place layers and frozen prefixes against finite differences.
#include <cmath>
#include <fstream>

#include "core/ops.h"
#include "core/safetensors.h"
#include "nets/model.h"
#include "nets/net.h"
#include "nets/net_gradcheck.h"
#include "nets/weights.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

const char* kTiny = R"(name: tiny
input: [2, 6, 5]
blocks:
  unit:
    args: {out: null, project: false, shortcut: input}
    layers:
      - {name: conv, type: conv, out_channels: $out, kernel_size: 3, padding: 1}
      - {name: relu, type: relu}
      - {name: proj, type: conv, inputs: input, out_channels: $out, kernel_size: 1, when: $project}
      - {name: add, type: add, inputs: [relu, $shortcut]}
features:
  - {name: conv1, type: conv, out_channels: 3, kernel_size: 3, padding: 1}
  - {name: relu1, type: relu}
  - {name: stage, block: unit, repeat: 2, args: {out: 4}, first: {args: {project: true, shortcut: proj}}}
  - {name: bn, type: batchnorm}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {type: linear, out_features: 5}
  - {type: relu}
  - {type: linear, out_features: 3}
)";

std::string error_of(const std::string& text) {
  try {
    Net net(parse_net(text, "bad.yaml"));
    net.setup(Shape({1, 2, 6, 6}));
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// L = sum(w * logits) for fixed w.
double loss(Net& net, const Tensor& x, const Tensor& w) {
  const std::vector<double> y = net.forward(x).to_vector(), wv = w.to_vector();
  double total = 0;
  for (size_t i = 0; i < y.size(); ++i) total += y[i] * wv[i];
  return total;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("net spec: names compose with dots, blocks expand, parts and children are tagged") {
  NetSpec spec = parse_net(kTiny, "tiny.yaml");
  std::vector<std::string> names;
  for (const LayerSpec& l : spec.layers) names.push_back(l.name);
  const std::vector<std::string> expect = {"conv1", "relu1", "stage.0.conv", "stage.0.relu", "stage.0.proj",
                                           "stage.0.add", "stage.1.conv", "stage.1.relu", "stage.1.add", "bn",
                                           "pool", "flatten", "classifier.0", "classifier.1", "classifier.2"};
  CHECK(names == expect);
  const LayerSpec& proj = spec.layers[static_cast<size_t>(spec.find("stage.0.proj"))];
  CHECK(proj.inputs == std::vector<std::string>{"relu1"});
  CHECK(spec.layers[static_cast<size_t>(spec.find("stage.0.add"))].inputs ==
        std::vector<std::string>{"stage.0.relu", "stage.0.proj"});
  CHECK(spec.layers[static_cast<size_t>(spec.find("stage.1.add"))].inputs ==
        std::vector<std::string>{"stage.1.relu", "stage.0.add"});
  CHECK(spec.layers[static_cast<size_t>(spec.find("stage.1.conv"))].child == 2);
  CHECK(spec.layers[static_cast<size_t>(spec.find("pool"))].part == NetPart::Representation);
  CHECK(spec.layers[static_cast<size_t>(spec.find("classifier.2"))].part == NetPart::Classifier);
  CHECK(spec.feature_children == 4);
  CHECK(proj.line == 9);

  Net net(spec);
  net.setup(Shape({2, 2, 6, 5}));
  CHECK(net.output().shape() == Shape({2, 3}));
  CHECK(net.output_shape(net.index_of("stage.0.add")) == Shape({2, 4, 6, 5}));
  std::vector<std::string> params;
  for (const NetParameter& p : net.parameters()) params.push_back(p.name);
  CHECK(params.front() == "conv1.weight");
  CHECK(std::find(params.begin(), params.end(), "stage.0.proj.bias") != params.end());
  CHECK(std::find(params.begin(), params.end(), "classifier.2.weight") != params.end());
  CHECK(net.runs_in_place(net.index_of("relu1")) == !net.layer(0).backward_uses_outputs());
}

TEST_CASE("net spec: every mistake names the file, line, layer and what was expected") {
  const std::string head = "name: bad\nfeatures:\n";
  CHECK(error_of(head + "  - {name: c, type: cnov, out_channels: 2}\n").find("bad.yaml:3: layer 'c': unknown layer type 'cnov', did you mean 'conv'?") != std::string::npos);
  CHECK(error_of(head + "  - {name: c, type: conv, out_channel: 2}\n").find("bad.yaml:3: layer 'c' (conv): key 'out_channels' is required (is 'out_channel' a misspelling?)") != std::string::npos);
  CHECK(error_of(head + "  - {name: c, type: conv, out_channels: 2, kernel_size: 3, strid: 2}\n").find("bad.yaml:3: layer 'c' (conv): unknown key 'strid', did you mean 'stride'?") != std::string::npos);
  CHECK(error_of(head + "  - {name: c, type: conv, out_channels: 2, kernel_sise: 3}\n").find("bad.yaml:3: layer 'c' (conv): key 'kernel_size' is required (is 'kernel_sise' a misspelling?)") != std::string::npos);
  CHECK(error_of(head + "  - {name: c, type: conv, out_channels: two}\n").find("bad.yaml:3: layer 'c' (conv): key 'out_channels' expected an integer") != std::string::npos);
  CHECK(error_of(head + "  - {name: c, type: conv}\n").find("key 'out_channels' is required") != std::string::npos);
  CHECK(error_of(head + "  - {name: a, type: relu}\n  - {name: b, type: add, inputs: [a, c]}\n").find("bad.yaml:4: layer 'b': unknown input 'c'") != std::string::npos);
  CHECK(error_of(head + "  - {name: a, type: relu, inputs: a}\n").find("takes its own output as input: a cycle") != std::string::npos);
  CHECK(error_of(head + "  - {name: a, type: relu, inputs: b}\n  - {name: b, type: relu, inputs: a}\n").find("bad.yaml:3: layer 'a' takes input 'b', which is defined after it") != std::string::npos);
  CHECK(error_of(head + "  - {name: a, type: relu}\n  - {name: a, type: relu}\n").find("bad.yaml:4: duplicate layer name 'a'") != std::string::npos);
  CHECK(error_of("name: empty\nfeatures: []\n").find("bad.yaml:1: the net has no layers") != std::string::npos);
  const std::string mismatch = error_of(head + "  - {name: a, type: conv, out_channels: 3, kernel_size: 1}\n  - {name: b, type: add, inputs: [a, input]}\n");
  CHECK(mismatch.find("bad.yaml:4: layer 'b' (add)") != std::string::npos);
  CHECK(mismatch.find("(1, 3, 6, 6)") != std::string::npos);
  CHECK(mismatch.find("(1, 2, 6, 6)") != std::string::npos);
  CHECK(error_of(head + "  - {name: u, block: nope}\n").find("bad.yaml:3: unknown block 'nope'") != std::string::npos);
  CHECK(error_of("name: x\nfeature: []\n").find("bad.yaml:2: unknown key 'feature', did you mean 'features'?") != std::string::npos);
  CHECK(error_of("name: x\nfeatures: [\n").find("bad.yaml:3: YAML syntax error") != std::string::npos);
  CHECK(error_of("name: x\nblocks: {b: {args: {n: null}, layers: [{type: relu}]}}\nfeatures:\n  - {name: u, block: b}\n").find("argument 'n' of block 'b' is required") != std::string::npos);
  CHECK(error_of("name: x\nblocks: {b: {args: {n: 1}, layers: [{type: relu}]}}\nfeatures:\n  - {name: u, block: b, args: {m: 2}}\n").find("block 'b' has no argument 'm'") != std::string::npos);
}

// Net backward against central differences of L = sum(w * logits), for every 7th element of every parameter.
void check_net_backward(Net& net, const Tensor& x, const Tensor& w) {
  net.zero_grad();
  loss(net, x, w);
  net.backward(w);
  const double h = 1e-6;
  for (NetParameter& p : net.parameters()) {
    double* v = p.parameter->value.data<double>();
    const std::vector<double> grad = p.parameter->grad.to_vector();
    for (int64_t i = 0; i < p.parameter->value.numel(); i += 7) {
      const double keep = v[i];
      v[i] = keep + h;
      const double up = loss(net, x, w);
      v[i] = keep - h;
      const double down = loss(net, x, w);
      v[i] = keep;
      const double numeric = (up - down) / (2 * h);
      INFO(p.name, "[", i, "]");
      CHECK(std::abs(numeric - grad[static_cast<size_t>(i)]) <= 1e-6 * std::max(1.0, std::abs(numeric)));
    }
  }
}

TEST_CASE("net: backward through fan-out, in-place layers and the classifier matches finite differences") {
  Net net(parse_net(kTiny, "tiny.yaml"));
  net.setup(Shape({2, 2, 6, 5}), DType::F64);
  net.set_training(false);  // batch norm on running statistics: a smooth function of everything
  check_net_backward(net, test::random_tensor({2, 2, 6, 5}, DType::F64, 3), test::random_tensor({2, 3}, DType::F64, 4));
}

TEST_CASE("net: an MPN-COV representation with the seed's reduction (conv, batch norm, ReLU) differentiates exactly") {
  const auto dir = test::temp_dir("reduce_net");
  std::ofstream(dir / "n.yaml") << "name: n\ninput: [3, 6, 6]\nfeatures:\n"
                                   "  - {name: conv, type: conv, out_channels: 6, kernel_size: 3, padding: 1}\n"
                                   "representation: {name: avgpool, type: gavp}\nclassifier:\n  - {name: fc, type: linear, out_features: 3}\n";
  for (const char* rep : {"{type: mpncov, reduce: 4, iterations: 3}", "{type: mpncov, reduce: 5, iterations: 1, sqrt: false}",
                          "{type: mpncov, reduce: 4, vectorize: false}", "{type: bcnn, reduce: 4}"}) {
    ModelConfig m = read_model_config(YAML::Load(str("net: ", (dir / "n.yaml").string(), "\nrepresentation: ", rep)), "e.yaml");
    Net net(compose_model(m));
    net.setup(Shape({3, 3, 6, 6}), DType::F64);
    net.set_training(true);  // batch statistics: still smooth
    INFO(rep);
    CHECK(net.index_of("representation.conv_dr_block.1") >= 0);
    check_net_backward(net, test::random_tensor({3, 3, 6, 6}, DType::F64, 5), test::random_tensor({3, 3}, DType::F64, 6));
  }
}

TEST_CASE("net: a frozen prefix gets no gradient and computes none below it") {
  Net net(parse_net(kTiny, "tiny.yaml"));
  net.setup(Shape({2, 2, 6, 5}), DType::F64);
  net.freeze(3);  // conv1, relu1, stage
  Tensor x = test::random_tensor({2, 2, 6, 5}, DType::F64, 3);
  net.zero_grad();
  net.forward(x);
  net.backward(test::random_tensor({2, 3}, DType::F64, 4));
  for (NetParameter& p : net.parameters()) {
    std::vector<double> g = p.parameter->grad.to_vector();
    const bool all_zero = std::all_of(g.begin(), g.end(), [](double v) { return v == 0; });
    INFO(p.name);
    CHECK(p.parameter->frozen == (p.name.rfind("conv1", 0) == 0 || p.name.rfind("stage", 0) == 0));
    CHECK(all_zero == p.parameter->frozen);
  }
  CHECK_THROWS_WITH_AS(net.freeze(5), doctest::Contains("outside 0..4"), Error);
}

TEST_CASE("net: layer-wise gradient check of a whole net") {
  GradCheckOptions options;
  options.max_elements = 40;
  const std::vector<NetGradCheckRow> rows = gradcheck_net(parse_net(kTiny, "tiny.yaml"), Shape({2, 2, 6, 5}), options);
  CHECK(rows.size() == 15);
  for (const NetGradCheckRow& r : rows) {
    INFO(r.layer, "\n", r.report.table());
    CHECK(r.report.pass());
  }
  CHECK(net_gradcheck_table(rows).find("stage.0.proj") != std::string::npos);
}

TEST_CASE("weights: save and load round trip - strict loading lists every problem") {
  const auto dir = test::temp_dir("net_weights");
  Net a(parse_net(kTiny, "tiny.yaml"));
  a.setup(Shape({1, 2, 6, 5}), DType::F32, Device::cpu(), 1);
  const std::string path = (dir / "w.safetensors").string();
  save_weights(a, path);
  Net b(parse_net(kTiny, "tiny.yaml"));
  b.setup(Shape({1, 2, 6, 5}), DType::F64, Device::cpu(), 2);  // other seed, other dtype
  const WeightsLoadReport report = load_weights(b, path);
  CHECK(report.missing.empty());
  const std::vector<NamedTensor> sa = a.state(), sb = b.state();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) CHECK(test::max_rel_diff(sa[i].tensor, sb[i].tensor) == 0);

  const std::string other = std::string(kTiny).replace(std::string(kTiny).find("out_features: 3"), 15, "out_features: 7");
  Net c(parse_net(other, "other.yaml"));
  c.setup(Shape({1, 2, 6, 5}));
  CHECK_THROWS_WITH_AS(load_weights(c, path), doctest::Contains("classifier.2.weight: file (3, 5), net (7, 5)"), Error);
  WeightsLoadOptions loose;
  loose.strict = false;
  const WeightsLoadReport r = load_weights(c, path, loose);
  CHECK(r.mismatched.size() == 2);
  CHECK(r.loaded.size() == sa.size() - 2);
}

TEST_CASE("weights: a loaded num_batches_tracked counts on from its value in the next training step") {
  const auto dir = test::temp_dir("net_tracked");
  const Tensor x = test::random_tensor({2, 2, 6, 5}, DType::F32, 3);
  const auto tracked = [](Net& net) {
    for (const NamedTensor& t : net.state())
      if (t.name == "bn.num_batches_tracked") return static_cast<int64_t>(t.tensor.item());
    return int64_t{-1};
  };
  Net a(parse_net(kTiny, "tiny.yaml"));
  a.setup(Shape({2, 2, 6, 5}));
  a.set_training(true);
  for (int i = 0; i < 5; ++i) a.forward(x);
  REQUIRE(tracked(a) == 5);
  const std::string path = (dir / "w.safetensors").string();
  save_weights(a, path);
  Net b(parse_net(kTiny, "tiny.yaml"));
  b.setup(Shape({2, 2, 6, 5}));
  b.set_training(true);
  b.forward(x);  // its count read once: 1
  load_weights(b, path);
  CHECK(tracked(b) == 5);
  b.forward(x);
  CHECK(tracked(b) == 6);  // not the count before the load plus one
}

TEST_CASE("weights: a file without num_batches_tracked (saved before PyTorch 0.4.1) loads strictly, the count at 0") {
  const auto dir = test::temp_dir("net_untracked");
  const Tensor x = test::random_tensor({2, 2, 6, 5}, DType::F32, 3);
  Net a(parse_net(kTiny, "tiny.yaml"));
  a.setup(Shape({2, 2, 6, 5}));
  std::vector<std::pair<std::string, Tensor>> old;  // torchvision's original resnet50 file has no counters
  for (const NamedTensor& t : a.state())
    if (t.name.find("num_batches_tracked") == std::string::npos) old.emplace_back(t.name, t.tensor);
  const std::string path = (dir / "old.safetensors").string();
  save_safetensors(path, old);
  Net b(parse_net(kTiny, "tiny.yaml"));
  b.setup(Shape({2, 2, 6, 5}), DType::F32, Device::cpu(), 2);
  b.set_training(true);
  for (int i = 0; i < 3; ++i) b.forward(x);
  const WeightsLoadReport r = load_weights(b, path);
  CHECK(r.missing.empty());
  CHECK(r.loaded.size() == old.size());
  const auto tracked = [&] {
    for (const NamedTensor& t : b.state())
      if (t.name == "bn.num_batches_tracked") return static_cast<int64_t>(t.tensor.item());
    return int64_t{-1};
  };
  CHECK(tracked() == 0);
  b.forward(x);
  CHECK(tracked() == 1);
  Net c(parse_net(kTiny, "tiny.yaml"));
  c.setup(Shape({2, 2, 6, 5}));
  CHECK(load_pretrained(c, path).load.loaded.size() == old.size());  // not "does not fit the backbone"
}

TEST_CASE("weights: torchvision's auxiliary classifier (AuxLogits) the net lacks is set aside, even when strict") {
  const auto dir = test::temp_dir("net_aux_logits");
  Net a(parse_net(kTiny, "tiny.yaml"));
  a.setup(Shape({1, 2, 6, 5}));
  std::vector<std::pair<std::string, Tensor>> file;  // inception_v3_google's file holds AuxLogits.*
  for (const NamedTensor& t : a.state()) file.emplace_back(t.name, t.tensor);
  file.emplace_back("AuxLogits.fc.weight", Tensor::zeros(Shape({3, 4})));
  file.emplace_back("AuxLogits.fc.bias", Tensor::zeros(Shape({3})));
  const std::string path = (dir / "aux.safetensors").string();
  save_safetensors(path, file);
  Net b(parse_net(kTiny, "tiny.yaml"));
  b.setup(Shape({1, 2, 6, 5}));
  const WeightsLoadReport r = load_weights(b, path);  // strict
  CHECK(r.unexpected.empty());
  CHECK(r.set_aside.size() == 2);
  CHECK(r.summary().find("auxiliary classifier (AuxLogits)") != std::string::npos);
  Net c(parse_net(kTiny, "tiny.yaml"));
  c.setup(Shape({1, 2, 6, 5}));
  const PretrainedReport p = load_pretrained(c, path);
  CHECK(p.ignored.empty());  // no "are they the weights of another net?"
  // Any other tensor the net lacks is still a mismatch.
  file.emplace_back("Other.fc.weight", Tensor::zeros(Shape({3})));
  save_safetensors(path, file);
  CHECK_THROWS_WITH_AS(load_weights(b, path), doctest::Contains("Other.fc.weight"), Error);
}

TEST_CASE("weights: the seed's VGG checkpoints (features wrapped in DataParallel: features.module.0.weight) load") {
  const auto dir = test::temp_dir("net_inner_module");
  const char* numbered = "name: numbered\ninput: [2, 6, 5]\nfeatures:\n  - {type: conv, out_channels: 3, kernel_size: 3}\n"
                         "  - {type: relu}\n  - {type: conv, out_channels: 4, kernel_size: 1}\n"
                         "classifier:\n  - {type: linear, out_features: 3}\n";
  Net a(parse_net(numbered, "numbered.yaml"));
  a.setup(Shape({1, 2, 6, 5}));
  std::vector<std::pair<std::string, Tensor>> seed;  // as the seed's train loop saves a fine-tuned VGG
  for (const NamedTensor& t : a.state()) {
    std::string name = t.name;
    if (name.rfind("features.", 0) == 0) name.insert(9, "module.");
    seed.emplace_back(name, t.tensor);
  }
  REQUIRE(seed.front().first == "features.module.0.weight");
  const std::string path = (dir / "seed.safetensors").string();
  save_safetensors(path, seed);
  Net b(parse_net(numbered, "numbered.yaml"));
  b.setup(Shape({1, 2, 6, 5}), DType::F32, Device::cpu(), 3);
  const WeightsLoadReport r = load_weights(b, path);  // strict
  CHECK(r.loaded.size() == seed.size());
  const std::vector<NamedTensor> sa = a.state(), sb = b.state();
  for (size_t i = 0; i < sa.size(); ++i) CHECK(sa[i].tensor.to_vector() == sb[i].tensor.to_vector());
}

TEST_CASE("model: the seed's representation and classifier rules") {
  YAML::Node node = YAML::Load("net: resnet18\nrepresentation: {type: mpncov, reduce: 16, iterations: 3}\nclasses: 7\n");
  ModelConfig m = read_model_config(node, "exp.yaml");
  NetSpec spec = compose_model(m);
  CHECK(spec.find("avgpool") < 0);
  CHECK(spec.layers[static_cast<size_t>(spec.find("representation.conv_dr_block.0"))].part == NetPart::Representation);
  Net net(spec);
  net.setup(Shape({1, 3, 64, 64}));
  CHECK(net.output_shape(net.index_of("representation")) == Shape({1, 136}));  // 16 * 17 / 2
  CHECK(net.output().shape() == Shape({1, 7}));
  CHECK(net.index_of("fc") == net.size() - 1);

  // vgg: without pretrained weights the classifier keeps its three linear layers, the last one resized.
  NetSpec vgg = compose_model(read_model_config(YAML::Load("net: vgg11\nrepresentation: {type: bcnn}\nclasses: 10\n"), "e.yaml"));
  CHECK(vgg.find("classifier.6") >= 0);
  // with pretrained weights and a new representation, one linear layer.
  NetSpec fine = compose_model(read_model_config(YAML::Load("net: vgg11\nrepresentation: {type: bcnn}\nclasses: 10\nweights: w.safetensors\n"), "e.yaml"));
  CHECK(fine.find("classifier.6") < 0);
  CHECK(fine.layers.back().name == "fc");
  CHECK_THROWS_WITH_AS(read_model_config(YAML::Load("net: vgg11\nfreez: 3\n"), "e.yaml"), doctest::Contains("e.yaml:2: model: unknown key 'freez', did you mean 'freeze'?"), Error);
  CHECK_THROWS_WITH_AS(compose_model(read_model_config(YAML::Load("net: resnt50\n"), "e.yaml")), doctest::Contains("did you mean 'resnet50'?"), Error);
}

}  // TEST_SUITE
