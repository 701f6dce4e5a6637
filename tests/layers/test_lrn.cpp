// The lrn layer: gradient checks, bad keys, PyTorch oracle, GPU against CPU.
#include "core/config_error.h"
#include "nets/net.h"
#include "tests/layers/layer_test.h"

using namespace mpncov;

TEST_SUITE("gradcheck") {
TEST_CASE("lrn: gradients in every configuration") { test::gradcheck_type("lrn"); }
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("lrn: bad keys are errors naming the layer, key and place") {
  test::expect_config_error("lrn", "{size: 0}", {"key 'size'", "at least 1"});
  test::expect_config_error("lrn", "{alpha: 1}", {"key 'size'", "is required"});
  test::expect_config_error("lrn", "{size: 3, k: 0}", {"key 'k'", "must be positive"});
  // YAML's .nan and .inf are numbers: a beta of .nan made every output NaN.
  test::expect_config_error("lrn", "{size: 3, beta: .nan}", {"key 'beta'", "expected a finite number, got nan"});
  test::expect_config_error("lrn", "{size: 3, k: .inf}", {"key 'k'", "expected a finite number, got inf"});
}

TEST_CASE("lrn: a 2-D (N, C) input is a net-file error naming the file, line, layer and the shapes it takes") {
  // PyTorch's LocalResponseNorm refuses it ("Expected 3D or higher dimensionality"); it used to run here.
  Net net(parse_net("name: flat\nfeatures:\n  - {name: f, type: flatten}\n  - {name: norm, type: lrn, size: 3}\n",
                    "flat.yaml"));
  std::string message;
  try {
    net.setup(Shape({2, 3, 4, 4}));
  } catch (const ConfigError& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(message.find("flat.yaml:4: layer 'norm' (lrn): ") != std::string::npos);
  CHECK(message.find("3 or more dimensions, (N, C, L) or (N, C, H, W)") != std::string::npos);
  CHECK(message.find("got (2, 48)") != std::string::npos);
  // (N, C, L) is accepted, as PyTorch does.
  LayerCase c;
  c.type = "lrn";
  c.yaml = "{size: 3}";
  SetupContext ctx;
  CHECK_NOTHROW(make_case_layer(c)->setup({Shape({2, 5, 4})}, ctx));
}
}  // TEST_SUITE

TEST_SUITE("oracle") {
TEST_CASE("lrn: matches PyTorch in float32 and float64") { test::oracle_type("lrn"); }
}  // TEST_SUITE

TEST_SUITE("gpu") {
TEST_CASE("lrn: GPU matches the CPU float64 reference" * doctest::skip(!mpncov::test::gpu_present())) {
  test::gpu_type("lrn", 1e-4);
}
}  // TEST_SUITE
