// The training state stored in a checkpoint's metadata: read back exactly, and a damaged one refused
// naming the file (the fuzz target checkpoint_state feeds this parser arbitrary bytes).
#include <doctest/doctest.h>

#include "train/checkpoint.h"

using namespace mpncov;

TEST_CASE("checkpoint state: parsed with the optimiser's rates and steps - damaged states name the file") {
  const std::string good = R"({"epoch": 2, "batch": 5, "step": 17, "best_top1": 0.5, "history": [], "classes": ["a", "b"],
    "partial_loss": 3.5, "partial_top1": 1, "partial_top5": 2, "partial_images": 8,
    "group_lr": {"features": 0.001}, "optimizer_steps": 17})";
  SgdState sgd;
  const TrainingState s = parse_training_state(good, "x.safetensors", &sgd);
  CHECK(s.epoch == 2);
  CHECK(s.batch == 5);
  CHECK(s.step == 17);
  CHECK(s.classes == std::vector<std::string>{"a", "b"});
  CHECK(s.partial_images == 8);
  CHECK(sgd.group_lr.at("features") == 0.001);
  CHECK(sgd.steps == 17);
  std::string negative = good;
  negative.replace(negative.find("\"batch\": 5"), 10, "\"batch\": -5");
  CHECK_THROWS_WITH_AS(parse_training_state(negative, "x.safetensors"),
                       doctest::Contains("x.safetensors: the checkpoint's training state is damaged: epoch, batch"), Error);
  CHECK_THROWS_WITH_AS(parse_training_state("{\"epoch\": 1}", "x.safetensors"), doctest::Contains("x.safetensors"), Error);
  CHECK_THROWS_WITH_AS(parse_training_state("[1, 2", "x.safetensors"), doctest::Contains("x.safetensors"), Error);
}
