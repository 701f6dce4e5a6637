// data.train_transform / data.val_transform in experiment files: errors with file, line and the nearest
// name; --set; the presets as lists; --print-config's lists read back unchanged.
#include <fstream>

#include "data/presets.h"
#include "data/transform_list.h"
#include "tests/helpers.h"
#include "train/experiment.h"
#include "train/pipeline_config.h"

using namespace mpncov;
namespace fs = std::filesystem;

TEST_SUITE("unit") {

TEST_CASE("transform lists: errors name the file, line, step and nearest name") {
  const fs::path dir = test::temp_dir("transform_lists");
  const std::string e = (dir / "e.yaml").string();
  auto error = [&](const std::string& steps) -> std::string {
    std::ofstream(e) << "model: {net: resnet18}\ndata:\n  train: x\n  train_transform:\n    - resize: 256\n" << steps;
    try {
      load_experiment(e);
    } catch (const Error& ex) {
      return ex.what();
    }
    return "no error";
  };
  const auto contains = [](const std::string& text, const std::string& part) {
    CAPTURE(text);
    CHECK(text.find(part) != std::string::npos);
  };
  contains(error("    - centre_crop: 224\n"),
           e + ":6: data.train_transform[1]: unknown step 'centre_crop', did you mean 'center_crop'?");
  contains(error("    - random_horizontal_flip: {prob: 0.3}\n"),
           e + ":6: data.train_transform[1] (random_horizontal_flip): unknown key 'prob', did you mean 'p'?");
  contains(error("    - center_crop: 224\n    - random_crop: {size: 224, paddin: 4}\n"),
           e + ":7: data.train_transform[2] (random_crop): unknown key 'paddin', did you mean 'padding'?");
  contains(error("    - random_resized_crop: 224\n"), e + ":6: data.train_transform[1] (random_resized_crop): a "
                                                      "pipeline can resize once");
  contains(error("    - center_crop: [224, 224, 3]\n"), e + ":6: data.train_transform[1] (center_crop): key 'size'");
  contains(error("    - center_crop: 224\n    - color_jitter: {hue: 0.7}\n"), "hue range [-0.7, 0.7]");
  contains(error("    - color_jitter: 0.4\n    - center_crop: 224\n"), e + ":7: data.train_transform[2] (center_crop): "
                                                                         "CenterCrop cannot follow ColorJitter");
  contains(error("    - center_crop: 224\n    - normalize: {mean: 0.5}\n"), "key 'std' is required");
  contains(error("    - center_crop: 224\n    - normalize: {mean: 0.5, std: 0.5}\n    - random_horizontal_flip\n"),
           "normalize must be the last step");
  contains(error("    - random_crop: {size: 32, padding_mode: reflect}\n"), "key 'padding_mode' can only be constant");
  contains(error("    - [center_crop, 224]\n"), e + ":6: data.train_transform[1]: expected a step name");
  contains(error("    - center_crop: 224\n  val_transform: {resize: 3}\n"), e + ":7: data.val_transform: expected a list");
}

TEST_CASE("transform lists: values torchvision refuses are refused, not silently changed") {
  auto error = [](const std::string& list) -> std::string {
    try {
      data::read_transform_list(YAML::Load(list), "e.yaml", "data.train_transform");
    } catch (const Error& ex) {
      return ex.what();
    }
    return "no error";
  };
  // An infinite range made every draw fail, so every crop was the central fallback: no augmentation.
  CHECK(error("[random_resized_crop: {size: 8, ratio: [0.5, .inf]}]").find("finite") != std::string::npos);
  CHECK(error("[random_resized_crop: {size: 8, scale: [0.5, .inf]}]").find("finite") != std::string::npos);
  // Fractional padding was truncated; 1e10 overflowed into a negative number.
  for (const char* padding : {"2.5", "[1, 2.5]", "[1, 1, 1, 0.5]", "1e10"}) {
    CAPTURE(padding);
    const std::string e = error(str("[random_crop: {size: 8, padding: ", padding, "}]"));
    CAPTURE(e);
    CHECK(e.find("e.yaml:1: data.train_transform[0] (random_crop): key 'padding' must be whole numbers") !=
          std::string::npos);
  }
  CHECK(error("[random_crop: {size: 8, padding: [1, 2]}]") == "no error");
}

TEST_CASE("transform lists: the file's lists, --set, presets, and --print-config's lists read back") {
  const fs::path dir = test::temp_dir("transform_lists_ok");
  const std::string file = (dir / "e.yaml").string();
  std::ofstream(file) << "model: {net: resnet18}\n"
                         "data:\n  train: x\n  val: y\n  preset: cub\n  eval_crops: 2\n  train_transform:\n"
                         "    - random_crop: {size: 32, padding: 4}\n    - random_horizontal_flip\n"
                         "    - color_jitter: {brightness: 0.4, hue: [-0.1, 0.05]}\n"
                         "    - normalize: {mean: [0.49, 0.48, 0.45], std: 0.25}\n";
  const Experiment e = load_experiment(file);
  const data::Pipeline train = make_pipeline(e.data, true, 1);
  CHECK(train.describe() ==
        "RandomCrop(32, padding=(4, 4, 4, 4)) RandomHorizontalFlip(p=0.5) ColorJitter(brightness=(0.6, 1.4), "
        "hue=(-0.1, 0.05)) ToTensor Normalize(mean=(0.49, 0.48, 0.45), std=(0.25, 0.25, 0.25))");
  // No val_transform: the preset's; multi-crop evaluation follows it.
  CHECK(make_pipeline(e.data, false, 1).describe() == data::preset("cub", data::Stage::Val).describe());
  CHECK(make_pipeline(e.data, false, 2).describe() == data::preset("cub", data::Stage::Evaluate).describe());

  // --print-config shows the resolved lists, and they read back as the same pipelines.
  const std::string printed = resolved_config(e);
  CHECK(printed.find("- random_crop: {size: [32, 32], padding: [4, 4, 4, 4], pad_if_needed: false}") != std::string::npos);
  CHECK(printed.find("- resize: {size: 448}") != std::string::npos);
  // With eval_crops, a comment gives the final multi-crop evaluation's steps (docs/experiments.md).
  CHECK(printed.find("\n# data.eval_crops 2 evaluates the best model with: " +
                     data::preset("cub", data::Stage::Evaluate).describe() + "\n") != std::string::npos);
  const YAML::Node data = YAML::Load(printed)["data"];
  CHECK(data::read_transform_list(data["train_transform"], "printed", "train").describe() == train.describe());
  CHECK(data::read_transform_list(data["val_transform"], "printed", "val").describe() ==
        make_pipeline(e.data, false, 1).describe());

  // --set replaces a list; a list without normalize is ToTensor alone.
  const Experiment set = load_experiment(file, {"data.val_transform=[{resize: [40, 40]}, to_tensor]"});
  const data::Pipeline val = make_pipeline(set.data, false, 1);
  CHECK(val.describe() == "Resize((40, 40)) ToTensor Normalize(mean=(0, 0, 0), std=(1, 1, 1))");
  CHECK(val.normalization()(0, 51) == 0.2f);
  CHECK(make_pipeline(set.data, false, 2).describe() ==
        "Resize((40, 40)) CenterCropWithFlip(40) ToTensor Normalize(mean=(0, 0, 0), std=(1, 1, 1))");
  // Multi-crop evaluation needs a square val output.
  CHECK_THROWS_WITH(load_experiment(file, {"data.val_transform=[{resize: [40, 30]}]"}),
                    doctest::Contains((file + ":6: data: key 'eval_crops' cannot follow val_transform").c_str()));
}

TEST_CASE("transform lists: every preset is a list that reads back as itself") {
  for (const std::string& name : data::preset_names()) {
    for (data::Stage stage : {data::Stage::Train, data::Stage::Val, data::Stage::Evaluate}) {
      const data::Pipeline p = data::preset(name, stage, 96);
      CAPTURE(p.describe());
      const data::Pipeline back = data::read_transform_list(data::transform_list_yaml(p), "test", "list");
      CHECK(back.describe() == p.describe());
      CHECK(back.normalization().mean() == data::Normalize::kImageNetMean);
      // The evaluate list is the val list made multi-crop, as make_pipeline builds it.
      if (stage == data::Stage::Evaluate) {
        const data::Pipeline val = data::preset(name, data::Stage::Val, 96);
        CHECK(data::multi_crop_evaluation(val, p.crops()).describe() == p.describe());
      }
    }
  }
  // The seed's presets, step by step.
  CHECK(data::preset_list_text("cub", data::Stage::Train) ==
        "- resize: 448\n- center_crop: 448\n- random_horizontal_flip: {p: 0.5}\n"
        "- normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}\n");
  CHECK(data::preset("plain", data::Stage::Train, 64).describe().rfind("Resize((64, 64)) RandomHorizontalFlip", 0) == 0);
  CHECK_THROWS_WITH(data::preset("plain", data::Stage::Val), doctest::Contains("image_size"));
}

}  // TEST_SUITE
