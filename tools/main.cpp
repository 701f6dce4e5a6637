// mpncov: one program, one subcommand per file in tools/.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "core/blas_setup.h"
#include "core/config_error.h"
#include "core/error.h"
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

void print_overview(std::FILE* out) {
  std::fprintf(out,
               "mpncov: train and evaluate CNNs with global covariance pooling (iSQRT-COV)\n\n"
               "usage: mpncov COMMAND [ARGS...]\n       mpncov COMMAND --help\n\ncommands:\n");
  std::vector<Command> sorted = commands();
  std::sort(sorted.begin(), sorted.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const Command& c : sorted) std::fprintf(out, "  %-10s %s\n", c.name.c_str(), c.summary.c_str());
}

}  // namespace
}  // namespace mpncov::tools

int main(int argc, char** argv) {
  mpncov::select_blas_kernels(argv);
  using namespace mpncov::tools;
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    print_overview(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  auto it = std::find_if(commands().begin(), commands().end(), [&](const Command& c) { return c.name == name; });
  if (it == commands().end()) {
    std::fprintf(stderr, "mpncov: unknown command '%s'\n\n", name.c_str());
    print_overview(stderr);
    return 2;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  if (wants_help(args)) {
    std::printf("%s", it->usage.c_str());
    return 0;
  }
  try {
    return it->run(args);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "mpncov %s: %s\n\n%s", name.c_str(), e.message.c_str(), it->usage.c_str());
    return 2;
  } catch (const mpncov::ConfigError& e) {
    std::fprintf(stderr, "mpncov %s: error: %s\n", name.c_str(), e.what());
    return 2;
  } catch (const mpncov::Error& e) {
    std::fprintf(stderr, "mpncov %s: error: %s\n", name.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpncov %s: unexpected error: %s\n", name.c_str(), e.what());
    return 1;
  }
}
