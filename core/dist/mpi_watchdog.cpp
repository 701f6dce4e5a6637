#include "core/dist/mpi_watchdog.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/dist/communicator.h"
#include "core/error.h"

namespace mpncov::dist::detail {
namespace {

constexpr int kQuestionTag = 1;
constexpr int kAnswerTag = 2;
constexpr auto kPollEvery = std::chrono::milliseconds(200);  // how soon a question is answered
constexpr double kAnswerWithin_s = 5;                        // a process silent longer is hung as a whole
constexpr double kAfterStopSignal_s = 5;                     // the others' last step ends sooner (or never)

std::string seconds_text(double s) {
  char text[32];
  std::snprintf(text, sizeof text, s < 10 ? "%.1f s" : "%.0f s", s);
  return text;
}

}  // namespace

CollectiveWatchdog::CollectiveWatchdog(int rank, int size, bool can_ask,
                                       std::function<void(int, const std::string&)> end_run)
    : rank_(rank), size_(size), can_ask_(can_ask), end_run_(std::move(end_run)) {
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);  // a question to a process that is gone is not an error
  thread_ = std::thread([this] { watch(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    stop_cv_.notify_all();
  }
  thread_.join();
  MPI_Comm_free(&comm_);
}

void CollectiveWatchdog::started(const char* name) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++collective_;
  running_ = true;
  name_ = name;
  since_ = Clock::now();
}

void CollectiveWatchdog::finished() {
  std::lock_guard<std::mutex> lock(mutex_);
  running_ = false;
  since_ = Clock::now();
}

CollectiveWatchdog::Position CollectiveWatchdog::position() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Position p;
  p.collective = collective_;
  p.running = running_ ? 1 : 0;
  p.seconds = std::chrono::duration<double>(Clock::now() - since_).count();
  std::strncpy(p.name, name_, sizeof p.name - 1);
  return p;
}

void CollectiveWatchdog::watch() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (stop_cv_.wait_for(lock, kPollEvery, [&] { return stopping_; })) return;
    }
    if (can_ask_) answer_questions();
    const double timeout = timeout_s_;
    const Position mine = position();
    if (timeout > 0 && mine.running && mine.seconds > timeout) report_hang(mine);
    if (const int signal = stop_signal()) {
      if (stop_signal_seen_ == Clock::time_point{}) stop_signal_seen_ = Clock::now();
      const double since_signal = std::chrono::duration<double>(Clock::now() - stop_signal_seen_).count();
      if (mine.running && std::min(mine.seconds, since_signal) > kAfterStopSignal_s)
        end_run_(128 + signal, str("stopped by signal ", signal, " while ", mine.name, " (collective ", mine.collective,
                                   ") has waited ", seconds_text(mine.seconds), " for the other processes: one of them "
                                   "is gone (srun --kill-on-bad-exit signals the others of a process that died). No "
                                   "checkpoint is saved; --resume continues from the last one"));
    }
  }
}

void CollectiveWatchdog::answer_questions() {
  for (;;) {
    int pending = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kQuestionTag, comm_, &pending, &status) != MPI_SUCCESS || !pending) return;
    char question = 0;
    MPI_Recv(&question, 1, MPI_CHAR, status.MPI_SOURCE, kQuestionTag, comm_, MPI_STATUS_IGNORE);
    Position p = position();
    MPI_Send(&p, sizeof p, MPI_BYTE, status.MPI_SOURCE, kAnswerTag, comm_);
  }
}

void CollectiveWatchdog::report_hang(const Position& mine) {
  std::string message = str("error: ", mine.name, " (collective ", mine.collective, " of this process) has waited ",
                            seconds_text(mine.seconds), " for the other processes (run.dist_timeout ",
                            static_cast<double>(timeout_s_), " s)");
  if (!can_ask_) {
    end_run_(1, message + "; this MPI library runs one thread at a time, so the others could not be asked where they "
                       "are. Stopping every process");
    std::abort();  // end_run_ does not return
  }
  // Ask everyone at once; answer their questions meanwhile (they may be timing out too).
  std::vector<MPI_Request> asked(static_cast<size_t>(size_), MPI_REQUEST_NULL);
  static const char question = '?';
  for (int r = 0; r < size_; ++r)
    if (r != rank_) MPI_Isend(&question, 1, MPI_CHAR, r, kQuestionTag, comm_, &asked[static_cast<size_t>(r)]);
  std::vector<Position> answers(static_cast<size_t>(size_));
  std::vector<bool> answered(static_cast<size_t>(size_), false);
  answered[static_cast<size_t>(rank_)] = true;
  int missing = size_ - 1;
  const auto deadline = Clock::now() + std::chrono::duration<double>(kAnswerWithin_s);
  while (missing > 0 && Clock::now() < deadline) {
    answer_questions();
    int pending = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kAnswerTag, comm_, &pending, &status) == MPI_SUCCESS && pending) {
      const auto r = static_cast<size_t>(status.MPI_SOURCE);
      MPI_Recv(&answers[r], sizeof(Position), MPI_BYTE, status.MPI_SOURCE, kAnswerTag, comm_, MPI_STATUS_IGNORE);
      if (!answered[r]) --missing;
      answered[r] = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::string not_there, waiting, elsewhere, silent;
  auto add = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
  for (int r = 0; r < size_; ++r) {
    const Position& p = answers[static_cast<size_t>(r)];
    if (r == rank_) continue;
    if (!answered[static_cast<size_t>(r)]) add(silent, str(r));
    else if (p.running && p.collective == mine.collective) add(waiting, str(r));
    else if (p.running) add(elsewhere, str("rank ", r, " waits in ", p.name, " (its collective ", p.collective, ")"));
    else add(not_there, str(r, " (its collective ", p.collective, " ended ", seconds_text(p.seconds), " ago)"));
  }
  if (!not_there.empty())
    message += str(". Not reached by rank ", not_there,
                   ": busy outside communication (stuck in I/O, a deadlock, or much slower than the others)");
  if (!elsewhere.empty()) message += str(". The processes issued different collectives: ", elsewhere);
  if (!silent.empty()) message += str(". No answer within ", kAnswerWithin_s, " s from rank ", silent, " (stopped or hung as a whole)");
  if (!waiting.empty()) message += str(". Waiting in it too: rank ", waiting);
  end_run_(1, message + ". Stopping every process");
  std::abort();  // end_run_ does not return
}

}  // namespace mpncov::dist::detail
