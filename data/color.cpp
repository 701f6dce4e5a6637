#include "data/color.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mpncov::data {

const char* color_op_name(ColorOp op) {
  switch (op) {
    case ColorOp::Brightness: return "brightness";
    case ColorOp::Contrast: return "contrast";
    case ColorOp::Saturation: return "saturation";
    case ColorOp::Hue: return "hue";
  }
  return "?";
}

bool ColorJitterRanges::empty() const {
  return std::none_of(range.begin(), range.end(), [](const auto& r) { return r.has_value(); });
}

void draw_color_jitter(const ColorJitterRanges& ranges, SampleRng& rng, std::vector<ColorAdjust>& out) {
  // The order: a uniform random permutation (Fisher-Yates), drawn even when some ranges are absent, as
  // torch.randperm(4) always is.
  std::array<int, 4> order{0, 1, 2, 3};
  for (int i = 3; i > 0; --i) std::swap(order[i], order[rng.randint(0, i + 1)]);
  std::array<float, 4> factor{};
  for (int k = 0; k < 4; ++k)
    if (ranges.range[k]) factor[k] = static_cast<float>(rng.uniform((*ranges.range[k])[0], (*ranges.range[k])[1]));
  for (int k : order)
    if (ranges.range[k]) out.push_back(ColorAdjust{static_cast<ColorOp>(k), factor[k]});
}

namespace {

// PIL's ImagingBlend(in1, in2, alpha) for one byte: float arithmetic, truncated; clipped when extrapolating.
// Written as separate float statements so that no compiler fuses them into an FMA (PIL's build has none).
inline uint8_t blend(int in1, int in2, float alpha) {
  if (alpha == 0.0f) return static_cast<uint8_t>(in1);
  if (alpha == 1.0f) return static_cast<uint8_t>(in2);
  const float product = alpha * static_cast<float>(in2 - in1);
  const float t = static_cast<float>(in1) + product;
  if (alpha >= 0.0f && alpha <= 1.0f) return static_cast<uint8_t>(t);
  if (t <= 0.0f) return 0;
  if (t >= 255.0f) return 255;
  return static_cast<uint8_t>(t);
}

// Blending against a constant degenerate value (black, or the mean grey): one table for all pixels.
void blend_with_constant(Image& image, int degenerate, float alpha) {
  std::array<uint8_t, 256> table;
  for (int v = 0; v < 256; ++v) table[v] = blend(degenerate, v, alpha);
  uint8_t* p = image.data();
  for (int64_t i = 0, n = image.stride() * image.height(); i < n; ++i) p[i] = table[p[i]];
}

// PIL's rgb2hsv_row (Convert.c), with its float and double steps kept.
inline void rgb_to_hsv(const uint8_t* in, uint8_t* out) {
  const uint8_t r = in[0], g = in[1], b = in[2];
  const uint8_t maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  out[2] = maxc;
  if (minc == maxc) {
    out[0] = out[1] = 0;
    return;
  }
  const float cr = static_cast<float>(maxc - minc);
  const float s = cr / static_cast<float>(maxc);
  const float rc = static_cast<float>(maxc - r) / cr;
  const float gc = static_cast<float>(maxc - g) / cr;
  const float bc = static_cast<float>(maxc - b) / cr;
  float h;
  if (r == maxc) h = bc - gc;
  else if (g == maxc) h = static_cast<float>(2.0 + static_cast<double>(rc) - static_cast<double>(bc));
  else h = static_cast<float>(4.0 + static_cast<double>(gc) - static_cast<double>(rc));
  h = static_cast<float>(std::fmod(static_cast<double>(h) / 6.0 + 1.0, 1.0));
  auto clip8 = [](int v) { return static_cast<uint8_t>(std::clamp(v, 0, 255)); };
  out[0] = clip8(static_cast<int>(static_cast<double>(h) * 255.0));
  out[1] = clip8(static_cast<int>(static_cast<double>(s) * 255.0));
}

// PIL's hsv2rgb (Convert.c).
inline void hsv_to_rgb(const uint8_t* in, uint8_t* out) {
  const uint8_t h = in[0], s = in[1], v = in[2];
  if (s == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  const double h6 = static_cast<double>(static_cast<float>(h)) * 6.0 / 255.0;
  const int i = static_cast<int>(std::floor(h6));
  const float f = static_cast<float>(h6 - static_cast<double>(static_cast<float>(i)));
  const float fs = static_cast<float>(static_cast<double>(static_cast<float>(s)) / 255.0);
  const double vd = static_cast<double>(static_cast<float>(v));
  const float fs_f = fs * f;  // float * float in PIL's expression
  auto clip8 = [](double x) { return static_cast<uint8_t>(std::clamp(static_cast<int>(std::round(x)), 0, 255)); };
  const uint8_t p = clip8(vd * (1.0 - static_cast<double>(fs)));
  const uint8_t q = clip8(vd * (1.0 - static_cast<double>(fs_f)));
  const uint8_t t = clip8(vd * (1.0 - static_cast<double>(fs) * (1.0 - static_cast<double>(f))));
  switch (i % 6) {
    case 0: out[0] = v, out[1] = t, out[2] = p; break;
    case 1: out[0] = q, out[1] = v, out[2] = p; break;
    case 2: out[0] = p, out[1] = v, out[2] = t; break;
    case 3: out[0] = p, out[1] = q, out[2] = v; break;
    case 4: out[0] = t, out[1] = p, out[2] = v; break;
    default: out[0] = v, out[1] = p, out[2] = q; break;
  }
}

}  // namespace

void adjust_color(Image& image, const ColorAdjust& a) {
  const int64_t pixels = int64_t{image.width()} * image.height();
  uint8_t* p = image.data();
  switch (a.op) {
    case ColorOp::Brightness: blend_with_constant(image, 0, a.factor); break;
    case ColorOp::Contrast: {
      // The degenerate image: a grey of int(mean luma + 0.5), the mean as ImageStat computes it.
      int64_t sum = 0;
      for (int64_t i = 0; i < pixels; ++i) sum += pil_luma(p + 3 * i);
      const double mean = pixels > 0 ? static_cast<double>(sum) / static_cast<double>(pixels) : 0.0;
      blend_with_constant(image, static_cast<int>(mean + 0.5), a.factor);
      break;
    }
    case ColorOp::Saturation:
      for (int64_t i = 0; i < pixels; ++i) {
        uint8_t* px = p + 3 * i;
        const int grey = pil_luma(px);
        for (int c = 0; c < 3; ++c) px[c] = blend(grey, px[c], a.factor);
      }
      break;
    case ColorOp::Hue: {
      MPNCOV_CHECK(a.factor >= -0.5f && a.factor <= 0.5f, "hue factor ", a.factor, " is not in [-0.5, 0.5]");
      // np.uint8(hue_factor * 255): truncation toward zero, then wrapped to a byte.
      const auto shift = static_cast<uint8_t>(static_cast<int>(static_cast<double>(a.factor) * 255.0) & 0xFF);
      for (int64_t i = 0; i < pixels; ++i) {
        uint8_t hsv[3];
        rgb_to_hsv(p + 3 * i, hsv);
        hsv[0] = static_cast<uint8_t>(hsv[0] + shift);
        hsv_to_rgb(hsv, p + 3 * i);
      }
      break;
    }
  }
}

}  // namespace mpncov::data
