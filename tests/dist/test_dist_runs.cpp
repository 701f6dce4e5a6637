// `mpirun -np 2 mpncov train` end to end: bit-exact resume on 2 processes, resume of a 2-process run on 1,
// a killed rank stopping the other, an error on one rank, a stuck rank stopped by the watchdog; and the
// same run under Slurm's srun where Slurm is at hand. Skipped (not passed) without MPI (or Slurm).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "core/dist/communicator.h"
#include "core/npy.h"
#include "core/safetensors.h"
#include "data/synthetic.h"
#include "tests/helpers.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace mpncov;
namespace fs = std::filesystem;

namespace {

bool mpi_ready() {
  const std::string mpirun = MPNCOV_MPIRUN;
  return dist::mpi_built() && !mpirun.empty() && mpirun.find("NOTFOUND") == std::string::npos;
}

// The launcher, as 2 processes of one thread each. Leak checks are off in sanitizer builds: Open MPI's
// components leave allocations that are seen only after they are unloaded (CMakeLists.txt says more).
std::string launcher() {
  return str("ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 ", MPNCOV_MPIRUN,
             " --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 ");
}

// The shell command that runs `mpncov ARGS` under the launcher.
std::string mpirun(const std::string& args) { return str(launcher(), MPNCOV_BINARY_DIR, "/mpncov ", args); }

int exit_status(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// How this machine can run srun, "" when it cannot: the prefix that runs a command where srun works.
// Inside a Slurm allocation, nothing but `env`; as root with Slurm's daemons installed (not by install-deps.sh), a
// throwaway one-machine cluster around the command (scripts/slurm-local.sh run).
std::string slurm_prefix() {
  if (!mpi_ready()) return "";
  if (std::getenv("SLURM_JOB_ID") && exit_status("which srun > /dev/null 2>&1") == 0) return "env";
  if (geteuid() == 0 && exit_status("which slurmctld slurmd sinfo srun > /dev/null 2>&1") == 0)
    return str(MPNCOV_SOURCE_DIR, "/scripts/slurm-local.sh run");
  return "";
}

// 21 training images (odd: the last shard is padded) and 9 validation images, an experiment over them.
std::string experiment(const fs::path& dir, const std::string& extra = "") {
  test::write_tiny_image_folder(dir, 7, 3);
  const fs::path file = dir / "exp.yaml";
  std::ofstream(file) << "model:\n  net: small_cnn\n  representation: {type: mpncov, reduce: 6, iterations: 3}\n"
                      << "data: {train: " << (dir / "data/train").string() << ", val: " << (dir / "data/val").string()
                      << ", preset: plain, image_size: 16, batch: 4, workers: 1}\n"
                      << "solver: {lr: 0.02, epochs: 2, schedule: {type: step, milestones: [1]}}\n"
                      << "run: {device: cpu, out: " << (dir / "run").string() << ", print_every: 1}\n" << extra;
  return file.string();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void check_identical(const fs::path& a, const fs::path& b) {
  const SafetensorsFile fa = load_safetensors(a.string()), fb = load_safetensors(b.string());
  REQUIRE(fa.names == fb.names);
  for (const std::string& n : fa.names) {
    INFO(n);
    CHECK(fa.tensors.at(n).to_vector() == fb.tensors.at(n).to_vector());
  }
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("dist runs: 2 processes stopped and resumed end bit for bit as an uninterrupted run - 1 process continues "
          "their checkpoint" * doctest::skip(!mpi_ready())) {
  const fs::path straight = test::temp_dir("dist_straight"), resumed = test::temp_dir("dist_resumed");
  const std::string quiet = " --quiet --set model.sync_bn=true --set solver.scale_lr=linear > /dev/null 2>&1";
  REQUIRE(exit_status(mpirun("train " + experiment(straight) + quiet)) == 0);
  const std::string exp = experiment(resumed);
  REQUIRE(exit_status(mpirun("train " + exp + " --stop-after 4" + quiet)) == 130);  // mid-way through epoch 2
  fs::copy_file(resumed / "run/last.safetensors", resumed / "stopped.safetensors");
  REQUIRE(exit_status(mpirun("train " + exp + " --resume" + quiet)) == 0);
  check_identical(straight / "run/last.safetensors", resumed / "run/last.safetensors");
  const std::string log = read_text(straight / "run/log.txt");
  CHECK(log.find("global batch 8 = 4 per process x 2 processes") != std::string::npos);
  CHECK(log.find("group features: 9 tensors, 56480 parameters (56480 trainable), lr 0.04,") != std::string::npos);
  CHECK(!fs::exists(straight / "run/log.txt.1"));  // one log: rank 0's
  // 2 -> 1: the single process loads the 2-process checkpoint, says the data order changed and finishes.
  TrainOptions options;
  options.quiet = true;
  options.resume = true;
  options.resume_path = (resumed / "stopped.safetensors").string();
  CHECK(train(load_experiment(exp, {"run.out=" + (resumed / "single").string(), "model.sync_bn=true",
                                    "solver.scale_lr=linear"}), options) == 0);
  const std::string single_log = read_text(resumed / "single/log.txt");
  CHECK(single_log.find("saved by 2 process(es), this run has 1: weights, momentum and epoch continue, the data order "
                        "changed") != std::string::npos);
  CHECK(single_log.find("epoch 2/2: train loss") != std::string::npos);
}

TEST_CASE("dist runs: a killed rank makes the other exit non-zero within 10 seconds - the last checkpoint loads" *
          doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_killed");
  const std::string exp = experiment(dir, "");
  // Rank 1 kills itself (SIGKILL: no clean-up of any kind) 3 s in, noting the time.
  const std::string killed = (dir / "killed_at").string();
  const std::string rank_cmd =
      str("sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then (sleep 3; date +%s.%N > ", killed, "; kill -9 $$) & fi; exec ",
          MPNCOV_BINARY_DIR, "/mpncov train ", exp, " --quiet --set solver.epochs=10000'");
  const std::string command = str(launcher(), rank_cmd, " > ", (dir / "out.txt").string(), " 2>&1");
  const int status = exit_status(command);
  const double ended = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(status != 0);
  REQUIRE(fs::exists(killed));
  const double killed_at = std::stod(read_text(killed));
  CHECK(ended - killed_at < 10);
  CHECK(read_text(dir / "out.txt").find("rank 1") != std::string::npos);  // the launcher names the dead rank
  // The last checkpoint (written atomically by rank 0) loads.
  REQUIRE(fs::exists(dir / "run/last.safetensors"));
  Experiment e = load_experiment(exp);
  TrainOptions options;
  options.quiet = true;
  options.resume = true;
  options.stop_after_steps = 0;
  CHECK_NOTHROW(train(e, options));
}

TEST_CASE("dist runs: an error on one rank ends every rank at once with its message" * doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_error");
  const std::string exp = experiment(dir, "");
  // Rank 1 alone is given a training folder that does not exist.
  const std::string rank_cmd = str("sh -c 'extra=; if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then extra=\"--set data.train=", dir.string(),
                                   "/missing\"; fi; exec ", MPNCOV_BINARY_DIR, "/mpncov train ", exp, " --quiet $extra'");
  const auto start = std::chrono::steady_clock::now();
  const int status = exit_status(str(launcher(), rank_cmd, " > ", (dir / "out.txt").string(), " 2>&1"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(status != 0);
  CHECK(seconds < 10);
  const std::string out = read_text(dir / "out.txt");
  INFO(out);
  CHECK(out.find("mpncov rank 1 of 2: error:") != std::string::npos);
  CHECK(out.find("missing") != std::string::npos);
}

TEST_CASE("dist runs: --print-config prints the configuration once, from rank 0" * doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_print_config");
  const std::string exp = experiment(dir, "");
  REQUIRE(exit_status(str(MPNCOV_BINARY_DIR, "/mpncov train ", exp, " --print-config > ", (dir / "one.txt").string())) == 0);
  REQUIRE(exit_status(mpirun("train " + exp + " --print-config > " + (dir / "two.txt").string())) == 0);
  const std::string one = read_text(dir / "one.txt");
  REQUIRE(one.find("model:") != std::string::npos);
  CHECK(read_text(dir / "two.txt") == one);
}

TEST_CASE("dist runs: a rank that finds other training images stops the run, naming both counts" *
          doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_other_data");
  const std::string exp = experiment(dir, "");
  // Rank 1's copy of the data has more images (a machine's own, different copy): its steps and collectives
  // would not match rank 0's (it crashed with a corrupted heap, or waited until run.dist_timeout).
  const fs::path other = dir / "other";
  fs::remove_all(other);
  fs::copy(dir / "data/train", other, fs::copy_options::recursive);
  for (const auto& entry : fs::recursive_directory_iterator(dir / "data/train"))
    if (entry.is_regular_file())
      for (int copy = 0; copy < 3; ++copy)
        fs::copy_file(entry.path(), other / fs::relative(entry.path(), dir / "data/train").parent_path() /
                                        str("copy", copy, "_", entry.path().filename().string()));
  const std::string rank_cmd = str("sh -c 'extra=; if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then extra=\"--set data.train=",
                                   other.string(), "\"; fi; exec ", MPNCOV_BINARY_DIR, "/mpncov train ", exp,
                                   " --quiet --set run.dist_timeout=5 $extra'");
  const int status = exit_status(str(launcher(), rank_cmd, " > ", (dir / "out.txt").string(), " 2>&1"));
  const std::string out = read_text(dir / "out.txt");
  INFO(out);
  CHECK(status != 0);
  CHECK(out.find("mpncov rank 1 of 2: error: data.train") != std::string::npos);
  CHECK(out.find("finds 84 images, rank 0 21") != std::string::npos);
}

TEST_CASE("dist runs: mpirun -np 2 mpncov eval splits the images and prints once what one process prints" *
          doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_eval");
  const std::string exp = experiment(dir);
  TrainOptions options;
  options.quiet = true;
  options.force = true;
  REQUIRE(train(load_experiment(exp, {"solver.epochs=1"}), options) == 0);
  for (const char* crops : {"1", "2"}) {
    INFO("--crops ", crops);
    const std::string args = str("eval ", exp, " --crops ", crops, " --set data.val_batch=2");
    REQUIRE(exit_status(str(MPNCOV_BINARY_DIR, "/mpncov ", args, " > ", (dir / "one.txt").string(), " 2>&1")) == 0);
    REQUIRE(exit_status(mpirun(str(args, " > ", (dir / "two.txt").string(), " 2>&1"))) == 0);
    const std::string one = read_text(dir / "one.txt"), two = read_text(dir / "two.txt");
    INFO(one, "\n---\n", two);
    const std::string result = one.substr(one.rfind("data/val: "));  // "data/val: 9 images, 1-crop: loss ..."
    CHECK(result.find("9 images") != std::string::npos);
    const size_t at = two.find(result);
    CHECK(at != std::string::npos);
    CHECK(two.find("data/val: ", at + 1) == std::string::npos);  // rank 1 prints no result of its own
  }
}

TEST_CASE("dist runs: mpirun -np 2 mpncov extract runs on rank 0 alone, writing what one process writes" *
          doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_extract");
  const std::string exp = experiment(dir);
  TrainOptions options;
  options.quiet = true;
  options.force = true;
  REQUIRE(train(load_experiment(exp, {"solver.epochs=1"}), options) == 0);
  const std::string args = str("extract ", exp, " --images ", (dir / "data/val").string(), " --layer representation");
  REQUIRE(exit_status(str(MPNCOV_BINARY_DIR, "/mpncov ", args, " --out ", (dir / "one.npy").string(), " > ",
                          (dir / "one.txt").string(), " 2>&1")) == 0);
  // Under mpirun rank 0 alone extracts and writes; rank 1 says so and exits.
  REQUIRE(exit_status(mpirun(str(args, " --out ", (dir / "two.npy").string(), " > ", (dir / "two.txt").string(), " 2>&1"))) == 0);
  const std::string two = read_text(dir / "two.txt");
  INFO(two);
  const size_t wrote = two.find("wrote " + (dir / "two.npy").string());
  CHECK(wrote != std::string::npos);
  CHECK(two.find("wrote " + (dir / "two.npy").string(), wrote + 1) == std::string::npos);  // once
  CHECK(two.find("2 processes were started; rank 0 extracts alone") != std::string::npos);
  CHECK(two.find("rank 1 of 2: nothing to do here") != std::string::npos);
  CHECK(load_npy((dir / "two.npy").string()).to_vector() == load_npy((dir / "one.npy").string()).to_vector());
  CHECK(read_text(dir / "two-labels.txt") == read_text(dir / "one-labels.txt"));
}

TEST_CASE("dist runs: mpirun -np 2 mpncov quickstart makes the dataset once, on rank 0, and trains on it" *
          doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_quickstart");
  fs::remove_all(dir / "qs");
  // Each rank used to write the dataset too, or read rank 0's half-written folder and stop.
  const int status = exit_status(mpirun(str("quickstart --out ", (dir / "qs").string(), " --epochs 1 --quiet ",
                                            "--set data.image_size=16 > ", (dir / "out.txt").string(), " 2>&1")));
  const std::string out = read_text(dir / "out.txt");
  INFO(out);
  CHECK(status == 0);
  const size_t making = out.find("making the dataset");
  CHECK(making != std::string::npos);
  CHECK(out.find("making the dataset", making + 1) == std::string::npos);
  CHECK(read_text(dir / "qs/log.txt").find("global batch") != std::string::npos);
}

TEST_CASE("dist runs: a launch whose processes MPI does not connect stops, naming the variable seen and the launchers "
          "supported" * doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_pmi_only");
  const std::string exp = experiment(dir);
  // PMI_SIZE alone (MPICH's mpiexec, srun --mpi=pmi2) with Open MPI's library: MPI connects this process
  // alone. The message named srun only.
  const int status = exit_status(str("env -u OMPI_COMM_WORLD_SIZE -u SLURM_STEP_NUM_TASKS PMI_SIZE=2 ", MPNCOV_BINARY_DIR,
                                     "/mpncov train ", exp, " --quiet > ", (dir / "out.txt").string(), " 2>&1"));
  const std::string out = read_text(dir / "out.txt");
  INFO(out);
  CHECK(status != 0);
  CHECK(out.find("PMI_SIZE=2 says a launcher started 2 processes (PMI_SIZE is set by a PMI launcher") !=
        std::string::npos);
  CHECK(out.find("), but MPI (") != std::string::npos);
  CHECK(out.find("connected 1 (this process alone)") != std::string::npos);
  CHECK(out.find("mpirun -np N") != std::string::npos);
  CHECK(out.find("srun --mpi=pmix") != std::string::npos);
  CHECK(!fs::exists(dir / "run/log.txt"));
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("dist runs: srun -n 2 --mpi=pmix trains bit for bit as mpirun -np 2, rank 0 alone writing" *
          doctest::skip(slurm_prefix().empty()) *
          doctest::description("srun: no Slurm allocation, and no slurmctld/slurmd to start one as root")) {
  const fs::path dir = test::temp_dir("dist_srun");
  const std::string exp = experiment(dir);
  const std::string quiet = " --quiet --set model.sync_bn=true";
  REQUIRE(exit_status(mpirun("train " + exp + " --set run.out=" + (dir / "mpirun").string() + quiet + " > /dev/null 2>&1")) == 0);
  // Threads are left to the default: each task gets the CPUs Slurm bound it to.
  const std::string srun = str("ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 ", slurm_prefix(),
                               " srun -n 2 --mpi=pmix --kill-on-bad-exit=1 ", MPNCOV_BINARY_DIR, "/mpncov train ", exp, quiet,
                               " > ", (dir / "out.txt").string(), " 2>&1");
  const int status = exit_status(srun);
  const std::string out = read_text(dir / "out.txt");
  INFO(out);
  REQUIRE(status == 0);
  check_identical(dir / "mpirun/last.safetensors", dir / "run/last.safetensors");
  const std::string log = read_text(dir / "run/log.txt");
  CHECK(log.find("data-parallel: MPI, 2 processes (2 on this machine)") != std::string::npos);
  CHECK(log.find("global batch 8 = 4 per process x 2 processes") != std::string::npos);
  CHECK(!fs::exists(dir / "run/log.txt.1"));
}

TEST_CASE("dist runs: under srun --kill-on-bad-exit, a killed rank ends the other within 10 seconds" *
          doctest::skip(slurm_prefix().empty()) *
          doctest::description("srun: no Slurm allocation, and no slurmctld/slurmd to start one as root")) {
  const fs::path dir = test::temp_dir("dist_srun_killed");
  const std::string exp = experiment(dir);
  // Slurm ends the step and sends SIGTERM to rank 0, which waits for rank 1 in a collective: it must not
  // wait for the SIGKILL that follows 30 s later (KillWait), but give up a few seconds after the signal.
  // The times are taken inside the script, not counting a throwaway Slurm's start and stop.
  const std::string killed = (dir / "killed_at").string(), ended = (dir / "ended_at").string();
  const fs::path script = dir / "launch.sh";
  std::ofstream(script) << "export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1\n"
                        << "srun -n 2 --mpi=pmix --kill-on-bad-exit=1 sh -c 'if [ \"$SLURM_PROCID\" = 1 ]; then (sleep 3; "
                        << "date +%s.%N > " << killed << "; kill -9 $$) & fi; exec " << MPNCOV_BINARY_DIR << "/mpncov train "
                        << exp << " --quiet --set solver.epochs=10000'\nstatus=$?\ndate +%s.%N > " << ended << "\nexit $status\n";
  const int status = exit_status(str(slurm_prefix(), " sh ", script.string(), " > ", (dir / "out.txt").string(), " 2>&1"));
  const std::string out = read_text(dir / "out.txt");
  INFO(out);
  CHECK(status != 0);
  REQUIRE(fs::exists(killed));
  REQUIRE(fs::exists(ended));
  CHECK(std::stod(read_text(ended)) - std::stod(read_text(killed)) < 10);
  CHECK(out.find("mpncov rank 0 of 2: stopped by signal 15 while") != std::string::npos);
}

TEST_CASE("dist runs: a rank stuck outside communication makes the others stop after run.dist_timeout, naming it" *
          doctest::skip(!mpi_ready())) {
  const fs::path dir = test::temp_dir("dist_stuck");
  const std::string exp = experiment(dir);
  // Rank 1 sleeps 60 s before its 2nd collective, right after the first (train()'s barrier), so no slowness
  // of either before then can make rank 0 time out elsewhere. Rank 0 waits in the first collective of the
  // setup that needs rank 1 (a root's small broadcasts may end without the others).
  const std::string command = str(launcher(), "-x MPNCOV_TEST_STALL=1:2:60 ", MPNCOV_BINARY_DIR, "/mpncov train ", exp,
                                  " --quiet --set run.dist_timeout=2 > ", (dir / "out.txt").string(), " 2>&1");
  const auto start = std::chrono::steady_clock::now();
  const int status = exit_status(command);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string out = read_text(dir / "out.txt");
  INFO(out);
  CHECK(status != 0);
  CHECK(seconds < 30);  // not the 60 s of the stall
  CHECK(out.find("mpncov rank 0 of 2: error: MPI_") != std::string::npos);
  CHECK(out.find(" for the other processes (run.dist_timeout 2 s). Not reached by rank 1 (its collective 1 ended") !=
        std::string::npos);
}

}  // TEST_SUITE
