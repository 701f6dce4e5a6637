// MPI transport: MPI_COMM_WORLD. Collectives on CPU tensors run on one communication thread, in the order
// they are issued, so the training thread goes on (the next layers' backward) while a bucket is reduced;
// Open MPI's shared-memory and TCP transports make progress only inside MPI calls, which that thread is
// in. CUDA tensors go to NCCL when the build has it, else through host copies. A watchdog
// (core/dist/mpi_watchdog.h) ends the run when a collective on that thread waits past run.dist_timeout.
// The C API only: the deprecated C++ bindings would need their own library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/context.h"
#include "core/dist/backends.h"
#include "core/dist/mpi_watchdog.h"

namespace mpncov::dist::detail {
namespace {

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I64: return MPI_INT64_T;
    default: MPNCOV_FAIL("MPI collectives take float32, float64 or int64 tensors, got ", dtype_name(t));
  }
}

// A collective handed to the communication thread; wait() blocks until that thread has run it.
class QueuedWork : public Work {
 public:
  void wait() override {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return done_; });
    if (!error_.empty()) throw Error(error_);
  }
  void finish(std::string error) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::move(error);
    done_ = true;
    done_cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::string error_;
};

// A CUDA tensor reduced through a host copy: the result goes back to the device at wait().
class StagedWork : public Work {
 public:
  StagedWork(WorkHandle inner, Tensor host, Tensor device) : inner_(std::move(inner)), host_(std::move(host)), device_(std::move(device)) {}
  void wait() override {
    inner_->wait();
    device_.copy_from(host_);
  }

 private:
  WorkHandle inner_;
  Tensor host_, device_;
};

// Test-only: MPNCOV_TEST_STALL="RANK:COLLECTIVE:SECONDS" makes process RANK sleep for SECONDS before it
// issues its collective number COLLECTIVE (counted from 1), as a process stuck outside communication
// would (the watchdog test, tests/dist/test_dist_runs.cpp).
struct Stall {
  int rank = -1;
  int64_t collective = 0;
  double seconds = 0;
};

Stall stall_from_environment() {
  Stall s;
  const char* text = std::getenv("MPNCOV_TEST_STALL");
  if (text && std::sscanf(text, "%d:%" SCNd64 ":%lf", &s.rank, &s.collective, &s.seconds) != 3)
    MPNCOV_FAIL("MPNCOV_TEST_STALL=", text, ": expected RANK:COLLECTIVE:SECONDS");
  return s;
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    int initialised = 0, provided = 0;
    MPI_Initialized(&initialised);
    if (!initialised) MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    else MPI_Query_thread(&provided);
    MPNCOV_CHECK(provided >= MPI_THREAD_SERIALIZED, "the MPI library offers thread level ", provided,
                 "; mpncov needs MPI_THREAD_SERIALIZED or more (its collectives run on their own thread)");
    // Errors come back as codes and become mpncov errors naming the rank (the trainer then ends the run).
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    watchdog_ = std::make_unique<CollectiveWatchdog>(rank_, size_, provided == MPI_THREAD_MULTIPLE,
                                                     [this](int code, const std::string& m) { abort(code, m); });
    thread_ = std::thread([this] { run(); });
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      queue_cv_.notify_all();
    }
    thread_.join();
    watchdog_.reset();
    nccl_.reset();
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string describe() const override {
    std::string s = str("MPI, ", size_, " processes (", local_size_, " on this machine)");
    if (nccl_built() && cuda_built()) s += ", NCCL for CUDA tensors";
    return s;
  }

  WorkHandle all_reduce_async(const Tensor& t) override {
    MPNCOV_CHECK(t.defined(), "all_reduce: undefined tensor");
    if (t.device().is_cuda()) {
      if (nccl_built()) return nccl(t.device().index).all_reduce(t);
      const Tensor host = t.to(Device::cpu());
      return std::make_shared<StagedWork>(all_reduce_async(host), host, t);
    }
    const MPI_Datatype type = mpi_type(t.dtype());
    void* p = t.numel() ? t.raw() : nullptr;
    const int64_t n = t.numel();
    const size_t element = dtype_size(t.dtype());
    return enqueue("MPI_Allreduce", [p, n, type, element] {
      for (int64_t done = 0; done < n;) {
        const int count = static_cast<int>(std::min<int64_t>(n - done, INT_MAX / 2));
        const int rc = MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(p) + done * static_cast<int64_t>(element),
                                     count, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        done += count;
      }
      return static_cast<int>(MPI_SUCCESS);
    }, t);
  }

  WorkHandle broadcast_async(const Tensor& t, int root) override {
    MPNCOV_CHECK(t.defined(), "broadcast: undefined tensor");
    MPNCOV_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of ", size_, " processes");
    if (t.device().is_cuda()) {
      if (nccl_built()) return nccl(t.device().index).broadcast(t, root);
      const Tensor host = t.to(Device::cpu());
      return std::make_shared<StagedWork>(broadcast_async(host, root), host, t);
    }
    const MPI_Datatype type = mpi_type(t.dtype());
    void* p = t.numel() ? t.raw() : nullptr;
    const int64_t n = t.numel();
    const size_t element = dtype_size(t.dtype());
    return enqueue("MPI_Bcast", [p, n, type, element, root] {
      for (int64_t done = 0; done < n;) {
        const int count = static_cast<int>(std::min<int64_t>(n - done, INT_MAX / 2));
        const int rc = MPI_Bcast(static_cast<char*>(p) + done * static_cast<int64_t>(element), count, type, root,
                                 MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        done += count;
      }
      return static_cast<int>(MPI_SUCCESS);
    }, t);
  }

  void set_timeout(double seconds) override {
    MPNCOV_CHECK(seconds >= 0, "the collectives' timeout must be 0 (none) or positive, got ", seconds, " s");
    watchdog_->set_timeout(seconds);
  }

  void barrier() override {
    enqueue("MPI_Barrier", [] { return MPI_Barrier(MPI_COMM_WORLD); }, Tensor())->wait();
  }

  [[noreturn]] void abort(int code, const std::string& message) override {
    std::fprintf(stderr, "mpncov rank %d of %d: %s\n", rank_, size_, message.c_str());
    std::fflush(stderr);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is in case a library's does
  }

 private:
  struct Job {
    const char* name;
    std::function<int()> call;
    Tensor keep;  // the tensor stays alive until the call has run
    std::shared_ptr<QueuedWork> work;
  };

  WorkHandle enqueue(const char* name, std::function<int()> call, Tensor keep) {
    if (++issued_ == stall_.collective && rank_ == stall_.rank)
      std::this_thread::sleep_for(std::chrono::duration<double>(stall_.seconds));
    auto work = std::make_shared<QueuedWork>();
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back({name, std::move(call), std::move(keep), work});
    queue_cv_.notify_one();
    return work;
  }

  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      watchdog_->started(job.name);
      const int rc = job.call();
      watchdog_->finished();
      job.work->finish(rc == MPI_SUCCESS ? "" : str("rank ", rank_, ": ", job.name, " failed: ", mpi_error(rc)));
    }
  }

  DeviceCollectives& nccl(int device) {
    if (!nccl_) {
      nccl_ = make_nccl(rank_, size_, device, [this](void* bytes, size_t n) {
        enqueue("MPI_Bcast (NCCL id)", [bytes, n] {
          return MPI_Bcast(bytes, static_cast<int>(n), MPI_BYTE, 0, MPI_COMM_WORLD);
        }, Tensor())->wait();
      });
      nccl_device_ = device;
    }
    MPNCOV_CHECK(device == nccl_device_, "collectives on cuda:", device, " after cuda:", nccl_device_,
                 ": a process uses one GPU");
    return *nccl_;
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable queue_cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::unique_ptr<DeviceCollectives> nccl_;
  int nccl_device_ = -1;
  std::unique_ptr<CollectiveWatchdog> watchdog_;
  const Stall stall_ = stall_from_environment();
  std::atomic<int64_t> issued_{0};
};

}  // namespace

bool mpi_built() { return true; }

std::string mpi_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string s(text, static_cast<size_t>(length));
  if (const size_t cut = s.find_first_of(",\n"); cut != std::string::npos) s.resize(cut);
  return s;
}

std::unique_ptr<Communicator> make_mpi_world() { return std::make_unique<MpiCommunicator>(); }

}  // namespace mpncov::dist::detail
