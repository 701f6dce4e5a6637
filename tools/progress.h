// A progress counter on stderr ("\r[12/50]") whose line is ended before any other message, so messages
// never run on after it.
#pragma once
#include <cstdio>
#include <string>

namespace mpncov::tools {

class Progress {
 public:
  void update(const std::string& text) {
    std::fprintf(stderr, "\r%s", text.c_str());
    std::fflush(stderr);
    pending_ = true;
  }
  // Ends the progress line (if one is showing).
  void end() {
    if (pending_) std::fprintf(stderr, "\n");
    pending_ = false;
  }
  // A message on its own line.
  void message(const std::string& text) {
    end();
    std::fprintf(stderr, "%s\n", text.c_str());
  }

 private:
  bool pending_ = false;
};

}  // namespace mpncov::tools
