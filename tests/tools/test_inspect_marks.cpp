// mpncov inspect's "(fused)" marks say what an evaluation forward does: a residual add that its run makes
// in a pass of its own (its convolution keeps the Winograd kernel) is not marked, and with evaluation
// fusion off in the environment (MPNCOV_EVAL_FUSION=0) or in bfloat16 no batch norm or add is.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/cpu/nn_cpu.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"

using namespace mpncov;
namespace fs = std::filesystem;

namespace {

// The output of `ENV mpncov ARGS` (stdout and stderr); the run must succeed.
std::string inspect_output(const fs::path& dir, const std::string& args, const std::string& env = "") {
  const fs::path out = dir / "output.txt";
  const int status = std::system((env + " " + MPNCOV_BINARY_DIR + "/mpncov inspect " + args + " > " + out.string() +
                                  " 2>&1").c_str());
  std::ifstream in(out);
  std::stringstream s;
  s << in.rdbuf();
  INFO(s.str());
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return s.str();
}

// The type column of a layer's row ("batchnorm (fused)"), trimmed.
std::string type_of(const std::string& table, const std::string& layer) {
  const size_t row = table.find("\n" + layer + " ");
  REQUIRE(row != std::string::npos);
  std::string type = table.substr(row + 1 + 35, 18);
  type.erase(type.find_last_not_of(' ') + 1);
  return type;
}

// tests/nets/test_eval_fusion.cpp's residual net with a reader of add1's shortcut after add1 (`side`), so
// that add1 cannot write onto it: add1's convolution c2 runs Winograd at batch 2, whose kernel takes no
// second input, so its add runs in a pass of its own; add2's and add3's are in their kernels.
const char* kResidualNet = R"(name: residual
input: [16, 32, 32]
features:
  - {name: c0, type: conv, out_channels: 32, kernel_size: 3, padding: 1}
  - {name: b0, type: batchnorm}
  - {name: r0, type: relu}
  - {name: c1, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - {name: b1, type: batchnorm}
  - {name: r1, type: relu}
  - {name: c2, type: conv, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - {name: b2, type: batchnorm}
  - {name: add1, type: add, inputs: [b2, r0]}
  - {name: side, type: relu, inputs: [r0]}
  - {name: r2, type: relu, inputs: [add1]}
  - {name: c3, type: conv, out_channels: 64, kernel_size: 3, stride: 2, padding: 1, bias: false}
  - {name: b3, type: batchnorm}
  - {name: d0, type: conv, out_channels: 64, kernel_size: 1, stride: 2, bias: false, inputs: [r2]}
  - {name: d1, type: batchnorm}
  - {name: add2, type: add, inputs: [b3, d1]}
  - {name: r3, type: relu}
  - {name: c5, type: conv, out_channels: 64, kernel_size: 1, bias: false}
  - {name: b5, type: batchnorm}
  - {name: add3, type: add, inputs: [b5, r3]}
  - {name: r5, type: relu}
representation: {name: pool, type: adaptive_avgpool}
classifier:
  - {name: fc, type: linear, out_features: 5}
)";

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("inspect marks fused what an evaluation forward folds: not an add run apart, nothing with fusion off") {
  const fs::path dir = test::temp_dir("inspect_marks"), net = dir / "residual.yaml";
  std::ofstream(net) << kResidualNet;
  ops::Conv2dParams p3;
  p3.pad_h = p3.pad_w = 1;
  REQUIRE(cpu::conv_wants_winograd(2, ops::conv_geometry({2, 32, 32, 32}, {32, 32, 3, 3}, p3), 1));

  const std::string on = inspect_output(dir, net.string() + " --batch 2");
  for (const char* bn : {"b0", "b1", "b2", "b3", "d1", "b5"}) CHECK(type_of(on, bn) == "batchnorm (fused)");
  CHECK(type_of(on, "add1") == "add (in place)");  // after c2's Winograd kernel, in a pass of its own
  CHECK(type_of(on, "add2") == "add (fused)");
  CHECK(type_of(on, "add3") == "add (fused)");

  for (const char* env : {"MPNCOV_EVAL_FUSION=0", ""}) {
    const std::string off = inspect_output(dir, net.string() + " --batch 2" + (*env ? "" : " --precision bfloat16"), env);
    INFO(std::string(env));
    for (const char* bn : {"b0", "b1", "b2", "b3", "d1", "b5"}) CHECK(type_of(off, bn) == "batchnorm");
    for (const char* add : {"add1", "add2", "add3"}) CHECK(type_of(off, add) == "add (in place)");
  }
}

}  // TEST_SUITE
