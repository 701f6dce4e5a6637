// The program as a new user meets it: pretrained backbones under new representations, weight files that
// say what to do, run folders that are not overwritten and re-run from their config.yaml, errors that
// point to the fix, and every command's options documented.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/npy.h"
#include "core/safetensors.h"
#include "data/synthetic.h"
#include "nets/model.h"
#include "nets/weights.h"
#include "tests/helpers.h"
#include "train/checkpoint.h"
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

// Runs the mpncov program with the arguments (a shell command line).
Result mpncov_program(const std::string& args) {
  static int calls = 0;  // tests may run in parallel processes: one output file per process and call
  const fs::path out = fs::path(MPNCOV_BINARY_DIR) / "test-tmp" / str("command-output-", getpid(), "-", ++calls, ".txt");
  fs::create_directories(out.parent_path());
  const int status = std::system((std::string(MPNCOV_BINARY_DIR) + "/mpncov " + args + " > " + out.string() + " 2>&1").c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out)};
  fs::remove(out);
  return r;
}

// A three-class image folder of 16x16 images and an experiment over it (small_cnn with iSQRT-COV).
std::string tiny_experiment(const fs::path& dir, const std::string& model_extra = "") {
  return test::write_tiny_experiment(dir, "{lr: 0.02, momentum: 0.9, epochs: 1}", model_extra);
}

TrainOptions quiet() {
  TrainOptions o;
  o.quiet = true;
  return o;
}

// small_cnn's own weights (its gavp and 10-class fc): a "backbone" file for the experiments above.
std::string backbone_weights(const fs::path& dir, const std::string& prefix = "",
                             const std::vector<std::string>& extra = {}) {
  ModelConfig mc;
  mc.net = "small_cnn";
  Net net(compose_model(mc));
  net.setup(Shape({1, 3, 16, 16}));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedTensor& t : net.state()) tensors.emplace_back(prefix + t.name, t.tensor);
  for (const std::string& name : extra) tensors.emplace_back(name, Tensor::zeros({2, 2}, DType::F32));
  const std::string path = (dir / ("backbone" + prefix + std::to_string(extra.size()) + ".safetensors")).string();
  save_safetensors(path, tensors);
  return path;
}

Net experiment_net(const std::string& exp, const std::string& weights) {
  ModelConfig mc = load_experiment(exp, {"model.weights=" + weights}).model;
  mc.classes = 3;
  Net net(compose_model(mc));
  net.setup(Shape({2, 3, 16, 16}));
  return net;
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

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("pretrained: a new representation's layers and classifier start afresh, the backbone loads") {
  const fs::path dir = test::temp_dir("pretrained_new_layers");
  const std::string exp = tiny_experiment(dir);
  const std::string weights = backbone_weights(dir);
  Net net = experiment_net(exp, weights);
  ModelConfig original;
  original.net = "small_cnn";
  const NetSpec small_cnn = compose_model(original);
  const PretrainedReport r = load_pretrained(net, weights, &small_cnn);
  REQUIRE(r.new_layers.size() == 3);
  CHECK(r.new_layers[0].rfind("representation.conv_dr_block.0 (conv", 0) == 0);
  CHECK(r.new_layers[1].rfind("representation.conv_dr_block.1 (batchnorm", 0) == 0);
  CHECK(r.new_layers[2] == "fc (linear, weight (3, 21))");
  CHECK(r.ignored.empty());
  // The backbone's tensors came from the file.
  const SafetensorsFile file = load_safetensors(weights);
  for (const NamedTensor& t : net.state())
    if (t.name.rfind("stem.", 0) == 0 || t.name.rfind("stage", 0) == 0) CHECK(t.tensor.to_vector() == file.tensors.at(t.name).to_vector());
  const std::vector<std::string> lines = r.lines();
  CHECK(contains(lines.at(1), "new (not in the weights, initialised afresh): representation.conv_dr_block.0"));
}

TEST_CASE("pretrained: a new layer starts afresh as a whole - a bias of the file's size does not load into it") {
  const fs::path dir = test::temp_dir("pretrained_whole_layers");
  const std::string exp = tiny_experiment(dir);
  const std::string weights = backbone_weights(dir);  // small_cnn's fc: weight (10, 64), bias (10)
  ModelConfig mc = load_experiment(exp, {"model.weights=" + weights, "model.classes=10"}).model;
  Net net(compose_model(mc));  // fc: weight (10, 21) after MPN-COV, bias (10) as in the file
  net.setup(Shape({2, 3, 16, 16}));
  const auto value = [&](const std::string& name) {
    for (const NamedTensor& t : net.state())
      if (t.name == name) return t.tensor.to_vector();
    return std::vector<double>{};
  };
  const std::vector<double> fresh_bias = value("fc.bias");
  ModelConfig original;
  original.net = "small_cnn";
  const NetSpec small_cnn = compose_model(original);
  const PretrainedReport r = load_pretrained(net, weights, &small_cnn);
  CHECK(std::find(r.new_layers.begin(), r.new_layers.end(), "fc (linear, weight (10, 21))") != r.new_layers.end());
  CHECK(value("fc.bias") == fresh_bias);
  CHECK(value("fc.bias") != load_safetensors(weights).tensors.at("fc.bias").to_vector());
  CHECK(r.ignored.empty());
  // The backbone still loads.
  CHECK(value("stem.conv.weight") == load_safetensors(weights).tensors.at("stem.conv.weight").to_vector());
}

TEST_CASE("pretrained: --resume does not need model.weights any more - the checkpoint holds every weight") {
  const fs::path dir = test::temp_dir("pretrained_resume_moved");
  const std::string exp = tiny_experiment(dir);
  const std::string weights = backbone_weights(dir);
  TrainOptions stop = quiet();
  stop.stop_after_steps = 1;
  train(load_experiment(exp, {"model.weights=" + weights}), stop);
  REQUIRE(fs::exists(dir / "run/last.safetensors"));
  fs::remove(weights);  // moved or deleted since: the run continues from its checkpoint all the same
  TrainOptions resume = quiet();
  resume.resume = true;
  CHECK(train(load_experiment(exp, {"model.weights=" + weights}), resume) == 0);
  // A fresh start still needs the file.
  TrainOptions fresh = quiet();
  fresh.force = true;
  CHECK_THROWS_WITH_AS(train(load_experiment(exp, {"model.weights=" + weights}), fresh), doctest::Contains("not a file"),
                       Error);
}

TEST_CASE("pretrained: a shared prefix (DataParallel's module.) is recognised and stripped") {
  const fs::path dir = test::temp_dir("pretrained_prefix");
  const std::string exp = tiny_experiment(dir);
  const std::string plain = backbone_weights(dir), prefixed = backbone_weights(dir, "module.");
  ModelConfig mc;
  mc.net = "small_cnn";
  Net net(compose_model(mc));
  net.setup(Shape({1, 3, 16, 16}));
  const WeightsLoadReport r = load_weights(net, prefixed);  // strict: every tensor found after stripping
  CHECK(r.stripped_prefix == "module.");
  CHECK(r.missing.empty());
  CHECK(contains(r.summary(), "prefix 'module.' of the file's names stripped"));
  CHECK(load_weights(net, plain).stripped_prefix.empty());
  CHECK(shared_prefix({"module.features.0.weight", "module.fc.weight"}, {"features.0.weight", "fc.weight"}) == "module.");
  CHECK(shared_prefix({"fc.weight"}, {"fc.weight"}).empty());
}

TEST_CASE("pretrained: tensors the net does not use are a warning naming them - nothing matching is an error") {
  const fs::path dir = test::temp_dir("pretrained_unexpected");
  const std::string exp = tiny_experiment(dir);
  const std::string bigger = backbone_weights(dir, "", {"stage3.conv.weight", "stage3.bn.weight"});
  Net net = experiment_net(exp, bigger);
  const PretrainedReport r = load_pretrained(net, bigger);
  CHECK(r.ignored == std::vector<std::string>{"stage3.conv.weight", "stage3.bn.weight"});
  const std::vector<std::string> lines = r.lines();
  CHECK(contains(lines.back(), "warning: 2 tensors of the weights file are not in the net"));
  CHECK(contains(lines.back(), "stage3.conv.weight"));
  // Weights of another net: nothing of the backbone matches.
  const std::string other = (dir / "other.safetensors").string();
  save_safetensors(other, {{"features.0.weight", Tensor::zeros({4, 3, 3, 3}, DType::F32)}});
  Net fresh = experiment_net(exp, other);
  CHECK_THROWS_WITH_AS(load_pretrained(fresh, other), doctest::Contains("nothing of the weights fits the backbone"), Error);
}

TEST_CASE("weights: a PyTorch file is recognised and the error names the converter") {
  const fs::path dir = test::temp_dir("weights_pth");
  ModelConfig mc;
  mc.net = "small_cnn";
  Net net(compose_model(mc));
  net.setup(Shape({1, 3, 16, 16}));
  const std::string zip = (dir / "resnet18.pth").string(), pickle = (dir / "old.pth.tar").string();
  std::ofstream(zip, std::ios::binary) << std::string("PK\x03\x04", 4) << std::string(64, 'x');
  std::ofstream(pickle, std::ios::binary) << std::string("\x80\x02", 2) << std::string(64, 'x');
  std::string message;
  try {
    load_weights(net, zip);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(contains(message, "is a PyTorch file (torch.save's zip archive), not safetensors: convert it once with\n"
                          "  python3 tools/pth_to_safetensors.py " + zip + " " + (dir / "resnet18").string() + ".safetensors"));
  CHECK_THROWS_WITH_AS(load_weights(net, pickle), doctest::Contains("(torch.save's pickle)"), Error);
}

TEST_CASE("pth_to_safetensors.py: without PyTorch it names the interpreter it needs") {
  // -S leaves out site-packages, where Debian's PyTorch lives: an interpreter without torch.
  const fs::path dir = test::temp_dir("pth_no_torch");
  const std::string command = "/usr/bin/python3 -S " + std::string(MPNCOV_SOURCE_DIR) + "/tools/pth_to_safetensors.py in.pth " +
                              (dir / "out.safetensors").string() + " > " + (dir / "out.txt").string() + " 2>&1";
  const int status = std::system(command.c_str());
  CHECK(WEXITSTATUS(status) == 1);
  const std::string text = read_text(dir / "out.txt");
  CHECK(contains(text, "cannot import PyTorch"));
  CHECK(contains(text, "Run the script with a python3 that has it, e.g. /usr/bin/python3"));
}

TEST_CASE("experiments: --set mistakes name --set - the whole configuration is checked before a run") {
  const fs::path dir = test::temp_dir("experiment_checks");
  const std::string exp = tiny_experiment(dir, "  freeze: 1\n");
  auto check_error = [&](const std::vector<std::string>& sets) -> std::string {
    try {
      check_experiment(load_experiment(exp, sets));
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  // A value from --set is blamed on --set, even for a key the file has (solver.lr is not; momentum is).
  CHECK(contains(check_error({"solver.momentum=abc"}), exp + " (--set): solver: key 'momentum' expected a number, got 'abc'"));
  CHECK(contains(check_error({"solver.lr=abc"}), exp + " (--set): solver: key 'lr' expected a number"));
  CHECK(contains(check_error({"data.preset=imagnet"}), "did you mean 'imagenet'? (one of imagenet, cub, aircraft, cars, plain)"));
  CHECK(contains(check_error({"data.train=data/trian"}), "data: key 'train' names image folder 'data/trian', which does not exist"));
  CHECK(contains(check_error({"model.freeze=9"}), "model.freeze is 9; net 'small_cnn' has 3 top-level feature items"));
  CHECK(contains(check_error({"model.weights=nowhere.safetensors"}), "model: key 'weights' names 'nowhere.safetensors'"));
  std::ofstream(dir / "resnet18.pth", std::ios::binary) << std::string("PK\x03\x04", 4) << std::string(64, 'x');
  CHECK(contains(check_error({"model.weights=" + (dir / "resnet18.pth").string()}), "tools/pth_to_safetensors.py"));
  CHECK(contains(check_error({"model.classes=5"}), "model: key 'classes' is 5 but "));
  fs::create_directories(dir / "data/val/extra");
  CHECK(contains(check_error({}), "data: key 'val' has other class folders than data.train (4 vs 3)"));
  fs::remove(dir / "data/val/extra");
  if (!test::gpu_present()) CHECK(contains(check_error({"run.device=cuda"}), "run: key 'device' 'cuda' cannot be used here"));
  CHECK(check_error({}) == "no error");
  // --print-config runs the same checks.
  const Result r = mpncov_program("train " + exp + " --set data.preset=imagnet --print-config");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "did you mean 'imagenet'?"));
  // inspect and time take --set for an experiment only, as extract does (a net has no such keys).
  CHECK(mpncov_program("inspect small_cnn --set solver.lr=1").status == 2);
  // So does a freeze count the net does not have: a configuration error, not an internal one.
  const Result freeze = mpncov_program("train " + exp + " --set model.freeze=9 --print-config");
  CHECK(freeze.status == 2);
  CHECK(!contains(freeze.output, "[nets/"));
}

TEST_CASE("run folders: no silent overwrite - config.yaml is valid YAML that repeats the run") {
  const fs::path dir = test::temp_dir("run_folder");
  const std::string exp = tiny_experiment(dir);
  REQUIRE(train(load_experiment(exp), quiet()) == 0);
  const std::string config = read_text(dir / "run/config.yaml");
  CHECK(contains(config, "classes: 3"));  // resolved from the class folders
  const YAML::Node parsed = YAML::Load(config);
  CHECK(parsed["solver"]["momentum"].Scalar() == "0.9");
  CHECK(parsed["solver"]["weight_decay"].Scalar() == "0.0001");  // a default, in its shortest form
  CHECK(!contains(config, "0000000"));
  // Training into the same folder again is refused with the ways out.
  CHECK_THROWS_WITH_AS(train(load_experiment(exp), quiet()), doctest::Contains("--set run.out="), Error);
  const Result refused = mpncov_program("train " + exp + " --quiet");
  CHECK(refused.status == 1);
  CHECK(contains(refused.output, "--resume"));
  CHECK(contains(refused.output, "--force"));
  // The saved configuration is an experiment that repeats the run bit for bit.
  const std::string again = (dir / "again").string();
  REQUIRE(train(load_experiment((dir / "run/config.yaml").string(), {"run.out=" + again}), quiet()) == 0);
  check_identical((dir / "run/last.safetensors").string(), again + "/last.safetensors");
  // --force starts afresh: the old log and iteration rows are gone.
  TrainOptions force = quiet();
  force.force = true;
  REQUIRE(train(load_experiment(exp), force) == 0);
  const std::string log = read_text(dir / "run/log.txt");
  CHECK(log.find("mpncov train") == log.rfind("mpncov train"));  // one header: a fresh log
  // --print-config prints the same YAML.
  const Result printed = mpncov_program("train " + exp + " --print-config");
  CHECK(printed.status == 0);
  CHECK(printed.output == config);
}

TEST_CASE("run folders: --resume takes a checkpoint whatever its name, or a run folder - neither is named") {
  const fs::path dir = test::temp_dir("resume_any_name");
  const std::string exp = tiny_experiment(dir);
  REQUIRE(mpncov_program("train " + exp + " --quiet --stop-after 1").status == 130);
  const std::string stopped = (dir / "stopped.ckpt").string();
  fs::copy_file(dir / "run/last.safetensors", stopped);
  const auto resumed_from = [&](const std::string& out) {
    return read_text(dir / out / "log.txt").find("resumed from ") != std::string::npos;
  };
  // A checkpoint named otherwise, after the experiment or before it; a run folder, its last.safetensors.
  for (const std::string& args : {exp + " --resume " + stopped, "--resume " + stopped + " " + exp}) {
    const std::string out = args.rfind("--", 0) == 0 ? "before" : "after";
    const Result r = mpncov_program("train " + args + " --quiet --set run.out=" + (dir / out).string());
    CHECK(r.status == 0);
    CHECK(contains(read_text(dir / out / "log.txt"), "resumed from " + stopped + " at epoch 1"));
  }
  const Result folder = mpncov_program("train " + exp + " --resume " + (dir / "run").string() +
                                       " --quiet --set run.out=" + (dir / "folder").string());
  CHECK(folder.status == 0);
  CHECK(contains(read_text(dir / "folder/log.txt"), "resumed from " + (dir / "run/last.safetensors").string()));
  // Neither a file nor a run folder with a checkpoint: refused, naming it, before anything is written.
  fs::create_directories(dir / "empty");
  for (const std::string& bad : {(dir / "missing.ckpt").string(), (dir / "empty").string()}) {
    const Result r = mpncov_program("train " + exp + " --resume " + bad + " --quiet --set run.out=" + (dir / "bad").string());
    CHECK(r.status == 1);
    CHECK(contains(r.output, bad));
    CHECK(!fs::exists(dir / "bad"));
  }
  // Alone after --resume, the argument is still the experiment: the run folder's last checkpoint goes on.
  CHECK(!resumed_from("run"));
  CHECK(mpncov_program("train --resume " + exp + " --quiet").status == 0);
  CHECK(resumed_from("run"));
}

TEST_CASE("training: the log says which layers are new, which are frozen - errors go to log.txt") {
  const fs::path dir = test::temp_dir("train_log_pretrained");
  const std::string exp = tiny_experiment(dir, "  freeze: 2\n");
  const std::string weights = backbone_weights(dir);
  TrainOptions stop = quiet();
  stop.stop_after_steps = 0;
  train(load_experiment(exp, {"model.weights=" + weights}), stop);
  const std::string log = read_text(dir / "run/log.txt");
  CHECK(contains(log, "new (not in the weights, initialised afresh): representation.conv_dr_block.0 (conv"));
  CHECK(contains(log, "fc (linear, weight (3, 21))"));
  CHECK(contains(log, "frozen (freeze 2): stem, stage1"));
  // A run that fails after its folder exists leaves the error in log.txt.
  const std::string other = (dir / "other.safetensors").string();
  save_safetensors(other, {{"features.0.weight", Tensor::zeros({4, 3, 3, 3}, DType::F32)}});
  TrainOptions force = quiet();
  force.force = true;
  CHECK_THROWS_AS(train(load_experiment(exp, {"model.weights=" + other}), force), Error);
  CHECK(contains(read_text(dir / "run/log.txt"), "error: " + other + ": nothing of the weights fits the backbone"));
}

TEST_CASE("commands: eval and extract name their checkpoint - extract takes its defaults and classes from the run") {
  const fs::path dir = test::temp_dir("commands_defaults");
  const std::string exp = tiny_experiment(dir);
  REQUIRE(train(load_experiment(exp, {"solver.epochs=2"}), quiet()) == 0);
  const Result eval = mpncov_program("eval " + exp);
  REQUIRE(eval.status == 0);
  CHECK(contains(eval.output, "weights: " + (dir / "run/best.safetensors").string() + " (checkpoint after epoch "));
  // Progress lines end before the next message.
  CHECK(!contains(eval.output, "]loader"));
  // --input: the class count comes from the checkpoint, the weights and device default as eval's do.
  save_npy((dir / "x.npy").string(), test::random_tensor({5, 3, 16, 16}, DType::F32));
  const Result extract = mpncov_program("extract " + exp + " --input " + (dir / "x.npy").string() + " --out " +
                                        (dir / "y.npy").string());
  INFO(extract.output);
  REQUIRE(extract.status == 0);
  CHECK(contains(extract.output, "weights: " + (dir / "run/best.safetensors").string() + " (checkpoint after epoch "));
  CHECK(load_npy((dir / "y.npy").string()).shape() == Shape({5, 3}));
  CHECK(!contains(extract.output, "images\nwrote") == false);
  // A weights file (no training state, so no classes): data.train's class folders, as train counts them,
  // also for --images of a folder with other classes (one unlabelled folder here).
  const SafetensorsFile best = load_safetensors((dir / "run/best.safetensors").string());
  std::vector<std::pair<std::string, Tensor>> weights;
  for (const std::string& n : best.names)
    if (n[0] != '@') weights.emplace_back(n, best.tensors.at(n));
  save_safetensors((dir / "weights.safetensors").string(), weights);
  fs::create_directories(dir / "unlabelled/all");
  fs::copy(dir / "data/val/class0", dir / "unlabelled/all");
  for (const std::string& input : {" --input " + (dir / "x.npy").string(), " --images " + (dir / "unlabelled").string()}) {
    const Result plain = mpncov_program("extract " + exp + input + " --weights " + (dir / "weights.safetensors").string() +
                                        " --out " + (dir / "yw.npy").string());
    INFO(plain.output);
    CHECK(plain.status == 0);
    CHECK(load_npy((dir / "yw.npy").string()).shape()[1] == 3);
  }
  // A mistake leaves no files behind (the class names were written before the layer was looked up).
  CHECK(mpncov_program("extract " + exp + " --images " + (dir / "unlabelled").string() + " --layer nope --out " +
                       (dir / "none.npy").string()).status == 1);
  CHECK(!fs::exists(dir / "none-labels.txt"));
  // Row i is image i: a file that does not decode is an error naming it, not another image's features.
  { std::ofstream(dir / "unlabelled/all/broken.jpg") << "not a jpeg"; }
  const Result broken = mpncov_program("extract " + exp + " --images " + (dir / "unlabelled").string() +
                                       " --weights " + (dir / "weights.safetensors").string() + " --out " +
                                       (dir / "broken.npy").string());
  INFO(broken.output);
  CHECK(broken.status == 1);
  CHECK(contains(broken.output, "broken.jpg"));
  CHECK(!fs::exists(dir / "broken.npy"));
  // inspect and time build the experiment's model at its image size with its classes.
  const Result inspect = mpncov_program("inspect " + exp);
  REQUIRE(inspect.status == 0);
  CHECK(contains(inspect.output, "input 3x16x16"));
  const size_t fc = inspect.output.find("\nfc ");
  REQUIRE(fc != std::string::npos);
  std::istringstream fc_row(inspect.output.substr(fc + 1));
  std::string name, type, outputs;
  fc_row >> name >> type >> outputs;
  CHECK(outputs == "3");
  const Result time = mpncov_program("time " + exp + " --iterations 1 --batch 2");
  REQUIRE(time.status == 0);
  CHECK(contains(time.output, "input 3x16x16"));
  // --inference: the time per pass, and each layer's forward time.
  const Result inference = mpncov_program("time " + exp + " --inference --iterations 1 --batch 2");
  REQUIRE(inference.status == 0);
  CHECK(contains(inference.output, "fwd ms"));
  CHECK(contains(inference.output, "\nfc "));
  CHECK(contains(inference.output, "ms summed per layer"));
  CHECK(contains(inference.output, "\ninference: "));
  // The log: the val loader does not report "epoch 1" every epoch, and counts epochs from 1 as the run's
  // lines do; iterations.csv names its columns.
  const std::string log = read_text(dir / "run/log.txt");
  CHECK(log.find("val loader: epoch 1:") == log.rfind("val loader: epoch 1:"));
  CHECK(contains(log, "val loader: epoch 2:"));
  CHECK(!contains(log, "loader: epoch 0:"));
  CHECK(contains(log, "\nloader: epoch 2:"));
  CHECK(contains(log, "\nepoch 2/2: train loss"));
  CHECK(read_text(dir / "run/iterations.csv").rfind("epoch,iteration,batch_loss,batch_top1,batch_top5,mean_loss,mean_top1,mean_top5,lr\n", 0) == 0);
  CHECK(contains(log, "] batch loss "));
  CHECK(contains(log, " | epoch mean loss "));
}

TEST_CASE("commands: eval builds a pretrained run's model as train did - its new fc, not the net's own classifier") {
  const fs::path dir = test::temp_dir("commands_eval_pretrained");
  // small_cnn with a VGG-like head (classifier.0, classifier.2): a pretrained net whose classifier is not
  // named fc, as VGG, AlexNet and the DenseNets have; under a new representation train replaces it by fc.
  const std::string zoo = read_text(fs::path(MPNCOV_SOURCE_DIR) / "nets/zoo/small_cnn.yaml");
  const std::string net_file = (dir / "vgg_like.yaml").string();
  std::ofstream(net_file) << zoo.substr(0, zoo.find("classifier:"))
                          << "classifier:\n  - {type: linear, out_features: 8}\n  - {type: relu}\n"
                          << "  - {type: linear, out_features: 10}\n";
  ModelConfig mc;
  mc.net = net_file;
  Net backbone(compose_model(mc));
  backbone.setup(Shape({1, 3, 16, 16}));
  const std::string weights = (dir / "pretrained.safetensors").string();
  save_weights(backbone, weights);
  const std::string exp = tiny_experiment(dir);
  const std::vector<std::string> sets = {"model.net=" + net_file, "model.weights=" + weights};
  REQUIRE(train(load_experiment(exp, sets), quiet()) == 0);
  const Result eval = mpncov_program(str("eval ", exp, " --set model.net=", net_file, " --set model.weights=", weights));
  INFO(eval.output);
  CHECK(eval.status == 0);
  CHECK(contains(eval.output, "top-1"));
}

TEST_CASE("commands: version, help, misspellings, --set hints - every option is in its usage and the docs") {
  const Result version = mpncov_program("--version");
  CHECK(version.status == 0);
  CHECK(version.output.rfind("mpncov ", 0) == 0);
  const Result help = mpncov_program("help train");
  CHECK(help.status == 0);
  CHECK(help.output.rfind("usage: mpncov train", 0) == 0);
  const Result misspelt = mpncov_program("trian x.yaml");
  CHECK(misspelt.status == 2);
  CHECK(contains(misspelt.output, "unknown command 'trian', did you mean 'train'?"));
  const Result epochs = mpncov_program("train x.yaml --epochs 5");
  CHECK(epochs.status == 2);
  CHECK(contains(epochs.output, "unknown option --epochs: it is the experiment key solver.epochs, set with --set solver.epochs=VALUE"));

  const Result options = mpncov_program("help --options");
  REQUIRE(options.status == 0);
  const std::string docs = read_text(std::string(MPNCOV_SOURCE_DIR) + "/docs/experiments.md");
  std::istringstream lines(options.output);
  std::string line;
  int commands = 0;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string command, option;
    words >> command;
    ++commands;
    const std::string usage = mpncov_program("help " + command).output;
    const std::string synopsis = usage.substr(0, usage.find("\n\n"));
    const size_t section = docs.find("### `mpncov " + command + "`");
    INFO(command);
    REQUIRE(section != std::string::npos);
    const std::string documented = docs.substr(section, docs.find("\n### ", section + 1) - section);
    while (words >> option) {
      INFO(option);
      CHECK(contains(synopsis, option));
      CHECK(contains(documented, option));
    }
  }
  CHECK(commands >= 8);
}

TEST_CASE("commands: time --loader on a small folder - gradcheck warns on zero gradients, usage mistakes exit 2") {
  const fs::path dir = test::temp_dir("commands_time_gradcheck");
  const std::string exp = tiny_experiment(dir);
  // 18 images in batches of 4 are 5 batches an epoch: 12 batches take 2 epochs and 2 batches, 44 images.
  const Result loader = mpncov_program("time --loader " + exp + " --iterations 12");
  REQUIRE(loader.status == 0);
  CHECK(contains(loader.output, "loader: 44 images in "));
  CHECK(!contains(loader.output, "in 0.00 s"));
  // One channel at one position: B-CNN's normalised output is +-1 whatever the input (mpncov refuses a
  // 1x1 input at setup).
  const Result zero = mpncov_program("gradcheck --layer bcnn --input 2x1x1x1");
  CHECK(zero.status == 0);
  CHECK(contains(zero.output, "warning: bcnn"));
  CHECK(contains(zero.output, "every checked gradient is 0"));
  CHECK(contains(zero.output, "zero (no signal)"));
  CHECK(mpncov_program("gradcheck --layer nosuchlayer").status == 2);
  CHECK(mpncov_program("gradcheck nosuchnet").status == 2);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("quickstart: --representation mpncov (the default) trains the default representation") {
  const fs::path dir = test::temp_dir("quickstart_representation");
  test::write_tiny_image_folder(dir, 2, 1);  // trained instead of the quickstart's textures (--set)
  const std::string run = (dir / "q").string();
  const Result r = mpncov_program(str("quickstart --out ", run, " --representation mpncov --quiet --set solver.epochs=1",
                                      " --set data.train=", (dir / "data/train").string(), " --set data.val=",
                                      (dir / "data/val").string(), " --set run.device=cpu"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  // The file's reduce: 32 stays (a bare {type: mpncov} would pool the backbone's 64 channels).
  CHECK(read_text(fs::path(run) / "log.txt").find("representation.conv_dr_block.0") != std::string::npos);
}

}  // TEST_SUITE
