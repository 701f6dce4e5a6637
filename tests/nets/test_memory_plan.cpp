// The memory plan of Net::setup: a net whose parameters or activations exceed the limit is refused from
// its shapes, with its file and line, before the offending tensors are allocated.
#include <doctest/doctest.h>

#include "core/config_error.h"
#include "nets/net.h"

using namespace mpncov;

namespace {
// A 3 -> 4 channel 3x3 convolution on 3x8x8: weight 108 + bias 4 floats, twice (value and gradient) =
// 896 bytes; its output 4x6x6 = 144 floats, twice = 1152 bytes; 2048 bytes in all.
const char* kNet = "name: plan\ninput: [3, 8, 8]\nfeatures:\n  - {name: c, type: conv, out_channels: 4, kernel_size: 3}\n";

std::string setup_error(double limit) {
  set_memory_limit(limit);
  Net net(parse_net(kNet, "plan.yaml"));
  std::string error;
  try {
    net.setup(Shape{1, 3, 8, 8});
  } catch (const ConfigError& e) {
    error = e.what();
  }
  set_memory_limit(0);
  if (error.empty()) CHECK(net.is_setup());
  return error;
}
}  // namespace

TEST_CASE("memory plan: a net that fits exactly is set up - one byte less refuses its activations") {
  CHECK(setup_error(2048) == "");
  const std::string activations = setup_error(2047);
  CHECK(activations.find("net 'plan' (plan.yaml) does not fit") != std::string::npos);
  CHECK(activations.find("layer 'c' (1, 4, 6, 6) at plan.yaml:4") != std::string::npos);
}

TEST_CASE("memory plan: a parameter past the limit is refused before it is allocated, naming file and line") {
  const std::string weight = setup_error(100);
  CHECK(weight.find("plan.yaml:4: layer 'c' (conv): conv layer 'c': parameter weight (4, 3, 3, 3) needs 864 B") !=
        std::string::npos);
  set_memory_limit(100);
  Net net(parse_net(kNet, "plan.yaml"));
  CHECK_THROWS_AS(net.setup(Shape{1, 3, 8, 8}), ConfigError);
  set_memory_limit(0);
  CHECK(net.layer(0).parameters().empty());  // nothing was created
}

TEST_CASE("memory plan: the default limit refuses a 10^12-channel convolution at once") {
  CHECK(memory_limit(Device::cpu()) > 1e8);
  Net net(parse_net("name: huge\ninput: [3, 8, 8]\nfeatures:\n  - {name: c, type: conv, out_channels: 1000000000000, kernel_size: 3}\n",
                    "huge.yaml"));
  CHECK_THROWS_WITH_AS(net.setup(Shape{1, 3, 8, 8}), doctest::Contains("huge.yaml:4"), ConfigError);
}
