// Image: a decoded picture, 8-bit RGB, rows top to bottom, pixels interleaved (HWC). The loader reuses
// images between samples, so the buffer only grows.
#pragma once
#include <cstdint>
#include <memory>

namespace mpncov::data {

class Image {
 public:
  static constexpr size_t kSlack = 16;  // readable bytes past the last pixel

  Image() = default;
  Image(int width, int height) { resize(width, height); }

  // Sets the size; the pixels are left undefined (the buffer is kept when large enough).
  void resize(int width, int height);

  int width() const { return width_; }
  int height() const { return height_; }
  bool empty() const { return width_ == 0 || height_ == 0; }
  int64_t stride() const { return static_cast<int64_t>(width_) * 3; }  // bytes per row
  uint8_t* data() { return pixels_.get(); }
  const uint8_t* data() const { return pixels_.get(); }
  uint8_t* row(int y) { return pixels_.get() + y * stride(); }
  const uint8_t* row(int y) const { return pixels_.get() + y * stride(); }
  uint8_t* pixel(int x, int y) { return row(y) + 3 * x; }
  const uint8_t* pixel(int x, int y) const { return row(y) + 3 * x; }

  Image clone() const;
  bool same_pixels(const Image& other) const;

 private:
  int width_ = 0, height_ = 0;
  size_t capacity_ = 0;
  std::unique_ptr<uint8_t[]> pixels_;
};

}  // namespace mpncov::data
