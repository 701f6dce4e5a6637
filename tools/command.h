// The mpncov program's subcommands: each file in tools/ registers one with MPNCOV_COMMAND.
// Exit status: 0 success, 1 failure at run time, 2 usage or configuration error.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace mpncov::tools {

struct Command {
  std::string name;
  std::string summary;  // one line for `mpncov --help`
  std::string usage;    // the full text for `mpncov NAME --help`; its first lines list every option
  std::function<int(const std::vector<std::string>& args)> run;
  std::vector<std::string> options;  // names (without "--") taking a value, as the command's Args takes them
  std::vector<std::string> flags;    // names without a value
};

std::vector<Command>& commands();
bool register_command(Command command);

// Thrown for bad command-line use; main prints it with the command's usage and exits 2.
struct UsageError {
  std::string message;
};

// True when args holds -h or --help.
bool wants_help(const std::vector<std::string>& args);

}  // namespace mpncov::tools

#define MPNCOV_COMMAND_CAT2(a, b) a##b
#define MPNCOV_COMMAND_CAT(a, b) MPNCOV_COMMAND_CAT2(a, b)
#define MPNCOV_COMMAND(...) \
  static const bool MPNCOV_COMMAND_CAT(mpncov_command_, __LINE__) = ::mpncov::tools::register_command(__VA_ARGS__)
