// Fuzzes image decoding as the loader does it (data::decode): once whole, once with a region and a
// DCT scale picked from the image's size and the input's last byte.
#include <algorithm>

#include "data/decode.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace d = mpncov::data;
  d::Decoded out;
  try {
    d::decode(data, size, out);
  } catch (const mpncov::Error&) {
  }
  const int pick = size ? data[size - 1] : 0;
  try {
    d::decode(data, size, out, [pick](int w, int h) {
      d::DecodeRegion r;
      r.scale_denom = 1 << (pick & 3);
      r.x = (pick >> 2 & 3) * w / 4;
      r.y = (pick >> 4 & 3) * h / 4;
      r.width = std::max(1, (w - r.x) / 2);
      r.height = std::max(1, (h - r.y) / 2);
      return r;
    });
  } catch (const mpncov::Error&) {
  }
  return 0;
}
