// What the fuzz harnesses share: the entry point libFuzzer calls, and a scratch file for the parsers
// that read from a path. Each harness accepts mpncov::Error (a clear refusal) and lets anything else
// escape, so a crash, a sanitizer report or any other exception is a finding.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace mpncov::fuzz {

// Writes the input to a file of this process's own (in TMPDIR or /tmp) and returns its path. The name
// ends in `suffix`; the file is rewritten by every call.
inline std::string scratch_file(const uint8_t* data, size_t size, const char* suffix) {
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir && *dir ? dir : "/tmp") + "/mpncov_fuzz_" + std::to_string(getpid()) + suffix;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

}  // namespace mpncov::fuzz
