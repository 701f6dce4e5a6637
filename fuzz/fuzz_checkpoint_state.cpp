// Fuzzes the checkpoint's training state (the JSON in its metadata), optimiser part included.
#include "core/error.h"
#include "fuzz/fuzz_input.h"
#include "train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  try {
    mpncov::SgdState sgd;
    mpncov::parse_training_state(json, "fuzz.safetensors", &sgd);
  } catch (const mpncov::Error&) {
  }
  return 0;
}
