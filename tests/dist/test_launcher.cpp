// The errors of a launch whose processes are not connected (core/dist/communicator.cpp): each names the
// variable seen, the launcher that sets it, the launchers supported and what to do. The end-to-end case
// (PMI_SIZE under Open MPI's library) is in test_dist_runs.cpp.
#include "core/dist/backends.h"
#include "tests/helpers.h"

using namespace mpncov;

TEST_SUITE("unit") {

TEST_CASE("dist: a launch MPI does not connect names the variable seen, its launcher and the ones supported") {
  const std::string pmi = dist::detail::launcher_mismatch("PMI_SIZE", 4, 1, "Open MPI v4.1.4");
  INFO(pmi);
  CHECK(pmi.find("PMI_SIZE=4 says a launcher started 4 processes (PMI_SIZE is set by a PMI launcher: MPICH's or "
                 "Intel MPI's mpiexec (Hydra), or srun --mpi=pmi2), but MPI (Open MPI v4.1.4) connected 1 (this "
                 "process alone)") != std::string::npos);
  CHECK(pmi.find("Open MPI's mpirun -np N instead of this launcher, or with srun --mpi=pmix") != std::string::npos);
  // Built with another MPI library: its own mpirun, not Open MPI's.
  const std::string mpich = dist::detail::launcher_mismatch("PMI_SIZE", 4, 1, "MPICH Version: 4.0.2");
  CHECK(mpich.find("Open MPI's mpirun") == std::string::npos);
  CHECK(mpich.find("the mpirun of the MPI library mpncov was built with") != std::string::npos);
  const std::string slurm = dist::detail::launcher_mismatch("SLURM_STEP_NUM_TASKS", 2, 1, "");
  INFO(slurm);
  CHECK(slurm.find("SLURM_STEP_NUM_TASKS=2 says a launcher started 2 processes (SLURM_STEP_NUM_TASKS is set by "
                   "Slurm's srun)") != std::string::npos);
  CHECK(slurm.find("MPI (this build's library)") != std::string::npos);
  CHECK(slurm.find("srun --mpi=pmix") != std::string::npos);
  CHECK(slurm.find("srun --mpi=list") != std::string::npos);
  const std::string ompi = dist::detail::launcher_mismatch("OMPI_COMM_WORLD_SIZE", 8, 4, "Open MPI v4.1.4");
  INFO(ompi);
  CHECK(ompi.find("OMPI_COMM_WORLD_SIZE=8 says a launcher started 8 processes (OMPI_COMM_WORLD_SIZE is set by Open "
                  "MPI's mpirun/mpiexec), but MPI (Open MPI v4.1.4) connected 4: ") != std::string::npos);
  CHECK(ompi.find("the mpirun of the MPI library mpncov was built with") != std::string::npos);
  const std::string none = dist::detail::launcher_without_mpi("PMI_SIZE", 2);
  INFO(none);
  CHECK(none.find("PMI_SIZE=2 says a launcher started 2 processes (PMI_SIZE is set by a PMI launcher") !=
        std::string::npos);
  CHECK(none.find("this build of mpncov has no MPI") != std::string::npos);
  CHECK(none.find("mpirun -np N") != std::string::npos);
  CHECK(none.find("srun --mpi=pmix") != std::string::npos);
}

}  // TEST_SUITE
