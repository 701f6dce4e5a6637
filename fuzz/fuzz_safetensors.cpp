// Fuzzes the safetensors reader: header validation, then reading every tensor it lists.
#include "core/error.h"
#include "core/safetensors.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const mpncov::fuzz::ScratchFile file(data, size, ".safetensors");
  const std::string& path = file.path();
  try {
    const mpncov::SafetensorsReader reader(path);
    for (const mpncov::SafetensorsEntry& e : reader.entries()) reader.read(e.name);
  } catch (const mpncov::Error&) {
  }
  return 0;
}
