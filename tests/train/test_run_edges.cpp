// Runs at the edges a user meets: a second stage started from another run's checkpoint, --resume with
// nothing to resume, a training folder smaller than one batch.
#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "core/json.h"
#include "core/safetensors.h"
#include "nets/net.h"
#include "nets/net_spec.h"
#include "tests/helpers.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace mpncov;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Rewrites entries of a checkpoint's training state (as another run would have saved it).
void edit_state(const std::string& path, const std::map<std::string, double>& values) {
  SafetensorsFile f = load_safetensors(path);
  Json state = parse_json(f.metadata.at("state"));
  for (const auto& [key, value] : values) state[key] = value;
  f.metadata["state"] = dump_json(state);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : f.names) tensors.emplace_back(n, f.tensors.at(n));
  save_safetensors(path, tensors, f.metadata);
}

TrainOptions quiet() {
  TrainOptions o;
  o.quiet = true;
  return o;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("run edges: --force does not remove the checkpoint run.resume starts from") {
  const fs::path dir = test::temp_dir("edge_force_resume");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  const std::string out = (dir / "run").string(), last = out + "/last.safetensors";
  REQUIRE(train(load_experiment(exp, {"run.out=" + out}), quiet()) == 0);
  TrainOptions force = quiet();
  force.force = true;
  std::string error;
  try {
    train(load_experiment(exp, {"run.out=" + out, "run.resume=" + last}), force);
  } catch (const Error& e) {
    error = e.what();
  }
  CHECK(error.find("--force would remove " + last) != std::string::npos);
  CHECK(fs::exists(last));
  CHECK(fs::exists(out + "/log.txt"));  // nothing of the run removed
}

TEST_CASE("run edges: a second stage that never beats the first stage's best still has its own best.safetensors") {
  const fs::path dir = test::temp_dir("edge_two_stage_best");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  const std::string stage1 = (dir / "stage1").string(), stage2 = (dir / "stage2").string();
  REQUIRE(train(load_experiment(exp, {"run.out=" + stage1}), quiet()) == 0);
  // Stage 1's best is out of reach (above 100%), so no epoch of stage 2 improves on it.
  const std::string last = stage1 + "/last.safetensors";
  // What a command that loads it prints: the accuracy as the log prints it, with two decimals.
  const std::string described = describe_weights_file(last);
  CHECK(described.rfind(last + " (checkpoint after epoch 1, val top-1 ", 0) == 0);
  CHECK(described.substr(described.size() - 5, 1) == ".");  // "...33.33%)"
  edit_state(last, {{"best_top1", 101.0}});
  // The final 2-crop evaluation reads this run folder's best.safetensors (as eval does by default).
  REQUIRE(train(load_experiment(exp, {"solver.epochs=2", "run.out=" + stage2, "run.resume=" + last, "data.eval_crops=2"}),
                quiet()) == 0);
  CHECK(fs::exists(fs::path(stage2) / "best.safetensors"));
  CHECK(read_text(fs::path(stage2) / "log.txt").find("2-crop evaluation") != std::string::npos);
  // A second stage whose epochs the first already reached trains nothing and has no best model to
  // evaluate: it says so instead of failing to open best.safetensors.
  const std::string stage3 = (dir / "stage3").string();
  REQUIRE(train(load_experiment(exp, {"run.out=" + stage3, "run.resume=" + last, "data.eval_crops=2"}), quiet()) == 0);
  CHECK(read_text(fs::path(stage3) / "log.txt").find("nothing to train: the checkpoint is at epoch 1 and solver.epochs is 1") !=
        std::string::npos);
}

TEST_CASE("run edges: --resume with no checkpoint is refused before the run folder is written") {
  const fs::path dir = test::temp_dir("edge_resume_nothing");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  TrainOptions resume = quiet();
  resume.resume = true;
  CHECK_THROWS_WITH_AS(train(load_experiment(exp), resume), doctest::Contains("nothing to resume"), Error);
  resume.resume_path = (dir / "missing.safetensors").string();
  CHECK_THROWS_WITH_AS(train(load_experiment(exp), resume), doctest::Contains("missing.safetensors"), Error);
  // A weights file (no training state) is not a checkpoint to continue.
  std::ofstream(dir / "bad.safetensors") << "not a safetensors file at all";
  resume.resume_path = (dir / "bad.safetensors").string();
  CHECK_THROWS_AS(train(load_experiment(exp), resume), Error);
  CHECK_FALSE(fs::exists(dir / "run"));
  // So the run starts afresh without --force.
  CHECK(train(load_experiment(exp), quiet()) == 0);
}

TEST_CASE("run edges: drop_last with fewer training images than a batch is an error naming the keys") {
  const fs::path dir = test::temp_dir("edge_drop_last");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  CHECK_THROWS_WITH_AS(train(load_experiment(exp, {"data.drop_last=true", "data.batch=30"}), quiet()),
                       doctest::Contains("data.drop_last"), Error);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: a run stopped mid-epoch resumes with another data.batch from about the same image") {
  const fs::path dir = test::temp_dir("edge_resume_batch");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  TrainOptions stop = quiet();
  stop.stop_after_steps = 4;  // 16 of the 18 images, batch 4
  REQUIRE(train(load_experiment(exp), stop) == 128 + SIGINT);
  TrainOptions resume = quiet();
  resume.resume = true;
  REQUIRE(train(load_experiment(exp, {"data.batch=8"}), resume) == 0);  // batches of 8: the third (2 images) is left
  const std::string log = read_text(dir / "run/log.txt");
  CHECK(log.find("saved with data.batch 4, this run has 8") != std::string::npos);
  CHECK(log.find("resumed from " + (dir / "run/last.safetensors").string() + " at epoch 1, batch 3") != std::string::npos);
  CHECK(log.find("epoch 1/1: train loss") != std::string::npos);
  // Saved by 2 processes of batch 4 after 2 steps (16 images): one process of batch 16 goes on with the
  // second batch, not past the end of the epoch (the batch count scaled by the processes alone).
  const fs::path again = test::temp_dir("edge_resume_batch_processes");
  const std::string exp2 = test::write_tiny_experiment(again, "{lr: 0.02, epochs: 1}");
  stop.stop_after_steps = 2;
  REQUIRE(train(load_experiment(exp2, {"data.batch=8"}), stop) == 128 + SIGINT);
  edit_state((again / "run/last.safetensors").string(), {{"world_size", 2}, {"batch_size", 4}});
  REQUIRE(train(load_experiment(exp2, {"data.batch=16"}), resume) == 0);
  const std::string log2 = read_text(again / "run/log.txt");
  CHECK(log2.find("saved by 2 process(es), this run has 1") != std::string::npos);
  CHECK(log2.find("at epoch 1, batch 2") != std::string::npos);
  // Fewer training images than when it stopped (4 batches in): the epoch's 2 batches are already behind it.
  const fs::path fewer = test::temp_dir("edge_resume_fewer_images");
  const std::string exp3 = test::write_tiny_experiment(fewer, "{lr: 0.02, epochs: 1}");
  stop.stop_after_steps = 4;
  REQUIRE(train(load_experiment(exp3), stop) == 128 + SIGINT);
  for (const char* name : {"00002.jpg", "00003.jpg", "00004.jpg", "00005.jpg"}) {
    fs::remove(fewer / "data/train/class0" / name);
    fs::remove(fewer / "data/train/class1" / name);
  }
  REQUIRE(train(load_experiment(exp3), resume) == 0);
  CHECK(read_text(fewer / "run/log.txt").find("stopped at batch 4 of an epoch that has 3 batches here") != std::string::npos);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: model.pretrained (the seed's --pretrained) is an error naming model.weights, not 'did you mean net'") {
  const fs::path dir = test::temp_dir("edge_pretrained_key");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  std::string message;
  try {
    load_experiment(exp, {"model.pretrained=true"});
  } catch (const Error& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(message.find("model: key 'pretrained' has no meaning here") != std::string::npos);
  CHECK(message.find("model.weights: FILE.safetensors") != std::string::npos);
  CHECK(message.find("tools/pth_to_safetensors.py") != std::string::npos);
  CHECK(message.find("did you mean") == std::string::npos);
}

TEST_CASE("run edges: an error inside a --set mapping names --set, not the file's line 1") {
  const fs::path dir = test::temp_dir("edge_set_nested");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  auto error = [&](const std::string& set) -> std::string {
    try {
      load_experiment(exp, {set});
      check_experiment(load_experiment(exp, {set}));
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(error("solver.schedule={type: step, milestones: [3], gama: 0.5}") ==
        exp + " (--set): solver schedule: unknown key 'gama', did you mean 'gamma'? (valid keys: gamma, milestones, per, type, warmup)");
  CHECK(error("solver.schedule={type: cosine, warmup: {epochs: 0}}").rfind(exp + " (--set): solver schedule warmup:", 0) == 0);
  CHECK(error("model.representation={type: mpncov, reduce: -1}") == exp + ": representation: reduce must be a positive channel count");
  CHECK(error("data.train_transform=[resize: [8, 8], bogus: 1]").rfind(exp + ": data.train_transform[1]: unknown step", 0) == 0);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: a key with no value (~, null, --set key=) takes its default instead of the text 'null'") {
  const fs::path dir = test::temp_dir("edge_null_keys");
  std::ofstream(dir / "exp.yaml") << "model: {net: small_cnn, weights: null}\ndata: {train: t, val: ~}\n"
                                  << "solver: {schedule: ~}\nrun:\n  out:\n  resume: /x.safetensors\n";
  const Experiment e = load_experiment((dir / "exp.yaml").string(), {"run.resume="});
  CHECK(e.run.out == "runs/exp");  // was a run folder named "null"
  CHECK(e.run.resume.empty());
  CHECK(e.data.val.empty());
  CHECK(e.model.weights.empty());
  CHECK(e.solver.schedule.kind() == Schedule::Kind::Constant);
  CHECK(resolved_config(e).find("  out: runs/exp\n") != std::string::npos);
  CHECK(resolved_config(e).find("  dist_timeout: 1800\n") != std::string::npos);  // the default, not 1.8e+03
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: SIGINT during validation or the final multi-crop evaluation stops the run there (status 130)") {
  const fs::path dir = test::temp_dir("edge_sigint_validation");
  test::write_tiny_image_folder(dir, 2, 150);  // 6 training images (2 steps), 450 to validate 3 times over
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  // The signal comes once the last step is logged: while validating or evaluating, never during a step.
  // Ignored outside train() (which installs its own handler), should it come late.
  const auto previous = std::signal(SIGINT, SIG_IGN);
  std::thread signaller([&] {
    const fs::path rows = dir / "run/iterations.csv";
    for (int i = 0; i < 20000; ++i) {
      if (read_text(rows).find("\n1,2,") != std::string::npos) break;
      usleep(500);
    }
    kill(getpid(), SIGINT);
  });
  const int status = train(load_experiment(exp, {"data.eval_crops=2", "data.val_batch=50"}), quiet());
  signaller.join();
  std::signal(SIGINT, previous);
  CHECK(status == 128 + SIGINT);
  const std::string log = read_text(dir / "run/log.txt");
  CHECK(log.find("interrupted (SIGINT)") != std::string::npos);
  CHECK(log.find("done: best top-1") == std::string::npos);
  // Either way the run finishes with --resume.
  TrainOptions resume = quiet();
  resume.resume = true;
  CHECK(train(load_experiment(exp, {"data.eval_crops=2", "data.val_batch=50"}), resume) == 0);
  CHECK(read_text(dir / "run/log.txt").find("2-crop evaluation") != std::string::npos);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: a run folder that is a file or cannot be created is named as run.out") {
  const fs::path dir = test::temp_dir("edge_run_out");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  std::ofstream(dir / "file") << "x";
  auto error = [&](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string file = (dir / "file").string();
  CHECK(error([&] { check_experiment(load_experiment(exp, {"run.out=" + file})); })
            .find("run: key 'out' names '" + file + "', which is a file") != std::string::npos);
  CHECK(error([&] { train(load_experiment(exp, {"run.out=" + file + "/run"}), quiet()); })
            .find("cannot create the run folder " + file + "/run (run.out)") != std::string::npos);
  // A folder that holds a run, named with a trailing slash: the other folder suggested is beside it.
  std::ofstream(dir / "log.txt") << "x";
  CHECK(error([&] { train(load_experiment(exp, {"run.out=" + dir.string() + "/"}), quiet()); })
            .find("--set run.out=" + dir.string() + "-2, or") != std::string::npos);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: dropout masks follow run.seed through partial batches - a resume stays bit for bit") {
  // A net with dropout; 18 images in batches of 4 end each epoch with a batch of 2, and validation runs
  // batches of another shape: the net is set up again for each.
  const fs::path dir = test::temp_dir("edge_dropout_seed");
  std::ofstream(dir / "drop.yaml") << "name: drop_cnn\ninput: [3, 16, 16]\nfeatures:\n"
                                   << "  - {name: conv, type: conv, out_channels: 8, kernel_size: 3, padding: 1}\n"
                                   << "  - {name: relu, type: relu}\nrepresentation: {name: pool, type: gavp}\n"
                                   << "classifier:\n  - {name: drop, type: dropout, p: 0.5}\n"
                                   << "  - {name: fc, type: linear, out_features: 3}\n";
  test::write_tiny_image_folder(dir);
  std::ofstream(dir / "exp.yaml") << "model: {net: " << (dir / "drop.yaml").string() << "}\n"
                                  << "data: {train: " << (dir / "data/train").string() << ", val: "
                                  << (dir / "data/val").string() << ", preset: plain, image_size: 16, batch: 4, val_batch: 5}\n"
                                  << "solver: {lr: 0.1, epochs: 2}\nrun: {device: cpu, seed: 7}\n";
  const std::string exp = (dir / "exp.yaml").string();
  const std::string straight = (dir / "straight").string(), resumed = (dir / "resumed").string();
  REQUIRE(train(load_experiment(exp, {"run.out=" + straight}), quiet()) == 0);
  TrainOptions stop = quiet();
  stop.stop_after_steps = 7;  // in the second epoch, after the partial batch and a validation
  REQUIRE(train(load_experiment(exp, {"run.out=" + resumed}), stop) == 128 + SIGINT);
  TrainOptions resume = quiet();
  resume.resume = true;
  REQUIRE(train(load_experiment(exp, {"run.out=" + resumed}), resume) == 0);
  const SafetensorsFile a = load_safetensors(straight + "/last.safetensors"), b = load_safetensors(resumed + "/last.safetensors");
  REQUIRE(a.names == b.names);
  for (const std::string& n : a.names) {
    INFO(n);
    CHECK(a.tensors.at(n).to_vector() == b.tensors.at(n).to_vector());
  }
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: run.seed keys the dropout masks, also after the net is set up again (freeze, a last partial batch)") {
  const NetSpec spec = parse_net("name: d\ninput: [3, 4, 4]\nfeatures:\n  - {name: drop, type: dropout, p: 0.5}\n", "d.yaml");
  auto mask = [&](uint64_t seed) {
    Net net(spec);
    net.setup(Shape({2, 3, 4, 4}), DType::F32, Device::cpu(), seed);  // as train sets it up, with run.seed
    net.freeze(0);                                                    // which sets it up again
    net.setup(Shape({1, 3, 4, 4}));                                   // and again for a smaller batch
    net.set_training(true);
    net.set_step(3);
    return net.forward(Tensor::full(Shape({1, 3, 4, 4}), 1.0, DType::F32)).to_vector();
  };
  CHECK(mask(7) == mask(7));
  CHECK(mask(7) != mask(1));  // were both seed 1's: every run's dropout drew the same masks
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: --stop-after 0 saves the initial state, before any step") {
  const fs::path dir = test::temp_dir("edge_stop_after_0");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 1}");
  TrainOptions stop = quiet();
  stop.stop_after_steps = 0;
  REQUIRE(train(load_experiment(exp), stop) == 128 + SIGINT);
  const Json state = parse_json(load_safetensors((dir / "run/last.safetensors").string()).metadata.at("state"));
  CHECK(state.at("step").get<int64_t>() == 0);  // was 1: the count was checked only after a step
  CHECK(state.at("batch").get<int64_t>() == 0);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: a key given twice (a second solver section, lr twice) is an error naming both lines") {
  const fs::path dir = test::temp_dir("edge_duplicate_keys");
  const std::string file = (dir / "exp.yaml").string();
  auto error = [&](const std::string& text) -> std::string {
    std::ofstream(file) << text;
    try {
      load_experiment(file);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  // yaml-cpp finds the first of two equal keys: the second section, or lr, was ignored without a word.
  CHECK(error("model: {net: small_cnn}\ndata: {train: t}\nsolver: {lr: 0.5}\nsolver: {epochs: 3}\n") ==
        file + ":4: experiment: key 'solver' is given twice (also on line 3); only one may be");
  CHECK(error("model: {net: small_cnn}\ndata: {train: t}\nsolver:\n  lr: 0.5\n  momentum: 0\n  lr: 0.1\n") ==
        file + ":6: solver: key 'lr' is given twice (also on line 4); only one may be");
  CHECK_THROWS_WITH_AS(Net(parse_net("name: n\ninput: [3, 8, 8]\nfeatures:\n  - {name: c, type: conv, out_channels: 4,"
                                     " kernel_size: 3, kernel_size: 5}\n", "n.yaml")),
                       doctest::Contains("n.yaml:4: layer 'c' (conv): key 'kernel_size' is given twice"), Error);
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: resumed after an epoch's last step, metrics.csv keeps that step's rate (per-iteration schedule)") {
  const fs::path dir = test::temp_dir("edge_resume_end_lr");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.1, epochs: 2, schedule: {type: cosine, per: iteration}}");
  const std::string straight = (dir / "straight").string(), resumed = (dir / "resumed").string();
  REQUIRE(train(load_experiment(exp, {"run.out=" + straight}), quiet()) == 0);
  TrainOptions stop = quiet();
  stop.stop_after_steps = 5;  // the first epoch's last step, before its validation
  REQUIRE(train(load_experiment(exp, {"run.out=" + resumed}), stop) == 128 + SIGINT);
  TrainOptions resume = quiet();
  resume.resume = true;
  REQUIRE(train(load_experiment(exp, {"run.out=" + resumed}), resume) == 0);
  auto rates = [](const std::string& csv) {  // the lr column of each row
    std::vector<std::string> out;
    std::istringstream in(csv);
    for (std::string row; std::getline(in, row);) {
      size_t at = 0;
      for (int comma = 0; comma < 7; ++comma) at = row.find(',', at) + 1;
      out.push_back(row.substr(at, row.find(',', at) - at));
    }
    return out;
  };
  CHECK(rates(read_text(fs::path(resumed) / "metrics.csv")) == rates(read_text(fs::path(straight) / "metrics.csv")));
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("run edges: iterations.csv rows written after the checkpoint (a killed run) are not written twice on resume") {
  const fs::path dir = test::temp_dir("edge_iteration_rows");
  const std::string exp = test::write_tiny_experiment(dir, "{lr: 0.02, epochs: 2}");
  const std::string straight = (dir / "straight").string(), resumed = (dir / "resumed").string();
  REQUIRE(train(load_experiment(exp, {"run.out=" + straight}), quiet()) == 0);
  TrainOptions stop = quiet();
  stop.stop_after_steps = 7;  // epoch 2, batch 2 (rows every 2 iterations)
  REQUIRE(train(load_experiment(exp, {"run.out=" + resumed}), stop) == 128 + SIGINT);
  // As if the run had gone on to write the row of iteration 4, then been killed before a checkpoint.
  std::ofstream(fs::path(resumed) / "iterations.csv", std::ios::app) << "2,4,9,9,9,9,9,9,9\n";
  TrainOptions resume = quiet();
  resume.resume = true;
  REQUIRE(train(load_experiment(exp, {"run.out=" + resumed}), resume) == 0);
  CHECK(read_text(fs::path(resumed) / "iterations.csv") == read_text(fs::path(straight) / "iterations.csv"));
}

}  // TEST_SUITE
