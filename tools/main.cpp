// mpncov: one program, one subcommand per file in tools/.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "core/blas_setup.h"
#include "core/error.h"
#include "core/text.h"
#include "tools/command.h"

namespace mpncov::tools {

std::vector<Command>& commands() {
  static std::vector<Command> list;
  return list;
}

bool register_command(Command command) {
  commands().push_back(std::move(command));
  return true;
}

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "-h" || a == "--help"; });
}

namespace {

std::vector<Command> sorted_commands() {
  std::vector<Command> sorted = commands();
  std::sort(sorted.begin(), sorted.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  return sorted;
}

void print_overview(std::FILE* out) {
  std::fprintf(out,
               "mpncov: train and evaluate CNNs with global covariance pooling (iSQRT-COV)\n\n"
               "usage: mpncov COMMAND [ARGS...]\n       mpncov help COMMAND   (or mpncov COMMAND --help)\n"
               "       mpncov help --options (every command's options)\n       mpncov --version\n\ncommands:\n");
  for (const Command& c : sorted_commands()) std::fprintf(out, "  %-10s %s\n", c.name.c_str(), c.summary.c_str());
}

// `mpncov help --options`: every command's options, one command a line (for shell completion and the
// test that each appears in the command's usage and in docs/experiments.md).
void print_options() {
  for (const Command& c : sorted_commands()) {
    std::printf("%s", c.name.c_str());
    for (const std::string& o : c.options) std::printf(" --%s", o.c_str());
    for (const std::string& f : c.flags) std::printf(" --%s", f.c_str());
    std::printf("\n");
  }
}

}  // namespace
}  // namespace mpncov::tools

int main(int argc, char** argv) {
  mpncov::select_blas_kernels(argv);
  using namespace mpncov::tools;
  const std::string first = argc < 2 ? "" : argv[1];
  if (first == "--version" || first == "-V" || first == "version") {
    std::printf("mpncov %s\n", MPNCOV_VERSION);
    return 0;
  }
  if (argc < 2 || first == "-h" || first == "--help" || (first == "help" && argc == 2)) {
    print_overview(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (first == "help" && argc == 3 && !std::strcmp(argv[2], "--options")) {
    print_options();
    return 0;
  }
  const bool help = first == "help";  // `mpncov help COMMAND` is `mpncov COMMAND --help`
  const std::string name = help ? argv[2] : first;
  auto it = std::find_if(commands().begin(), commands().end(), [&](const Command& c) { return c.name == name; });
  if (it == commands().end()) {
    std::vector<std::string> names;
    for (const Command& c : commands()) names.push_back(c.name);
    std::fprintf(stderr, "mpncov: unknown command '%s'%s\n\n", name.c_str(), mpncov::did_you_mean(name, names).c_str());
    print_overview(stderr);
    return 2;
  }
  std::vector<std::string> args(argv + (help ? 3 : 2), argv + argc);
  if (help || wants_help(args)) {
    std::printf("%s", it->usage.c_str());
    return 0;
  }
  try {
    return it->run(args);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "mpncov %s: %s\n\n%s", name.c_str(), e.message.c_str(), it->usage.c_str());
    return 2;
  } catch (const mpncov::Error& e) {
    std::fprintf(stderr, "mpncov %s: error: %s\n", name.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpncov %s: unexpected error: %s\n", name.c_str(), e.what());
    return 1;
  }
}
