#include <algorithm>
#include <cstring>

#include "data/color.h"
#include "data/pipeline.h"
#include "data/presets.h"
#include "tests/data/image_files.h"
#include "tests/helpers.h"

using namespace mpncov;
using namespace mpncov::data;
using mpncov::test::synthetic_image;

namespace {

// The pipeline's steps applied to whole images, one torchvision step at a time (no views): the reference
// that Pipeline::run's fused path must match bit for bit.
std::vector<Image> reference_run(const Pipeline& p, const Image& image, SampleRng& rng) {
  using Kind = Pipeline::Step::Kind;
  std::vector<Image> images;
  images.push_back(image.clone());
  for (const Pipeline::Step& s : p.steps()) {
    std::vector<Image> next;
    for (Image& img : images) {
      switch (s.kind) {
        case Kind::Resize: {
          Size size = s.height > 0 ? Size{s.width, s.height} : resize_shorter(img.width(), img.height(), s.width);
          if (s.max_size > 0 && std::max(size.width, size.height) > s.max_size) {  // torchvision's max_size
            const int shorter = std::min(size.width, size.height), longer = std::max(size.width, size.height);
            const int new_short = static_cast<int>(double(s.max_size) * shorter / longer);
            size = img.width() > img.height() ? Size{s.max_size, new_short} : Size{new_short, s.max_size};
          }
          if (size.width == img.width() && size.height == img.height()) next.push_back(std::move(img));
          else next.push_back(resize_bilinear(img, size.width, size.height));
          break;
        }
        case Kind::CenterCrop:
          next.push_back(crop(img, center_crop_box(img.width(), img.height(), s.width, s.height)));
          break;
        case Kind::RandomResizedCrop: {
          Image part = crop(img, random_resized_crop_box(img.width(), img.height(), rng, s.scale[0], s.scale[1],
                                                         s.ratio[0], s.ratio[1]));
          if (part.width() != s.width || part.height() != s.height) part = resize_bilinear(part, s.width, s.height);
          next.push_back(std::move(part));
          break;
        }
        case Kind::RandomCrop: {
          // torchvision: pad by padding, then (pad_if_needed) both sides by the shortfall, then crop.
          Image padded = crop(img, Rect{-s.padding[0], -s.padding[1], img.width() + s.padding[0] + s.padding[2],
                                        img.height() + s.padding[1] + s.padding[3]});
          if (s.pad_if_needed && padded.width() < s.width) {
            const int d = s.width - padded.width();
            padded = crop(padded, Rect{-d, 0, padded.width() + 2 * d, padded.height()});
          }
          if (s.pad_if_needed && padded.height() < s.height) {
            const int d = s.height - padded.height();
            padded = crop(padded, Rect{0, -d, padded.width(), padded.height() + 2 * d});
          }
          int i = 0, j = 0;
          if (padded.width() != s.width || padded.height() != s.height) {
            i = static_cast<int>(rng.randint(0, padded.height() - s.height + 1));
            j = static_cast<int>(rng.randint(0, padded.width() - s.width + 1));
          }
          next.push_back(crop(padded, Rect{j, i, s.width, s.height}));
          break;
        }
        case Kind::RandomHFlip:
          if (rng.uniform() < s.p) next.push_back(hflip(img));
          else next.push_back(std::move(img));
          break;
        case Kind::ColorJitter: {
          std::vector<ColorAdjust> adjust;
          draw_color_jitter(s.jitter, rng, adjust);
          for (const ColorAdjust& a : adjust) adjust_color(img, a);
          next.push_back(std::move(img));
          break;
        }
        case Kind::FiveCrop:
          for (const Rect& box : five_crop_boxes(img.width(), img.height(), s.width, s.height))
            next.push_back(crop(img, box));
          break;
        case Kind::TenCrop:
        case Kind::CenterCropWithFlip: {
          Image flipped = hflip(img);
          for (const Image* base : {static_cast<const Image*>(&img), static_cast<const Image*>(&flipped)}) {
            if (s.kind == Kind::TenCrop) {
              for (const Rect& box : five_crop_boxes(base->width(), base->height(), s.width, s.height))
                next.push_back(crop(*base, box));
            } else {
              next.push_back(crop(*base, center_crop_box(base->width(), base->height(), s.width, s.height)));
            }
          }
          break;
        }
      }
    }
    images = std::move(next);
  }
  return images;
}

// Runs the pipeline on encoded bytes both ways and returns the number of differing floats.
int64_t fused_vs_reference(const Pipeline& p, const std::vector<uint8_t>& bytes, uint64_t seed, uint64_t index,
                           const DecodeOptions& options) {
  std::vector<float> fused(static_cast<size_t>(p.sample_numel()));
  PipelineScratch scratch;
  SampleRng rng1(seed, 3, index);
  p.run(bytes.data(), bytes.size(), rng1, options, fused.data(), scratch);

  SampleRng rng2(seed, 3, index);
  const std::vector<Image> crops = reference_run(p, decode_image(bytes.data(), bytes.size()), rng2);
  CHECK(rng1.draws() == rng2.draws());
  REQUIRE(static_cast<int>(crops.size()) == p.crops());
  std::vector<float> ref(fused.size());
  const int64_t per_crop = p.sample_numel() / p.crops();
  for (size_t k = 0; k < crops.size(); ++k) {
    REQUIRE(crops[k].width() == p.output_size().width);
    REQUIRE(crops[k].height() == p.output_size().height);
    to_tensor(crops[k], p.normalization(), ref.data() + k * per_crop);
  }
  int64_t differ = 0;
  for (size_t i = 0; i < ref.size(); ++i) differ += fused[i] != ref[i];
  return differ;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("data transforms: torchvision's geometry to the integer") {
  CHECK(resize_shorter(500, 375, 256).width == 341);
  CHECK(resize_shorter(500, 375, 256).height == 256);
  CHECK(resize_shorter(375, 500, 256).height == 341);
  CHECK(resize_shorter(300, 300, 448).width == 448);
  CHECK(resize_shorter(1, 1000, 7).height == 7000);
  // A longer side past int's range is refused as such (it was converted from double to int: undefined, then
  // "resize to an empty size").
  CHECK_THROWS_WITH(resize_shorter(500, 375, 2000000000), doctest::Contains("too large"));
  CHECK_THROWS_WITH(resize_shorter(3, 2000, 2000000), doctest::Contains("too large"));
  // Python's round: halves to even.
  CHECK(center_crop_box(341, 256, 224, 224) == Rect{58, 16, 224, 224});  // 58.5 -> 58
  CHECK(center_crop_box(343, 256, 224, 224) == Rect{60, 16, 224, 224});  // 59.5 -> 60
  // Larger than the image: zero padding, (crop - size) // 2 on the left/top.
  CHECK(center_crop_box(100, 300, 224, 224) == Rect{-62, 38, 224, 224});
  CHECK(center_crop_box(101, 101, 224, 224) == Rect{-61, -61, 224, 224});
  const auto five = five_crop_boxes(256, 300, 224, 224);
  CHECK(five[0] == Rect{0, 0, 224, 224});
  CHECK(five[1] == Rect{32, 0, 224, 224});
  CHECK(five[2] == Rect{0, 76, 224, 224});
  CHECK(five[3] == Rect{32, 76, 224, 224});
  CHECK(five[4] == Rect{16, 38, 224, 224});
  CHECK_THROWS(five_crop_boxes(100, 300, 224, 224));
}

TEST_CASE("data transforms: RandomResizedCrop boxes") {
  SUBCASE("inside the image, within scale and ratio, deterministic") {
    for (uint64_t i = 0; i < 500; ++i) {
      SampleRng a(7, 1, i), b(7, 1, i);
      const Rect r = random_resized_crop_box(500, 375, a);
      CHECK(r == random_resized_crop_box(500, 375, b));
      CHECK(r.x >= 0);
      CHECK(r.y >= 0);
      CHECK(r.x + r.width <= 500);
      CHECK(r.y + r.height <= 375);
      const double area = double(r.width) * r.height / (500.0 * 375.0);
      CHECK(area >= 0.075);
      CHECK(area <= 1.0);
      const double ratio = double(r.width) / r.height;
      CHECK(ratio >= 0.7);
      CHECK(ratio <= 1.45);
    }
  }
  SUBCASE("fallback: the central crop with the ratio clamped") {
    SampleRng rng(1, 0, 0);
    CHECK(random_resized_crop_box(1000, 10, rng) == Rect{493, 0, 13, 10});
    CHECK(random_resized_crop_box(10, 1000, rng) == Rect{0, 493, 10, 13});
    CHECK(rng.draws() == 40);  // ten attempts of two draws, twice
  }
  SUBCASE("different samples and epochs draw differently") {
    SampleRng a(7, 1, 5), b(7, 1, 6), c(7, 2, 5);
    const double u = a.uniform();
    CHECK(u != b.uniform());
    CHECK(u != c.uniform());
  }
}

TEST_CASE("data transforms: Normalize is torchvision's float32 arithmetic") {
  Normalize n;
  for (int v : {0, 1, 128, 254, 255}) {
    for (int c = 0; c < 3; ++c) {
      const float x = static_cast<float>(v) / 255.0f;
      CHECK(n(c, static_cast<uint8_t>(v)) == (x - Normalize::kImageNetMean[c]) / Normalize::kImageNetStd[c]);
    }
  }
}

TEST_CASE("data transforms: the fused path equals whole-image steps bit for bit") {
  const DecodeOptions exact{true, false, 2.0};  // region decoding is exact; DCT scaling is not
  const std::vector<Size> sizes{{500, 375}, {97, 131}, {300, 60}, {640, 427}};
  std::vector<Pipeline> pipelines;
  for (const std::string& name : preset_names())
    for (Stage stage : {Stage::Train, Stage::Val, Stage::Evaluate}) pipelines.push_back(preset(name, stage, 72));
  // Padding, flips before crops, crops before resizes.
  pipelines.push_back(Pipeline().resize(100, 90).center_crop(120, 130));
  pipelines.push_back(Pipeline().center_crop(50).resize(64, 48).random_hflip(1.0));
  pipelines.push_back(Pipeline().center_crop(80).random_hflip(1.0).ten_crop(33));
  // A centre crop larger than the image before the resize: PIL resizes the black padding with the image.
  pipelines.push_back(Pipeline().center_crop(70, 110).resize(40, 64).random_hflip(1.0));
  pipelines.push_back(Pipeline().center_crop(140, 640).random_resized_crop(36, 0.5, 1.0, 0.2, 5.0));
  // A crop larger than an earlier one pads with zeros, not with the pixels the earlier one cut off.
  pipelines.push_back(Pipeline().center_crop(50, 40).center_crop(64, 56).resize(30, 30));
  pipelines.push_back(Pipeline().resize(60).center_crop(40).random_hflip(1.0).center_crop(52, 44));
  pipelines.push_back(Pipeline().center_crop(30).random_crop(36, 36, {4, 4, 4, 4}));
  pipelines.push_back(Pipeline().resize(77).random_hflip(0.5).center_crop_with_flip(61));
  pipelines.push_back(Pipeline().random_resized_crop(96, 0.3, 0.9, 0.5, 2.0).random_hflip());
  // RandomCrop with every kind of padding, before and after the resize; FiveCrop; Resize's max_size.
  pipelines.push_back(Pipeline().resize(80).random_crop(64, 72, {4, 3, 2, 1}).random_hflip());
  pipelines.push_back(Pipeline().random_crop(40, 50).resize(30, 30).random_crop(32, 36, {}, true));
  pipelines.push_back(Pipeline().resize(50).random_hflip(1.0).random_crop(40, 40, {5, 5, 5, 5}));
  pipelines.push_back(Pipeline().resize_shorter(60, 100).five_crop(12, 16));
  // ColorJitter on the final crop (padding included), with and without flips.
  ColorJitterRanges all, some;
  all.range = {std::array<double, 2>{0.6, 1.4}, std::array<double, 2>{0.5, 1.5}, std::array<double, 2>{0.0, 2.0},
               std::array<double, 2>{-0.5, 0.5}};
  some.range[1] = std::array<double, 2>{1.5, 2.5};  // contrast only, extrapolating
  pipelines.push_back(Pipeline().random_resized_crop(64).random_hflip().color_jitter(all));
  pipelines.push_back(Pipeline().resize(70).center_crop(90, 80).color_jitter(some).random_hflip(1.0));
  pipelines.push_back(Pipeline().random_crop(48, 48, {6, 6, 6, 6}).color_jitter(all).color_jitter(some));
  uint64_t seed = 0;
  for (const Size& size : sizes) {
    const Image img = synthetic_image(size.width, size.height, ++seed);
    const std::vector<uint8_t> jpeg = test::encode_jpeg(img), png = test::encode_png(img);
    for (const Pipeline& p : pipelines) {
      CAPTURE(p.describe());
      CAPTURE(size.width);
      CAPTURE(size.height);
      CHECK(fused_vs_reference(p, jpeg, seed, 0, exact) == 0);
      CHECK(fused_vs_reference(p, png, seed, 1, DecodeOptions{}) == 0);
    }
  }
}

TEST_CASE("data transforms: the SIMD and portable resamplers agree") {
  const Image img = synthetic_image(203, 157, 21);
  for (Size size : {Size{64, 48}, Size{203, 90}, Size{300, 200}, Size{17, 157}}) {
    const Image simd = resize_bilinear(img, size.width, size.height);
    resample_force_portable(true);
    const Image portable = resize_bilinear(img, size.width, size.height);
    resample_force_portable(false);
    CHECK(simd.same_pixels(portable));
  }
}

TEST_CASE("data transforms: DCT-domain scaling stays close to the exact path") {
  const Image img = synthetic_image(1600, 1200, 11);
  const std::vector<uint8_t> jpeg = test::encode_jpeg(img);
  for (const Pipeline& p : {preset("imagenet", Stage::Val), Pipeline().resize(300).center_crop(256)}) {
    std::vector<float> fast(static_cast<size_t>(p.sample_numel())), exact(fast.size());
    PipelineScratch scratch;
    SampleRng r1(1, 0, 0), r2(1, 0, 0);
    p.run(jpeg.data(), jpeg.size(), r1, DecodeOptions{}, fast.data(), scratch);
    CHECK(scratch.decoded.scale_denom >= 2);
    p.run(jpeg.data(), jpeg.size(), r2, DecodeOptions{true, false, 2.0}, exact.data(), scratch);
    CHECK(scratch.decoded.scale_denom == 1);
    double sum = 0, worst = 0;
    for (size_t i = 0; i < fast.size(); ++i) {
      const double d = std::abs(fast[i] - exact[i]) * 0.226 * 255;  // back to 0-255 units (about)
      sum += d;
      worst = std::max(worst, d);
    }
    CAPTURE(p.describe());
    CHECK(sum / fast.size() < 2.0);
    CHECK(worst < 60);
  }
}

TEST_CASE("data presets: every preset's output shape") {
  struct Expect {
    const char* name;
    Stage stage;
    int crops, size;
  };
  for (const Expect& e : {Expect{"imagenet", Stage::Train, 1, 224}, Expect{"imagenet", Stage::Val, 1, 224},
                          Expect{"imagenet", Stage::Evaluate, 10, 224}, Expect{"cub", Stage::Train, 1, 448},
                          Expect{"cub", Stage::Val, 1, 448}, Expect{"cub", Stage::Evaluate, 2, 448},
                          Expect{"aircraft", Stage::Train, 1, 448}, Expect{"aircraft", Stage::Val, 1, 448},
                          Expect{"aircraft", Stage::Evaluate, 2, 448}, Expect{"cars", Stage::Train, 1, 448},
                          Expect{"cars", Stage::Val, 1, 448}, Expect{"cars", Stage::Evaluate, 2, 448}}) {
    const Pipeline p = preset(e.name, e.stage);
    CAPTURE(p.describe());
    CHECK(p.crops() == e.crops);
    CHECK(p.output_size().width == e.size);
    CHECK(p.output_size().height == e.size);
    CHECK(p.sample_numel() == int64_t{e.crops} * 3 * e.size * e.size);
    std::vector<View> views;
    SampleRng rng(0, 0, 0);
    p.plan(333, 250, rng, views);
    CHECK(static_cast<int>(views.size()) == e.crops);
    for (const View& v : views) CHECK(v.size().width == e.size);
  }
  CHECK(preset("CUB_200_2011", Stage::Val).describe() == preset("cub", Stage::Val).describe());
  CHECK(preset("ImageNet", Stage::Train).describe() ==
        "RandomResizedCrop(224, scale=(0.08, 1), ratio=(0.75, 1.33333)) RandomHorizontalFlip(p=0.5) ToTensor "
        "Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))");
  CHECK(preset("cars", Stage::Evaluate).describe().rfind("Resize((448, 448)) CenterCropWithFlip(448)", 0) == 0);
  CHECK_THROWS_WITH(preset("mnist", Stage::Train), doctest::Contains("unknown preset 'mnist'"));
  CHECK_THROWS_WITH(Pipeline().resize(256).sample_numel(), doctest::Contains("fixed output size"));
  CHECK_THROWS(Pipeline().ten_crop(10).center_crop(5));
  CHECK_THROWS_WITH(Pipeline().random_hflip().resize(5), doctest::Contains("after the resize"));
  CHECK_THROWS_WITH(Pipeline().resize(5).center_crop(4).resize(3), doctest::Contains("resize once"));
}

}  // TEST_SUITE
