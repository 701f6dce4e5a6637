// The error for a file or setting the user wrote (an experiment, a net file, --set): the message names
// the file and line, and the program exits with status 2 for it (1 for failures at run time).
#pragma once
#include <string>

#include "core/error.h"

namespace mpncov {

class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& what) : Error(what) {}
};

}  // namespace mpncov
