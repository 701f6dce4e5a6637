// A View says how one output crop is cut from an image, so the loader computes only the pixels it keeps:
// the part `source` of the image is resized to `resized` (PIL bilinear), the `window` of that is kept
// (pixels outside the resized image are zero, like CenterCrop's padding), then mirrored when `flip`.
// Crops that pad (a box past the image, or past an earlier crop) leave zeros: source pixels outside
// `visible`, window pixels outside `visible_resized`.
// Every preset (RandomResizedCrop, Resize, CenterCrop, flips, ten and two crops) is such a view, built
// by applying torchvision's steps to it one at a time. render_view() then decodes nothing itself: it
// resamples the window out of a decoded image (possibly a DCT-scaled region) straight into normalised
// float CHW.
#pragma once
#include "data/decode.h"
#include "data/resample.h"
#include "data/transforms.h"

namespace mpncov::data {

struct View {
  Size image;      // the whole image's size
  Rect source;     // in image pixels; may reach past `visible` (a crop larger than the image so far)
  Rect visible;    // the image pixels the crops so far kept (inside the image): the rest of source is zero
  Size resized;    // the size source is resized to
  Rect window;     // in resized pixels; may extend outside it
  Rect visible_resized;  // the resized pixels the crops after the resize kept: the rest of window is zero
  bool flip = false;
  bool resize_applied = false;  // a resize step has run (a second one cannot be fused)

  Size size() const { return Size{window.width, window.height}; }
};

View whole_image_view(int width, int height);
// The steps, each acting on the image the view yields so far (as torchvision's would on a PIL image).
void view_crop(View& view, const Rect& box);
void view_resize(View& view, Size size);
void view_hflip(View& view);

// The image pixels render_view reads (a superset, clipped to the image).
Rect view_source_region(const View& view);
// The largest JPEG DCT downscale (1, 2, 4, 8) that keeps the source at least margin times larger than
// resized on both axes, so that most of the downscaling is still PIL's filter; 1 for a padded source.
int view_max_scale_denom(const View& view, double margin);

struct RenderScratch {
  AxisWeights x_axis, y_axis;
  ResampleScratch resample;
  std::vector<uint8_t> window;
  Image padded;  // a source that reaches past the image, with its zeros
};

// Writes the view of the decoded image to out as (3, window.height, window.width) floats. At full
// scale the values equal render_view_reference's bit for bit.
void render_view(const Decoded& decoded, const View& view, const Normalize& normalize, float* out,
                 RenderScratch& scratch);

// The same pixels as 8-bit RGB (W x H, zero padded, mirrored as the view says), for steps that act on the
// finished crop (ColorJitter).
void render_view_pixels(const Decoded& decoded, const View& view, Image& out, RenderScratch& scratch);

// The same view by whole-image steps: crop, resize, crop (zero padded), flip.
Image render_view_reference(const Image& image, const View& view);

}  // namespace mpncov::data
