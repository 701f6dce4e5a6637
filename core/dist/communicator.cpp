#include "core/dist/communicator.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

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

// The launcher variable that announced the process count, and its value ({nullptr, 0}: none did). The MPI
// launchers' own variables come first (Open MPI, then PMI-1/2 as MPICH's Hydra and srun --mpi=pmi2 set it):
// mpirun inside a Slurm allocation starts its daemons with srun, and its processes inherit that step's
// SLURM_STEP_NUM_TASKS (one per machine). srun --mpi=pmix sets only SLURM_STEP_NUM_TASKS (and PMIX_RANK),
// which an sbatch script's own process does not have.
struct LauncherSize {
  const char* variable = nullptr;
  int size = 0;
};

LauncherSize launcher_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"})
    if (const char* s = std::getenv(v)) return {v, std::max(1, std::atoi(s))};
  return {};
}

bool launcher_present() {
  return launcher_size().size > 0 || std::getenv("PMIX_RANK") != nullptr || std::getenv("MPI_LOCALNRANKS") != nullptr;
}

// Which launcher sets the variable, for the messages.
const char* launcher_of(const std::string& variable) {
  if (variable == "OMPI_COMM_WORLD_SIZE") return "Open MPI's mpirun/mpiexec";
  if (variable == "PMI_SIZE") return "a PMI launcher: MPICH's or Intel MPI's mpiexec (Hydra), or srun --mpi=pmi2";
  return "Slurm's srun";
}

const char* kSupportedLaunchers =
    "mpncov trains data-parallel under the mpirun (or mpiexec) of the MPI library it was built with (Open MPI: "
    "mpirun -np N mpncov ...), or under srun with that library's plugin (Open MPI: srun --mpi=pmix)";

}  // namespace

namespace detail {

std::string launcher_mismatch(const std::string& variable, int expected, int connected, const std::string& library) {
  std::string what = str(variable, "=", expected, " says a launcher started ", expected, " processes (", variable,
                         " is set by ", launcher_of(variable), "), but MPI (", library.empty() ? "this build's library" : library, ") connected ",
                         connected, connected == 1 ? " (this process alone)" : "", ": each would run apart from the others. ",
                         kSupportedLaunchers, ". ");
  if (variable == "SLURM_STEP_NUM_TASKS")
    what += "Under srun, give the plugin that matches the MPI library (srun --mpi=list shows a site's)";
  else if (variable == "PMI_SIZE" && library.find("Open MPI") != std::string::npos)
    what += "Start it with Open MPI's mpirun -np N instead of this launcher, or with srun --mpi=pmix";
  else
    what += "Start it with the mpirun of the MPI library mpncov was built with (mpncov info names it)";
  return what;
}

std::string launcher_without_mpi(const std::string& variable, int expected) {
  return str(variable, "=", expected, " says a launcher started ", expected, " processes (", variable, " is set by ",
             launcher_of(variable), "), but this build of mpncov has no MPI: each process would run alone. Install Open MPI ",
             "(scripts/install-deps.sh) and build again; then ", kSupportedLaunchers);
}

}  // namespace detail

std::unique_ptr<Communicator> single_process() { return std::make_unique<SingleProcess>(); }

bool launched_by_mpi() { return launcher_size().size > 1; }

Communicator& world() {
  static std::unique_ptr<Communicator> comm;
  static std::once_flag once;
  std::call_once(once, [] {
    const LauncherSize launched = launcher_size();
    if (launcher_present() && detail::mpi_built()) {
      std::unique_ptr<Communicator> mpi = detail::make_mpi_world();
      // srun --mpi=none, MPICH's mpiexec for an Open MPI build (or a site whose default MPI plugin does not
      // match the MPI library) starts the processes without connecting them: each would train alone, all
      // writing the same run folder.
      if (launched.size > 0 && mpi->size() != launched.size)
        throw Error(detail::launcher_mismatch(launched.variable, launched.size, mpi->size(), detail::mpi_version()));
      comm = std::move(mpi);
    } else if (launched.size > 1) {
      throw Error(detail::launcher_without_mpi(launched.variable, launched.size));
    } else {
      comm = single_process();
    }
  });
  MPNCOV_CHECK(comm, "the communicator could not be made (an earlier error)");
  return *comm;
}

int cpus_per_process(int local_size) {
  const int machine = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  int share = std::max(1, machine / std::max(1, local_size));
  cpu_set_t bound;
  if (sched_getaffinity(0, sizeof(bound), &bound) == 0) share = std::min(share, std::max(1, CPU_COUNT(&bound)));
  return share;
}

namespace {
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");
}  // namespace

void note_stop_signal(int signal) { g_stop_signal.store(signal); }
int stop_signal() { return g_stop_signal.load(); }

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
