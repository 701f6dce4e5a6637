// The image transforms of the seed (torchvision's, on PIL images), one function each, on whole images:
// the reference that the fused per-sample path (data/view.h) is tested against, and a plain API for tools.
// Geometry follows torchvision 0.14 to the integer: Python's round() (half to even) where it rounds,
// RandomResizedCrop's ten attempts and central fallback, CenterCrop's zero padding when the crop is larger.
#pragma once
#include <array>
#include <string>

#include "data/image.h"
#include "data/sample_rng.h"

namespace mpncov::data {

struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
  bool operator==(const Rect& o) const {
    return x == o.x && y == o.y && width == o.width && height == o.height;
  }
  std::string str() const;
};

struct Size {
  int width = 0, height = 0;
};

// RandomResizedCrop.get_params: area fraction uniform in scale, log-aspect uniform in log(ratio).
Rect random_resized_crop_box(int width, int height, SampleRng& rng, double scale_min = 0.08, double scale_max = 1.0,
                             double ratio_min = 3.0 / 4.0, double ratio_max = 4.0 / 3.0);
// Resize(size) with an int: the shorter side becomes size, the longer int(size * long / short).
Size resize_shorter(int width, int height, int size);
// CenterCrop: may extend past the image (those pixels are zero).
Rect center_crop_box(int width, int height, int crop_width, int crop_height);
// five_crop: top-left, top-right, bottom-left, bottom-right, centre. The crop must fit.
std::array<Rect, 5> five_crop_boxes(int width, int height, int crop_width, int crop_height);

// Pixels outside the image are zero (black), as PIL's crop gives.
Image crop(const Image& src, const Rect& box);
Image hflip(const Image& src);

// ToTensor + Normalize: out[c][y][x] = (pixel / 255 - mean[c]) / std[c], computed in float32 as torchvision
// does, through a 256-entry table per channel.
class Normalize {
 public:
  static constexpr std::array<float, 3> kImageNetMean{0.485f, 0.456f, 0.406f};
  static constexpr std::array<float, 3> kImageNetStd{0.229f, 0.224f, 0.225f};
  Normalize(std::array<float, 3> mean = kImageNetMean, std::array<float, 3> std = kImageNetStd);
  float operator()(int channel, uint8_t v) const { return table_[channel][v]; }
  const float* table(int channel) const { return table_[channel].data(); }
  const std::array<float, 3>& mean() const { return mean_; }
  const std::array<float, 3>& std() const { return std_; }

 private:
  std::array<float, 3> mean_, std_;
  std::array<std::array<float, 256>, 3> table_;
};

// Writes the image as a (3, height, width) float tensor into out.
void to_tensor(const Image& src, const Normalize& normalize, float* out);

}  // namespace mpncov::data
