#include "data/image.h"

#include <cstring>

#include "core/error.h"

namespace mpncov::data {

void Image::resize(int width, int height) {
  MPNCOV_CHECK(width >= 0 && height >= 0, "image size ", width, "x", height, " is negative");
  MPNCOV_CHECK(static_cast<int64_t>(width) * height <= (int64_t{1} << 31),
               "image ", width, "x", height, " is too large");
  const size_t bytes = static_cast<size_t>(width) * height * 3;
  if (bytes > capacity_) {
    // Uninitialised on purpose (the decoder writes every byte), with a few bytes of slack so that SIMD code
    // may load 4 bytes at the last pixel.
    pixels_.reset(new uint8_t[bytes + kSlack]);
    capacity_ = bytes;
  }
  width_ = width;
  height_ = height;
}

Image Image::clone() const {
  Image copy(width_, height_);
  if (!empty()) std::memcpy(copy.data(), data(), static_cast<size_t>(stride()) * height_);
  return copy;
}

bool Image::same_pixels(const Image& other) const {
  if (width_ != other.width_ || height_ != other.height_) return false;
  return empty() || std::memcmp(data(), other.data(), static_cast<size_t>(stride()) * height_) == 0;
}

}  // namespace mpncov::data
