// --precision on the commands (train, eval, extract) and the notice on a CPU without native bfloat16: the
// option overrides solver.precision, reaches the layers (bfloat16 outputs differ from float32's, by
// bfloat16's rounding only), and a CPU that lacks AVX512-BF16 (forced with oneDNN's DNNL_MAX_CPU_ISA) says so
// once and gives the same results.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/npy.h"
#include "core/bf16_support.h"
#include "tests/helpers.h"
#include "train/experiment.h"
#include "train/trainer.h"

using namespace mpncov;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// Runs the mpncov program with the arguments (a shell command line); `env` ("NAME=VALUE ..." or "") goes
// before it on the command line, so only that run sees it.
Result run_mpncov(const std::string& args, const std::string& env = "") {
  static int calls = 0;
  const fs::path out = fs::path(MPNCOV_BINARY_DIR) / "test-tmp" / str("precision-output-", getpid(), "-", ++calls, ".txt");
  fs::create_directories(out.parent_path());
  const std::string line = env + " " + MPNCOV_BINARY_DIR + "/mpncov " + args + " > " + out.string() + " 2>&1";
  const int status = std::system(line.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out)};
  fs::remove(out);
  return r;
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A three-class folder of 16x16 images and a float32 experiment over it (small_cnn with iSQRT-COV).
std::string tiny_experiment(const fs::path& dir) {
  return test::write_tiny_experiment(dir, "{lr: 0.02, momentum: 0.9, epochs: 1}");
}

// Largest |a - b| over the largest |a|.
double relative_difference(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(x[i]));
  }
  return diff / scale;
}

const std::string kNotice = "no native bfloat16 instructions";
const std::string kNoBf16 = "DNNL_MAX_CPU_ISA=AVX512_CORE";  // oneDNN uses no instruction beyond AVX-512 (no BF16)

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("precision: --precision on train, eval and extract overrides solver.precision and reaches the layers") {
  const fs::path dir = test::temp_dir("precision_commands");
  const std::string exp = tiny_experiment(dir);
  // train: --precision wins over --set solver.precision; the run's config.yaml and log record it.
  const Result printed = run_mpncov("train " + exp + " --set solver.precision=tf32 --precision bf16 --print-config");
  REQUIRE(printed.status == 0);
  CHECK(contains(printed.output, "precision: bfloat16"));
  const Result trained = run_mpncov("train " + exp + " --precision bfloat16 --quiet");
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK(contains(read_text(dir / "run/config.yaml"), "precision: bfloat16"));
  CHECK(contains(read_text(dir / "run/log.txt"), "precision bfloat16"));
  for (const std::string command : {"train", "eval", "extract --input x.npy --out y.npy"}) {
    const Result bad = run_mpncov(command + " " + exp + " --precision half");
    INFO(command);
    CHECK(bad.status == 2);
    CHECK(contains(bad.output, "--precision must be float32, bfloat16 or tf32, got 'half'"));
  }

  // eval: runs in either precision (the checkpoint is float32 whatever the precision it was trained in).
  for (const std::string p : {"float32", "bfloat16", "tf32"}) {
    const Result eval = run_mpncov("eval " + exp + " --precision " + p);
    INFO(eval.output);
    CHECK(eval.status == 0);
    CHECK(contains(eval.output, "top-1 "));
  }

  // extract: bfloat16 logits differ from float32's by bfloat16's rounding; tf32 is float32 on the CPU; the
  // default is the experiment's solver.precision.
  save_npy((dir / "x.npy").string(), test::random_tensor({6, 3, 16, 16}, DType::F32, 5));
  auto extract = [&](const std::string& options) {
    const std::string out = (dir / "y.npy").string();
    const Result r = run_mpncov("extract " + exp + " --input " + (dir / "x.npy").string() + " --out " + out + options);
    INFO(r.output);
    REQUIRE(r.status == 0);
    return load_npy(out);
  };
  const Tensor f32 = extract(" --precision float32"), bf16 = extract(" --precision bfloat16");
  const Tensor tf32 = extract(" --precision tf32"), fallback = extract(" --set solver.precision=bfloat16");
  CHECK(tf32.to_vector() == f32.to_vector());
  CHECK(fallback.to_vector() == bf16.to_vector());
  const double d = relative_difference(f32, bf16);
  CHECK(d > 0);      // the bfloat16 layers ran
  CHECK(d < 0.05);   // ... and only rounded (8 significant bits per operand, a few layers deep)

  // An inner layer, stored in bfloat16 and NHWC inside the net in bfloat16 (docs/layouts.md), is written
  // as float32 NCHW: it follows the float32 run's values element for element.
  const Tensor inner32 = extract(" --layer stage1.relu --precision float32");
  const Tensor inner16 = extract(" --layer stage1.relu --precision bfloat16");
  CHECK(inner16.dtype() == DType::F32);
  CHECK(inner16.shape() == inner32.shape());
  const double di = relative_difference(inner32, inner16);
  CHECK(di > 0);
  CHECK(di < 0.03);
}

// A run trained in bfloat16 and resumed with plain --resume continued in the experiment's float32 without a
// word. The experiment still decides (as it does data.batch), and the log says where its precision came from
// and warns when the checkpoint was trained in another one.
TEST_CASE("precision: the log names the precision and where it came from - a resume in another one than the "
          "checkpoint's warns") {
  const fs::path dir = test::temp_dir("precision_resume");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, momentum: 0.9, epochs: 3}");
  const auto log_of = [&](const std::string& args, const fs::path& run) {
    const Result r = run_mpncov("train " + args + " --quiet");
    INFO(r.output);
    CHECK((r.status == 130 || r.status == 0));
    return read_text(run / "log.txt");
  };
  const fs::path run = dir / "run";
  fs::remove_all(run);
  std::string log = log_of(exp + " --precision bfloat16 --stop-after 2", run);
  CHECK(contains(log, "precision bfloat16 from the command line (--precision or --set solver.precision)"));
  log = log_of(exp + " --resume --stop-after 3", run);
  INFO(log);
  CHECK(contains(log, "warning: the checkpoint was trained in bfloat16, but this run continues in float32, from the "
                      "default (the experiment sets no solver.precision): resume with --precision bfloat16 to continue "
                      "as it was trained"));
  CHECK(contains(log, "precision float32 from the default (the experiment sets no solver.precision)"));
  log = log_of(exp + " --resume --stop-after 4", run);
  CHECK(contains(log, "the checkpoint was trained in float32 too: the precision continues"));
  CHECK(count(log, "warning: the checkpoint was trained in") == 1);  // the earlier resume's only

  // The experiment's own key, named with its line; --precision on the resume overrides it, with a warning.
  const fs::path other = test::temp_dir("precision_resume_file");
  const std::string exp2 = test::write_tiny_experiment(other, "{lr: 0.02, momentum: 0.9, epochs: 3, precision: bfloat16}");
  fs::remove_all(other / "run");
  log = log_of(exp2 + " --stop-after 1", other / "run");
  CHECK(contains(log, "precision bfloat16 from the experiment (solver.precision at " + exp2 + ":5)"));
  log = log_of(exp2 + " --resume --precision float32 --stop-after 2", other / "run");
  CHECK(contains(log, "warning: the checkpoint was trained in bfloat16, but this run continues in float32, from the "
                      "command line (--precision or --set solver.precision): resume with --precision bfloat16"));
}

TEST_CASE("precision: a CPU without native bfloat16 says so once and gives the same results") {
  const fs::path dir = test::temp_dir("precision_no_bf16");
  const std::string exp = tiny_experiment(dir);
  TrainOptions quiet;
  quiet.quiet = true;
  REQUIRE(train(load_experiment(exp), quiet) == 0);
  save_npy((dir / "x.npy").string(), test::random_tensor({6, 3, 16, 16}, DType::F32, 9));
  auto extract = [&](const std::string& precision, const std::string& env, std::string* output) {
    const std::string out = (dir / "y.npy").string();
    const Result r = run_mpncov("extract " + exp + " --input " + (dir / "x.npy").string() + " --out " + out +
                                " --precision " + precision,
                            env);
    INFO(r.output);
    REQUIRE(r.status == 0);
    *output = r.output;
    return load_npy(out);
  };
  std::string native_output, emulated_output, f32_output;
  const Tensor native = extract("bfloat16", "", &native_output);
  const Tensor emulated = extract("bfloat16", kNoBf16, &emulated_output);
  const Tensor f32 = extract("float32", kNoBf16, &f32_output);
  CHECK(count(emulated_output, kNotice) == 1);  // once, not once per layer
  CHECK(count(native_output, kNotice) == (cpu_has_native_bf16() ? 0u : 1u));
  CHECK(count(f32_output, kNotice) == 0);       // float32 does not need bfloat16 instructions
  // The same bfloat16 products summed in float32, perhaps in another order: float32 rounding apart.
  CHECK(relative_difference(native, emulated) < 1e-5);
  CHECK(relative_difference(native, f32) > 1e-4);  // (while bfloat16 differs from float32 visibly)

  // Training logs it once, in log.txt as on the terminal.
  const Result trained = run_mpncov("train " + exp + " --precision bf16 --force --stop-after 3", kNoBf16);
  CHECK(trained.status == 130);
  CHECK(count(trained.output, kNotice) == 1);
  CHECK(count(read_text(dir / "run/log.txt"), kNotice) == 1);
}

}  // TEST_SUITE
