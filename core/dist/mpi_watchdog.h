// Hang protection for the MPI transport (core/dist/mpi.cpp). A process that stops communicating without
// dying (stuck in I/O, a deadlock, a stopped disk) leaves the others in a collective forever: MPI has no
// timeout. The watchdog's thread sees how long this process's current collective has waited; past the
// timeout it asks every other process where it is, over its own duplicate of MPI_COMM_WORLD (each
// process's watchdog answers, whatever its training thread is doing), and ends the run with a message
// that names the processes that did not reach the collective.
//
// After SIGINT/SIGTERM (dist::stop_signal()), a collective still waiting a few seconds later is for a
// process that is gone (srun --kill-on-bad-exit signals the others of a process that died): the watchdog
// ends this process then, whatever the timeout, instead of leaving it to the launcher's SIGKILL.
//
// Asking needs MPI_THREAD_MULTIPLE (the watchdog talks while the communication thread is in a
// collective); with less, the message names the collective only.
#pragma once
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace mpncov::dist::detail {

class CollectiveWatchdog {
 public:
  // Collective on MPI_COMM_WORLD (duplicates it): every process makes its watchdog at the same point.
  // `end_run(code, message)` must end every process (MPI_Abort) and not return.
  CollectiveWatchdog(int rank, int size, bool can_ask, std::function<void(int, const std::string&)> end_run);
  ~CollectiveWatchdog();  // before MPI_Finalize

  // Seconds a collective may wait; 0 turns the watchdog off (answering the others goes on).
  void set_timeout(double seconds) { timeout_s_ = seconds; }

  // The communication thread, around each collective it runs: `name` is a string literal.
  void started(const char* name);
  void finished();

  // Where one process is, as the others are told (sent as bytes: the same program on every process).
  struct Position {
    int64_t collective = 0;  // how many collectives it has started (the one running included)
    int32_t running = 0;     // whether it is inside that collective now
    int32_t unused = 0;
    double seconds = 0;      // since it started it (running) or finished it (not running)
    char name[32] = {};
  };

 private:
  using Clock = std::chrono::steady_clock;
  Position position() const;
  void watch();
  void answer_questions();
  [[noreturn]] void report_hang(const Position& mine);

  int rank_, size_;
  bool can_ask_;
  std::function<void(int, const std::string&)> end_run_;
  Clock::time_point stop_signal_seen_{};  // when the watchdog first saw dist::stop_signal(); epoch: not yet
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::atomic<double> timeout_s_{0};

  mutable std::mutex mutex_;  // guards the position and stopping_
  int64_t collective_ = 0;
  bool running_ = false;
  const char* name_ = "";
  Clock::time_point since_ = Clock::now();
  bool stopping_ = false;
  std::condition_variable stop_cv_;
  std::thread thread_;
};

}  // namespace mpncov::dist::detail
