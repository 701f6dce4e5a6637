// PNG decoding (libpng): every colour type and bit depth becomes the expected RGB, and hostile files
// (chunks longer than the file, decompression bombs, huge headers, bad CRCs) are refused or bounded.
#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "data/decode.h"
#include "tests/helpers.h"

using namespace mpncov;
using namespace mpncov::data;

namespace {

// A deterministic sample of `bits` bits for pixel (x, y), channel c.
int sample(int x, int y, int c, int bits) {
  return (x * 37 + y * 11 + c * 71 + x * y * 5) & ((1 << bits) - 1);
}

struct PngKind {
  int color = PNG_COLOR_TYPE_RGB;
  int bits = 8;
  bool interlaced = false;
  bool trns = false;  // a tRNS chunk (transparency that must not leak into the colours)
};

std::vector<png_color> test_palette() {
  std::vector<png_color> p(256);
  for (int i = 0; i < 256; ++i)
    p[i] = {static_cast<png_byte>(i * 7), static_cast<png_byte>(255 - i), static_cast<png_byte>(i * 13 + 5)};
  return p;
}

void append(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

// Writes a w x h PNG of the kind with libpng, pixels from sample().
std::vector<uint8_t> write_png(int w, int h, const PngKind& k) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  REQUIRE(png);
  REQUIRE(info);
  png_set_write_fn(png, &out, append, nullptr);
  png_set_IHDR(png, info, w, h, k.bits, k.color, k.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  const std::vector<png_color> palette = test_palette();
  if (k.color == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, palette.data(), 1 << k.bits);
  png_byte alphas[16] = {0, 10, 200, 0};
  png_color_16 key{};
  key.gray = key.red = static_cast<png_uint_16>(sample(0, 0, 0, k.bits));
  if (k.trns) png_set_tRNS(png, info, alphas, k.color == PNG_COLOR_TYPE_PALETTE ? 4 : 0, &key);
  png_write_info(png, info);
  const int channels = png_get_channels(png, info);
  std::vector<std::vector<png_byte>> rows(h, std::vector<png_byte>(png_get_rowbytes(png, info)));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) {
        const int v = sample(x, y, c, k.bits), i = x * channels + c;
        if (k.bits == 16) {
          rows[y][2 * i] = static_cast<png_byte>(v >> 8);
          rows[y][2 * i + 1] = static_cast<png_byte>(v);
        } else if (k.bits == 8) {
          rows[y][i] = static_cast<png_byte>(v);
        } else {  // packed, most significant bits first
          const int per_byte = 8 / k.bits, shift = 8 - k.bits * (i % per_byte + 1);
          rows[y][i / per_byte] = static_cast<png_byte>(rows[y][i / per_byte] | v << shift);
        }
      }
  std::vector<png_bytep> pointers;
  for (auto& r : rows) pointers.push_back(r.data());
  png_write_image(png, pointers.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// What the decoder must give for pixel (x, y): gray repeated, palette looked up, 16 bits to their high byte
// (16-bit gray clipped to 255, as PIL does), 1/2/4-bit gray scaled to 0..255, alpha dropped.
void expected_rgb(int x, int y, const PngKind& k, uint8_t rgb[3]) {
  const bool gray = !(k.color & PNG_COLOR_MASK_COLOR);
  for (int c = 0; c < 3; ++c) {
    int v = sample(x, y, gray ? 0 : c, k.bits);
    if (k.color == PNG_COLOR_TYPE_PALETTE) {
      const png_color p = test_palette()[sample(x, y, 0, k.bits)];
      v = c == 0 ? p.red : c == 1 ? p.green : p.blue;
    } else if (k.bits == 16 && k.color == PNG_COLOR_TYPE_GRAY) {
      v = std::min(v, 255);
    } else if (k.bits == 16) {
      v >>= 8;
    } else if (k.bits < 8) {
      v = v * 255 / ((1 << k.bits) - 1);
    }
    rgb[c] = static_cast<uint8_t>(v);
  }
}

std::string kind_name(const PngKind& k) {
  return str("color type ", k.color, ", ", k.bits, " bits", k.interlaced ? ", interlaced" : "", k.trns ? ", tRNS" : "");
}

void put_be32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// A chunk with its length and CRC.
std::vector<uint8_t> chunk(const char type[4], const std::vector<uint8_t>& data) {
  std::vector<uint8_t> c(12 + data.size());
  put_be32(c, 0, static_cast<uint32_t>(data.size()));
  std::memcpy(&c[4], type, 4);
  if (!data.empty()) std::memcpy(&c[8], data.data(), data.size());
  put_be32(c, c.size() - 4, static_cast<uint32_t>(crc32(0, &c[4], static_cast<uInt>(4 + data.size()))));
  return c;
}

// The signature and IHDR of an 8-bit RGB image (33 bytes).
std::vector<uint8_t> png_header(uint32_t w, uint32_t h) {
  std::vector<uint8_t> ihdr(13);
  put_be32(ihdr, 0, w);
  put_be32(ihdr, 4, h);
  ihdr[8] = 8;
  ihdr[9] = PNG_COLOR_TYPE_RGB;
  const std::vector<uint8_t> c = chunk("IHDR", ihdr);
  std::vector<uint8_t> b(8 + c.size());
  std::memcpy(b.data(), "\x89PNG\r\n\x1a\n", 8);
  std::memcpy(b.data() + 8, c.data(), c.size());
  return b;
}

void add(std::vector<uint8_t>& b, const std::vector<uint8_t>& c) { b.insert(b.end(), c.begin(), c.end()); }

std::vector<uint8_t> deflate(const std::vector<uint8_t>& raw) {
  uLongf n = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> z(n);
  REQUIRE(compress2(z.data(), &n, raw.data(), static_cast<uLong>(raw.size()), 9) == Z_OK);
  z.resize(n);
  return z;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("data decode PNG: every colour type, bit depth and interlacing gives the expected RGB") {
  std::vector<PngKind> kinds;
  for (int bits : {1, 2, 4, 8, 16}) kinds.push_back({PNG_COLOR_TYPE_GRAY, bits});
  for (int bits : {1, 2, 4, 8}) kinds.push_back({PNG_COLOR_TYPE_PALETTE, bits});
  for (int color : {PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA})
    for (int bits : {8, 16}) kinds.push_back({color, bits});
  kinds.push_back({PNG_COLOR_TYPE_RGB, 8, true});
  kinds.push_back({PNG_COLOR_TYPE_PALETTE, 4, true, true});
  kinds.push_back({PNG_COLOR_TYPE_GRAY, 2, true, true});
  kinds.push_back({PNG_COLOR_TYPE_GRAY, 16, false, true});
  kinds.push_back({PNG_COLOR_TYPE_RGB, 16, true, true});
  for (const PngKind& k : kinds) {
    CAPTURE(kind_name(k));
    const std::vector<uint8_t> bytes = write_png(23, 9, k);
    Decoded d;
    decode(bytes.data(), bytes.size(), d, [](int w, int h) {
      CHECK(w == 23);
      CHECK(h == 9);
      return DecodeRegion{2, 2, 5, 5, 2};  // ignored for PNG: the whole image at full size
    });
    CHECK(d.format == ImageFormat::Png);
    REQUIRE(d.image.width() == 23);
    REQUIRE(d.image.height() == 9);
    CHECK(d.scale_denom == 1);
    int wrong = 0;
    for (int y = 0; y < 9; ++y)
      for (int x = 0; x < 23; ++x) {
        uint8_t want[3];
        expected_rgb(x, y, k, want);
        wrong += std::memcmp(d.image.pixel(x, y), want, 3) != 0;
      }
    CHECK(wrong == 0);
  }
}

TEST_CASE("data decode PNG: hostile files are refused before a large allocation, or bounded") {
  const std::vector<uint8_t> good = write_png(17, 13, {PNG_COLOR_TYPE_RGB, 8});
  auto decode_bytes = [](const std::vector<uint8_t>& b) { return decode_image(b.data(), b.size()); };
  auto refused = [&](const std::vector<uint8_t>& b, const char* why) {
    CHECK_THROWS_WITH_AS(decode_bytes(b), doctest::Contains(why), DecodeError);
  };
  SUBCASE("an IDAT chunk claiming 1.2 GB in a small file (stb_image reallocated 2 GiB for it: fuzz_decode)") {
    std::vector<uint8_t> raw(13 * (1 + 17 * 3));
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = i % 52 ? static_cast<uint8_t>(i * 7) : 0;
    const std::vector<uint8_t> z = deflate(raw);
    std::vector<uint8_t> b = png_header(17, 13);
    add(b, chunk("IDAT", std::vector<uint8_t>(z.begin(), z.begin() + 100)));  // the rows need more
    const size_t at = b.size();
    add(b, chunk("IDAT", std::vector<uint8_t>(z.begin() + 100, z.end())));
    put_be32(b, at, 1231242587);
    refused(b, "file truncated");
  }
  SUBCASE("an ancillary chunk longer than the file (libpng would allocate it: it is skipped unread)") {
    std::vector<uint8_t> b = png_header(17, 13);
    const size_t at = b.size();
    add(b, chunk("zTXt", std::vector<uint8_t>(40, 7)));
    put_be32(b, at, 100000000);
    b.insert(b.end(), good.begin() + 33, good.end());
    refused(b, "file truncated");
  }
  SUBCASE("a header claiming far more pixels than the file can hold") {
    std::vector<uint8_t> b = png_header(6000, 6000);
    add(b, chunk("IDAT", deflate(std::vector<uint8_t>(100, 0))));
    refused(b, "corrupt image");
    refused(png_header(0, 5), "corrupt PNG");
  }
  SUBCASE("a corrupted IDAT (CRC mismatch) and a file cut short") {
    std::vector<uint8_t> b = good;
    b[b.size() - 20] ^= 0x55;  // inside the last IDAT's data
    refused(b, "corrupt PNG");
    refused(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(good.size()) - 30), "corrupt PNG");
  }
  SUBCASE("a decompression bomb: 64 MiB of zeros behind a 17x13 header decodes only the 17x13 image") {
    std::vector<uint8_t> b = png_header(17, 13);
    add(b, chunk("IDAT", deflate(std::vector<uint8_t>(size_t{64} << 20, 0))));
    add(b, chunk("IEND", {}));
    const Image img = decode_bytes(b);
    CHECK(img.width() == 17);
    CHECK(img.pixel(16, 12)[1] == 0);
  }
}

}  // TEST_SUITE
