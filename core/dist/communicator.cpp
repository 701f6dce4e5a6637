#include "core/dist/communicator.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/context.h"
#include "core/dist/backends.h"

namespace mpncov::dist {
namespace {

class DoneWork : public Work {
 public:
  void wait() override {}
};

// One process: the sum over processes is the tensor itself, and so is the broadcast.
class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  WorkHandle all_reduce_async(const Tensor& t) override {
    check(t, "all_reduce");
    return std::make_shared<DoneWork>();
  }
  WorkHandle broadcast_async(const Tensor& t, int root) override {
    check(t, "broadcast");
    MPNCOV_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a single process");
    return std::make_shared<DoneWork>();
  }
  void barrier() override {}
  [[noreturn]] void abort(int code, const std::string& message) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(code);
  }

 private:
  static void check(const Tensor& t, const char* op) {
    MPNCOV_CHECK(t.defined(), op, ": undefined tensor");
    MPNCOV_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64 || t.dtype() == DType::I64, op, ": ",
                 t.str(), " is not float32, float64 or int64");
  }
};

// The variables the launchers set: Open MPI, MPICH/Intel MPI (Hydra), PMI-2 and PMIx (srun).
const char* const kLauncherSizeVariables[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};

bool launcher_present() {
  for (const char* v : kLauncherSizeVariables)
    if (std::getenv(v)) return true;
  return std::getenv("PMIX_RANK") != nullptr;
}

}  // namespace

std::unique_ptr<Communicator> single_process() { return std::make_unique<SingleProcess>(); }

bool launched_by_mpi() {
  for (const char* v : kLauncherSizeVariables)
    if (const char* s = std::getenv(v); s && std::atoi(s) > 1) return true;
  return false;
}

Communicator& world() {
  static std::unique_ptr<Communicator> comm;
  static std::once_flag once;
  std::call_once(once, [] {
    if (launcher_present() && detail::mpi_built()) {
      comm = detail::make_mpi_world();
    } else if (launched_by_mpi()) {
      throw Error("started by an MPI launcher with several processes, but this build of mpncov has no MPI: "
                  "each process would train alone. Install Open MPI (scripts/install-deps.sh) and build again");
    } else {
      comm = single_process();
    }
  });
  MPNCOV_CHECK(comm, "the communicator could not be made (an earlier error)");
  return *comm;
}

bool mpi_built() { return detail::mpi_built(); }
bool nccl_built() { return detail::nccl_built(); }

std::string build_summary() {
  if (!detail::mpi_built()) return "not built (no MPI found at configure time): single process only";
  std::string s = "MPI (" + detail::mpi_version() + ") for CPU tensors";
  s += detail::nccl_built() ? ", NCCL " + detail::nccl_version() + " for CUDA tensors"
                            : (cuda_built() ? ", CUDA tensors through host copies (no NCCL)" : "");
  return s;
}

}  // namespace mpncov::dist
