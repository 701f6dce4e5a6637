// Files at the edges of their formats decode as PIL decodes them (tests/oracle/decode_parity.py: what
// Image.open(f).convert("RGB") gives), bit for bit.
#include <fstream>
#include <sstream>

#include "core/npy.h"
#include "data/decode.h"
#include "tests/data/image_files.h"
#include "tests/helpers.h"

using namespace mpncov;
using namespace mpncov::data;
namespace fs = std::filesystem;

TEST_SUITE("oracle") {

TEST_CASE("data decode parity: files at the edges of their formats decode as PIL decodes them") {
  const fs::path dir = test::process_temp_dir("decode_parity");
  test::run_oracle("decode_parity.py", {dir.string()});
  std::ifstream list(dir / "cases.txt");
  int checked = 0;
  for (std::string name; std::getline(list, name);) {
    if (name.empty()) continue;
    CAPTURE(name);
    const Tensor ref = load_npy((dir / (name + ".npy")).string());
    Image ours;
    REQUIRE_NOTHROW(ours = decode_file((dir / name).string()));
    REQUIRE(ref.shape() == Shape({ours.height(), ours.width(), 3}));
    const int64_t* r = ref.data<int64_t>();
    int64_t wrong = 0;
    for (int y = 0; y < ours.height(); ++y)
      for (int x = 0; x < ours.width(); ++x)
        for (int c = 0; c < 3; ++c) wrong += r[(int64_t{y} * ours.width() + x) * 3 + c] != ours.pixel(x, y)[c];
    CHECK(wrong == 0);
    ++checked;
  }
  CHECK(checked > 0);
}

}  // TEST_SUITE
