#include <cstring>

#include "data/decode.h"
#include "tests/data/image_files.h"
#include "tests/helpers.h"

using namespace mpncov;
using namespace mpncov::data;
using mpncov::test::encode_jpeg;
using mpncov::test::JpegOptions;
using mpncov::test::synthetic_image;

namespace {

double mean_abs_diff(const Image& a, const Image& b) {
  REQUIRE(a.width() == b.width());
  REQUIRE(a.height() == b.height());
  double sum = 0;
  const size_t n = static_cast<size_t>(a.stride()) * a.height();
  for (size_t i = 0; i < n; ++i) sum += std::abs(int(a.data()[i]) - int(b.data()[i]));
  return sum / static_cast<double>(n);
}

// The pixels of full inside `d`'s region must equal d's.
bool region_matches(const Image& full, const Decoded& d) {
  for (int y = 0; y < d.image.height(); ++y)
    if (std::memcmp(d.image.row(y), full.pixel(d.x0, d.y0 + y), static_cast<size_t>(d.image.width()) * 3) != 0)
      return false;
  return true;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("data decode: format sniffing looks at the bytes") {
  const Image img = synthetic_image(20, 10, 1);
  const std::vector<uint8_t> jpg = encode_jpeg(img), png = test::encode_png(img), bmp = test::encode_bmp(img);
  CHECK(sniff_format(jpg.data(), jpg.size()) == ImageFormat::Jpeg);
  CHECK(sniff_format(png.data(), png.size()) == ImageFormat::Png);
  CHECK(sniff_format(bmp.data(), bmp.size()) == ImageFormat::Bmp);
  const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0};
  CHECK(sniff_format(gif, sizeof gif) == ImageFormat::Gif);
  const uint8_t webp[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'};
  CHECK(sniff_format(webp, sizeof webp) == ImageFormat::Webp);
  const uint8_t text[] = {'h', 'e', 'l', 'l', 'o'};
  CHECK(sniff_format(text, sizeof text) == ImageFormat::Unknown);
  CHECK(sniff_format(text, 0) == ImageFormat::Unknown);
}

TEST_CASE("data decode: JPEG kinds and other formats become RGB close to the original") {
  const Image img = synthetic_image(67, 45, 2);
  SUBCASE("baseline 4:2:0") {
    const std::vector<uint8_t> bytes = encode_jpeg(img);
    CHECK(mean_abs_diff(decode_image(bytes.data(), bytes.size()), img) < 10);
  }
  SUBCASE("4:4:4, progressive, CMYK") {
    for (JpegOptions o : {JpegOptions{95, false, false, false, false}, JpegOptions{95, true},
                          JpegOptions{95, false, false, true}}) {
      const std::vector<uint8_t> bytes = encode_jpeg(img, o);
      const Image out = decode_image(bytes.data(), bytes.size());
      CHECK(mean_abs_diff(out, img) < 10);
    }
  }
  SUBCASE("grayscale JPEG: three equal channels") {
    const std::vector<uint8_t> bytes = encode_jpeg(img, JpegOptions{95, false, true});
    const Image out = decode_image(bytes.data(), bytes.size());
    REQUIRE(out.width() == 67);
    bool equal = true;
    for (int y = 0; y < out.height(); ++y)
      for (int x = 0; x < out.width(); ++x) {
        const uint8_t* p = out.pixel(x, y);
        equal &= p[0] == p[1] && p[1] == p[2];
      }
    CHECK(equal);
  }
  SUBCASE("PNG RGB is lossless; RGBA drops alpha; BMP") {
    for (int channels : {3, 4}) {
      const std::vector<uint8_t> bytes = test::encode_png(img, channels);
      CHECK(decode_image(bytes.data(), bytes.size()).same_pixels(img));
    }
    const std::vector<uint8_t> bmp = test::encode_bmp(img);
    CHECK(decode_image(bmp.data(), bmp.size()).same_pixels(img));
    const std::vector<uint8_t> gray = test::encode_png(img, 1);
    const Image g = decode_image(gray.data(), gray.size());
    CHECK(g.pixel(5, 5)[0] == g.pixel(5, 5)[2]);
  }
}

TEST_CASE("data decode: bad files throw DecodeError") {
  const Image img = synthetic_image(64, 64, 3);
  std::vector<uint8_t> jpg = encode_jpeg(img);
  std::vector<uint8_t> truncated(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() / 2));
  CHECK_THROWS_AS(decode_image(truncated.data(), truncated.size()), DecodeError);
  std::vector<uint8_t> header_only(jpg.begin(), jpg.begin() + 20);
  CHECK_THROWS_AS(decode_image(header_only.data(), header_only.size()), DecodeError);
  CHECK_THROWS_WITH_AS(decode_image(jpg.data(), 0), doctest::Contains("empty file"), DecodeError);
  const std::string text = "not an image at all";
  CHECK_THROWS_WITH_AS(decode_image(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                       doctest::Contains("not an image"), DecodeError);
  std::vector<uint8_t> png = test::encode_png(img);
  png.resize(png.size() / 2);
  CHECK_THROWS_AS(decode_image(png.data(), png.size()), DecodeError);
  // stb_image pads a short BMP with zeros; it is refused as truncated, as PIL does (fuzz_decode).
  std::vector<uint8_t> bmp = test::encode_bmp(img);
  CHECK(decode_image(bmp.data(), bmp.size()).same_pixels(img));
  bmp.resize(bmp.size() - 1);
  CHECK_THROWS_WITH_AS(decode_image(bmp.data(), bmp.size()), doctest::Contains("truncated BMP: 64x64 pixels of 24 bits"),
                       DecodeError);
  // Shorter than its headers: of an 8-bit BMP's 29 first bytes, stb_image made a 64x64 image.
  bmp.resize(29);
  bmp[10] = 0x36, bmp[11] = 0x04, bmp[28] = 8;  // pixels at byte 1078 (after a palette), 8 bits each
  CHECK_THROWS_WITH_AS(decode_image(bmp.data(), bmp.size()), doctest::Contains("truncated BMP"), DecodeError);
  // stb_image does not check that a PNM holds its pixels: truncated ones must be refused, as PIL does.
  for (const std::string magic : {"P5", "P6"}) {
    CAPTURE(magic);
    const std::string header = magic + " 4\n# comment\n3 255\n";
    std::vector<uint8_t> pnm(header.begin(), header.end());
    pnm.resize(pnm.size() + (magic == "P5" ? 12 : 36), 200);
    const Image whole = decode_image(pnm.data(), pnm.size());
    CHECK(whole.width() == 4);
    CHECK(whole.pixel(3, 2)[2] == 200);
    for (size_t cut : {pnm.size() - 1, header.size(), size_t{6}}) {
      CAPTURE(cut);
      CHECK_THROWS_WITH_AS(decode_image(pnm.data(), cut), doctest::Contains("truncated PNM"), DecodeError);
    }
  }
  // stb_image returns a GIF whose image data stops short with the rest black; PIL refuses it.
  const std::vector<uint8_t> gif = {  // 4x3, palette red, green, blue, white (PIL's encoder)
      0x47, 0x49, 0x46, 0x38, 0x37, 0x61, 0x04, 0x00, 0x03, 0x00, 0x81, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0xff,
      0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x08,
      0x0f, 0x00, 0x01, 0x04, 0x10, 0x30, 0x60, 0x80, 0x80, 0x00, 0x00, 0x12, 0x06, 0x08, 0x10, 0x10, 0x00, 0x3b};
  const Image whole = decode_image(gif.data(), gif.size());
  CHECK(whole.pixel(1, 1)[2] == 255);  // row 1 is white, blue, green, red
  CHECK(whole.pixel(3, 1)[0] == 255);
  for (size_t cut : {size_t{20}, size_t{36}, size_t{44}, size_t{50}}) {
    CAPTURE(cut);
    CHECK_THROWS_WITH_AS(decode_image(gif.data(), cut), doctest::Contains("truncated GIF"), DecodeError);
  }
  // Garbage inside the entropy-coded data still decodes (as with PIL) or fails cleanly, never crashes.
  std::vector<uint8_t> noisy = jpg;
  for (size_t i = noisy.size() / 2; i < noisy.size() - 2; i += 7) noisy[i] ^= 0x5A;
  try {
    (void)decode_image(noisy.data(), noisy.size());
  } catch (const DecodeError&) {
  }
  CHECK_THROWS_WITH(decode_file("/nonexistent/file.jpg"), doctest::Contains("/nonexistent/file.jpg"));
}

TEST_CASE("data decode: PNM samples are scaled from 0..maxval to 0..255 as PIL does") {
  // PIL: min(255, round(v / maxval * 255)); stb_image returned the stored values (a near-black image).
  const std::string header = "P5 4 1 15\n";
  std::vector<uint8_t> pgm(header.begin(), header.end());
  for (uint8_t v : {0, 5, 15, 20}) pgm.push_back(v);  // 20 > maxval: clipped
  const Image g = decode_image(pgm.data(), pgm.size());
  CHECK(g.pixel(1, 0)[0] == 85);
  CHECK(g.pixel(1, 0)[2] == 85);
  CHECK(g.pixel(2, 0)[1] == 255);
  CHECK(g.pixel(3, 0)[0] == 255);
  const std::string header6 = "P6 1 1 100\n";
  std::vector<uint8_t> ppm(header6.begin(), header6.end());
  for (uint8_t v : {1, 50, 99}) ppm.push_back(v);  // 2.55 -> 3, 127.5 -> 128 (half to even), 252.45 -> 252
  const Image c = decode_image(ppm.data(), ppm.size());
  CHECK(int(c.pixel(0, 0)[0]) == 3);
  CHECK(int(c.pixel(0, 0)[1]) == 128);
  CHECK(int(c.pixel(0, 0)[2]) == 252);
  const std::string zero = "P5 1 1 0\n\x01";
  CHECK_THROWS_AS(decode_image(reinterpret_cast<const uint8_t*>(zero.data()), zero.size()), DecodeError);
}

TEST_CASE("data decode: plain PNM files PIL refuses are refused (tests/oracle/decode_parity.py: those it reads)") {
  const auto refused = [](const std::string& file, const char* why) {
    CAPTURE(file);
    CHECK_THROWS_WITH_AS(decode_image(reinterpret_cast<const uint8_t*>(file.data()), file.size()), doctest::Contains(why),
                         DecodeError);
  };
  // Short of samples (PIL repeats the last sample where no line end follows it, a quirk of its reader
  // that is not followed: refused too).
  refused("P2 2 2 255\n1 2 3\n", "truncated PNM");
  refused("P3 1 1 255\n1 2", "truncated PNM");
  refused("P1 3 1\n1 0", "truncated PNM");
  refused("P2 2 1 15\n3 16\n", "above maxval");         // PIL: "Channel value too large"
  refused("P1 2 1\n1 2\n", "corrupt PBM");               // PIL: "Invalid token for this mode"
  refused("P2 1 1 255\n00000000001\n", "corrupt PNM");    // PIL: "Token too long"
  refused("P2 1 1 0\n0\n", "maxval 0");                  // PIL: "maxval must be greater than 0"
  refused("P2 1\n", "truncated PNM header");              // PIL: "Reached EOF while reading header"
  const std::string ok = "P2 2 1 255\n7 8 trailing words are not read";
  CHECK(decode_image(reinterpret_cast<const uint8_t*>(ok.data()), ok.size()).pixel(1, 0)[0] == 8);
}

TEST_CASE("data decode: 16-bit BMP samples are widened as PIL widens them") {
  // A 2x1 BMP of 16-bit pixels, 5-5-5 (BI_RGB) or by bit fields (masks after the 40-byte header).
  auto bmp16 = [](std::vector<uint16_t> pixels, std::vector<uint32_t> masks) {
    std::vector<uint8_t> b;
    auto put = [&](uint32_t v, int n) {
      for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    };
    const uint32_t offset = 54 + 4 * static_cast<uint32_t>(masks.size());
    b = {'B', 'M'};
    put(offset + 4, 4), put(0, 4), put(offset, 4);
    put(40, 4), put(2, 4), put(1, 4), put(1, 2), put(16, 2), put(masks.empty() ? 0 : 3, 4), put(4, 4);
    put(2835, 4), put(2835, 4), put(0, 4), put(0, 4);
    for (uint32_t m : masks) put(m, 4);
    for (uint16_t p : pixels) put(p, 2);
    return b;
  };
  auto rgb = [](const Image& im, int x) {
    return std::vector<int>{im.pixel(x, 0)[0], im.pixel(x, 0)[1], im.pixel(x, 0)[2]};
  };
  // v * 255 / 31 rounded down: 4 -> 32, 16 -> 131, 13 -> 106, 8 -> 65 (bit repetition gave 33, 132, 107, 66).
  const std::vector<uint8_t> b555 = bmp16({4 << 10 | 16 << 5 | 31, 13 << 10 | 0 << 5 | 8}, {});
  const Image a = decode_image(b555.data(), b555.size());
  CHECK(rgb(a, 0) == std::vector<int>{32, 131, 255});
  CHECK(rgb(a, 1) == std::vector<int>{106, 0, 65});
  // 5-6-5: green v * 255 / 63, 16 -> 64 (65 by bit repetition).
  const std::vector<uint8_t> b565 = bmp16({4 << 11 | 16 << 5 | 8, 0xFFFF}, {0xF800, 0x07E0, 0x001F});
  const Image c = decode_image(b565.data(), b565.size());
  CHECK(rgb(c, 0) == std::vector<int>{32, 64, 65});
  CHECK(rgb(c, 1) == std::vector<int>{255, 255, 255});
}

TEST_CASE("data decode: a GIF's transparent index and the screen around its frame are PIL's colours") {
  // The 4x3 frame of the truncation test at (1, 1) on a 6x5 screen (background index 3), index 2 (blue)
  // transparent. PIL's convert("RGB"): transparent pixels keep their colour, the rest of the screen is the
  // transparent index's colour; stb_image gave black for both.
  const std::vector<uint8_t> gif = {
      0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x06, 0x00, 0x05, 0x00, 0x81, 0x03, 0x00, 0xff, 0x00, 0x00, 0x00, 0xff,
      0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x02, 0x00, 0x2c, 0x01, 0x00,
      0x01, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x08, 0x0f, 0x00, 0x01, 0x04, 0x10, 0x30, 0x60, 0x80, 0x80, 0x00,
      0x00, 0x12, 0x06, 0x08, 0x10, 0x10, 0x00, 0x3b};
  const Image im = decode_image(gif.data(), gif.size());
  REQUIRE(im.width() == 6);
  REQUIRE(im.height() == 5);
  auto rgb = [&](int x, int y) { return std::vector<int>{im.pixel(x, y)[0], im.pixel(x, y)[1], im.pixel(x, y)[2]}; };
  const std::vector<int> red{255, 0, 0}, green{0, 255, 0}, blue{0, 0, 255}, white{255, 255, 255};
  CHECK(rgb(0, 0) == blue);  // outside the frame
  CHECK(rgb(5, 4) == blue);
  CHECK(rgb(1, 1) == red);   // frame row 0: red, green, blue (transparent), white
  CHECK(rgb(2, 1) == green);
  CHECK(rgb(3, 1) == blue);
  CHECK(rgb(4, 1) == white);
}

TEST_CASE("data decode: a top-down BMP (negative height) is the same image") {
  const Image img = synthetic_image(7, 5, 8);
  const std::vector<uint8_t> bmp = test::encode_bmp(img);  // bottom-up, 24 bits, pixels at byte 54
  const long offset = 54, stride = (7 * 3 + 3) / 4 * 4;
  REQUIRE(static_cast<long>(bmp.size()) == offset + 5 * stride);
  // The rows top first and the height negated, as some writers store them (PIL reads them).
  std::vector<uint8_t> down(bmp.begin(), bmp.begin() + offset);
  for (long y = 4; y >= 0; --y)
    down.insert(down.end(), bmp.begin() + offset + y * stride, bmp.begin() + offset + (y + 1) * stride);
  const int32_t height = -5;
  std::memcpy(&down[22], &height, 4);  // little-endian
  CHECK(decode_image(down.data(), down.size()).same_pixels(img));
}

TEST_CASE("data decode: JPEG regions are the full decode's pixels") {
  const Image img = synthetic_image(301, 203, 4);
  for (JpegOptions o : {JpegOptions{}, JpegOptions{90, false, false, false, false}, JpegOptions{90, true},
                        JpegOptions{90, false, true}, JpegOptions{90, false, false, true}}) {
    const std::vector<uint8_t> bytes = encode_jpeg(img, o);
    const Image full = decode_image(bytes.data(), bytes.size());
    for (DecodeRegion r : {DecodeRegion{0, 0, 50, 40}, DecodeRegion{123, 77, 101, 90}, DecodeRegion{250, 150, 51, 53},
                           DecodeRegion{17, 180, 200, 23}}) {
      Decoded d;
      decode(bytes.data(), bytes.size(), d, [&](int w, int h) {
        CHECK(w == 301);
        CHECK(h == 203);
        return r;
      });
      CHECK(d.scale_denom == 1);
      CHECK(d.x0 <= r.x);
      CHECK(d.y0 <= r.y);
      CHECK(d.x0 + d.image.width() >= r.x + r.width);
      CHECK(d.y0 + d.image.height() >= r.y + r.height);
      CHECK(d.image.width() < 301);
      CHECK(region_matches(full, d));
    }
  }
}

TEST_CASE("data decode: DCT scaling") {
  const Image img = synthetic_image(333, 250, 5);
  const std::vector<uint8_t> bytes = encode_jpeg(img);
  for (int denom : {2, 4, 8}) {
    Decoded d;
    decode(bytes.data(), bytes.size(), d, [&](int, int) { return DecodeRegion{0, 0, -1, -1, denom}; });
    CHECK(d.scale_denom == denom);
    CHECK(d.scaled_width == (333 + denom - 1) / denom);
    CHECK(d.scaled_height == (250 + denom - 1) / denom);
    CHECK(d.image.width() == d.scaled_width);
    CHECK(d.image.height() == d.scaled_height);
  }
  // A truncated file is refused even when the region needed stops before the damage.
  std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() * 3 / 4));
  Decoded d;
  CHECK_THROWS_AS(decode(truncated.data(), truncated.size(), d, [](int, int) { return DecodeRegion{0, 0, 40, 40}; }),
                  DecodeError);
}

}  // TEST_SUITE
