// Fuzzes the .npy reader.
#include "core/error.h"
#include "core/npy.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const mpncov::fuzz::ScratchFile file(data, size, ".npy");
  const std::string& path = file.path();
  try {
    mpncov::load_npy(path);
  } catch (const mpncov::Error&) {
  }
  return 0;
}
