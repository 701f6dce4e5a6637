// Antialiased bilinear resampling with PIL's exact arithmetic (Image.resize(..., BILINEAR), which is what
// torchvision's Resize and RandomResizedCrop run on PIL images): a triangle filter whose support grows
// with the downscale factor, weights normalised per output pixel and rounded to 22-bit fixed point, a
// horizontal pass rounded to 8 bits, then a vertical pass. Only the output pixels asked for are computed,
// so "resize, then crop" costs the crop.
#pragma once
#include <cstdint>
#include <vector>

#include "data/image.h"

namespace mpncov::data {

// The filter of one axis for output indices [out_begin, out_end): output i reads source pixels
// first[i - out_begin] + t, t < taps, with weights weights[(i - out_begin) * max_taps + t].
struct AxisWeights {
  int max_taps = 0;
  bool identity = false;  // each output copies one source pixel (weight 1): the pass is skipped
  std::vector<int> first, taps;
  std::vector<int32_t> weights;
  int count() const { return static_cast<int>(first.size()); }
  int source_begin() const;  // lowest source index read
  int source_end() const;    // one past the highest
};

// PIL's coefficients for resizing a source axis of in_size pixels, of which the box [in0, in1) is
// stretched to out_size pixels; source indices are then shifted by offset (where the axis starts in the
// buffer that will be read). PIL skips an axis whose box is the whole source at the same size.
void bilinear_axis(int in_size, double in0, double in1, int out_size, int out_begin, int out_end, int offset,
                   AxisWeights& axis);

// Scratch memory for resample(), reused between calls.
struct ResampleScratch {
  std::vector<uint8_t> rows;
  std::vector<int32_t> sums;
};

// out(x, y) = the resampled pixel (x_axis output x, y_axis output y) of src, RGB interleaved.
// out_stride is in bytes. src must stay readable for a byte past its last pixel (Image is).
void resample(const uint8_t* src, int64_t src_stride, const AxisWeights& x_axis, const AxisWeights& y_axis,
              uint8_t* out, int64_t out_stride, ResampleScratch& scratch);

// Tests: use the portable code even where the CPU has AVX2 (both give the same bytes).
void resample_force_portable(bool on);

// The whole image resized like PIL's img.resize((width, height), Image.BILINEAR).
Image resize_bilinear(const Image& src, int width, int height);

}  // namespace mpncov::data
