#include "data/decode.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>
#include <stb_image.h>

#include "data/file.h"

namespace mpncov::data {

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Gif: return "GIF";
    case ImageFormat::Pnm: return "PNM";
    case ImageFormat::Tiff: return "TIFF";
    case ImageFormat::Webp: return "WebP";
    case ImageFormat::Unknown: break;
  }
  return "unknown";
}

ImageFormat sniff_format(const uint8_t* b, size_t n) {
  auto starts = [&](const char* magic, size_t len, size_t at = 0) {
    return n >= at + len && std::memcmp(b + at, magic, len) == 0;
  };
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::Jpeg;
  if (starts("\x89PNG\r\n\x1a\n", 8)) return ImageFormat::Png;
  if (starts("BM", 2)) return ImageFormat::Bmp;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return ImageFormat::Gif;
  if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' && b[1] != '4') return ImageFormat::Pnm;
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return ImageFormat::Tiff;
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return ImageFormat::Webp;
  return ImageFormat::Unknown;
}

namespace {

// A corrupt or hostile header must not make us allocate gigabytes.
// No format packs more than a few thousand pixels into a byte (1-bit PNG: 8 x deflate's 1032; GIF's LZW
// about 2700; a progressive JPEG's end-of-band runs about 512): a header claiming more is corrupt, and
// refusing it spares allocating and decoding a huge image out of a few bytes.
constexpr int64_t kMaxPixelsPerByte = 16384;

void check_size(int w, int h, size_t file_bytes) {
  if (w <= 0 || h <= 0 || int64_t{w} * h > (int64_t{1} << 28))
    throw DecodeError(str("unreasonable image size ", w, "x", h));
  if (int64_t{w} * h > kMaxPixelsPerByte * static_cast<int64_t>(file_bytes))
    throw DecodeError(str("corrupt image: its header claims ", w, "x", h, " pixels but the file has only ", file_bytes, " bytes"));
}

// libjpeg reports fatal errors through error_exit, which must not return: we longjmp back to decode_jpeg,
// whose frames hold no objects with destructors between setjmp and the library calls.
struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

// Warnings are ignored (PIL ignores them too, e.g. extraneous bytes before a marker) except running out
// of data: libjpeg would pad the image with grey, PIL refuses the file as truncated, and so do we.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  std::vector<uint8_t> cmyk_row;
  JpegState() {
    std::memset(&cinfo, 0, sizeof(cinfo));  // so jpeg_destroy is safe even before create
    cinfo.err = jpeg_std_error(&errors.pub);
    errors.pub.error_exit = jpeg_on_error;
    errors.pub.emit_message = jpeg_on_message;
    errors.message[0] = '\0';
  }
  ~JpegState() { jpeg_destroy_decompress(&cinfo); }
};

// PIL's conversion of Adobe (inverted) CMYK to RGB: value = (255 - c) * (255 - k) / 255, rounded; the
// stored bytes are already 255 - c and 255 - k.
inline uint8_t mul255(int a, int b) {
  const int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

void cmyk_to_rgb(const uint8_t* in, uint8_t* out, int width) {
  for (int x = 0; x < width; ++x, in += 4, out += 3) {
    out[0] = mul255(in[0], in[3]);
    out[1] = mul255(in[1], in[3]);
    out[2] = mul255(in[2], in[3]);
  }
}

// Extra decoded pixels around a requested region, so that the edge effects of a cropped decode (fancy
// upsampling treats the crop edge as the image edge) stay outside it.
constexpr int kRegionMargin = 8;
constexpr int kEdgeTrim = 4;  // columns next to a crop edge that may differ (1-2 in practice)

// Whether the JPEG end-of-image marker is among the last bytes (some writers add a little padding).
bool ends_with_eoi(const uint8_t* bytes, size_t size) {
  for (size_t i = size - 1; i > 0 && i + 64 > size; --i)
    if (bytes[i - 1] == 0xFF && bytes[i] == 0xD9) return true;
  return false;
}

void decode_jpeg(const uint8_t* bytes, size_t size, Decoded& out,
                 const std::function<DecodeRegion(int, int)>& choose) {
  JpegState st;
  jpeg_decompress_struct* cinfo = &st.cinfo;
  if (setjmp(st.errors.jump)) throw DecodeError(str("corrupt JPEG: ", st.errors.message));
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);

  const int full_w = static_cast<int>(cinfo->image_width), full_h = static_cast<int>(cinfo->image_height);
  check_size(full_w, full_h, size);
  const bool cmyk = cinfo->num_components == 4;
  if (!cmyk && cinfo->num_components != 1 && cinfo->num_components != 3)
    throw DecodeError(str("unsupported JPEG with ", cinfo->num_components, " components"));
  DecodeRegion region;
  if (choose) region = choose(full_w, full_h);
  const int denom = region.scale_denom;
  if (denom != 1 && denom != 2 && denom != 4 && denom != 8)
    throw Error(str("JPEG scale 1/", denom, " is not one of 1, 1/2, 1/4, 1/8"));

  cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  cinfo->scale_num = 1;
  cinfo->scale_denom = static_cast<unsigned>(denom);
  jpeg_start_decompress(cinfo);
  const int scaled_w = static_cast<int>(cinfo->output_width), scaled_h = static_cast<int>(cinfo->output_height);

  // The region in scaled pixels, with a margin.
  int x0 = 0, x1 = scaled_w, y0 = 0, y1 = scaled_h;
  if (region.width >= 0 && region.height >= 0) {
    x0 = std::max(0, region.x / denom - kRegionMargin);
    y0 = std::max(0, region.y / denom - kRegionMargin);
    x1 = std::min(scaled_w, (region.x + region.width + denom - 1) / denom + kRegionMargin);
    y1 = std::min(scaled_h, (region.y + region.height + denom - 1) / denom + kRegionMargin);
    if (x1 <= x0 || y1 <= y0) throw Error("empty JPEG decode region");
  }
  // Columns [crop_x0, crop_x1) are decoded; the columns next to a crop edge inside the image differ from a
  // full decode (chroma upsampling sees the edge), so they are decoded but not returned.
  int crop_x0 = 0, crop_x1 = scaled_w;
  if (x0 > 0 || x1 < scaled_w) {
    JDIMENSION xoff = static_cast<JDIMENSION>(x0), width = static_cast<JDIMENSION>(x1 - x0);
    jpeg_crop_scanline(cinfo, &xoff, &width);  // widens to iMCU boundaries
    crop_x0 = static_cast<int>(xoff);
    crop_x1 = crop_x0 + static_cast<int>(width);
    x0 = crop_x0 > 0 ? crop_x0 + kEdgeTrim : 0;  // still <= the region's start: crop_x0 <= x0 - margin
    x1 = crop_x1 < scaled_w ? crop_x1 - kEdgeTrim : scaled_w;
  }
  const int crop_w = crop_x1 - crop_x0;
  const bool direct = !cmyk && crop_x0 == x0 && crop_x1 == x1;  // rows go straight into the image
  if (y0 > 0) jpeg_skip_scanlines(cinfo, static_cast<JDIMENSION>(y0));

  out.full_width = full_w;
  out.full_height = full_h;
  out.scale_denom = denom;
  out.scaled_width = scaled_w;
  out.scaled_height = scaled_h;
  out.x0 = x0;
  out.y0 = y0;
  out.format = ImageFormat::Jpeg;
  const int w = x1 - x0;
  out.image.resize(w, y1 - y0);
  st.cmyk_row.resize(static_cast<size_t>(crop_w) * 4);  // a row as decoded, when it cannot go in place
  const int skip = x0 - crop_x0;
  for (int y = y0; y < y1; ++y) {
    JSAMPROW row = direct ? out.image.row(y - y0) : st.cmyk_row.data();
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) throw DecodeError("JPEG decoder returned no rows");
    if (cmyk) {
      cmyk_to_rgb(st.cmyk_row.data() + 4 * skip, out.image.row(y - y0), w);
    } else if (!direct) {
      std::memcpy(out.image.row(y - y0), st.cmyk_row.data() + 3 * skip, static_cast<size_t>(w) * 3);
    }
  }
  // The rows below the region are not decoded, but a file without its end marker is probably truncated:
  // read on to the last row then, so that such a file fails whatever region is asked for, as with PIL.
  if (y1 < scaled_h && !ends_with_eoi(bytes, size)) {
    if (y1 < scaled_h - 1) jpeg_skip_scanlines(cinfo, static_cast<JDIMENSION>(scaled_h - 1 - y1));
    JSAMPROW row = st.cmyk_row.data();
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_abort_decompress(cinfo);
}

// PNG goes through libpng, which streams the image data and inflates only as much as the rows of the
// header's size need. (stb_image 2.27 grew its buffer to whatever an IDAT chunk's length claimed:
// fuzz_decode found a 466-byte PNG that asked for 2 GiB; and it inflated without bound.) libpng 1.6 still
// allocates an ancillary chunk (text, colour profile) of the length it claims, up to 2 GiB, with only a
// warning over its chunk-size limit, so every ancillary chunk but tRNS (at most 256 bytes, read into a
// fixed buffer) is skipped unread: none changes the pixels we return, as there is no gamma or
// colour-profile transform (like PIL and stb_image). Palette and gray expand to RGB, 16-bit samples keep
// their high byte, alpha (and tRNS transparency) is dropped. 16-bit greyscale is PIL's exception: it opens
// it as 32-bit integers, which convert("RGB") clips to 255, so its samples are read whole and clipped.
struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* bytes;
  size_t size, pos = 0;
  std::vector<png_bytep> rows;
  char message[200] = "";
  PngState(const uint8_t* b, size_t n) : bytes(b), size(n) {}
  ~PngState() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

// libpng's error callback must not return: we longjmp back to decode_png, whose frame holds no objects
// with destructors between setjmp and the library calls (they live in PngState).
[[noreturn]] void png_on_error(png_structp png, png_const_charp message) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof st->message, "%s", message);
  png_longjmp(png, 1);
}

// Warnings (a bad ancillary chunk, which libpng then ignores, as we ignore them all) are not printed.
void png_on_warning(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep to, size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) png_error(png, "file truncated");
  std::memcpy(to, st->bytes + st->pos, n);
  st->pos += n;
}

// The longest side libpng accepts (its row buffers are sized from it); check_size bounds the area.
constexpr png_uint_32 kPngMaxSide = 1u << 20;

// PIL checks no CRC of the image data and stops reading after the last IDAT's data: a file cut short
// inside that chunk's CRC (no IEND after it) gives the whole image. libpng insists on the CRC, so such a
// file is completed with it, computed; empty: the file's chunks do not end that way.
std::vector<uint8_t> with_final_idat_crc(const uint8_t* bytes, size_t size) {
  auto be32 = [bytes](size_t at) {
    return uint64_t{bytes[at]} << 24 | uint64_t{bytes[at + 1]} << 16 | uint64_t{bytes[at + 2]} << 8 | bytes[at + 3];
  };
  uint64_t at = 8;  // the signature
  while (at + 8 <= size) {
    const uint64_t data_end = at + 8 + be32(at);
    if (data_end > size) return {};  // cut inside a chunk's data: libpng says so
    if (data_end + 4 <= size) {
      at = data_end + 4;
      continue;
    }
    if (std::memcmp(bytes + at + 4, "IDAT", 4) != 0) return {};
    std::vector<uint8_t> completed(bytes, bytes + data_end);
    const uLong crc = crc32(crc32(0, nullptr, 0), bytes + at + 4, static_cast<uInt>(data_end - at - 4));
    for (int shift = 24; shift >= 0; shift -= 8) completed.push_back(static_cast<uint8_t>(crc >> shift));
    return completed;
  }
  return {};
}

// A format without region or scaled decoding (all but JPEG): the whole w x h image, out's image sized for it.
// choose still hears the size, as the JPEG path's does.
void whole_image(Decoded& out, int w, int h, ImageFormat format, const std::function<DecodeRegion(int, int)>& choose) {
  if (choose) (void)choose(w, h);
  out.full_width = out.scaled_width = w;
  out.full_height = out.scaled_height = h;
  out.scale_denom = 1;
  out.x0 = out.y0 = 0;
  out.format = format;
  out.image.resize(w, h);
}

void read_png(const uint8_t* bytes, size_t size, Decoded& out, const std::function<DecodeRegion(int, int)>& choose) {
  PngState st(bytes, size);
  st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_on_error, png_on_warning);
  if (!st.png || !(st.info = png_create_info_struct(st.png))) throw DecodeError("libpng could not start");
  if (setjmp(png_jmpbuf(st.png))) throw DecodeError(str("corrupt PNG: ", st.message));
  png_set_read_fn(st.png, &st, png_read_bytes);
  png_set_user_limits(st.png, kPngMaxSide, kPngMaxSide);
  png_set_keep_unknown_chunks(st.png, PNG_HANDLE_CHUNK_NEVER, nullptr, -1);  // -1: known ones but tRNS too
  png_read_info(st.png, st.info);

  const int w = static_cast<int>(png_get_image_width(st.png, st.info));
  const int h = static_cast<int>(png_get_image_height(st.png, st.info));
  check_size(w, h, size);  // before anything of the image's size is allocated
  const int color = png_get_color_type(st.png, st.info);
  const bool grey16 = color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(st.png, st.info) == 16;
  png_set_palette_to_rgb(st.png);  // these four do nothing to images they do not apply to
  png_set_expand_gray_1_2_4_to_8(st.png);
  if (!grey16) png_set_strip_16(st.png);
  png_set_strip_alpha(st.png);
  if (!(color & PNG_COLOR_MASK_COLOR) && !grey16) png_set_gray_to_rgb(st.png);
  png_set_interlace_handling(st.png);
  png_read_update_info(st.png, st.info);
  const size_t row_bytes = png_get_rowbytes(st.png, st.info);
  if (row_bytes != static_cast<size_t>(w) * (grey16 ? 2 : 3))
    throw DecodeError(str("unsupported PNG: rows of ", row_bytes, " bytes after conversion to RGB"));

  whole_image(out, w, h, ImageFormat::Png, choose);
  st.rows.resize(static_cast<size_t>(h));
  for (int y = 0; y < h; ++y) st.rows[static_cast<size_t>(y)] = out.image.row(y);
  png_read_image(st.png, st.rows.data());
  if (grey16) {
    // Each row holds its big-endian 16-bit samples in its first 2w bytes: widened to RGB in place, from the
    // right, so no sample is overwritten before it is read.
    for (int y = 0; y < h; ++y) {
      uint8_t* row = out.image.row(y);
      for (int x = w - 1; x >= 0; --x) {
        const int v = row[2 * x] << 8 | row[2 * x + 1];
        std::memset(row + 3 * x, std::min(v, 255), 3);
      }
    }
  }
}

void decode_png(const uint8_t* bytes, size_t size, Decoded& out,
                const std::function<DecodeRegion(int, int)>& choose) {
  const std::vector<uint8_t> completed = with_final_idat_crc(bytes, size);
  if (completed.empty()) read_png(bytes, size, out, choose);
  else read_png(completed.data(), completed.size(), out, choose);
}

// stb_image 2.27 trusts a PNM header, so it is read here first. Two of its bugs found by fuzz_decode: it
// reads the header's numbers into an int without checking for overflow (refused: more than 9 digits), and
// on 16-bit files (maxval above 255) it reads past its pixel buffer (refused: 8-bit PNM only). And it does
// not check that the file holds the pixels: a truncated file (or a header alone) gave a whole image, the
// missing part uninitialised memory, where PIL refuses it; so the file must hold every pixel. Returns the
// maxval.
int check_pnm(const uint8_t* bytes, size_t size) {
  size_t i = 2;
  int64_t numbers[3] = {};  // width, height, maxval
  for (int number = 0; number < 3; ++number) {
    while (i < size && (std::isspace(bytes[i]) || bytes[i] == '#')) {
      if (bytes[i] == '#')
        while (i < size && bytes[i] != '\n' && bytes[i] != '\r') ++i;
      else
        ++i;
    }
    int64_t value = 0;
    size_t digits = 0;
    for (; i < size && std::isdigit(bytes[i]); ++i, ++digits)
      if (digits < 10) value = value * 10 + (bytes[i] - '0');
    if (digits > 9) throw DecodeError("corrupt PNM: a header number has more than 9 digits");
    if (digits == 0 || i == size) throw DecodeError(i == size ? "truncated PNM header" : "corrupt PNM header");
    numbers[number] = value;
  }
  if (numbers[2] > 255) throw DecodeError(str("unsupported PNM with maxval ", numbers[2], " (16-bit)"));
  if (numbers[2] == 0) throw DecodeError("corrupt PNM: maxval 0");
  // One whitespace byte ends the header (bytes[i]); the pixels follow, 1 byte (P5) or 3 (P6) each.
  const int64_t needed = static_cast<int64_t>(i) + 1 + numbers[0] * numbers[1] * (bytes[1] == '5' ? 1 : 3);
  if (static_cast<int64_t>(size) < needed)
    throw DecodeError(str("truncated PNM: ", numbers[0], "x", numbers[1], " pixels need ", needed,
                          " bytes, the file has ", size));
  return static_cast<int>(numbers[2]);
}

// stb_image returns a PNM's samples as stored; PIL scales them from 0..maxval to 0..255 (when maxval is
// not 255) as min(255, round(v / maxval * 255)), Python's round: a file with maxval 15 is not near-black.
void scale_pnm_samples(Image& image, int maxval) {
  uint8_t table[256];
  for (int v = 0; v < 256; ++v)
    table[v] = static_cast<uint8_t>(std::min(255.0, std::nearbyint(static_cast<double>(v) / maxval * 255.0)));
  uint8_t* p = image.data();
  for (int64_t i = 0, n = image.stride() * image.height(); i < n; ++i) p[i] = table[p[i]];
}

// Plain (ASCII) PNM, P1 to P3, which stb_image does not read, as PIL reads it: the header's numbers are
// tokens between whitespace and '#' comments; in the data, each comment is cut out up to and with its line
// end (so digits either side of it join), then P1's samples are single '0' or '1' bytes, whitespace
// optional ('1' is black), and P2's and P3's are decimal numbers of at most 10 characters, none above
// maxval, scaled as round(v / maxval * 255) (a P2 with maxval over 255 is PIL's 32-bit image, scaled to
// 65535 and then clipped to 255). A file short of samples is refused (PIL repeats the last sample where no
// line end follows it, a quirk of its reader not followed here); what follows the samples is not read.
void decode_plain_pnm(const uint8_t* bytes, size_t size, Decoded& out,
                      const std::function<DecodeRegion(int, int)>& choose) {
  const char kind = static_cast<char>(bytes[1]);
  if (size < 3 || !std::isspace(bytes[2])) throw DecodeError("corrupt PNM header");
  size_t i = 3;
  int64_t numbers[3] = {0, 0, 255};  // width, height, maxval (none in P1)
  for (int number = 0; number < (kind == '1' ? 2 : 3); ++number) {
    std::string token;
    for (; i < size; ++i) {
      if (bytes[i] == '#') {  // a comment, to the end of its line
        while (i + 1 < size && bytes[i + 1] != '\n' && bytes[i + 1] != '\r') ++i;
        ++i;
      } else if (std::isspace(bytes[i])) {
        if (!token.empty()) break;
      } else {
        token += static_cast<char>(bytes[i]);
      }
    }
    ++i;  // the whitespace that ends the token
    if (token.empty()) throw DecodeError("truncated PNM header");
    if (token.size() > 10 || token.find_first_not_of("0123456789") != std::string::npos)
      throw DecodeError(str("corrupt PNM header: '", token.substr(0, 11), "' is not a number"));
    numbers[number] = std::stoll(token);
  }
  const int64_t maxval = numbers[2];
  if (maxval < 1 || maxval > 65535) throw DecodeError(str("corrupt PNM: maxval ", maxval));
  const int w = static_cast<int>(numbers[0]), h = static_cast<int>(numbers[1]);
  check_size(w, h, size);
  // The data with its comments cut out.
  std::string data;
  for (; i < size; ++i) {
    if (bytes[i] != '#') {
      data += static_cast<char>(bytes[i]);
      continue;
    }
    while (i < size && bytes[i] != '\n' && bytes[i] != '\r') ++i;
  }
  const size_t needed = static_cast<size_t>(w) * static_cast<size_t>(h) * (kind == '3' ? 3 : 1);
  std::vector<uint8_t> samples;
  samples.reserve(std::min(needed, data.size()));  // a sample takes a byte at least: no more than the file
  if (kind == '1') {
    for (size_t k = 0; k < data.size() && samples.size() < needed; ++k) {
      if (std::isspace(static_cast<unsigned char>(data[k]))) continue;
      if (data[k] != '0' && data[k] != '1') throw DecodeError(str("corrupt PBM: a sample '", data[k], "'"));
      samples.push_back(data[k] == '1' ? 0 : 255);
    }
  } else {
    const double scale = kind == '2' && maxval > 255 ? 65535.0 : 255.0;
    std::istringstream tokens(data);
    for (std::string token; samples.size() < needed && tokens >> token;) {
      if (token.size() > 10 || token.find_first_not_of("0123456789") != std::string::npos)
        throw DecodeError(str("corrupt PNM: a sample '", token.substr(0, 11), "'"));
      const int64_t v = std::stoll(token);
      if (v > maxval) throw DecodeError(str("corrupt PNM: a sample ", v, " above maxval ", maxval));
      samples.push_back(static_cast<uint8_t>(std::min(255.0, std::nearbyint(static_cast<double>(v) / maxval * scale))));
    }
  }
  if (samples.size() < needed)
    throw DecodeError(str("truncated PNM: ", w, "x", h, " pixels need ", needed, " samples, the file has ", samples.size()));
  whole_image(out, w, h, ImageFormat::Pnm, choose);
  uint8_t* p = out.image.data();
  for (size_t k = 0; k < static_cast<size_t>(w) * static_cast<size_t>(h); ++k, p += 3) {
    if (kind == '3') std::memcpy(p, &samples[3 * k], 3);
    else std::memset(p, samples[k], 3);
  }
}

// stb_image reads a BMP's pixels uncompressed (it refuses RLE) and pads a short file with zeros, where PIL
// refuses it as truncated; fuzz_decode found an 809-byte BMP claiming 378x31918 pixels that made it
// allocate and fill 48 MB. So the file must hold every row its header promises.
void check_bmp_data(const uint8_t* b, size_t size, int w, int h) {
  // Shorter than any BMP's headers: stb_image reads the missing bytes as zeros and made an image of them.
  if (size < 30) throw DecodeError(str("truncated BMP: ", size, " bytes"));
  auto le = [b](size_t at, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | b[at + static_cast<size_t>(i)];
    return int64_t{v};
  };
  const int64_t offset = le(10, 4), header = le(14, 4), bits = le(header == 12 ? 24 : 28, 2);
  if (bits == 0) return;
  const int64_t row = (w * bits + 7) / 8, stride = (w * bits + 31) / 32 * 4;
  const int64_t needed = offset + (h - 1) * stride + row;
  if (static_cast<int64_t>(size) < needed)
    throw DecodeError(str("truncated BMP: ", w, "x", h, " pixels of ", bits, " bits from byte ", offset,
                          " need ", needed, " bytes, the file has ", size));
}

// stb_image widens a 16-bit BMP's 5- and 6-bit samples by repeating their bits (v << 3 | v >> 2), PIL as
// v * 255 / 31 (or / 63), rounded down: they differ by 1 for half the values. Each widened sample gives
// back v, so stb_image's output is mapped to PIL's, for the two layouts PIL reads (5-5-5, and 5-6-5 by
// bit fields).
void bmp16_samples_as_pil(const uint8_t* b, size_t size, Image& image) {
  if (size < 54) return;
  auto le = [b](size_t at) { return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 |
                                    uint32_t{b[at + 3]} << 24; };
  const uint32_t header = le(14), bits = le(28) & 0xFFFF, compression = le(30);
  if (header < 40 || bits != 16) return;
  bool green6 = false;
  if (compression == 3) {  // BI_BITFIELDS: red, green and blue masks after the 40-byte header
    if (size < 66) return;
    const uint32_t r = le(54), g = le(58), bl = le(62);
    green6 = r == 0xF800 && g == 0x07E0 && bl == 0x001F;
    if (!green6 && !(r == 0x7C00 && g == 0x03E0 && bl == 0x001F)) return;
  } else if (compression != 0) {
    return;
  }
  uint8_t five[256], six[256];
  for (int x = 0; x < 256; ++x) {
    five[x] = static_cast<uint8_t>((x >> 3) * 255 / 31);
    six[x] = static_cast<uint8_t>((x >> 2) * 255 / 63);
  }
  uint8_t* p = image.data();
  for (int64_t i = 0, n = int64_t{image.width()} * image.height(); i < n; ++i, p += 3) {
    p[0] = five[p[0]];
    p[1] = green6 ? six[p[1]] : five[p[1]];
    p[2] = five[p[2]];
  }
}

// The first image of a GIF, for what PIL does with it and stb_image does not: a transparent index keeps its
// palette colour (convert("RGB") ignores transparency; stb_image left those pixels black), and the pixels
// outside a frame smaller than the screen are the colour of palette entry 0, or of the transparent index
// (stb_image: black, or the background colour with red and blue swapped). A first frame that extends past
// the logical screen grows the image to hold it, and a frame without any palette is greyscale, each
// index its grey level (stb_image refused both).
struct GifFirstFrame {
  size_t transparency_flag_at = 0;  // the byte whose bit 0 marks a transparent index (0: none)
  int x = 0, y = 0, width = 0, height = 0;
  bool palette = false;  // the frame has one, its own or the global one
  bool fill = false;  // fill_rgb, a colour of the frame's palette (or a grey level), is known
  uint8_t fill_rgb[3] = {0, 0, 0};
};

// Walks the blocks up to the end of the first image. They must all be in the file: stb_image returns an
// image cut short as it got it (the rest black), where PIL refuses the file as truncated.
GifFirstFrame read_gif_first_frame(const uint8_t* b, size_t size) {
  auto truncated = [] { return DecodeError("truncated GIF: the first image's data is cut short"); };
  GifFirstFrame f;
  size_t i = 13;  // signature and logical screen descriptor
  if (size < i) throw truncated();
  const size_t global = b[10] & 0x80 ? i : 0;  // where the global palette starts, if any
  const int global_entries = 2 << (b[10] & 7);
  if (global) i += 3u * global_entries;
  int transparent = -1;
  auto skip_sub_blocks = [&] {  // data sub-blocks, each a length byte and its bytes, ending with length 0
    while (i < size && b[i] != 0) i += 1 + b[i];
    if (i >= size) throw truncated();
    ++i;
  };
  while (i < size) {
    if (b[i] == 0x21) {  // extension: label, then sub-blocks
      if (i + 6 < size && b[i + 1] == 0xF9 && b[i + 2] >= 4) {  // graphic control: flags, delay, index
        f.transparency_flag_at = b[i + 3] & 1 ? i + 3 : 0;
        transparent = b[i + 3] & 1 ? b[i + 6] : -1;
      }
      i += 2;
      skip_sub_blocks();
    } else if (b[i] == 0x2C) {  // image descriptor, local palette, LZW code size, then its data
      if (i + 10 > size) throw truncated();
      f.x = b[i + 1] | b[i + 2] << 8, f.y = b[i + 3] | b[i + 4] << 8;
      f.width = b[i + 5] | b[i + 6] << 8, f.height = b[i + 7] | b[i + 8] << 8;
      const uint8_t flags = b[i + 9];
      i += 10;
      const size_t palette = flags & 0x80 ? i : global;  // PIL's frame palette: the local one, if any
      const int entries = flags & 0x80 ? 2 << (flags & 7) : global_entries;
      if (flags & 0x80) i += 3u * entries;
      const int index = transparent >= 0 ? transparent : 0;
      f.palette = palette != 0;
      if (palette && index < entries && palette + 3u * index + 3 <= size) {
        f.fill = true;
        std::memcpy(f.fill_rgb, b + palette + 3u * index, 3);
      } else if (!palette) {  // PIL's greyscale image: the index is the grey level
        f.fill = true;
        std::memset(f.fill_rgb, index, 3);
      }
      i += 1;
      skip_sub_blocks();
      return f;
    } else {
      return f;  // a trailer or a corrupt block: stb_image reports that
    }
  }
  throw truncated();
}

void decode_stb(const uint8_t* bytes, size_t size, ImageFormat format, Decoded& out,
                const std::function<DecodeRegion(int, int)>& choose) {
  if (size > static_cast<size_t>(INT32_MAX)) throw DecodeError("file too large for stb_image");
  const int pnm_maxval = format == ImageFormat::Pnm ? check_pnm(bytes, size) : 255;
  int w = 0, h = 0, channels = 0;
  GifFirstFrame gif;
  bool gif_grown = false;  // the first frame extends past the logical screen
  // The size from the header first: stb_image would allocate whatever a (hostile) header claims.
  if (stbi_info_from_memory(bytes, static_cast<int>(size), &w, &h, &channels)) {
    // A top-down BMP stores its height negated; stbi_info passes it on as is (stbi_load does not).
    if (format == ImageFormat::Bmp && h < 0 && h > INT32_MIN) h = -h;
    if (format == ImageFormat::Gif) {
      gif = read_gif_first_frame(bytes, size);
      gif_grown = gif.x + gif.width > w || gif.y + gif.height > h;
      w = std::max(w, gif.x + gif.width);
      h = std::max(h, gif.y + gif.height);
      if (w > 0xFFFF || h > 0xFFFF) throw DecodeError(str("unsupported GIF: its first frame ends at ", w, "x", h));
    }
    check_size(w, h, size);
    if (format == ImageFormat::Bmp) check_bmp_data(bytes, size, w, h);
  }
  // stb_image gets a GIF without its transparency flag and with background index 0: it then draws
  // transparent pixels in their colour and leaves the outside of the frame black, filled below. A screen
  // too small for the first frame is grown to PIL's size, and a GIF without a palette is given a grey one.
  std::vector<uint8_t> gif_bytes;
  const bool gif_grey = format == ImageFormat::Gif && gif.width > 0 && !gif.palette;
  if (format == ImageFormat::Gif && size >= 13 && (gif.transparency_flag_at || bytes[11] != 0 || gif_grown || gif_grey)) {
    gif_bytes.assign(bytes, bytes + size);
    if (gif.transparency_flag_at) gif_bytes[gif.transparency_flag_at] &= 0xFE;
    gif_bytes[11] = 0;
    if (gif_grown) {
      const uint8_t screen[4] = {static_cast<uint8_t>(w), static_cast<uint8_t>(w >> 8), static_cast<uint8_t>(h),
                                 static_cast<uint8_t>(h >> 8)};
      std::memcpy(gif_bytes.data() + 6, screen, 4);
    }
    if (gif_grey) {  // a global palette of 256 grey levels, right after the screen descriptor
      std::vector<uint8_t> greys(3 * 256);
      for (size_t i = 0; i < greys.size(); ++i) greys[i] = static_cast<uint8_t>(i / 3);
      gif_bytes.insert(gif_bytes.begin() + 13, greys.begin(), greys.end());
      gif_bytes[10] |= 0x87;  // a global palette, of 2 << 7 entries
    }
    bytes = gif_bytes.data();
    size = gif_bytes.size();
  }
  uint8_t* pixels = stbi_load_from_memory(bytes, static_cast<int>(size), &w, &h, &channels, 3);
  if (!pixels) throw DecodeError(str("corrupt or unsupported ", format_name(format), ": ", stbi_failure_reason()));
  struct Free {
    void operator()(uint8_t* p) const { stbi_image_free(p); }
  };
  std::unique_ptr<uint8_t, Free> owner(pixels);
  check_size(w, h, size);
  whole_image(out, w, h, format, choose);
  std::memcpy(out.image.data(), pixels, static_cast<size_t>(w) * h * 3);
  if (pnm_maxval != 255) scale_pnm_samples(out.image, pnm_maxval);
  if (format == ImageFormat::Bmp) bmp16_samples_as_pil(bytes, size, out.image);
  if (format == ImageFormat::Gif && gif.fill) {
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if (x < gif.x || x >= gif.x + gif.width || y < gif.y || y >= gif.y + gif.height)
          std::memcpy(out.image.pixel(x, y), gif.fill_rgb, 3);
  }
}

}  // namespace

void decode(const uint8_t* bytes, size_t size, Decoded& out,
            const std::function<DecodeRegion(int, int)>& choose) {
  if (size == 0) throw DecodeError("empty file (0 bytes)");
  const ImageFormat format = sniff_format(bytes, size);
  switch (format) {
    case ImageFormat::Jpeg:
      decode_jpeg(bytes, size, out, choose);
      return;
    case ImageFormat::Png:
      decode_png(bytes, size, out, choose);
      return;
    case ImageFormat::Pnm:
      if (bytes[1] <= '3') return decode_plain_pnm(bytes, size, out, choose);
      decode_stb(bytes, size, format, out, choose);
      return;
    case ImageFormat::Bmp:
    case ImageFormat::Gif:
      decode_stb(bytes, size, format, out, choose);
      return;
    case ImageFormat::Tiff:
    case ImageFormat::Webp:
      throw DecodeError(str("unsupported image format ", format_name(format)));
    case ImageFormat::Unknown:
      break;
  }
  throw DecodeError("not an image (unrecognised content)");
}

Image decode_image(const uint8_t* bytes, size_t size) {
  Decoded d;
  decode(bytes, size, d);
  return std::move(d.image);
}

Image decode_file(const std::string& path) {
  std::vector<uint8_t> bytes;
  read_file(path, bytes);
  try {
    return decode_image(bytes.data(), bytes.size());
  } catch (const DecodeError& e) {
    throw DecodeError(str(path, ": ", e.what()));
  }
}

}  // namespace mpncov::data
