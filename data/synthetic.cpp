#include "data/synthetic.h"

#include <jpeglib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/philox.h"

namespace mpncov::data {
namespace {

void write_jpeg(const std::string& path, const std::vector<uint8_t>& rgb, int size, int quality) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(str("cannot write '", path, "'"));
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = static_cast<JDIMENSION>(size);
  c.image_height = static_cast<JDIMENSION>(size);
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(rgb.data() + static_cast<size_t>(c.next_scanline) * size * 3);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

// Class k mixes three smooth noise fields into the channels with a matrix whose rows have unit norm (so
// every class has the same per-channel variance) but different correlations between channels.
void class_mixing(int k, double m[3][3]) {
  const double r = 0.85, s = std::sqrt(1 - r * r);
  const int pair = (k / 2) % 3;          // which two channels are correlated
  const double sign = k % 2 ? -1.0 : 1.0;  // positively or negatively
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) m[i][j] = i == j ? 1.0 : 0.0;
  const int a = pair, b = (pair + 1) % 3;
  m[b][a] = sign * r;
  m[b][b] = s;
  if (k >= 6) m[(pair + 2) % 3][a] = 0.5, m[(pair + 2) % 3][(pair + 2) % 3] = std::sqrt(0.75);
}

void make_image(int k, uint64_t seed, uint64_t index, int size, std::vector<uint8_t>& rgb) {
  // Three independent fields: white noise smoothed by a separable box filter, then normalised.
  const int n = size * size, radius = 2;
  std::vector<double> fields(3 * static_cast<size_t>(n)), tmp(static_cast<size_t>(n));
  for (int f = 0; f < 3; ++f) {
    double* field = fields.data() + static_cast<size_t>(f) * n;
    for (int p = 0; p < n; ++p)
      field[p] = philox::normal(seed, index * 3 + static_cast<uint64_t>(f), static_cast<uint64_t>(p));
    for (int pass = 0; pass < 2; ++pass) {  // horizontal then vertical
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
          double acc = 0;
          for (int d = -radius; d <= radius; ++d) {
            const int xx = pass == 0 ? std::clamp(x + d, 0, size - 1) : x;
            const int yy = pass == 1 ? std::clamp(y + d, 0, size - 1) : y;
            acc += field[yy * size + xx];
          }
          tmp[static_cast<size_t>(y * size + x)] = acc / std::sqrt(2.0 * radius + 1);
        }
      std::copy(tmp.begin(), tmp.end(), field);
    }
  }
  double m[3][3];
  class_mixing(k, m);
  rgb.resize(3 * static_cast<size_t>(n));
  for (int p = 0; p < n; ++p)
    for (int c = 0; c < 3; ++c) {
      double v = 0;
      for (int j = 0; j < 3; ++j) v += m[c][j] * fields[static_cast<size_t>(j) * n + p];
      rgb[static_cast<size_t>(p) * 3 + c] = static_cast<uint8_t>(std::clamp(128.0 + 40.0 * v, 0.0, 255.0));
    }
}

}  // namespace

int64_t write_synthetic_dataset(const std::string& root, const SyntheticOptions& o) {
  MPNCOV_CHECK(o.classes >= 2 && o.classes <= 8, "synthetic dataset: 2 to 8 classes, got ", o.classes);
  MPNCOV_CHECK(o.size >= 8, "synthetic dataset: images of at least 8x8, got ", o.size);
  int64_t written = 0;
  std::vector<uint8_t> rgb;
  for (const char* split : {"train", "val"}) {
    const int count = std::string(split) == "train" ? o.train_per_class : o.val_per_class;
    for (int k = 0; k < o.classes; ++k) {
      const std::string dir = str(root, "/", split, "/class", k);
      std::filesystem::create_directories(dir);
      for (int i = 0; i < count; ++i) {
        const uint64_t index = (std::string(split) == "train" ? 0u : 1u << 30) + static_cast<uint64_t>(k) * 100000u + i;
        make_image(k, o.seed, index, o.size, rgb);
        char name[32];
        std::snprintf(name, sizeof name, "/%05d.jpg", i);
        write_jpeg(dir + name, rgb, o.size, o.quality);
        ++written;
      }
    }
  }
  return written;
}

}  // namespace mpncov::data
