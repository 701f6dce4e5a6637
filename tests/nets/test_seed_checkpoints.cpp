// The seed's own checkpoints (fast-MPN-COV's main.py: Newmodel's features / representation / classifier
// names, nets/seed_names.h): the name mapping by the seed's children order, its refusals, and, against
// PyTorch, the eval logits of models built as the seed builds them and saved as it saves them.
#include <yaml-cpp/yaml.h>

#include <cmath>

#include "core/npy.h"
#include "core/safetensors.h"
#include "nets/model.h"
#include "nets/seed_names.h"
#include "nets/weights.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

NetSpec model(const std::string& yaml) { return compose_model(read_model_config(YAML::Load(yaml), "e.yaml")); }

std::vector<std::string> state_names(Net& net) {
  std::vector<std::string> names;
  for (const NamedTensor& t : net.state()) names.push_back(t.name);
  return names;
}

// The net's name for each of the file's names (unchanged where the mapping leaves it).
std::map<std::string, std::string> mapped(const std::vector<std::string>& file, const NetSpec& spec, Net& net) {
  const SeedNames s = map_seed_names(file, spec, state_names(net), "ck.safetensors", true);
  std::map<std::string, std::string> out;
  for (const std::string& f : file) out[f] = s.net_name.count(f) ? s.net_name.at(f) : f;
  return out;
}

// A net whose features items have names and whose classifier has two linear layers.
const char* kTwoLinears = R"(name: two_linears
input: [3, 8, 8]
features:
  - {name: conv1, type: conv, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: relu, type: relu}
representation: {name: avgpool, type: gavp}
classifier:
  - {name: fc1, type: linear, out_features: 6}
  - {name: fc2, type: linear, out_features: 3}
)";

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("seed names: a ResNet's features.N, its representation and classifier map to the zoo's names") {
  const NetSpec spec = model("{net: resnet18, representation: {type: mpncov, reduce: 16}, classes: 5, classifier: linear}");
  Net net(spec);
  net.setup(Shape({1, 3, 64, 64}));  // 2x2 after layer4: a covariance
  const std::vector<std::string> file = {
      "features.0.weight", "features.1.running_mean", "features.4.0.conv1.weight", "features.7.0.downsample.0.weight",
      "features.7.1.bn2.num_batches_tracked", "representation.conv_dr_block.0.weight",
      "representation.conv_dr_block.1.bias", "classifier.weight", "classifier.bias"};
  const std::map<std::string, std::string> m = mapped(file, spec, net);
  CHECK(m.at("features.0.weight") == "conv1.weight");
  CHECK(m.at("features.1.running_mean") == "bn1.running_mean");
  CHECK(m.at("features.4.0.conv1.weight") == "layer1.0.conv1.weight");
  CHECK(m.at("features.7.0.downsample.0.weight") == "layer4.0.downsample.0.weight");
  CHECK(m.at("features.7.1.bn2.num_batches_tracked") == "layer4.1.bn2.num_batches_tracked");
  CHECK(m.at("representation.conv_dr_block.0.weight") == "representation.conv_dr_block.0.weight");  // the zoo's own
  CHECK(m.at("classifier.weight") == "fc.weight");
  CHECK(m.at("classifier.bias") == "fc.bias");
  const SeedNames s = map_seed_names(file, spec, state_names(net), "ck.safetensors", true);
  CHECK(s.note.find("features.0 -> conv1, features.1 -> bn1, features.4 -> layer1, features.7 -> layer4, classifier -> fc") !=
        std::string::npos);
  // Names that are the net's already (torchvision's resnet18 file) are not the seed's.
  CHECK_FALSE(map_seed_names({"conv1.weight", "fc.weight"}, spec, state_names(net), "tv.safetensors", true).recognised());
}

TEST_CASE("seed names: Inception's features count its two max pools, and a VGG's features.N stay") {
  const NetSpec inception = model("{net: inception_v3}");
  Net net(inception);
  net.setup(Shape({1, 3, 75, 75}));
  const std::map<std::string, std::string> m =
      mapped({"features.2.conv.weight", "features.4.bn.running_var", "features.7.branch1x1.conv.weight",
              "features.17.branch_pool.bn.weight", "classifier.weight"},
             inception, net);
  CHECK(m.at("features.2.conv.weight") == "Conv2d_2b_3x3.conv.weight");
  CHECK(m.at("features.4.bn.running_var") == "Conv2d_3b_1x1.bn.running_var");
  CHECK(m.at("features.7.branch1x1.conv.weight") == "Mixed_5b.branch1x1.conv.weight");
  CHECK(m.at("features.17.branch_pool.bn.weight") == "Mixed_7c.branch_pool.bn.weight");
  CHECK(m.at("classifier.weight") == "fc.weight");

  const NetSpec vgg = model("{net: vgg11, representation: {type: mpncov, reduce: 8}, classes: 3, classifier: linear}");
  Net v(vgg);
  v.setup(Shape({1, 3, 32, 32}));
  const std::map<std::string, std::string> mv = mapped({"features.0.weight", "features.18.bias", "classifier.weight"}, vgg, v);
  CHECK(mv.at("features.0.weight") == "features.0.weight");
  CHECK(mv.at("features.18.bias") == "features.18.bias");
  CHECK(mv.at("classifier.weight") == "fc.weight");  // where the shapes fit (no callback here: taken as fitting)
}

TEST_CASE("seed names: the MPN-COV ResNet's reduction, in its features (fine-tuned) or the representation (from scratch)") {
  const NetSpec spec = model("{net: mpncov_resnet50, classes: 4}");
  Net net(spec);
  net.setup(Shape({1, 3, 32, 32}));
  const std::map<std::string, std::string> tuned =
      mapped({"features.0.weight", "features.8.weight", "features.9.running_mean", "classifier.weight"}, spec, net);
  CHECK(tuned.at("features.8.weight") == "layer_reduce.weight");
  CHECK(tuned.at("features.9.running_mean") == "layer_reduce_bn.running_mean");
  CHECK(tuned.at("classifier.weight") == "fc.weight");
  const std::map<std::string, std::string> scratch =
      mapped({"module.features.0.weight", "module.features.7.2.bn3.bias", "module.representation.conv_dr_block.0.weight",
              "module.representation.conv_dr_block.1.running_var", "module.classifier.bias"},
             spec, net);
  CHECK(scratch.at("module.features.7.2.bn3.bias") == "layer4.2.bn3.bias");
  CHECK(scratch.at("module.representation.conv_dr_block.0.weight") == "layer_reduce.weight");
  CHECK(scratch.at("module.representation.conv_dr_block.1.running_var") == "layer_reduce_bn.running_var");
  CHECK(scratch.at("module.classifier.bias") == "fc.bias");
}

TEST_CASE("seed names: a file that does not map onto the net is refused, naming the file, the tensor and what was expected") {
  const NetSpec spec = model("{net: resnet18}");
  Net net(spec);
  net.setup(Shape({1, 3, 32, 32}));
  const std::vector<std::string> names = state_names(net);
  // An MPN-COV ResNet's features.8 (layer_reduce) has no place in a resnet18.
  CHECK_THROWS_WITH_AS(map_seed_names({"features.0.weight", "features.8.weight"}, spec, names, "ck.safetensors", true),
                       doctest::Contains("ck.safetensors: the tensor 'features.8.weight' is the seed's features item 8, "
                                         "but net 'resnet18' has 8 feature items (features.0-7: conv1, bn1, relu, "
                                         "maxpool, layer1, layer2, layer3, layer4)"),
                       Error);
  // The seed's name and the net's own for one tensor: which one is meant is ambiguous.
  CHECK_THROWS_WITH_AS(map_seed_names({"features.0.weight", "conv1.weight"}, spec, names, "mixed.safetensors", true),
                       doctest::Contains("mixed.safetensors: the tensors 'features.0.weight' and 'conv1.weight' both stand "
                                         "for the net's 'conv1.weight'"),
                       Error);
  // The seed's one-linear classifier against a head of two linear layers.
  const NetSpec two = parse_net(kTwoLinears, "two_linears.yaml");
  Net t(two);
  t.setup(Shape({1, 3, 8, 8}));
  CHECK_THROWS_WITH_AS(map_seed_names({"features.0.weight", "classifier.weight"}, two, state_names(t), "ck.safetensors", true),
                       doctest::Contains("ck.safetensors: the tensor 'classifier.weight' is the seed's classifier as one "
                                         "linear layer, but the classifier of net 'two_linears' has 2 linear layers (fc1, fc2)"),
                       Error);
  // Without other signs of the seed (torchvision's DenseNet head is `classifier` too) nothing is refused, and
  // the classifier is renamed only where its shape fits.
  CHECK_FALSE(map_seed_names({"conv1.weight", "classifier.weight"}, two, state_names(t), "tv.safetensors", true).recognised());
  const auto unfit = [](const std::string&, const std::string&) { return false; };
  CHECK_FALSE(map_seed_names({"conv1.weight", "classifier.weight"}, spec, names, "tv.safetensors", true, unfit).recognised());
}

TEST_CASE("seed names: loading what matches (not strict), what does not map stays unmapped instead of refused") {
  const NetSpec spec = model("{net: resnet18}");
  Net net(spec);
  net.setup(Shape({1, 3, 32, 32}));
  const std::vector<std::string> names = state_names(net);
  const SeedNames past = map_seed_names({"features.0.weight", "features.8.weight"}, spec, names, "ck.safetensors", false);
  CHECK(past.net_name.at("features.0.weight") == "conv1.weight");
  CHECK(past.net_name.count("features.8.weight") == 0);
  // The net's own name wins over the seed's for the same tensor, whichever comes first.
  for (const std::vector<std::string>& file : {std::vector<std::string>{"features.0.weight", "conv1.weight", "features.1.weight"},
                                               std::vector<std::string>{"conv1.weight", "features.0.weight", "features.1.weight"}}) {
    const SeedNames mixed = map_seed_names(file, spec, names, "mixed.safetensors", false);
    CHECK(mixed.net_name.count("features.0.weight") == 0);
    CHECK(mixed.net_name.at("features.1.weight") == "bn1.weight");
  }
  const NetSpec two = parse_net(kTwoLinears, "two_linears.yaml");
  Net t(two);
  t.setup(Shape({1, 3, 8, 8}));
  const SeedNames head = map_seed_names({"features.0.weight", "classifier.weight"}, two, state_names(t), "ck.safetensors", false);
  CHECK(head.net_name.count("classifier.weight") == 0);
}

TEST_CASE("seed names: a seed-named checkpoint loads strictly into the zoo's net, with one log line saying so") {
  const auto dir = test::temp_dir("seed_names_load");
  const NetSpec spec = model("{net: resnet18, classes: 3}");
  Net a(spec);
  a.setup(Shape({1, 3, 32, 32}), DType::F32, Device::cpu(), 1);
  // resnet18's names as the seed's Newmodel saves them, in a distributed run ("module." in front).
  const std::vector<std::pair<std::string, std::string>> seed = {{"conv1.", "features.0."}, {"bn1.", "features.1."},
      {"layer1.", "features.4."}, {"layer2.", "features.5."}, {"layer3.", "features.6."}, {"layer4.", "features.7."},
      {"fc.", "classifier."}};
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedTensor& t : a.state())
    for (const auto& [ours, theirs] : seed)
      if (t.name.rfind(ours, 0) == 0) tensors.emplace_back("module." + theirs + t.name.substr(ours.size()), t.tensor);
  REQUIRE(tensors.size() == a.state().size());
  const std::string path = (dir / "seed.safetensors").string();
  save_safetensors(path, tensors);
  Net b(spec);
  b.setup(Shape({1, 3, 32, 32}), DType::F32, Device::cpu(), 2);
  const WeightsLoadReport r = load_weights(b, path);  // strict
  CHECK(r.loaded.size() == tensors.size());
  CHECK(r.summary().find("the seed's checkpoint names (features / representation / classifier) recognised and mapped to "
                         "net 'resnet18': prefix 'module.' stripped, features.0 -> conv1") != std::string::npos);
  const std::vector<NamedTensor> sa = a.state(), sb = b.state();
  for (size_t i = 0; i < sa.size(); ++i) CHECK(sa[i].tensor.to_vector() == sb[i].tensor.to_vector());
  // As pretrained weights: the same line in the log.
  Net c(spec);
  c.setup(Shape({1, 3, 32, 32}));
  const std::vector<std::string> lines = load_pretrained(c, path).lines();
  REQUIRE(lines.size() >= 2);
  CHECK(lines[1].rfind("the seed's checkpoint names", 0) == 0);
  // A head of other classes: the seed's classifier is the net's fc with another shape, new as a whole.
  Net d(model("{net: resnet18, classes: 7}"));
  d.setup(Shape({1, 3, 32, 32}));
  const PretrainedReport p = load_pretrained(d, path);
  REQUIRE(p.new_layers.size() == 1);
  CHECK(p.new_layers[0].rfind("fc (linear", 0) == 0);
  CHECK(p.ignored.empty());
}

}  // TEST_SUITE

TEST_SUITE("oracle") {

namespace {

// The oracle's model (tests/oracle/seed_checkpoints.py) saved as the seed saves it and converted, loaded
// strictly into our model, gives PyTorch's eval logits at every size, within 1e-4 of the largest logit.
void check_against_seed(const std::string& oracle_case, const std::string& experiment_model,
                        const std::vector<std::string>& sizes) {
  const auto dir = test::temp_dir("seed_ckpt_" + oracle_case);
  std::vector<std::string> args = {dir.string(), oracle_case};
  args.insert(args.end(), sizes.begin(), sizes.end());
  test::run_oracle("seed_checkpoints.py", args);
  Net net(model(experiment_model));
  net.set_training(false);
  for (size_t k = 0; k < sizes.size(); ++k) {
    const Tensor x = load_npy((dir / ("x_" + sizes[k] + ".npy")).string());
    const Tensor y = load_npy((dir / ("y_" + sizes[k] + ".npy")).string());
    net.setup(x.shape());
    if (k == 0) {
      const WeightsLoadReport r = load_weights(net, (dir / "checkpoint.safetensors").string());  // strict
      CHECK(r.loaded.size() == net.state().size());
      // DenseNet's names are the zoo's already: nothing to map, nothing said.
      CHECK(r.seed_names.empty() == (oracle_case == "densenet121_gavp"));
    }
    test::check_logits(net.forward(x), y, str(oracle_case, " at ", sizes[k]));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST_CASE("seed checkpoint: resnet18 with GAvP (the seed's features.N, classifier) gives PyTorch's logits") {
  check_against_seed("resnet18_gavp", "{net: resnet18, classes: 10}", {"64x64", "96x80"});
}

TEST_CASE("seed checkpoint: resnet18 with MPNCOV (reduce 32), features in DataParallel, gives PyTorch's logits") {
  check_against_seed("resnet18_mpncov_dp",
                     "{net: resnet18, representation: {type: mpncov, reduce: 32, iterations: 5}, classes: 10, classifier: linear}",
                     {"64x64", "96x80"});
}

TEST_CASE("seed checkpoint: inception_v3 (features.N counting the seed's two max pools) gives PyTorch's logits") {
  check_against_seed("inception_v3_gavp", "{net: inception_v3, classes: 10}", {"75x75", "83x99"});
}

TEST_CASE("seed checkpoint: densenet121 (features with the seed's last ReLU) gives PyTorch's logits") {
  check_against_seed("densenet121_gavp", "{net: densenet121, classes: 10}", {"32x32", "48x40"});
}

TEST_CASE("seed checkpoint: mpncov_resnet50 fine-tuned (layer_reduce as features.8) gives PyTorch's logits") {
  check_against_seed("mpncov_resnet50_finetuned", "{net: mpncov_resnet50, classes: 10}", {"64x64", "80x96"});
}

TEST_CASE("seed checkpoint: mpncov_resnet50 from scratch (reduction in the representation, module.) gives PyTorch's logits") {
  check_against_seed("mpncov_resnet50_scratch", "{net: mpncov_resnet50, classes: 10}", {"64x64", "80x96"});
}

}  // TEST_SUITE
