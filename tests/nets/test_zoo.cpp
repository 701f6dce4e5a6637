// The zoo against PyTorch: every net with torchvision's random weights and random batch-norm statistics
// gives the same eval logits (the MPN-COV nets against models built from the seed's definitions), the
// parameter counts are equal, and whole nets pass the layer-wise gradient check.
#include <cmath>
#include <fstream>

#include "core/npy.h"
#include "nets/model.h"
#include "nets/net_gradcheck.h"
#include "nets/weights.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

// Logits of our net on the oracle's inputs (one per size, "HxW") against the oracle's, relative to the
// largest logit; the weights are loaded once, the net set up again for every size.
void check_against_torch(const std::string& name, const std::vector<std::string>& sizes) {
  const auto dir = test::temp_dir("zoo_" + name);
  std::vector<std::string> args = {dir.string(), name};
  args.insert(args.end(), sizes.begin(), sizes.end());
  test::run_oracle("zoo_nets.py", args);
  Net net(load_net(resolve_net_path(name)));
  net.set_training(false);
  for (size_t k = 0; k < sizes.size(); ++k) {
    const Tensor x = load_npy((dir / ("x_" + sizes[k] + ".npy")).string());
    const Tensor y = load_npy((dir / ("y_" + sizes[k] + ".npy")).string());
    net.setup(x.shape());
    if (k == 0) {
      const WeightsLoadReport report = load_weights(net, (dir / "weights.safetensors").string());
      CHECK(report.missing.empty());
      CHECK(report.loaded.size() == net.state().size());
      std::ifstream count((dir / "count.txt").string());
      int64_t torch_params = 0;
      count >> torch_params;
      CHECK(net.parameter_count() == torch_params);
    }
    test::check_logits(net.forward(x), y, str(name, " at ", sizes[k]));
  }
  std::filesystem::remove_all(dir);  // the weights are large
}

// Every net at 224 (299 for Inception) and two small sizes neither square nor multiples of 32, where
// the adaptive pools of AlexNet and VGG enlarge the feature map (VGG: 4x3 -> 7x7) or enlarge one side
// and shrink the other (2x8 -> 7x7).
const std::vector<std::string> kSizes = {"224x224", "150x99", "75x257"};

}  // namespace

TEST_SUITE("oracle") {

TEST_CASE("zoo: alexnet matches torchvision at 224 and two odd sizes") { check_against_torch("alexnet", kSizes); }
TEST_CASE("zoo: vgg11 matches torchvision at 224 and two odd sizes") { check_against_torch("vgg11", kSizes); }
TEST_CASE("zoo: vgg11_bn matches torchvision at 224 and two odd sizes") { check_against_torch("vgg11_bn", kSizes); }
TEST_CASE("zoo: vgg13 matches torchvision at 224 and two odd sizes") { check_against_torch("vgg13", kSizes); }
TEST_CASE("zoo: vgg13_bn matches torchvision at 224 and two odd sizes") { check_against_torch("vgg13_bn", kSizes); }
TEST_CASE("zoo: vgg16 matches torchvision at 224 and two odd sizes") { check_against_torch("vgg16", kSizes); }
TEST_CASE("zoo: vgg16_bn matches torchvision at 224 and two odd sizes") { check_against_torch("vgg16_bn", kSizes); }
TEST_CASE("zoo: vgg19 matches torchvision at 224 and two odd sizes") { check_against_torch("vgg19", kSizes); }
TEST_CASE("zoo: vgg19_bn matches torchvision at 224 and two odd sizes") { check_against_torch("vgg19_bn", kSizes); }
TEST_CASE("zoo: resnet18 matches torchvision at 224 and two odd sizes") { check_against_torch("resnet18", kSizes); }
TEST_CASE("zoo: resnet34 matches torchvision at 224 and two odd sizes") { check_against_torch("resnet34", kSizes); }
TEST_CASE("zoo: resnet50 matches torchvision at 224 and two odd sizes") { check_against_torch("resnet50", kSizes); }
TEST_CASE("zoo: resnet101 matches torchvision at 224 and two odd sizes") { check_against_torch("resnet101", kSizes); }
TEST_CASE("zoo: resnet152 matches torchvision at 224 and two odd sizes") { check_against_torch("resnet152", kSizes); }
TEST_CASE("zoo: densenet121 matches torchvision at 224 and two odd sizes") { check_against_torch("densenet121", kSizes); }
TEST_CASE("zoo: densenet161 matches torchvision at 224 and two odd sizes") { check_against_torch("densenet161", kSizes); }
TEST_CASE("zoo: densenet169 matches torchvision at 224 and two odd sizes") { check_against_torch("densenet169", kSizes); }
TEST_CASE("zoo: densenet201 matches torchvision at 224 and two odd sizes") { check_against_torch("densenet201", kSizes); }
TEST_CASE("zoo: inception_v3 matches torchvision at 299 and two odd sizes") {
  check_against_torch("inception_v3", {"299x299", "150x99", "75x257"});
}
TEST_CASE("zoo: mpncov_resnet50 matches the seed's model at 224 and two odd sizes") { check_against_torch("mpncov_resnet50", kSizes); }
TEST_CASE("zoo: mpncov_resnet101 matches the seed's model at 224 and two odd sizes") { check_against_torch("mpncov_resnet101", kSizes); }
TEST_CASE("zoo: mpncov_vgg16_bn matches the seed's model at 224 and two odd sizes") { check_against_torch("mpncov_vgg16_bn", kSizes); }

}  // TEST_SUITE

TEST_SUITE("gradcheck") {

void check_net(const std::string& name, const Shape& input, int64_t max_elements) {
  GradCheckOptions options;
  options.max_elements = max_elements;
  const std::vector<NetGradCheckRow> rows = gradcheck_net(load_net(resolve_net_path(name)), input, options);
  bool all = !rows.empty();
  for (const NetGradCheckRow& r : rows) all = all && r.report.pass();
  INFO(net_gradcheck_table(rows));
  CHECK(all);
}

TEST_CASE("zoo gradcheck: resnet18, layer by layer") { check_net("resnet18", Shape({2, 3, 32, 32}), 6); }
TEST_CASE("zoo gradcheck: vgg11_bn, layer by layer") { check_net("vgg11_bn", Shape({2, 3, 32, 32}), 6); }
TEST_CASE("zoo gradcheck: inception_v3, layer by layer") { check_net("inception_v3", Shape({2, 3, 75, 75}), 4); }
TEST_CASE("zoo gradcheck: mpncov_resnet50, layer by layer") { check_net("mpncov_resnet50", Shape({2, 3, 48, 48}), 4); }

}  // TEST_SUITE

TEST_SUITE("oracle") {

TEST_CASE("tools: pth_to_safetensors turns a seed-style .pth.tar checkpoint into weights that load strictly") {
  const auto dir = test::temp_dir("pth_convert");
  test::run_oracle("pth_checkpoint.py", {dir.string()});
  Net net(load_net(resolve_net_path("resnet18")));
  net.setup(Shape({1, 3, 64, 64}));
  const WeightsLoadReport r = load_weights(net, (dir / "model.safetensors").string());
  CHECK(r.missing.empty());
  CHECK(r.loaded.size() == net.state().size());
  const Tensor want = load_npy((dir / "fc_weight.npy").string());
  for (const NetParameter& p : net.parameters())
    if (p.name == "fc.weight") CHECK(test::max_rel_diff(p.parameter->value, want) == 0);
}

TEST_CASE("tools: pth_to_safetensors takes a pickled whole module, and names --key for a state_dict under 'model'") {
  const auto dir = test::temp_dir("pth_forms");
  test::run_oracle("pth_forms.py", {dir.string()});  // it checks the refusals itself
  for (const char* name : {"module", "keyed"}) {
    INFO(name);
    Net net(load_net(resolve_net_path("resnet18")));
    net.setup(Shape({1, 3, 64, 64}));
    CHECK(load_weights(net, (dir / (std::string(name) + ".safetensors")).string()).loaded.size() == net.state().size());
  }
}

}  // TEST_SUITE
