// Decoding image files to 8-bit RGB. The format is sniffed from the bytes, never the file name (ImageNet
// holds PNG files named .JPEG). JPEG goes through libjpeg-turbo, which also converts CMYK/YCCK (as PIL
// does: Adobe-inverted CMYK) and can scale in the DCT domain and decode only a region; PNG goes through
// libpng, BMP, GIF and PNM through stb_image. Grayscale, palette and alpha images become RGB (alpha
// dropped, like PIL's convert("RGB")). A truncated or corrupt file throws DecodeError, never crashes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/error.h"
#include "data/image.h"

namespace mpncov::data {

class DecodeError : public Error {
 public:
  explicit DecodeError(const std::string& what) : Error(what) {}
};

enum class ImageFormat { Unknown, Jpeg, Png, Bmp, Gif, Pnm, Tiff, Webp };
const char* format_name(ImageFormat format);
ImageFormat sniff_format(const uint8_t* bytes, size_t size);

// What to decode, chosen once the image's size is known. The region is in full-image pixels; the
// decoder may return a larger region (JPEG decodes whole iMCU columns and rows) but never a smaller one.
struct DecodeRegion {
  int x = 0, y = 0, width = -1, height = -1;  // width/height -1: the whole image
  int scale_denom = 1;                        // 1, 2, 4 or 8: JPEG DCT-domain downscaling, else ignored
};

// A decoded (part of an) image and where it sits in the image that was encoded.
struct Decoded {
  int full_width = 0, full_height = 0;  // the encoded image's size
  int scale_denom = 1;                  // the image was decoded at 1/scale_denom of its size
  int scaled_width = 0, scaled_height = 0;  // the whole image at that scale: ceil(full / scale_denom)
  int x0 = 0, y0 = 0;                   // where image's pixel (0, 0) sits in the scaled whole image
  ImageFormat format = ImageFormat::Unknown;
  Image image;                          // RGB, reused between calls
};

// Decodes bytes into out. choose (may be empty: the whole image at full size) is called once with the
// full size and picks the region and scale. Throws DecodeError naming what is wrong.
void decode(const uint8_t* bytes, size_t size, Decoded& out,
            const std::function<DecodeRegion(int width, int height)>& choose = {});

// The whole image at full size.
Image decode_image(const uint8_t* bytes, size_t size);
// Reads and decodes a file; errors name the path.
Image decode_file(const std::string& path);

}  // namespace mpncov::data
