// Pipeline: the per-sample transform of a loader, as a list of torchvision-style steps ending in
// ToTensor + Normalize. It turns an encoded image into its crops, (crops, 3, H, W) floats, by planning
// each crop as a View (data/view.h) from the image size alone, decoding only what the views need (a JPEG
// region, at a DCT-reduced scale when allowed) and resampling straight into the output.
#pragma once
#include <string>
#include <vector>

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
};

class Pipeline {
 public:
  struct Step {
    enum class Kind { Resize, CenterCrop, RandomResizedCrop, RandomHFlip, TenCrop, CenterCropWithFlip };
    Kind kind;
    int width = 0, height = 0;  // Resize: height 0 means "shorter side = width"
    double a = 0, b = 0, c = 0, d = 0;  // RandomResizedCrop: scale (a, b), ratio (c, d); RandomHFlip: p = a
  };

  Pipeline() = default;
  Pipeline& resize(int shorter_side);
  Pipeline& resize(int height, int width);
  Pipeline& center_crop(int size);
  Pipeline& center_crop(int height, int width);
  Pipeline& random_resized_crop(int size, double scale_min = 0.08, double scale_max = 1.0,
                                double ratio_min = 3.0 / 4.0, double ratio_max = 4.0 / 3.0);
  Pipeline& random_hflip(double p = 0.5);
  Pipeline& ten_crop(int size);                // five_crop(img) then five_crop(hflip(img))
  Pipeline& center_crop_with_flip(int size);   // the seed's 2-crop: centre crop, and the same of hflip(img)
  Pipeline& normalize(const Normalize& n);

  const std::vector<Step>& steps() const { return steps_; }
  // Output of one sample: crops x 3 x height x width. Throws if the steps do not fix the size.
  int crops() const;
  Size output_size() const;
  int64_t sample_numel() const;
  std::string describe() const;  // "Resize(256) CenterCrop(224) ToTensor Normalize"

  // The crops of a width x height image; draws from rng in step order.
  void plan(int width, int height, SampleRng& rng, std::vector<View>& views) const;
  // Decodes bytes and writes sample_numel() floats to out. Throws DecodeError for a bad file.
  void run(const uint8_t* bytes, size_t size, SampleRng& rng, const DecodeOptions& options, float* out,
           PipelineScratch& scratch) const;

 private:
  Pipeline& add(Step step);
  std::vector<Step> steps_;
  Normalize normalize_;
};

}  // namespace mpncov::data
