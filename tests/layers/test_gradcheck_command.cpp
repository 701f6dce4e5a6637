// `mpncov gradcheck`: every registered layer type has configurations and passes them; the program's exit
// codes for success, a bad key, and a GPU asked for where there is none.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include "layers/gradcheck_suite.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {
int run_program(const std::string& args) {
  const std::string program = std::string(MPNCOV_BINARY_DIR) + "/mpncov";
  if (!std::filesystem::exists(program)) return -1;
  const int status = std::system((program + " " + args + " > /dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}
}  // namespace

TEST_SUITE("gradcheck") {
TEST_CASE("gradcheck: every registered layer type passes all its configurations") {
  std::set<std::string> seen;
  for (const LayerCase& c : all_layer_cases()) {
    seen.insert(c.type);
    const GradCheckReport r = gradcheck_case(c);
    INFO(c.str(), "\n", r.table());
    CHECK(r.pass());
  }
  for (const std::string& t : layer_types()) CHECK(seen.count(t) == 1);
}
}  // TEST_SUITE

TEST_SUITE("unit") {
TEST_CASE("gradcheck command: exit 0 on pass, 2 on a bad key or usage, 2 for cuda without a GPU") {
  if (run_program("--help") < 0) {
    MESSAGE("the mpncov program is not built; skipping its exit codes");
    return;
  }
  CHECK(run_program("gradcheck --layer relu") == 0);
  CHECK(run_program("gradcheck --layer conv --set out_channels=2 --set stride=2 --input 1x2x5x5") == 0);
  CHECK(run_program("gradcheck --layer conv --set kernal_size=3") == 2);
  CHECK(run_program("gradcheck --layer nosuchlayer") == 2);  // an unknown type is a usage mistake
  CHECK(run_program("gradcheck") == 2);
  CHECK(run_program("gradcheck --help") == 0);
  if (!test::gpu_present()) CHECK(run_program("gradcheck --layer relu --device cuda") == 2);
}
}  // TEST_SUITE
