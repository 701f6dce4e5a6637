#include "data/presets.h"

#include <cctype>

#include "core/error.h"

namespace mpncov::data {

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::Train: return "train";
    case Stage::Val: return "val";
    case Stage::Evaluate: return "evaluate";
  }
  return "?";
}

std::vector<std::string> preset_names() { return {"imagenet", "cub", "aircraft", "cars"}; }

Pipeline preset(const std::string& name, Stage stage) {
  std::string lower;
  for (char ch : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string found;
  for (const std::string& p : preset_names())
    if (lower.rfind(p, 0) == 0) found = p;
  MPNCOV_CHECK(!found.empty(), "unknown data preset '", name, "': expected imagenet, cub, aircraft or cars");

  Pipeline p;
  if (found == "imagenet") {
    if (stage == Stage::Train) return p.random_resized_crop(224).random_hflip();
    p.resize(256);
    return stage == Stage::Val ? p.center_crop(224) : p.ten_crop(224);
  }
  // Fine-grained sets: no random crop in training, only the flip. The 2-crop evaluation crops the resized
  // image directly (a centre crop and the centre crop of its mirror), as the seed does.
  if (found == "cub") p.resize(448);
  if (found == "aircraft") p.resize(512, 512);
  if (found == "cars") p.resize(448, 448);
  if (stage == Stage::Evaluate) return p.center_crop_with_flip(448);
  if (found != "cars") p.center_crop(448);
  return stage == Stage::Train ? p.random_hflip() : p;
}

}  // namespace mpncov::data
