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
#include "data/transform_list.h"
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

// The same, for any normalisation.
Diff pixel_diff(const float* a, const Tensor& ref, int64_t plane, const std::array<float, 3>& std) {
  const std::vector<double> r = ref.to_vector();
  Diff d;
  for (size_t i = 0; i < r.size(); ++i) {
    const double v = std::abs(a[i] - r[i]) * std[(i / plane) % 3] * 255.0;
    d.mean += v;
    d.max = std::max(d.max, v);
  }
  d.mean /= static_cast<double>(r.size());
  return d;
}

// A pipeline of the first n steps of p (same draws, in the same order, as p's first n steps).
Pipeline first_steps(const Pipeline& p, size_t n) {
  Pipeline out;
  for (size_t k = 0; k < n; ++k) out.add_step(p.steps()[k]);
  return out;
}

// The draws of p's random steps for one sample, as transform_reference.py takes them: RandomCrop's (i, j)
// in the padded image, RandomResizedCrop's (i, j, h, w), ColorJitter's operations and factors in the order
// applied.
std::string drawn_parameters(const Pipeline& p, int width, int height, uint64_t index) {
  using Kind = Pipeline::Step::Kind;
  std::string out;
  std::vector<View> views;
  for (size_t k = 0; k < p.steps().size(); ++k) {
    const Pipeline::Step& s = p.steps()[k];
    if (s.kind != Kind::RandomCrop && s.kind != Kind::RandomResizedCrop) continue;
    SampleRng before_rng(9, 0, index), with_rng(9, 0, index);
    first_steps(p, k).plan(width, height, before_rng, views);
    const Size before = views.at(0).size();
    first_steps(p, k + 1).plan(width, height, with_rng, views);
    const View& v = views.at(0);
    if (s.kind == Kind::RandomResizedCrop) {
      out += str(" rrc=", v.source.y, ",", v.source.x, ",", v.source.height, ",", v.source.width);
      continue;
    }
    // The crop's corner in the unpadded image, then in the padded one (pad_if_needed pads both sides).
    int left = s.padding[0], top = s.padding[1];
    const int padded_w = before.width + s.padding[0] + s.padding[2];
    const int padded_h = before.height + s.padding[1] + s.padding[3];
    if (s.pad_if_needed && padded_w < s.width) left += s.width - padded_w;
    if (s.pad_if_needed && padded_h < s.height) top += s.height - padded_h;
    out += str(" rc=", v.source.y + v.window.y + top, ",", v.source.x + v.window.x + left);
  }
  std::vector<ColorAdjust> color;
  SampleRng rng(9, 0, index);
  p.plan(width, height, rng, views, &color);
  if (!color.empty()) {
    out += " jitter=";
    for (size_t k = 0; k < color.size(); ++k) {
      char factor[32];
      std::snprintf(factor, sizeof factor, "%.9g", static_cast<double>(color[k].factor));
      out += str(k ? ";" : "", static_cast<int>(color[k].op), ":", factor);
    }
  }
  return out;
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

// Every step of data.train_transform / data.val_transform, read from its YAML list, against torchvision's
// transform classes on photographs, at the draws our loader makes (tests/oracle/transform_reference.py).
TEST_CASE("data oracle: every transform step against torchvision at the loader's draws") {
  const char* const imagenet = "{normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}}";
  const std::vector<std::pair<std::string, std::string>> lists = {
      {"resize_max_size", str("[{resize: {size: 200, max_size: 260}}, {center_crop: 190}, ", imagenet, "]")},
      {"resize_hw_to_tensor", "[{resize: [150, 210]}, to_tensor]"},
      {"center_crop_padded", str("[{resize: 100}, {center_crop: [120, 90]}, ", imagenet, "]")},
      {"random_crop_padding_flip",
       "[{resize: 120}, {random_crop: {size: 112, padding: [4, 6, 2, 8]}}, {random_horizontal_flip: {p: 1.0}},"
       " {normalize: {mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3]}}]"},
      {"random_crop_pad_if_needed",
       str("[{resize: [50, 70]}, {random_crop: {size: [64, 96], padding: 3, pad_if_needed: true}}, ", imagenet, "]")},
      {"random_crop_then_resize",
       str("[{random_crop: [300, 280]}, {resize: [128, 120]}, {random_horizontal_flip: 0.0}, ", imagenet, "]")},
      {"random_resized_crop_hw",
       str("[{random_resized_crop: {size: [160, 200], scale: [0.3, 0.9], ratio: [0.5, 2.0]}}, ", imagenet, "]")},
      {"color_jitter_all",
       str("[{resize: 160}, {center_crop: 144}, {color_jitter: {brightness: 0.5, contrast: 0.5, saturation: 0.6, "
           "hue: 0.2}}, ", imagenet, "]")},
      {"color_jitter_extreme",
       str("[{resize: 96}, {center_crop: 96}, {random_horizontal_flip: {p: 1}}, "
           "{color_jitter: {contrast: [1.5, 3.0], hue: [-0.5, -0.3]}}, ", imagenet, "]")},
      {"color_jitter_padded",
       str("[{resize: 100}, {center_crop: 128}, {color_jitter: {brightness: [1.2, 2.0], contrast: [0.3, 0.6], "
           "saturation: [0.0, 0.5]}}, ", imagenet, "]")},
      {"five_crop", str("[{resize: 256}, {five_crop: [200, 180]}, ", imagenet, "]")},
      {"ten_crop", str("[{resize: [300, 280]}, {ten_crop: [200, 180]}, ", imagenet, "]")},
  };
  const std::vector<std::string> photos = {"p1_ladybird.jpg", "p2_storm.jpg", "p3_flower.jpg", "p4_garden.jpg"};
  const fs::path dir = test::process_temp_dir("transform_oracle");
  std::ofstream cases_file(dir / "cases.txt");
  struct Case {
    std::string name, ref;
    Pipeline pipeline;
    std::vector<float> out;
  };
  std::vector<Case> cases;
  for (const auto& [name, yaml] : lists) {
    const Pipeline p = read_transform_list(YAML::Load(yaml), "test", name);
    const bool random = p.describe().find("Random") != std::string::npos ||
                        p.describe().find("ColorJitter") != std::string::npos;
    for (size_t f = 0; f < photos.size(); ++f) {
      std::vector<uint8_t> bytes;
      read_file((oracle_dir() / "images" / photos[f]).string(), bytes);
      Decoded probe;
      decode(bytes.data(), bytes.size(), probe);
      for (uint64_t index = 0; index < (random ? 3u : 1u); ++index) {
        Case c{name, str(name, "_", f, "_", index, ".npy"), p, {}};
        c.out.resize(static_cast<size_t>(p.sample_numel()));
        PipelineScratch scratch;
        SampleRng rng(9, 0, index);
        p.run(bytes.data(), bytes.size(), rng, DecodeOptions{true, false, 2.0}, c.out.data(), scratch);
        cases_file << name << " " << photos[f] << " " << c.ref
                   << drawn_parameters(p, probe.full_width, probe.full_height, index) << "\n";
        cases.push_back(std::move(c));
      }
    }
  }
  cases_file.close();
  test::run_oracle("transform_reference.py",
                   {(dir / "cases.txt").string(), (oracle_dir() / "images").string(), dir.string()});
  for (const Case& c : cases) {
    CAPTURE(c.ref);
    CAPTURE(c.pipeline.describe());
    const Tensor ref = load_npy((dir / c.ref).string());
    REQUIRE(ref.numel() == c.pipeline.sample_numel());
    const Size size = c.pipeline.output_size();
    const Diff d = pixel_diff(c.out.data(), ref, int64_t{size.width} * size.height, c.pipeline.normalization().std());
    CAPTURE(d.max);
    CHECK(d.max < 0.001);  // the same bytes before normalisation
  }
}

}  // TEST_SUITE
