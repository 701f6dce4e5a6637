// mpncov info: the build's backends and devices.
#include <cstdio>

#include "core/context.h"
#include "core/dist/communicator.h"
#include "tools/command.h"

namespace mpncov::tools {
namespace {

int run_info(const std::vector<std::string>& args) {
  if (!args.empty()) throw UsageError{"info takes no arguments"};
  std::printf("mpncov %s\nbackends: %s\ndistributed: %s\n", MPNCOV_VERSION, backends_summary().c_str(),
              dist::build_summary().c_str());
  return 0;
}

}  // namespace

MPNCOV_COMMAND(Command{"info", "show this build's backends and the devices present",
                       "usage: mpncov info\n\nPrints the version, the compiled backends (cpu, cuda) and the CUDA "
                       "devices found, and the distributed transports built (MPI, NCCL).\n",
                       run_info, {}, {}});

}  // namespace mpncov::tools
