// Pipeline: the per-sample transform of a loader, as a list of torchvision-style steps ending in
// ToTensor + Normalize (data/transform_list.h reads and writes it as an experiment's YAML list). It turns
// an encoded image into its crops, (crops, 3, H, W) floats, by planning each crop as a View (data/view.h)
// from the image size alone, decoding only what the views need (a JPEG region, at a DCT-reduced scale when
// allowed) and resampling straight into the output; ColorJitter then acts on each finished crop.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "data/color.h"
#include "data/decode.h"
#include "data/sample_rng.h"
#include "data/transforms.h"
#include "data/view.h"

namespace mpncov::data {

// Decoding shortcuts. Off, the result equals torchvision's PIL path bit for bit (before normalisation);
// on, only images much larger than their crop change, by a little (docs/data.md gives the figures).
struct DecodeOptions {
  bool region = true;       // decode only the JPEG rows and columns the crops read (exact: same pixels)
  bool dct_scaling = true;  // let libjpeg downscale by 2, 4 or 8 when the crop is still >= margin x larger
  double dct_margin = 2.0;
};

// Reused buffers of one worker.
struct PipelineScratch {
  Decoded decoded;
  RenderScratch render;
  std::vector<View> views;
  std::vector<ColorAdjust> color;
  Image crop;  // a crop's pixels, when colour adjustments follow
};

class Pipeline {
 public:
  struct Step {
    enum class Kind {
      Resize, CenterCrop, RandomResizedCrop, RandomCrop, RandomHFlip, ColorJitter, FiveCrop, TenCrop,
      CenterCropWithFlip
    };
    Kind kind = Kind::Resize;
    int width = 0, height = 0;  // Resize: height 0 means "shorter side = width"
    int max_size = 0;           // Resize to a shorter side: bound on the longer side (0: none)
    std::array<double, 2> scale{}, ratio{};  // RandomResizedCrop
    std::array<int, 4> padding{};            // RandomCrop: left, top, right, bottom
    bool pad_if_needed = false;              // RandomCrop
    double p = 0;                            // RandomHorizontalFlip
    ColorJitterRanges jitter;                // ColorJitter
  };

  Pipeline() = default;  // normalises with the ImageNet mean and std unless normalize() says otherwise
  Pipeline& resize(int shorter_side) { return resize_shorter(shorter_side, 0); }
  Pipeline& resize_shorter(int shorter_side, int max_size);  // max_size 0: no bound on the longer side
  Pipeline& resize(int height, int width);
  Pipeline& center_crop(int size) { return center_crop(size, size); }
  Pipeline& center_crop(int height, int width);
  Pipeline& random_resized_crop(int size, double scale_min = 0.08, double scale_max = 1.0,
                                double ratio_min = 3.0 / 4.0, double ratio_max = 4.0 / 3.0) {
    return random_resized_crop(size, size, scale_min, scale_max, ratio_min, ratio_max);
  }
  Pipeline& random_resized_crop(int height, int width, double scale_min, double scale_max, double ratio_min,
                                double ratio_max);
  // padding: left, top, right, bottom (torchvision's 1-, 2- and 4-value forms expand to this).
  Pipeline& random_crop(int height, int width, std::array<int, 4> padding = {}, bool pad_if_needed = false);
  Pipeline& random_hflip(double p = 0.5);
  Pipeline& color_jitter(const ColorJitterRanges& ranges);
  Pipeline& five_crop(int height, int width);  // corners then centre
  Pipeline& ten_crop(int size) { return ten_crop(size, size); }
  Pipeline& ten_crop(int height, int width);   // five_crop(img) then five_crop(hflip(img))
  Pipeline& center_crop_with_flip(int size);   // the seed's 2-crop: centre crop, and the same of hflip(img)
  Pipeline& normalize(const Normalize& n);
  Pipeline& add_step(const Step& step) { return add(step); }  // the order is checked, not the values

  const std::vector<Step>& steps() const { return steps_; }
  const Normalize& normalization() const { return normalize_; }
  // Output of one sample: crops x 3 x height x width. Throws if the steps do not fix the size.
  int crops() const;
  Size output_size() const;
  int64_t sample_numel() const;
  std::string describe() const;  // "Resize(256) CenterCrop(224) ToTensor Normalize(...)"

  // The crops of a width x height image, and the colour adjustments to apply to each (in order); draws
  // from rng in step order.
  void plan(int width, int height, SampleRng& rng, std::vector<View>& views,
            std::vector<ColorAdjust>* color = nullptr) const;
  // Decodes bytes and writes sample_numel() floats to out. Throws DecodeError for a bad file.
  void run(const uint8_t* bytes, size_t size, SampleRng& rng, const DecodeOptions& options, float* out,
           PipelineScratch& scratch) const;

 private:
  Pipeline& add(Step step);
  std::vector<Step> steps_;
  Normalize normalize_;
};

}  // namespace mpncov::data
