// The data path against PIL and torchvision (tests/oracle/data_reference.py): decoding of every kind of
// file, the deterministic transforms of every preset on real photographs, RandomResizedCrop's resize at
// given boxes, and the distribution of its boxes.
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/npy.h"
#include "data/decode.h"
#include "data/file.h"
#include "data/presets.h"
#include "tests/data/image_files.h"
#include "tests/helpers.h"

using namespace mpncov;
using namespace mpncov::data;
namespace fs = std::filesystem;

namespace {

const fs::path& oracle_dir() {
  static const fs::path dir = [] {
    const fs::path d = test::process_temp_dir("data_oracle");
    test::run_oracle("data_reference.py", {d.string()});
    return d;
  }();
  return dir;
}

std::vector<std::vector<std::string>> cases(const std::string& kind) {
  std::ifstream f(oracle_dir() / "cases.txt");
  std::vector<std::vector<std::string>> out;
  for (std::string line; std::getline(f, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;) w.push_back(s);
    if (!w.empty() && w[0] == kind) out.push_back(w);
  }
  return out;
}

// Differences of normalised tensors in 0-255 pixel units (x * std * 255), channel = (i / plane) % 3.
struct Diff {
  double mean = 0, max = 0;
};
Diff pixel_diff(const float* a, const Tensor& ref, int64_t plane) {
  const std::vector<double> r = ref.to_vector();
  Diff d;
  for (size_t i = 0; i < r.size(); ++i) {
    const double v = std::abs(a[i] - r[i]) * Normalize::kImageNetStd[(i / plane) % 3] * 255.0;
    d.mean += v;
    d.max = std::max(d.max, v);
  }
  d.mean /= static_cast<double>(r.size());
  return d;
}

Stage stage_of(const std::string& s) { return s == "val" ? Stage::Val : s == "train" ? Stage::Train : Stage::Evaluate; }

}  // namespace

TEST_SUITE("oracle") {

// One test case (one process, one run of the script), three parts.
TEST_CASE("data oracle: decoding and transforms against PIL and torchvision") {
  SUBCASE("decoding equals PIL's Image.open().convert('RGB')") {
    const auto list = cases("decode");
    CHECK(list.size() >= 15);
    for (const auto& c : list) {
      CAPTURE(c[1]);
      const Image ours = decode_file((oracle_dir() / "images" / c[1]).string());
      const Tensor ref = load_npy((oracle_dir() / "ref" / c[2]).string());
      REQUIRE(ref.shape() == Shape({ours.height(), ours.width(), 3}));
      const int64_t* r = ref.data<int64_t>();
      int64_t worst = 0;
      for (int64_t i = 0; i < ref.numel(); ++i) worst = std::max(worst, std::abs(r[i] - int64_t{ours.data()[i]}));
      CHECK(worst == 0);  // bit for bit: the same libjpeg-turbo, and PIL's CMYK and palette conversions
    }
  }

  SUBCASE("presets' resize, crops and normalisation match torchvision on photographs") {
    // Bounds in 0-255 units. Exact decoding: bit-identical to PIL up to float rounding in Normalize.
    // DCT-domain scaling (big photographs only): a slightly different low-pass.
    for (const auto& c : cases("transform")) {
      const std::string name = c[1].substr(0, c[1].find('_')), stage = c[1].substr(c[1].find('_') + 1);
      const Pipeline p = preset(name, stage_of(stage));
      const Tensor ref = load_npy((oracle_dir() / "ref" / c[3]).string());
      REQUIRE(ref.numel() == p.sample_numel());
      std::vector<uint8_t> bytes;
      read_file((oracle_dir() / "images" / c[2]).string(), bytes);
      std::vector<float> out(static_cast<size_t>(p.sample_numel()));
      PipelineScratch scratch;
      const int64_t plane = int64_t{p.output_size().width} * p.output_size().height;
      CAPTURE(c[1]);
      CAPTURE(c[2]);
      for (bool fast : {false, true}) {
        SampleRng rng(0, 0, 0);
        const DecodeOptions options{true, fast, 2.0};
        p.run(bytes.data(), bytes.size(), rng, options, out.data(), scratch);
        const Diff d = pixel_diff(out.data(), ref, plane);
        CAPTURE(fast);
        CAPTURE(scratch.decoded.scale_denom);
        CAPTURE(d.mean);
        CAPTURE(d.max);
        if (scratch.decoded.scale_denom == 1) {
          CHECK(d.max < 0.001);
        } else {
          CHECK(d.mean < 1.0);
          CHECK(d.max < 16.0);
          MESSAGE("DCT 1/", scratch.decoded.scale_denom, " ", c[1], " ", c[2], ": mean ", d.mean, " max ", d.max);
        }
      }
    }
  }

  SUBCASE("RandomResizedCrop's crop-then-resize at given boxes, and its box distribution") {
    for (const auto& c : cases("resized_crop")) {
      CAPTURE(c[1]);
      std::vector<uint8_t> bytes;
      read_file((oracle_dir() / "images" / c[1]).string(), bytes);
      Decoded decoded;
      decode(bytes.data(), bytes.size(), decoded);
      View v = whole_image_view(decoded.full_width, decoded.full_height);
      view_crop(v, Rect{std::stoi(c[2]), std::stoi(c[3]), std::stoi(c[4]), std::stoi(c[5])});
      view_resize(v, Size{224, 224});
      if (c[6] == "1") view_hflip(v);
      std::vector<float> out(3 * 224 * 224);
      RenderScratch scratch;
      render_view(decoded, v, Normalize(), out.data(), scratch);
      const Diff d = pixel_diff(out.data(), load_npy((oracle_dir() / "ref" / c[7]).string()), 224 * 224);
      CHECK(d.max < 0.001);
    }
    // Box statistics: ours from Philox, torchvision's from torch's generator; same algorithm, so the same
    // distribution. Means of 4000 draws agree within about 4 standard errors.
    const Tensor ref = load_npy((oracle_dir() / "ref" / cases("rrc_params").at(0)[1]).string());
    const int64_t n = ref.dim(0);
    const int64_t* r = ref.data<int64_t>();
    double ref_mean[4] = {}, ours_mean[4] = {}, ref_sq[4] = {};
    for (int64_t k = 0; k < n; ++k) {
      SampleRng rng(5, 0, static_cast<uint64_t>(k));
      const Rect b = random_resized_crop_box(500, 375, rng);
      const double ours[4] = {double(b.y), double(b.x), double(b.height), double(b.width)};  // (i, j, h, w)
      for (int q = 0; q < 4; ++q) {
        ref_mean[q] += double(r[k * 4 + q]) / n;
        ref_sq[q] += double(r[k * 4 + q]) * double(r[k * 4 + q]) / n;
        ours_mean[q] += ours[q] / n;
      }
    }
    for (int q = 0; q < 4; ++q) {
      const double sd = std::sqrt(ref_sq[q] - ref_mean[q] * ref_mean[q]);
      CAPTURE(q);
      CHECK(std::abs(ours_mean[q] - ref_mean[q]) < 4 * sd / std::sqrt(double(n)) * std::sqrt(2.0));
    }
  }

}  // TEST_CASE

}  // TEST_SUITE
