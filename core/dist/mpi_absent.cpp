// Stands in for core/dist/mpi.cpp in builds without MPI.
#include "core/dist/backends.h"

namespace mpncov::dist::detail {

bool mpi_built() { return false; }
std::string mpi_version() { return ""; }
std::unique_ptr<Communicator> make_mpi_world() {
  throw Error("this build of mpncov has no MPI: install Open MPI (scripts/install-deps.sh) and build again");
}

}  // namespace mpncov::dist::detail
