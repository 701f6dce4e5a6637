// Communication between the processes of one data-parallel run: the small interface the trainer, sync
// batch norm and the gradient reducer are written against, and nothing else in the code knows which
// transport is behind it.
//
//   Communicator& comm = dist::world();   // MPI when started by mpirun/srun, else the single process
//   comm.all_reduce(t);                    // t = sum of t over every process, in place
//   comm.broadcast(t, 0);                  // t = rank 0's t
//
// Transports: the single process (every collective is the identity); MPI (core/dist/mpi.cpp) for CPU
// tensors, and for CUDA tensors NCCL (core/dist/nccl.cpp) when the CUDA backend is built, else MPI through
// host copies. Collectives run in the order they are issued, on every rank the same: the caller must
// issue the same sequence on every process (a different sequence hangs or mixes data, as with MPI).
#pragma once
#include <memory>
#include <string>

#include "core/tensor.h"

namespace mpncov::dist {

// A collective that may still be running. wait() returns once the tensor holds the result (for CUDA
// tensors: once work queued later on the device's stream will see it); throws when the collective failed.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};
using WorkHandle = std::shared_ptr<Work>;

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank and process count on this machine (picks the GPU and sizes the CPU threads).
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  // "single process", "MPI (Open MPI v4.1.4), 2 processes, NCCL for CUDA tensors", ...
  virtual std::string describe() const = 0;

  // Sum over every process, in place, started now and finished by the handle's wait(). float32, float64 or
  // int64, CPU or CUDA, any size (zero included). The tensor must stay alive and untouched until wait().
  virtual WorkHandle all_reduce_async(const Tensor& t) = 0;
  // root's tensor copied into every process's tensor (same shape and dtype everywhere).
  virtual WorkHandle broadcast_async(const Tensor& t, int root) = 0;
  // Returns when every process has called it.
  virtual void barrier() = 0;
  // Hang protection: a collective that has waited `seconds` for the other processes ends every process,
  // naming the ones that did not reach it (0, the default: wait forever). The MPI transport has it; a
  // single process cannot wait for another and ignores it.
  virtual void set_timeout(double seconds) { (void)seconds; }
  // Ends every process of the run at once with `code`, after printing the message on this one's stderr.
  [[noreturn]] virtual void abort(int code, const std::string& message) = 0;

  void all_reduce(const Tensor& t) { all_reduce_async(t)->wait(); }
  void broadcast(const Tensor& t, int root) { broadcast_async(t, root)->wait(); }
};

// The run's communicator, made on first use: MPI when this process was started by an MPI launcher
// (mpirun, mpiexec, srun with PMI/PMIx) and the build has MPI, else the single process. Started by a
// launcher with more than one process in a build without MPI, it throws (each process would train alone).
Communicator& world();
// A communicator of one process (the single-process run; references in tests).
std::unique_ptr<Communicator> single_process();
// Whether the environment says an MPI launcher started this process with more than one process.
bool launched_by_mpi();
// The CPU threads one of `local_size` processes on this machine should use: the CPUs it is bound to
// (srun gives each task its --cpus-per-task, mpirun binds each rank to a core or a socket), and at most the
// machine's CPUs divided among its processes (for launchers that bind nothing).
int cpus_per_process(int local_size);
// The run was asked to stop (SIGINT/SIGTERM): the trainer's signal handler calls it (async-signal-safe).
// The processes agree to stop at the end of the step; but when one of them is gone (srun
// --kill-on-bad-exit sends SIGTERM to the others of a process that died), they would wait for it in a
// collective until SIGKILL. The MPI transport ends a process whose collective still waits a few seconds
// after the signal.
void note_stop_signal(int signal);
int stop_signal();  // the signal noted, 0 if none
// One line for `mpncov info` and the build: "MPI (Open MPI ...), NCCL 2.x" or "not built (no MPI)".
std::string build_summary();
bool mpi_built();
bool nccl_built();

}  // namespace mpncov::dist
