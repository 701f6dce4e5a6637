// Fuzzes experiment files: every section read with its defaults and checks, then the model composed
// (zoo net or net file, representation, classifier) and its layers created from their keys.
#include "core/error.h"
#include "fuzz/fuzz_input.h"
#include "nets/net.h"
#include "train/experiment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const mpncov::fuzz::ScratchFile file(data, size, ".yaml");
  const std::string& path = file.path();
  try {
    const mpncov::Experiment e = mpncov::load_experiment(path);
    mpncov::resolved_config(e);
    mpncov::Net net(mpncov::compose_model(e.model));
  } catch (const mpncov::Error&) {
  }
  return 0;
}
