// Test images: synthetic pictures with photo-like content (smooth shading, sharp edges, texture), and
// writers for the encodings the loader must read (JPEG baseline/progressive, 4:2:0/4:4:4, grayscale,
// CMYK; PNG gray/RGB/RGBA/palette; BMP) plus the broken files it must survive.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/image.h"

namespace mpncov::test {

data::Image synthetic_image(int width, int height, uint64_t seed);

struct JpegOptions {
  int quality = 90;
  bool progressive = false;
  bool grayscale = false;
  bool cmyk = false;         // stored as Adobe (inverted) CMYK derived from the RGB pixels
  bool subsample = true;     // 4:2:0 chroma (false: 4:4:4)
};
std::vector<uint8_t> encode_jpeg(const data::Image& image, const JpegOptions& options = {});
// channels: 1 (gray), 3 (RGB), 4 (RGBA with a varying alpha)
std::vector<uint8_t> encode_png(const data::Image& image, int channels = 3);
std::vector<uint8_t> encode_bmp(const data::Image& image);

// A fresh folder for this process only, removed when it exits: CTest runs test cases as parallel
// processes, and several of them share generated files.
std::filesystem::path process_temp_dir(const std::string& name);

void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path);

// A small ImageFolder under root: classes "cat", "dog", "eel" with JPEGs of every kind and PNG/BMP files,
// plus bad files (truncated JPEG, zero bytes, text named .jpg, truncated PNG) in "dog" and non-image files
// that are not listed. Returns the names of the bad files (relative to root).
std::vector<std::string> make_test_folder(const std::filesystem::path& root, bool with_bad_files = true);

}  // namespace mpncov::test
