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

// The input written to a file of this process's own (in TMPDIR or /tmp, named with `suffix`), removed
// again when the object goes.
class ScratchFile {
 public:
  ScratchFile(const uint8_t* data, size_t size, const char* suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/mpncov_fuzz_" + std::to_string(getpid()) + suffix;
    FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();
    }
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mpncov::fuzz
