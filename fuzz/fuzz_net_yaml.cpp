// Fuzzes net files: parsing and block expansion, then creating the layers from their keys and setting
// the net up for a batch of one (shapes, parameters, activations) under a small memory limit, so a huge
// net must be refused by the memory plan instead of allocated.
#include "core/error.h"
#include "fuzz/fuzz_input.h"
#include "nets/net.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mpncov::set_memory_limit(int64_t{256} << 20);
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    mpncov::Net net(mpncov::parse_net(text, "fuzz.yaml"));
    const std::vector<int64_t>& in = net.spec().input_shape;
    net.setup(mpncov::Shape{1, in[0], in[1], in[2]});
  } catch (const mpncov::Error&) {
  }
  return 0;
}
