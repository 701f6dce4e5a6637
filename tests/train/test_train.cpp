// Training: the optimiser loop against PyTorch, bit-exact resume, clean stops, crash-safe checkpoints,
// freezing, experiment-file errors and the quickstart's accuracy.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "core/npy.h"
#include "core/safetensors.h"
#include "data/synthetic.h"
#include "nets/weights.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "train/step.h"
#include "tests/helpers.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace mpncov;
namespace fs = std::filesystem;

namespace {

const char* kOracleNet = R"(name: oracle_net
input: [3, 12, 12]
features:
  - {name: conv1, type: conv, out_channels: 6, kernel_size: 3, padding: 1}
  - {name: bn1, type: batchnorm}
  - {name: relu1, type: relu}
  - {name: pool, type: maxpool, kernel_size: 2, stride: 2}
  - {name: conv2, type: conv, out_channels: 5, kernel_size: 3, padding: 1, bias: false}
  - {name: bn2, type: batchnorm}
  - {name: relu2, type: relu}
representation: {name: representation, type: mpncov, iterations: 3}
classifier:
  - {name: fc, type: linear, out_features: 3}
)";

// A tiny image-folder dataset and an experiment over it, in dir.
std::string tiny_experiment(const fs::path& dir) {
  return test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 2, schedule: {type: step, milestones: [1]}}");
}

// An experiment over dir's tiny image folder (data/train only): `net` at 16 pixels, batches of 4, one epoch.
std::string one_epoch_experiment(const fs::path& dir, const std::string& net) {
  std::ofstream(dir / "exp.yaml") << "model: {net: " << net << "}\n"
                                  << "data: {train: " << (dir / "data/train").string()
                                  << ", preset: plain, image_size: 16, batch: 4, workers: 1}\n"
                                  << "solver: {lr: 0.01, epochs: 1}\n"
                                  << "run: {device: cpu, out: " << (dir / "run").string() << "}\n";
  return (dir / "exp.yaml").string();
}

std::string text_of(const fs::path& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Every tensor of two safetensors files, compared exactly.
void check_identical(const std::string& a, const std::string& b) {
  const SafetensorsFile fa = load_safetensors(a), fb = load_safetensors(b);
  REQUIRE(fa.names == fb.names);
  for (const std::string& n : fa.names) {
    INFO(n);
    CHECK(fa.tensors.at(n).to_vector() == fb.tensors.at(n).to_vector());
  }
}

}  // namespace

TEST_SUITE("oracle") {

TEST_CASE("training: 20 SGD steps with momentum, weight decay, groups and a step schedule match PyTorch") {
  const fs::path dir = test::temp_dir("train_oracle");
  Net net(parse_net(kOracleNet, "oracle_net.yaml"));
  const int64_t steps = 20, batch = 4;
  net.setup(Shape({batch, 3, 12, 12}), DType::F64, Device::cpu(), 3);
  save_weights(net, (dir / "init.safetensors").string());
  Tensor xs = test::random_tensor({steps, batch, 3, 12, 12}, DType::F64, 11);
  std::vector<double> labels;
  for (int64_t i = 0; i < steps * batch; ++i) labels.push_back(static_cast<double>((i * 7 + i / 3) % 3));
  const Tensor ys = Tensor::from_vector(labels, {steps, batch}, DType::I64);
  save_npy((dir / "x.npy").string(), xs);
  save_npy((dir / "y.npy").string(), ys);
  test::run_oracle("train_steps.py", {dir.string()});

  std::vector<NamedParameter> features, classifier;
  for (const NetParameter& p : net.parameters())
    (p.part == NetPart::Classifier ? classifier : features).push_back({p.name, p.parameter});
  GroupSettings gs;
  gs.lr = 0.05;
  gs.momentum = 0.9;
  gs.weight_decay = 1e-3;
  gs.classifier_lr_mult = 2;
  gs.classifier_weight_decay = 1e-3;
  SGD sgd(seed_groups(features, {}, classifier, gs));
  const Schedule schedule = Schedule::step(2, {1});
  TrainStep step(net, sgd);  // the trainer's step
  std::vector<double> losses;
  net.set_training(true);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    sgd.apply(schedule, {epoch, 0, steps / 2});
    for (int64_t i = 0; i < steps / 2; ++i) {
      const int64_t s = epoch * steps / 2 + i;
      step.run(xs.slice(s, s + 1).reshape({batch, 3, 12, 12}), ys.slice(s, s + 1).reshape({batch}));
      losses.push_back(step.loss());
    }
  }
  const std::vector<double> want = load_npy((dir / "losses.npy").string()).to_vector();
  CHECK(test::max_rel_diff(losses, want) < 1e-10);
  CHECK(losses.back() < losses.front());  // it learned something
  const SafetensorsFile final_state = load_safetensors((dir / "final.safetensors").string());
  for (const NamedTensor& t : net.state()) {
    if (t.name.find("num_batches_tracked") != std::string::npos) continue;
    INFO(t.name);
    CHECK(test::max_rel_diff(t.tensor, final_state.tensors.at(t.name)) < 1e-9);
  }
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("training: two epochs straight and 1.5 + resume give identical weights and optimiser state") {
  const fs::path straight = test::temp_dir("train_straight"), resumed = test::temp_dir("train_resumed");
  TrainOptions quiet;
  quiet.quiet = true;
  CHECK(train(load_experiment(tiny_experiment(straight)), quiet) == 0);

  TrainOptions stop = quiet;
  stop.stop_after_steps = 7;  // mid-way through the second epoch (5 batches per epoch)
  const std::string exp = tiny_experiment(resumed);
  CHECK(train(load_experiment(exp), stop) == 128 + SIGINT);
  TrainOptions resume = quiet;
  resume.resume = true;
  CHECK(train(load_experiment(exp), resume) == 0);
  check_identical((straight / "run/last.safetensors").string(), (resumed / "run/last.safetensors").string());
  // The history and its files continue across the resume.
  std::ifstream csv(resumed / "run/metrics.csv");
  std::string header, row1, row2;
  std::getline(csv, header);
  std::getline(csv, row1);
  std::getline(csv, row2);
  CHECK(row1.rfind("1,", 0) == 0);
  CHECK(row2.rfind("2,", 0) == 0);
  CHECK(fs::exists(resumed / "run/curves.svg"));
  CHECK(fs::exists(resumed / "run/best.safetensors"));
  CHECK(fs::exists(resumed / "run/config.yaml"));
  CHECK(fs::exists(resumed / "run/net.dot"));
  // A kill after the last checkpoint was saved and before metrics.csv was written leaves the file an epoch
  // short (here: only its header) with nothing left to train: a resume writes it again from the checkpoint.
  csv.close();
  const auto read_text = [](const fs::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  const std::string full = read_text(resumed / "run/metrics.csv");
  std::ofstream(resumed / "run/metrics.csv") << full.substr(0, full.find('\n') + 1);
  fs::remove(resumed / "run/curves.svg");
  CHECK(train(load_experiment(exp), resume) == 0);
  CHECK(read_text(resumed / "run/metrics.csv") == full);
  CHECK(fs::exists(resumed / "run/curves.svg"));
}

TEST_CASE("training: frozen features keep their weights - the rest trains") {
  const fs::path dir = test::temp_dir("train_freeze");
  const std::string exp = tiny_experiment(dir);
  TrainOptions quiet;
  quiet.quiet = true;
  quiet.stop_after_steps = 0;  // only the initial state
  Experiment e = load_experiment(exp, {"model.freeze=2", "solver.epochs=1"});
  train(e, quiet);
  const SafetensorsFile before = load_safetensors((dir / "run/last.safetensors").string());
  fs::remove_all(dir / "run");
  quiet.stop_after_steps = -1;
  CHECK(train(e, quiet) == 0);
  const SafetensorsFile after = load_safetensors((dir / "run/last.safetensors").string());
  for (const std::string& n : before.names) {
    if (n[0] == '@' || n.find("running_") != std::string::npos || n.find("num_batches") != std::string::npos) continue;
    const bool frozen = n.rfind("stem.", 0) == 0 || n.rfind("stage1.", 0) == 0;
    INFO(n);
    CHECK((before.tensors.at(n).to_vector() == after.tensors.at(n).to_vector()) == frozen);
  }
  // Batch norm statistics of frozen layers still follow the data, as in the seed.
  CHECK(before.tensors.at("stem.bn.running_mean").to_vector() != after.tensors.at("stem.bn.running_mean").to_vector());
  // No momentum buffer for frozen parameters.
  for (const std::string& n : after.names) CHECK(n.rfind("@momentum/stem.", 0) != 0);
}

TEST_CASE("training: SIGINT saves a checkpoint and exits 130 - --resume finishes the run") {
  const fs::path dir = test::temp_dir("train_sigint");
  const std::string exp = tiny_experiment(dir);
  const std::string binary = std::string(MPNCOV_BINARY_DIR) + "/mpncov";
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    freopen("/dev/null", "w", stdout);
    execl(binary.c_str(), binary.c_str(), "train", exp.c_str(), "--set", "solver.epochs=50", "--quiet", nullptr);
    _exit(127);
  }
  // Wait until it has trained a little (the iteration log grows), then interrupt it.
  const fs::path iterations = dir / "run/iterations.csv";
  for (int i = 0; i < 600 && !(fs::exists(iterations) && fs::file_size(iterations) > 60); ++i) usleep(50000);
  kill(child, SIGINT);
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  REQUIRE(fs::exists(dir / "run/last.safetensors"));
  std::ifstream log(dir / "run/log.txt");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK(text.find("interrupted (SIGINT)") != std::string::npos);
  TrainOptions resume;
  resume.resume = true;
  resume.quiet = true;
  CHECK(train(load_experiment(exp, {"solver.epochs=2"}), resume) == 0);
}

TEST_CASE("checkpoints: a process killed while writing never leaves a corrupt last checkpoint") {
  const fs::path dir = test::temp_dir("checkpoint_kill");
  Net net(load_net(resolve_net_path("resnet18")));
  net.setup(Shape({1, 3, 64, 64}));
  const std::string path = (dir / "last.safetensors").string();
  TrainingState state;
  state.classes = {"a", "b"};
  save_checkpoint(path, net, nullptr, state, "test");
  for (int round = 0; round < 6; ++round) {
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      TrainingState s = state;
      for (int64_t i = 0;; ++i) {  // write checkpoints until killed
        s.step = i;
        save_checkpoint(path, net, nullptr, s, "test");
      }
    }
    usleep(30000 + 37000 * round);
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    Net check(load_net(resolve_net_path("resnet18")));
    check.setup(Shape({1, 3, 64, 64}));
    CHECK_NOTHROW(load_checkpoint(path, check, nullptr));
  }
}

TEST_CASE("experiments: mistakes give the file, line, section and key") {
  const fs::path dir = test::temp_dir("bad_experiment");
  auto error = [&](const std::string& text) -> std::string {
    std::ofstream(dir / "e.yaml") << text;
    try {
      load_experiment((dir / "e.yaml").string());
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string e = (dir / "e.yaml").string();
  CHECK(error("model: {net: resnet18}\ndata: {train: x}\nsolvr: {lr: 1}\n").find(e + ":3: experiment: unknown key 'solvr', did you mean 'solver'?") != std::string::npos);
  CHECK(error("model: {net: resnet18}\ndata: {train: x, bacth: 3}\n").find(e + ":2: data: unknown key 'bacth', did you mean 'batch'?") != std::string::npos);
  CHECK(error("model: {net: resnet18}\ndata: {train: x}\nsolver: {lr: -1}\n").find(e + ":3: solver: key 'lr' must be positive") != std::string::npos);
  CHECK(error("model: {net: resnet18}\ndata: {train: x}\nsolver: {schedule: {type: stp}}\n").find("did you mean 'step'?") != std::string::npos);
  CHECK(error("model: {net: resnet18}\n").find("needs a data section") != std::string::npos);
  CHECK(error("model: {net: resnet18}\ndata: {train: x}\nrun: {device: tpu}\n").find(e + ":3: run: key 'device' must be auto, cpu, cuda or cuda:N") != std::string::npos);
  CHECK(error("model: {net: resnet18, freez: 1}\ndata: {train: x}\n").find("did you mean 'freeze'?") != std::string::npos);
  // --set overrides keys before they are read, and is checked the same way.
  std::ofstream(dir / "ok.yaml") << "model: {net: resnet18}\ndata: {train: x}\n";
  const Experiment ok = load_experiment((dir / "ok.yaml").string(), {"solver.lr=0.5", "data.batch=7"});
  CHECK(ok.solver.lr == 0.5);
  CHECK(ok.data.batch == 7);
  CHECK_THROWS_WITH_AS(load_experiment((dir / "ok.yaml").string(), {"solver.lrr=0.5"}), doctest::Contains("did you mean 'lr'?"), Error);
  // A missing dataset folder is named when training starts.
  TrainOptions quiet;
  quiet.quiet = true;
  CHECK_THROWS_WITH_AS(train(load_experiment((dir / "ok.yaml").string(), {"run.out=" + (dir / "run").string()}), quiet),
                       doctest::Contains("x"), Error);
}

}  // TEST_SUITE

TEST_SUITE("slow") {

TEST_CASE("quickstart: the MPN-COV network learns the covariance textures (validation top-1 >= 90%)") {
  const fs::path dir = test::temp_dir("quickstart");
  data::write_synthetic_dataset((dir / "data").string());
  TrainOptions quiet;
  quiet.quiet = true;
  const Experiment e = load_experiment(std::string(MPNCOV_SOURCE_DIR) + "/experiments/quickstart.yaml",
                                       {"data.train=" + (dir / "data/train").string(), "data.val=" + (dir / "data/val").string(),
                                        "run.out=" + (dir / "run").string(), "run.device=cpu"});
  REQUIRE(train(e, quiet) == 0);
  std::ifstream csv(dir / "run/metrics.csv");
  std::string line, last;
  while (std::getline(csv, line)) last = line;
  // epoch,train_loss,train_top1,train_top5,val_loss,val_top1,...
  std::vector<std::string> cells;
  size_t start = 0;
  for (size_t comma; (comma = last.find(',', start)) != std::string::npos; start = comma + 1)
    cells.push_back(last.substr(start, comma - start));
  REQUIRE(cells.size() >= 6);
  INFO(last);
  CHECK(std::stod(cells[5]) >= 90.0);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("training: a diverging run stops naming the first layer that went non-finite") {
  const fs::path dir = test::temp_dir("train_diverge");
  TrainOptions quiet;
  quiet.quiet = true;
  const Experiment e = load_experiment(tiny_experiment(dir), {"solver.lr=1e30", "solver.epochs=3"});
  std::string message;
  try {
    train(e, quiet);
  } catch (const Error& err) {
    message = err.what();
  }
  INFO(message);
  CHECK((message.find("the loss is") != std::string::npos || message.find("is not finite") != std::string::npos));
  CHECK((message.find("first layer") != std::string::npos || message.find("first such layer") != std::string::npos));
  CHECK(message.find("last.safetensors") != std::string::npos);
}

TEST_CASE("training: two-stage fine-tuning continues from the first stage with another freeze") {
  const fs::path dir = test::temp_dir("train_two_stage");
  const std::string exp = tiny_experiment(dir);
  TrainOptions quiet;
  quiet.quiet = true;
  const std::string stage1 = (dir / "stage1").string(), stage2 = (dir / "stage2").string();
  REQUIRE(train(load_experiment(exp, {"model.freeze=3", "solver.epochs=1", "run.out=" + stage1}), quiet) == 0);
  REQUIRE(train(load_experiment(exp, {"model.freeze=0", "solver.epochs=2", "run.out=" + stage2,
                                      "run.resume=" + stage1 + "/last.safetensors", "data.batch=2"}),
                quiet) == 0);
  std::ifstream log(fs::path(stage2) / "log.txt");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK(text.find("resumed from " + stage1 + "/last.safetensors at epoch 2") != std::string::npos);
  CHECK(text.find("epoch 2/2:") != std::string::npos);
  CHECK(text.find("epoch 1/2:") == std::string::npos);
  // Stage 1 trained only the classifier (everything in features was frozen); stage 2 trained everything.
  const SafetensorsFile s1 = load_safetensors(stage1 + "/last.safetensors");
  const SafetensorsFile s2 = load_safetensors(stage2 + "/last.safetensors");
  CHECK(s1.tensors.count("@momentum/stem.conv.weight") == 0);
  CHECK(s2.tensors.count("@momentum/stem.conv.weight") == 1);
  CHECK(s1.tensors.at("stem.conv.weight").to_vector() != s2.tensors.at("stem.conv.weight").to_vector());
}

TEST_CASE("commands: eval with 1 and 2 crops and extract of an image folder after training") {
  const fs::path dir = test::temp_dir("train_commands");
  const std::string exp = tiny_experiment(dir);
  TrainOptions quiet;
  quiet.quiet = true;
  REQUIRE(train(load_experiment(exp, {"solver.epochs=1"}), quiet) == 0);
  const std::string binary = std::string(MPNCOV_BINARY_DIR) + "/mpncov";
  for (const char* crops : {"1", "2"}) {
    const std::string out = (dir / str("eval", crops, ".txt")).string();
    REQUIRE(std::system((binary + " eval " + exp + " --crops " + crops + " > " + out + " 2>/dev/null").c_str()) == 0);
    std::ifstream f(out);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    CHECK(text.find(str("6 images, ", crops, "-crop: loss")) != std::string::npos);
  }
  const std::string features = (dir / "f.npy").string();
  REQUIRE(std::system((binary + " extract " + exp + " --weights " + (dir / "run/best.safetensors").string() + " --images " +
                       (dir / "data/val").string() + " --layer representation --out " + features + " > /dev/null 2>&1")
                          .c_str()) == 0);
  CHECK(load_npy(features).shape() == Shape({6, 21}));  // reduce 6: 6 * 7 / 2
  CHECK(load_npy((dir / "f-labels.npy").string()).to_vector() == std::vector<double>{0, 0, 1, 1, 2, 2});
  // A usage error exits 2 and names the problem.
  CHECK(WEXITSTATUS(std::system((binary + " eval " + exp + " --crops 3 2>/dev/null").c_str())) == 2);
  CHECK(WEXITSTATUS(std::system((binary + " eval " + exp + " --batch 0 > /dev/null 2>&1").c_str())) == 2);
  // A validation folder of other classes (same count, other names) is refused, not scored.
  fs::create_directories(dir / "other");
  fs::copy(dir / "data/val", dir / "other/val", fs::copy_options::recursive);
  fs::rename(dir / "other/val/class2", dir / "other/val/zebra");
  CHECK(WEXITSTATUS(std::system((binary + " eval " + exp + " --set data.val=" + (dir / "other/val").string() +
                                 " > /dev/null 2>&1").c_str())) == 1);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("training: a last batch of one image that a batch norm cannot normalise names the fix") {
  // 21 images in batches of 4: the last batch holds one image, whose maps in resnet18's layer4 are 1x1 at 16
  // pixels. PyTorch stops there too; the error says what in the experiment to change.
  const fs::path dir = test::temp_dir("train_last_one");
  test::write_tiny_image_folder(dir, 7, 1, 16);
  const std::string exp = one_epoch_experiment(dir, "resnet18");
  TrainOptions quiet;
  quiet.quiet = true;
  quiet.force = true;
  std::string message;
  try {
    train(load_experiment(exp, {}), quiet);
  } catch (const Error& err) {
    message = err.what();
  }
  INFO(message);
  CHECK(message.find("more than one value per channel") != std::string::npos);
  CHECK(message.find("iteration 6 holds one image: data.drop_last: true drops a last batch") != std::string::npos);
  // With drop_last the epoch trains.
  CHECK(train(load_experiment(exp, {"data.drop_last=true"}), quiet) == 0);
}

TEST_CASE("training: an epoch whose samples the covariance layer guarded says so in the log") {
  // The features before the representation are zero (a conv initialised to 0, no bias): every sample's
  // trace is below eps, its output 0 and no gradient passes. The run trains on, and the log says so.
  const fs::path dir = test::temp_dir("train_guarded");
  test::write_tiny_image_folder(dir);
  std::ofstream(dir / "zero.yaml") << R"(name: zero_features
input: [3, 16, 16]
features:
  - {name: conv1, type: conv, out_channels: 4, kernel_size: 3, padding: 1, bias: false, init: constant, init_value: 0}
  - {name: relu1, type: relu}
representation: {name: representation, type: mpncov, iterations: 3}
classifier:
  - {name: fc, type: linear, out_features: 3}
)";
  const std::string exp = one_epoch_experiment(dir, (dir / "zero.yaml").string());
  TrainOptions quiet;
  quiet.quiet = true;
  quiet.force = true;
  REQUIRE(train(load_experiment(exp, {}), quiet) == 0);
  const std::string log = text_of(dir / "run/log.txt");
  INFO(log);
  CHECK(log.find("warning: epoch 1: 18 of 18 training images reached a covariance layer with a trace below its eps") !=
        std::string::npos);
  // Features that are not zero: no such line.
  const fs::path other = test::temp_dir("train_not_guarded");
  REQUIRE(train(load_experiment(test::write_tiny_experiment(other, "{lr: 0.01, epochs: 1}"), {}), quiet) == 0);
  CHECK(text_of(other / "run/log.txt").find("trace below its eps") == std::string::npos);
}

}  // TEST_SUITE
