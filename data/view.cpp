#include "data/view.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mpncov::data {

View whole_image_view(int width, int height) {
  MPNCOV_CHECK(width > 0 && height > 0, "empty image ", width, "x", height);
  View v;
  v.image = Size{width, height};
  v.source = v.visible = Rect{0, 0, width, height};
  v.resized = Size{width, height};
  v.window = v.visible_resized = Rect{0, 0, width, height};
  return v;
}

namespace {
bool window_is_whole(const View& v) {
  return v.window == Rect{0, 0, v.resized.width, v.resized.height};
}
// Whether the source is all image pixels (no padding).
bool source_inside(const View& v) {
  const Rect& s = v.source;
  const Rect& in = v.visible;
  return s.x >= in.x && s.y >= in.y && s.x + s.width <= in.x + in.width && s.y + s.height <= in.y + in.height;
}
Rect intersect(const Rect& a, const Rect& b) {
  const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.width, b.x + b.width), y1 = std::min(a.y + a.height, b.y + b.height);
  return Rect{x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)};
}
}  // namespace

void view_crop(View& v, const Rect& box_in) {
  MPNCOV_CHECK(box_in.width > 0 && box_in.height > 0, "empty crop ", box_in.str());
  Rect box = box_in;
  if (v.flip) box.x = v.window.width - box.x - box.width;  // the same pixels, before the mirror
  if (!v.resize_applied && window_is_whole(v)) {
    // Crop before any resize: it narrows what gets resized (PIL crops, then resizes the crop). A box past
    // the edge of what earlier crops kept (CenterCrop's padding) makes a source with zeros around the
    // visible pixels, which a later resize filters with them as PIL does.
    v.source = Rect{v.source.x + box.x, v.source.y + box.y, box.width, box.height};
    v.visible = intersect(v.visible, v.source);
    v.resized = Size{box.width, box.height};
    v.window = v.visible_resized = Rect{0, 0, box.width, box.height};
  } else {
    // After the resize: a box past what earlier crops kept shows zeros there, not the pixels they cut off.
    v.window = Rect{v.window.x + box.x, v.window.y + box.y, box.width, box.height};
    v.visible_resized = intersect(v.visible_resized, v.window);
  }
}

void view_resize(View& v, Size size) {
  MPNCOV_CHECK(size.width > 0 && size.height > 0, "resize to an empty size");
  if (size.width == v.window.width && size.height == v.window.height) return;  // torchvision returns it as is
  MPNCOV_CHECK(!v.resize_applied && !v.flip && window_is_whole(v),
               "a resize after a resize, a flip or a padded crop cannot be fused into one view");
  v.resized = size;
  v.window = v.visible_resized = Rect{0, 0, size.width, size.height};
  v.resize_applied = true;
}

void view_hflip(View& v) { v.flip = !v.flip; }

Rect view_source_region(const View& v) {
  auto axis = [](int image_len, int vis0, int vis_len, int src0, int src_len, int resized, int kept0, int kept_len,
                 int win0, int win_len, int* lo, int* hi) {
    const int a = std::max(kept0, win0), b = std::min(kept0 + kept_len, win0 + win_len);
    *lo = *hi = 0;
    if (a < b) {  // else the window shows only padding
      const double scale = static_cast<double>(src_len) / resized;
      const double support = std::max(scale, 1.0);
      const int l = static_cast<int>(std::floor(a * scale - support)) - 1;
      const int h = static_cast<int>(std::ceil(b * scale + support)) + 1;
      *lo = std::max(vis0, src0 + std::max(0, l));
      *hi = std::min(vis0 + vis_len, src0 + std::min(src_len, h));
    }
    if (*lo >= *hi) {  // no image pixel is read: one pixel, for a region that is not empty
      *lo = std::clamp(src0, 0, image_len - 1);
      *hi = *lo + 1;
    }
  };
  int x0, x1, y0, y1;
  const Rect& kept = v.visible_resized;
  axis(v.image.width, v.visible.x, v.visible.width, v.source.x, v.source.width, v.resized.width, kept.x, kept.width,
       v.window.x, v.window.width, &x0, &x1);
  axis(v.image.height, v.visible.y, v.visible.height, v.source.y, v.source.height, v.resized.height, kept.y,
       kept.height, v.window.y, v.window.height, &y0, &y1);
  return Rect{x0, y0, x1 - x0, y1 - y0};
}

int view_max_scale_denom(const View& v, double margin) {
  if (!source_inside(v)) return 1;  // its padding is added at full scale (resample_inside)
  for (int d : {8, 4, 2}) {
    if (v.source.width >= margin * d * v.resized.width && v.source.height >= margin * d * v.resized.height)
      return d;
  }
  return 1;
}

namespace {

// One axis of the view in the decoded buffer's coordinates: the filter for resized pixels [a, b).
void view_axis(int src0, int src_len, int resized, int a, int b, int denom, int scaled_size, int buffer0,
               int buffer_len, AxisWeights& axis) {
  // The source span at the decoded scale; at scale 1 this is exactly PIL's crop-then-resize.
  const int lo = src0 / denom;  // floor: src0 >= 0
  const int hi = std::min(scaled_size, (src0 + src_len + denom - 1) / denom);
  const double in0 = static_cast<double>(src0) / denom - lo;
  const double in1 = static_cast<double>(src0 + src_len) / denom - lo;
  bilinear_axis(hi - lo, in0, in1, resized, a, b, lo - buffer0, axis);
  MPNCOV_CHECK(axis.count() == 0 || (axis.source_begin() >= 0 && axis.source_end() <= buffer_len),
               "internal error: the decoded region misses pixels the view needs");
}

}  // namespace

namespace {

// The view's part inside the resized image: columns [xa, xb), rows [ya, yb) in resized pixels, resampled
// into s.window (interleaved RGB, (xb - xa) x (yb - ya)).
struct Inside {
  int xa, xb, ya, yb, cols, rows;
};

// A source reaching past the visible pixels, copied with its zeros (PIL resizes the padded crop: the zeros
// enter the filter at its edges). Only the decoded pixels are copied: they cover all that the filter reads.
const Image& padded_source(const Decoded& d, const View& v, Image& out) {
  MPNCOV_CHECK(d.scale_denom == 1, "internal error: a padded view source at a reduced scale");
  out.resize(v.source.width, v.source.height);
  std::fill(out.data(), out.data() + out.stride() * out.height(), uint8_t{0});
  const Rect r = intersect(v.visible, Rect{d.x0, d.y0, d.image.width(), d.image.height()});
  const int x0 = std::max(v.source.x, r.x), x1 = std::min(v.source.x + v.source.width, r.x + r.width);
  const int y0 = std::max(v.source.y, r.y), y1 = std::min(v.source.y + v.source.height, r.y + r.height);
  for (int y = y0; y < y1 && x0 < x1; ++y)
    std::copy(d.image.pixel(x0 - d.x0, y - d.y0), d.image.pixel(x1 - d.x0, y - d.y0),
              out.pixel(x0 - v.source.x, y - v.source.y));
  return out;
}

Inside resample_inside(const Decoded& d, const View& v, RenderScratch& s) {
  MPNCOV_CHECK(v.image.width == d.full_width && v.image.height == d.full_height, "view of a ", v.image.width,
               "x", v.image.height, " image applied to a ", d.full_width, "x", d.full_height, " one");
  const int W = v.window.width, H = v.window.height;
  Inside in;
  const Rect& kept = v.visible_resized;  // inside the resized image
  in.xa = std::clamp(v.window.x, kept.x, kept.x + kept.width);
  in.xb = std::clamp(v.window.x + W, kept.x, kept.x + kept.width);
  in.ya = std::clamp(v.window.y, kept.y, kept.y + kept.height);
  in.yb = std::clamp(v.window.y + H, kept.y, kept.y + kept.height);
  in.cols = std::max(0, in.xb - in.xa);
  in.rows = std::max(0, in.yb - in.ya);
  if (in.cols > 0 && in.rows > 0) {
    const Image* from = &d.image;
    if (source_inside(v)) {
      view_axis(v.source.x, v.source.width, v.resized.width, in.xa, in.xb, d.scale_denom, d.scaled_width, d.x0,
                d.image.width(), s.x_axis);
      view_axis(v.source.y, v.source.height, v.resized.height, in.ya, in.yb, d.scale_denom, d.scaled_height, d.y0,
                d.image.height(), s.y_axis);
    } else {  // the padded copy is the whole source, at full scale
      from = &padded_source(d, v, s.padded);
      view_axis(0, v.source.width, v.resized.width, in.xa, in.xb, 1, v.source.width, 0, v.source.width, s.x_axis);
      view_axis(0, v.source.height, v.resized.height, in.ya, in.yb, 1, v.source.height, 0, v.source.height,
                s.y_axis);
    }
    s.window.resize(static_cast<size_t>(in.cols) * in.rows * 3);
    resample(from->data(), from->stride(), s.x_axis, s.y_axis, s.window.data(), int64_t{in.cols} * 3, s.resample);
  }
  return in;
}

}  // namespace

void render_view(const Decoded& d, const View& v, const Normalize& normalize, float* out, RenderScratch& s) {
  const int W = v.window.width, H = v.window.height;
  const Inside inside = resample_inside(d, v, s);
  const int xa = inside.xa, xb = inside.xb, ya = inside.ya, yb = inside.yb, cols = inside.cols;
  // Normalise into planes, mirroring and zero-padding as the view says.
  const int64_t plane = int64_t{W} * H;
  for (int c = 0; c < 3; ++c) {
    const float* table = normalize.table(c);
    const float zero = table[0];
    for (int y = 0; y < H; ++y) {
      float* o = out + c * plane + int64_t{y} * W;
      const int ry = v.window.y + y;
      if (ry < ya || ry >= yb || cols == 0) {
        std::fill(o, o + W, zero);
        continue;
      }
      const uint8_t* in = s.window.data() + (static_cast<size_t>(ry - ya) * cols) * 3 + c;
      // Window columns [lo, hi) lie inside the resized image; output column x shows window column x, or
      // W-1-x when mirrored.
      const int lo = cols > 0 ? xa - v.window.x : 0, hi = cols > 0 ? xb - v.window.x : 0;
      const int out_lo = v.flip ? W - hi : lo, out_hi = v.flip ? W - lo : hi;
      std::fill(o, o + out_lo, zero);
      if (v.flip) {
        for (int x = out_lo; x < out_hi; ++x) o[x] = table[in[3 * (W - 1 - x - lo)]];
      } else {
        for (int x = out_lo; x < out_hi; ++x) o[x] = table[in[3 * (x - lo)]];
      }
      std::fill(o + out_hi, o + W, zero);
    }
  }
}

void render_view_pixels(const Decoded& d, const View& v, Image& out, RenderScratch& s) {
  const int W = v.window.width, H = v.window.height;
  const Inside in = resample_inside(d, v, s);
  out.resize(W, H);
  std::fill(out.data(), out.data() + out.stride() * H, uint8_t{0});
  for (int ry = in.ya; ry < in.yb; ++ry) {
    const uint8_t* src = s.window.data() + static_cast<size_t>(ry - in.ya) * in.cols * 3;
    uint8_t* row = out.row(ry - v.window.y);
    for (int rx = in.xa; rx < in.xb; ++rx) {
      const int x = rx - v.window.x;  // window column; mirrored, it lands at W - 1 - x
      std::copy(src + 3 * (rx - in.xa), src + 3 * (rx - in.xa) + 3, row + 3 * (v.flip ? W - 1 - x : x));
    }
  }
}

Image render_view_reference(const Image& image, const View& v) {
  Image part = crop(image, v.source);
  for (int y = 0; y < part.height(); ++y)  // outside what the crops kept: padding
    for (int x = 0; x < part.width(); ++x) {
      const int ix = v.source.x + x, iy = v.source.y + y;
      if (ix < v.visible.x || ix >= v.visible.x + v.visible.width || iy < v.visible.y ||
          iy >= v.visible.y + v.visible.height)
        std::fill(part.pixel(x, y), part.pixel(x, y) + 3, uint8_t{0});
    }
  if (part.width() != v.resized.width || part.height() != v.resized.height)
    part = resize_bilinear(part, v.resized.width, v.resized.height);
  const Rect& kept = v.visible_resized;
  for (int y = 0; y < part.height(); ++y)  // cut off by the crops after the resize
    for (int x = 0; x < part.width(); ++x)
      if (x < kept.x || x >= kept.x + kept.width || y < kept.y || y >= kept.y + kept.height)
        std::fill(part.pixel(x, y), part.pixel(x, y) + 3, uint8_t{0});
  part = crop(part, v.window);
  if (v.flip) return hflip(part);
  return part;
}

}  // namespace mpncov::data
