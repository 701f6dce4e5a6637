#include "tests/data/image_files.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include <unistd.h>

#include <jpeglib.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>

#include "core/error.h"
#include "tests/helpers.h"

namespace fs = std::filesystem;

namespace mpncov::test {

data::Image synthetic_image(int width, int height, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  // Smooth shading: a few low-frequency waves per channel.
  struct Wave {
    double fx, fy, phase, amp;
  };
  std::vector<Wave> waves[3];
  for (auto& ws : waves)
    for (int k = 0; k < 4; ++k)
      ws.push_back({u(rng) * 6 / width, u(rng) * 6 / height, u(rng) * 6.28, 20 + 30 * u(rng)});
  // Sharp-edged shapes: discs with their own colour.
  struct Disc {
    double cx, cy, r;
    double color[3];
  };
  std::vector<Disc> discs;
  for (int k = 0; k < 6; ++k)
    discs.push_back({u(rng) * width, u(rng) * height, (0.05 + 0.2 * u(rng)) * std::min(width, height),
                     {u(rng) * 255, u(rng) * 255, u(rng) * 255}});
  // sin(a + b) = sin a cos b + cos a sin b keeps the waves separable, so big images are quick to make.
  std::vector<double> sx(static_cast<size_t>(width) * 12 * 2), sy(static_cast<size_t>(height) * 12 * 2);
  for (int c = 0; c < 3; ++c) {
    for (int k = 0; k < 4; ++k) {
      const Wave& w = waves[c][k];
      for (int x = 0; x < width; ++x) {
        sx[(static_cast<size_t>(x) * 12 + c * 4 + k) * 2] = std::sin(6.2832 * w.fx * x + w.phase);
        sx[(static_cast<size_t>(x) * 12 + c * 4 + k) * 2 + 1] = std::cos(6.2832 * w.fx * x + w.phase);
      }
      for (int y = 0; y < height; ++y) {
        sy[(static_cast<size_t>(y) * 12 + c * 4 + k) * 2] = std::sin(6.2832 * w.fy * y);
        sy[(static_cast<size_t>(y) * 12 + c * 4 + k) * 2 + 1] = std::cos(6.2832 * w.fy * y);
      }
    }
  }
  std::uniform_int_distribution<int> noise(-8, 8);
  data::Image img(width, height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const Disc* inside = nullptr;
      for (const Disc& d : discs)
        if ((x - d.cx) * (x - d.cx) + (y - d.cy) * (y - d.cy) < d.r * d.r) inside = &d;
      for (int c = 0; c < 3; ++c) {
        double v = 110 + 25 * c;
        for (int k = 0; k < 4; ++k) {
          const double* a = &sx[(static_cast<size_t>(x) * 12 + c * 4 + k) * 2];
          const double* b = &sy[(static_cast<size_t>(y) * 12 + c * 4 + k) * 2];
          v += waves[c][k].amp * (a[0] * b[1] + a[1] * b[0]);
        }
        if (inside) v = 0.5 * v + 0.5 * inside->color[c];
        v += noise(rng) + 10 * std::sin(x * 0.9 + c) * std::sin(y * 0.7);  // texture
        img.pixel(x, y)[c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
  return img;
}

std::vector<uint8_t> encode_jpeg(const data::Image& image, const JpegOptions& o) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width());
  cinfo.image_height = static_cast<JDIMENSION>(image.height());
  cinfo.input_components = o.grayscale ? 1 : (o.cmyk ? 4 : 3);
  cinfo.in_color_space = o.grayscale ? JCS_GRAYSCALE : (o.cmyk ? JCS_CMYK : JCS_RGB);
  jpeg_set_defaults(&cinfo);
  if (o.cmyk) jpeg_set_colorspace(&cinfo, JCS_YCCK);  // what Photoshop writes: Adobe marker, transform 2
  jpeg_set_quality(&cinfo, o.quality, TRUE);
  if (!o.subsample && !o.grayscale) cinfo.comp_info[0].h_samp_factor = cinfo.comp_info[0].v_samp_factor = 1;
  if (o.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(static_cast<size_t>(image.width()) * 4);
  while (cinfo.next_scanline < cinfo.image_height) {
    const uint8_t* in = image.row(static_cast<int>(cinfo.next_scanline));
    for (int x = 0; x < image.width(); ++x) {
      const uint8_t* p = in + 3 * x;
      if (o.grayscale) {
        row[x] = static_cast<uint8_t>((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
      } else if (o.cmyk) {
        // Inverted (Adobe) CMYK whose PIL conversion gives back about p: value = stored_c * stored_k / 255.
        const int k = std::max({p[0], p[1], p[2], uint8_t{1}});
        for (int c = 0; c < 3; ++c) row[4 * x + c] = static_cast<uint8_t>(std::min(255, (p[c] * 255 + k / 2) / k));
        row[4 * x + 3] = static_cast<uint8_t>(k);
      } else {
        std::memcpy(&row[3 * x], p, 3);
      }
    }
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<uint8_t> out(buffer, buffer + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

namespace {
void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}
}  // namespace

std::vector<uint8_t> encode_png(const data::Image& image, int channels) {
  std::vector<uint8_t> pixels(static_cast<size_t>(image.width()) * image.height() * channels);
  for (int y = 0; y < image.height(); ++y) {
    for (int x = 0; x < image.width(); ++x) {
      const uint8_t* p = image.pixel(x, y);
      uint8_t* o = &pixels[(static_cast<size_t>(y) * image.width() + x) * channels];
      if (channels == 1) {
        o[0] = static_cast<uint8_t>((p[0] + p[1] + p[2]) / 3);
      } else {
        std::memcpy(o, p, 3);
        if (channels == 4) o[3] = static_cast<uint8_t>((x * 7 + y * 3) & 255);
      }
    }
  }
  std::vector<uint8_t> out;
  stbi_write_png_to_func(append_bytes, &out, image.width(), image.height(), channels, pixels.data(),
                         image.width() * channels);
  return out;
}

std::vector<uint8_t> encode_bmp(const data::Image& image) {
  std::vector<uint8_t> out;
  stbi_write_bmp_to_func(append_bytes, &out, image.width(), image.height(), 3, image.data());
  return out;
}

fs::path process_temp_dir(const std::string& name) {
  struct Cleanup {
    std::vector<fs::path> dirs;
    ~Cleanup() {
      std::error_code ec;
      for (const fs::path& d : dirs) fs::remove_all(d, ec);
    }
  };
  static Cleanup cleanup;
  const fs::path dir = temp_dir(name + "-" + std::to_string(::getpid()));
  cleanup.dirs.push_back(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  MPNCOV_CHECK(f.good(), "cannot write ", path.string());
}

std::vector<uint8_t> read_file_bytes(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  MPNCOV_CHECK(f.good(), "cannot read ", path.string());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<std::string> make_test_folder(const fs::path& root, bool with_bad_files) {
  uint64_t seed = 100;
  auto img = [&](int w, int h) { return synthetic_image(w, h, ++seed); };
  auto jpeg = [&](const std::string& name, int w, int h, JpegOptions o = {}) {
    write_bytes(root / name, encode_jpeg(img(w, h), o));
  };
  jpeg("cat/c01_baseline.jpg", 160, 120);
  jpeg("cat/c02_444.JPG", 97, 131, JpegOptions{95, false, false, false, false});
  jpeg("cat/c03_progressive.jpeg", 200, 150, JpegOptions{85, true});
  jpeg("cat/c04_gray.jpg", 120, 90, JpegOptions{90, false, true});
  jpeg("cat/c05_cmyk.jpg", 140, 100, JpegOptions{92, false, false, true});
  write_bytes(root / "cat/c06_png_named.JPEG", encode_png(img(90, 110)));
  jpeg("cat/sub/c07_nested.jpg", 64, 64);
  write_bytes(root / "cat/notes.txt", {'h', 'i', '\n'});

  write_bytes(root / "dog/d01.png", encode_png(img(100, 80)));
  write_bytes(root / "dog/d02_rgba.png", encode_png(img(80, 100), 4));
  write_bytes(root / "dog/d03_gray.png", encode_png(img(70, 70), 1));
  write_bytes(root / "dog/d04.bmp", encode_bmp(img(75, 60)));
  std::vector<std::string> bad;
  if (with_bad_files) {
    std::vector<uint8_t> j = encode_jpeg(img(150, 150));
    j.resize(j.size() / 2);
    write_bytes(root / "dog/d05_truncated.jpg", j);
    write_bytes(root / "dog/d06_empty.jpg", {});
    const std::string text = "this is not an image\n";
    write_bytes(root / "dog/d07_text.jpg", std::vector<uint8_t>(text.begin(), text.end()));
    std::vector<uint8_t> p = encode_png(img(120, 90));
    p.resize(p.size() / 2);
    write_bytes(root / "dog/d08_truncated.png", p);
    bad = {"dog/d05_truncated.jpg", "dog/d06_empty.jpg", "dog/d07_text.jpg", "dog/d08_truncated.png"};
  }
  jpeg("dog/d09.jpg", 130, 170);

  jpeg("eel/e01.jpg", 180, 135);
  jpeg("eel/e02.jpg", 300, 60);  // too wide for RandomResizedCrop's ratios: exercises the fallback
  jpeg("eel/e03.jpg", 64, 256);
  jpeg("eel/e04.jpg", 257, 193, JpegOptions{75, true, false, false, false});
  jpeg("eel/e05.jpg", 33, 47);
  jpeg("eel/e06.jpg", 512, 384);
  write_bytes(root / "eel/readme.md", {'#', '\n'});
  return bad;
}

}  // namespace mpncov::test
