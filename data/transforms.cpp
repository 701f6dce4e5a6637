#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace mpncov::data {

namespace {
// Python's round() to int: halves go to the even neighbour (the default FP rounding mode).
int py_round(double v) { return static_cast<int>(std::nearbyint(v)); }
}  // namespace

std::string Rect::str() const { return mpncov::str("(x ", x, ", y ", y, ", ", width, "x", height, ")"); }

Rect random_resized_crop_box(int width, int height, SampleRng& rng, double scale_min, double scale_max,
                             double ratio_min, double ratio_max) {
  MPNCOV_CHECK(width > 0 && height > 0, "RandomResizedCrop of an empty image");
  MPNCOV_CHECK(0 < scale_min && scale_min <= scale_max && 0 < ratio_min && ratio_min <= ratio_max,
               "RandomResizedCrop needs 0 < scale_min <= scale_max and 0 < ratio_min <= ratio_max");
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(ratio_min), log_hi = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(scale_min, scale_max);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    // Compared as doubles: an extreme ratio can give sizes beyond int's range.
    const double w = std::nearbyint(std::sqrt(target_area * aspect));
    const double h = std::nearbyint(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int y = static_cast<int>(rng.randint(0, height - static_cast<int>(h) + 1));
      const int x = static_cast<int>(rng.randint(0, width - static_cast<int>(w) + 1));
      return Rect{x, y, static_cast<int>(w), static_cast<int>(h)};
    }
  }
  // Fallback: the central crop with the aspect ratio clamped to the range.
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < ratio_min) {
    h = py_round(w / ratio_min);
  } else if (in_ratio > ratio_max) {
    w = py_round(h * ratio_max);
  }
  return Rect{(width - w) / 2, (height - h) / 2, w, h};
}

Size resize_shorter(int width, int height, int size) {
  MPNCOV_CHECK(width > 0 && height > 0 && size > 0, "cannot resize ", width, "x", height, " to shorter side ", size);
  const int shorter = std::min(width, height), longer = std::max(width, height);
  // Python: int(size * long / short), a correctly rounded float division then truncation.
  const double exact_long = static_cast<double>(int64_t{size} * longer) / shorter;
  MPNCOV_CHECK(exact_long < (1 << 30), "Resize of a ", width, "x", height, " image to shorter side ", size,
               " is too large (longer side ", exact_long, ")");
  const int new_long = static_cast<int>(exact_long);
  return width <= height ? Size{size, new_long} : Size{new_long, size};
}

Rect center_crop_box(int width, int height, int crop_width, int crop_height) {
  MPNCOV_CHECK(crop_width > 0 && crop_height > 0, "CenterCrop size must be positive");
  // torchvision pads a too-small image first (left/top by (crop - size) // 2), then crops the centre.
  int x, y;
  if (crop_width > width) {
    x = -((crop_width - width) / 2);
  } else {
    x = py_round((width - crop_width) / 2.0);
  }
  if (crop_height > height) {
    y = -((crop_height - height) / 2);
  } else {
    y = py_round((height - crop_height) / 2.0);
  }
  // After padding one side, torchvision crops the padded image at round((padded - crop) / 2), which is 0.
  return Rect{x, y, crop_width, crop_height};
}

std::array<Rect, 5> five_crop_boxes(int width, int height, int cw, int ch) {
  MPNCOV_CHECK(cw <= width && ch <= height, "five/ten crop of ", cw, "x", ch, " is bigger than the ", width, "x",
               height, " image");
  return {Rect{0, 0, cw, ch}, Rect{width - cw, 0, cw, ch}, Rect{0, height - ch, cw, ch},
          Rect{width - cw, height - ch, cw, ch}, center_crop_box(width, height, cw, ch)};
}

Image crop(const Image& src, const Rect& box) {
  MPNCOV_CHECK(box.width > 0 && box.height > 0, "empty crop ", box.str());
  Image out(box.width, box.height);
  std::memset(out.data(), 0, static_cast<size_t>(out.stride()) * out.height());
  const int x0 = std::max(box.x, 0), x1 = std::min(box.x + box.width, src.width());
  const int y0 = std::max(box.y, 0), y1 = std::min(box.y + box.height, src.height());
  for (int y = y0; y < y1 && x0 < x1; ++y)
    std::memcpy(out.pixel(x0 - box.x, y - box.y), src.pixel(x0, y), static_cast<size_t>(x1 - x0) * 3);
  return out;
}

Image hflip(const Image& src) {
  Image out(src.width(), src.height());
  for (int y = 0; y < src.height(); ++y) {
    const uint8_t* in = src.row(y);
    uint8_t* o = out.row(y);
    for (int x = 0, w = src.width(); x < w; ++x) std::memcpy(o + 3 * (w - 1 - x), in + 3 * x, 3);
  }
  return out;
}

Normalize::Normalize(std::array<float, 3> mean, std::array<float, 3> std) : mean_(mean), std_(std) {
  for (int c = 0; c < 3; ++c) {
    MPNCOV_CHECK(std[c] != 0.0f, "Normalize: std is zero");
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;  // ToTensor
      table_[c][v] = (x - mean[c]) / std[c];           // Normalize: sub_ then div_
    }
  }
}

void to_tensor(const Image& src, const Normalize& normalize, float* out) {
  const int64_t plane = static_cast<int64_t>(src.width()) * src.height();
  for (int c = 0; c < 3; ++c) {
    const float* table = normalize.table(c);
    float* o = out + c * plane;
    for (int y = 0; y < src.height(); ++y) {
      const uint8_t* in = src.row(y) + c;
      for (int x = 0; x < src.width(); ++x) *o++ = table[in[3 * x]];
    }
  }
}

}  // namespace mpncov::data
