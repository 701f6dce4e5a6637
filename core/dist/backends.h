// What core/dist/communicator.cpp needs from the transports, each compiled only when the build has it:
// core/dist/mpi.cpp or mpi_absent.cpp, core/dist/nccl.cpp or nccl_absent.cpp.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "core/dist/communicator.h"

namespace mpncov::dist::detail {

// ---- MPI ----
bool mpi_built();
std::string mpi_version();  // the library's own version line; "" without MPI
// The MPI_COMM_WORLD communicator (initialises MPI); throws without MPI.
std::unique_ptr<Communicator> make_mpi_world();

// The errors of a launch whose processes are not connected: `variable` (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
// SLURM_STEP_NUM_TASKS) announced `expected` processes and MPI `library` connected `connected`, or the build
// has no MPI. Each names the variable, the launcher that sets it, the launchers supported and what to do.
std::string launcher_mismatch(const std::string& variable, int expected, int connected, const std::string& library);
std::string launcher_without_mpi(const std::string& variable, int expected);

// ---- NCCL: collectives over the CUDA tensors of one device ----
class DeviceCollectives {
 public:
  virtual ~DeviceCollectives() = default;
  virtual WorkHandle all_reduce(const Tensor& t) = 0;
  virtual WorkHandle broadcast(const Tensor& t, int root) = 0;
};
bool nccl_built();
std::string nccl_version();  // "" without NCCL
// Joins the NCCL clique of `size` processes on CUDA device `device`; share_id(bytes, n) must copy rank
// 0's n bytes to every rank (the MPI transport does it). Throws without NCCL.
std::unique_ptr<DeviceCollectives> make_nccl(int rank, int size, int device,
                                             const std::function<void(void*, size_t)>& share_id);

}  // namespace mpncov::dist::detail
