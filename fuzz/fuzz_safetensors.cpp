// Fuzzes the safetensors reader: header validation, then reading every tensor it lists.
#include "core/error.h"
#include "core/safetensors.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mpncov::fuzz::scratch_file(data, size, ".safetensors");
  try {
    const mpncov::SafetensorsReader reader(path);
    for (const mpncov::SafetensorsEntry& e : reader.entries()) reader.read(e.name);
  } catch (const mpncov::Error&) {
  }
  return 0;
}
