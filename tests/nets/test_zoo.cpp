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

// Logits of our net on the oracle's input against the oracle's, relative to the largest logit.
void check_against_torch(const std::string& name, int64_t height, int64_t width) {
  const auto dir = test::temp_dir("zoo_" + name);
  test::run_oracle("zoo_nets.py", {dir.string(), name, std::to_string(height), std::to_string(width)});
  Net net(load_net(resolve_net_path(name)));
  const Tensor x = load_npy((dir / "x.npy").string());
  const Tensor y = load_npy((dir / "y.npy").string());
  net.set_training(false);
  net.setup(x.shape());
  const WeightsLoadReport report = load_weights(net, (dir / "weights.safetensors").string());
  CHECK(report.missing.empty());
  std::ifstream count((dir / "count.txt").string());
  int64_t torch_params = 0;
  count >> torch_params;
  CHECK(net.parameter_count() == torch_params);
  const std::vector<double> got = net.forward(x).to_vector(), want = y.to_vector();
  REQUIRE(got.size() == want.size());
  double scale = 0, worst = 0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  INFO(name, " at ", height, "x", width, ": max |diff| ", worst, " against max |logit| ", scale);
  CHECK(worst <= 1e-4 * std::max(scale, 1.0));
  std::filesystem::remove_all(dir);  // the weights are large
}

}  // namespace

TEST_SUITE("oracle") {

TEST_CASE("zoo: alexnet matches torchvision") { check_against_torch("alexnet", 224, 224); }
TEST_CASE("zoo: vgg11 matches torchvision") { check_against_torch("vgg11", 224, 224); }
TEST_CASE("zoo: vgg11_bn matches torchvision") { check_against_torch("vgg11_bn", 224, 224); }
TEST_CASE("zoo: vgg13 matches torchvision") { check_against_torch("vgg13", 224, 224); }
TEST_CASE("zoo: vgg13_bn matches torchvision") { check_against_torch("vgg13_bn", 224, 224); }
TEST_CASE("zoo: vgg16 matches torchvision") { check_against_torch("vgg16", 224, 224); }
TEST_CASE("zoo: vgg16_bn matches torchvision") { check_against_torch("vgg16_bn", 224, 224); }
TEST_CASE("zoo: vgg19 matches torchvision") { check_against_torch("vgg19", 224, 224); }
TEST_CASE("zoo: vgg19_bn matches torchvision") { check_against_torch("vgg19_bn", 224, 224); }
TEST_CASE("zoo: resnet18 matches torchvision at 224 and 160x200") {
  check_against_torch("resnet18", 224, 224);
  check_against_torch("resnet18", 160, 200);
}
TEST_CASE("zoo: resnet34 matches torchvision") { check_against_torch("resnet34", 224, 224); }
TEST_CASE("zoo: resnet50 matches torchvision at 224 and 192x256") {
  check_against_torch("resnet50", 224, 224);
  check_against_torch("resnet50", 192, 256);
}
TEST_CASE("zoo: resnet101 matches torchvision") { check_against_torch("resnet101", 224, 224); }
TEST_CASE("zoo: resnet152 matches torchvision") { check_against_torch("resnet152", 224, 224); }
TEST_CASE("zoo: inception_v3 matches torchvision at 299") { check_against_torch("inception_v3", 299, 299); }
TEST_CASE("zoo: mpncov_resnet50 matches the seed's model at 224 and 160x192") {
  check_against_torch("mpncov_resnet50", 224, 224);
  check_against_torch("mpncov_resnet50", 160, 192);
}
TEST_CASE("zoo: mpncov_resnet101 matches the seed's model") { check_against_torch("mpncov_resnet101", 224, 224); }
TEST_CASE("zoo: mpncov_vgg16_bn matches the seed's model") { check_against_torch("mpncov_vgg16_bn", 224, 224); }

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

}  // TEST_SUITE
