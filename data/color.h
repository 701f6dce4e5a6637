// ColorJitter's pixel arithmetic, as torchvision runs it on PIL images: brightness, contrast and
// saturation are PIL's ImageEnhance (Image.blend of the image with a "degenerate" one: black, a grey of
// the image's mean luma, the image's own luma), hue is a shift of the hue byte of PIL's HSV conversion.
// Every rounding follows PIL's C code (float blends truncated, ITU-R 601 luma in 16-bit fixed point,
// the HSV round trip in PIL's mix of float and double), so results equal torchvision's byte for byte.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/sample_rng.h"

namespace mpncov::data {

enum class ColorOp { Brightness = 0, Contrast = 1, Saturation = 2, Hue = 3 };
const char* color_op_name(ColorOp op);

struct ColorAdjust {
  ColorOp op;
  float factor;  // torchvision draws it as a float32 (torch.empty(1).uniform_)
};

// ColorJitter's ranges, each [min, max] or absent (torchvision's None: no draw, no change).
struct ColorJitterRanges {
  std::array<std::optional<std::array<double, 2>>, 4> range;  // indexed by ColorOp
  bool empty() const;
};

// ColorJitter.get_params: a random order of the four operations (torch.randperm(4)), then one factor per
// present range, in the order brightness, contrast, saturation, hue; appended to out in the order applied.
void draw_color_jitter(const ColorJitterRanges& ranges, SampleRng& rng, std::vector<ColorAdjust>& out);

// Applies one adjustment to the image in place (F.adjust_brightness, ..., F.adjust_hue on a PIL RGB image).
void adjust_color(Image& image, const ColorAdjust& adjust);

// PIL's RGB -> L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
inline uint8_t pil_luma(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

}  // namespace mpncov::data
