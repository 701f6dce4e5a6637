#include "data/presets.h"

#include <cctype>

#include "core/error.h"
#include "core/text.h"
#include "data/transform_list.h"

namespace mpncov::data {

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::Train: return "train";
    case Stage::Val: return "val";
    case Stage::Evaluate: return "evaluate";
  }
  return "?";
}

std::vector<std::string> preset_names() { return {"imagenet", "cub", "aircraft", "cars", "plain"}; }

namespace {

std::string canonical(const std::string& name) {
  std::string lower;
  for (char ch : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string found;
  for (const std::string& p : preset_names())
    if (lower.rfind(p, 0) == 0) found = p;
  if (found.empty())  // no source location: this is the user's mistake, and the caller names the file and key
    throw Error(str("names an unknown preset '", name, "'", did_you_mean(lower, preset_names()),
                    " (one of imagenet, cub, aircraft, cars, plain)"));
  return found;
}

const char* const kImageNetNormalize = "normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}";

}  // namespace

std::string preset_list_text(const std::string& name_in, Stage stage, int image_size) {
  const std::string name = canonical(name_in);
  const bool train = stage == Stage::Train;
  const std::string flip = train ? "- random_horizontal_flip: {p: 0.5}\n" : "";
  std::string steps;
  if (name == "imagenet") {
    steps = train ? "- random_resized_crop: {size: 224, scale: [0.08, 1.0], ratio: [0.75, 1.3333333333333333]}\n"
                  : stage == Stage::Val ? "- resize: 256\n- center_crop: 224\n" : "- resize: 256\n- ten_crop: 224\n";
  } else if (name == "plain") {
    MPNCOV_CHECK(image_size > 0, "the plain preset needs a positive image_size");
    steps = str("- resize: [", image_size, ", ", image_size, "]\n");
    if (stage == Stage::Evaluate) steps += str("- center_crop_with_flip: ", image_size, "\n");
  } else {
    // Fine-grained sets: no random crop in training, only the flip. The 2-crop evaluation crops the resized
    // image directly (a centre crop and the centre crop of its mirror), as the seed does.
    steps = name == "cub" ? "- resize: 448\n" : name == "aircraft" ? "- resize: [512, 512]\n" : "- resize: [448, 448]\n";
    if (stage == Stage::Evaluate) steps += "- center_crop_with_flip: 448\n";
    else if (name != "cars") steps += "- center_crop: 448\n";
  }
  return steps + flip + "- " + kImageNetNormalize + "\n";
}

Pipeline preset(const std::string& name, Stage stage, int image_size) {
  const std::string text = preset_list_text(name, stage, image_size);
  return read_transform_list(YAML::Load(text), str("preset ", canonical(name), " (", stage_name(stage), ")"),
                             str(stage_name(stage), "_transform"));
}

Pipeline multi_crop_evaluation(const Pipeline& val, int crops) {
  MPNCOV_CHECK(crops == 2 || crops == 10, "multi-crop evaluation takes 2 or 10 crops, not ", crops);
  const Size size = val.output_size();
  MPNCOV_CHECK(size.width == size.height, "multi-crop evaluation needs a square val output, not ", size.width, "x",
               size.height);
  std::vector<Pipeline::Step> steps = val.steps();
  if (!steps.empty() && steps.back().kind == Pipeline::Step::Kind::CenterCrop) steps.pop_back();
  Pipeline p;
  for (const Pipeline::Step& s : steps) p.add_step(s);
  p.normalize(val.normalization());
  return crops == 10 ? p.ten_crop(size.width) : p.center_crop_with_flip(size.width);
}

}  // namespace mpncov::data
