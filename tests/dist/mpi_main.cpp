// The runner of the tests that run as several processes (CMakeLists.txt starts it with mpirun -np 2):
// every rank runs the same test cases in the same order, so their collectives pair up. A failed check on
// one rank makes that rank exit non-zero, and mpirun reports the run as failed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "core/dist/communicator.h"

int main(int argc, char** argv) {
  mpncov::dist::Communicator& comm = mpncov::dist::world();
  if (comm.size() < 2) {
    std::printf("[mpncov] SKIPPED: started as one process (run it under mpirun -np 2)\n");
    return 0;
  }
  doctest::Context context(argc, argv);
  const int failed = context.run();
  // A rank whose checks failed still takes part in the remaining collectives; the exit code reports it.
  comm.barrier();
  return failed;
}
