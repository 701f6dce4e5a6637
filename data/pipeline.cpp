#include "data/pipeline.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.h"

namespace mpncov::data {

using Kind = Pipeline::Step::Kind;

namespace {
Pipeline::Step make_step(Kind kind, int width = 0, int height = 0) {
  Pipeline::Step s;
  s.kind = kind;
  s.width = width;
  s.height = height;
  return s;
}
bool resizes(Kind k) { return k == Kind::Resize || k == Kind::RandomResizedCrop; }
bool multi_crop(Kind k) { return k == Kind::FiveCrop || k == Kind::TenCrop || k == Kind::CenterCropWithFlip; }
bool geometric(Kind k) { return k != Kind::RandomHFlip && k != Kind::ColorJitter; }
const char* step_name(Kind k) {
  switch (k) {
    case Kind::Resize: return "Resize";
    case Kind::CenterCrop: return "CenterCrop";
    case Kind::RandomResizedCrop: return "RandomResizedCrop";
    case Kind::RandomCrop: return "RandomCrop";
    case Kind::RandomHFlip: return "RandomHorizontalFlip";
    case Kind::ColorJitter: return "ColorJitter";
    case Kind::FiveCrop: return "FiveCrop";
    case Kind::TenCrop: return "TenCrop";
    case Kind::CenterCropWithFlip: return "CenterCropWithFlip";
  }
  return "?";
}
}  // namespace

// Each crop is one View, which holds one resize with crops before it and after it, and mirrors after the
// resize; colour adjustments act on the finished crop. Orders outside that are refused here rather than
// at the first image.
Pipeline& Pipeline::add(Step step) {
  bool resized = false, flipped = false, multi = false, jittered = false, padded = false;
  for (const Step& s : steps_) {
    resized |= resizes(s.kind);
    flipped |= s.kind == Kind::RandomHFlip;
    multi |= multi_crop(s.kind);
    jittered |= s.kind == Kind::ColorJitter;
    padded |= s.kind == Kind::RandomCrop && (s.pad_if_needed || s.padding != std::array<int, 4>{});
  }
  const char* name = step_name(step.kind);
  MPNCOV_CHECK(!multi, "a multi-crop step (FiveCrop, TenCrop, CenterCropWithFlip) must be the last step, ",
               name, " follows one");
  if (resizes(step.kind)) {
    MPNCOV_CHECK(!resized, "a pipeline can resize once (Resize or RandomResizedCrop)");
    MPNCOV_CHECK(!flipped, name, " cannot follow RandomHorizontalFlip: flip after the resize");
    MPNCOV_CHECK(!padded, name, " cannot follow a padded RandomCrop: pad after the resize");
  }
  // ColorJitter's contrast uses the mean of the image it is given, so it must see the final crop.
  MPNCOV_CHECK(!(jittered && geometric(step.kind)), name,
               " cannot follow ColorJitter: put ColorJitter after every resize and crop");
  steps_.push_back(step);
  return *this;
}

Pipeline& Pipeline::resize_shorter(int shorter_side, int max_size) {
  MPNCOV_CHECK(shorter_side > 0, "Resize size must be positive");
  MPNCOV_CHECK(max_size == 0 || max_size > shorter_side, "Resize max_size (", max_size,
               ") must be greater than the size (", shorter_side, ")");
  Step s = make_step(Kind::Resize, shorter_side, 0);
  s.max_size = max_size;
  return add(s);
}
Pipeline& Pipeline::resize(int height, int width) {
  MPNCOV_CHECK(height > 0 && width > 0, "Resize size must be positive");
  return add(make_step(Kind::Resize, width, height));
}
Pipeline& Pipeline::center_crop(int height, int width) {
  MPNCOV_CHECK(height > 0 && width > 0, "CenterCrop size must be positive");
  return add(make_step(Kind::CenterCrop, width, height));
}
Pipeline& Pipeline::random_resized_crop(int height, int width, double scale_min, double scale_max, double ratio_min,
                                        double ratio_max) {
  MPNCOV_CHECK(height > 0 && width > 0, "RandomResizedCrop size must be positive");
  MPNCOV_CHECK(0 < scale_min && scale_min <= scale_max && 0 < ratio_min && ratio_min <= ratio_max,
               "RandomResizedCrop needs 0 < scale_min <= scale_max and 0 < ratio_min <= ratio_max");
  // An infinite bound makes every draw miss the image, so every crop would be the central fallback
  // (torchvision refuses it: a bound out of float's range).
  MPNCOV_CHECK(std::isfinite(scale_max) && std::isfinite(ratio_max) && std::isfinite(std::log(ratio_min)),
               "RandomResizedCrop scale and ratio must be finite");
  Step s = make_step(Kind::RandomResizedCrop, width, height);
  s.scale = {scale_min, scale_max};
  s.ratio = {ratio_min, ratio_max};
  return add(s);
}
Pipeline& Pipeline::random_crop(int height, int width, std::array<int, 4> padding, bool pad_if_needed) {
  MPNCOV_CHECK(height > 0 && width > 0, "RandomCrop size must be positive");
  MPNCOV_CHECK(std::all_of(padding.begin(), padding.end(), [](int v) { return v >= 0; }),
               "RandomCrop padding must not be negative");
  Step s = make_step(Kind::RandomCrop, width, height);
  s.padding = padding;
  s.pad_if_needed = pad_if_needed;
  return add(s);
}
Pipeline& Pipeline::random_hflip(double p) {
  MPNCOV_CHECK(p >= 0 && p <= 1, "RandomHorizontalFlip p must be in [0, 1]");
  Step s = make_step(Kind::RandomHFlip);
  s.p = p;
  return add(s);
}
Pipeline& Pipeline::color_jitter(const ColorJitterRanges& ranges) {
  for (int k = 0; k < 4; ++k) {
    if (!ranges.range[k]) continue;
    const auto [lo, hi] = *ranges.range[k];
    const double bound_lo = k == 3 ? -0.5 : 0.0, bound_hi = k == 3 ? 0.5 : 1e300;
    MPNCOV_CHECK(bound_lo <= lo && lo <= hi && hi <= bound_hi, "ColorJitter ", color_op_name(ColorOp(k)),
                 " range [", lo, ", ", hi, "] must be ordered and within ", k == 3 ? "[-0.5, 0.5]" : "[0, inf)");
  }
  Step s = make_step(Kind::ColorJitter);
  s.jitter = ranges;
  return add(s);
}
Pipeline& Pipeline::five_crop(int height, int width) {
  MPNCOV_CHECK(height > 0 && width > 0, "FiveCrop size must be positive");
  return add(make_step(Kind::FiveCrop, width, height));
}
Pipeline& Pipeline::ten_crop(int height, int width) {
  MPNCOV_CHECK(height > 0 && width > 0, "TenCrop size must be positive");
  return add(make_step(Kind::TenCrop, width, height));
}
Pipeline& Pipeline::center_crop_with_flip(int size) {
  MPNCOV_CHECK(size > 0, "CenterCropWithFlip size must be positive");
  return add(make_step(Kind::CenterCropWithFlip, size, size));
}
Pipeline& Pipeline::normalize(const Normalize& n) {
  normalize_ = n;
  return *this;
}

int Pipeline::crops() const {
  int n = 1;
  for (const Step& s : steps_) {
    if (s.kind == Kind::FiveCrop) n *= 5;
    if (s.kind == Kind::TenCrop) n *= 10;
    if (s.kind == Kind::CenterCropWithFlip) n *= 2;
  }
  return n;
}

Size Pipeline::output_size() const {
  std::optional<Size> size;  // empty while it depends on the image
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::Resize:
        if (s.height > 0) size = Size{s.width, s.height};
        else size.reset();
        break;
      case Kind::RandomHFlip:
      case Kind::ColorJitter: break;
      default: size = Size{s.width, s.height};
    }
  }
  MPNCOV_CHECK(size.has_value(), "pipeline ", describe(),
               " does not give a fixed output size (end with a crop or an exact resize)");
  return *size;
}

int64_t Pipeline::sample_numel() const {
  const Size s = output_size();
  return int64_t{crops()} * 3 * s.width * s.height;
}

std::string Pipeline::describe() const {
  auto size = [](const Step& s) {
    return s.width == s.height ? str(s.width) : str("(", s.height, ", ", s.width, ")");
  };
  std::string out;
  for (const Step& s : steps_) {
    out += step_name(s.kind);
    switch (s.kind) {
      case Kind::Resize:
        if (s.height > 0) out += str("((", s.height, ", ", s.width, ")) ");
        else out += s.max_size ? str("(", s.width, ", max_size=", s.max_size, ") ") : str("(", s.width, ") ");
        break;
      case Kind::RandomResizedCrop:
        out += str("(", size(s), ", scale=(", s.scale[0], ", ", s.scale[1], "), ratio=(", s.ratio[0], ", ",
                   s.ratio[1], ")) ");
        break;
      case Kind::RandomCrop:
        out += str("(", size(s), ", padding=(", s.padding[0], ", ", s.padding[1], ", ", s.padding[2], ", ",
                   s.padding[3], ")", s.pad_if_needed ? ", pad_if_needed=True" : "", ") ");
        break;
      case Kind::RandomHFlip: out += str("(p=", s.p, ") "); break;
      case Kind::ColorJitter: {
        std::string args;
        for (int k = 0; k < 4; ++k)
          if (s.jitter.range[k])
            args += str(args.empty() ? "" : ", ", color_op_name(ColorOp(k)), "=(", (*s.jitter.range[k])[0], ", ",
                        (*s.jitter.range[k])[1], ")");
        out += "(" + args + ") ";
        break;
      }
      default: out += "(" + size(s) + ") ";
    }
  }
  const auto& m = normalize_.mean();
  const auto& d = normalize_.std();
  return out + str("ToTensor Normalize(mean=(", m[0], ", ", m[1], ", ", m[2], "), std=(", d[0], ", ", d[1], ", ",
                   d[2], "))");
}

namespace {

// RandomCrop on the image a view yields: pad (torchvision's padding, then pad_if_needed's, which pads both
// sides by the shortfall), draw the corner as get_params does (row first, none when the sizes match), crop.
void plan_random_crop(View& v, const Pipeline::Step& s, SampleRng& rng) {
  const Size cur = v.size();
  int left = s.padding[0], top = s.padding[1];
  int padded_w = cur.width + s.padding[0] + s.padding[2], padded_h = cur.height + s.padding[1] + s.padding[3];
  if (s.pad_if_needed && padded_w < s.width) {
    const int short_by = s.width - padded_w;
    left += short_by;
    padded_w += 2 * short_by;
  }
  if (s.pad_if_needed && padded_h < s.height) {
    const int short_by = s.height - padded_h;
    top += short_by;
    padded_h += 2 * short_by;
  }
  MPNCOV_CHECK(padded_w >= s.width && padded_h >= s.height, "RandomCrop of ", s.height, "x", s.width,
               " (height x width) is larger than the ", padded_h, "x", padded_w, " image");
  int i = 0, j = 0;
  if (padded_w != s.width || padded_h != s.height) {
    i = static_cast<int>(rng.randint(0, padded_h - s.height + 1));
    j = static_cast<int>(rng.randint(0, padded_w - s.width + 1));
  }
  view_crop(v, Rect{j - left, i - top, s.width, s.height});
}

// Resize(size) with an int and max_size: torchvision's _compute_resized_output_size.
Size shorter_side_size(Size cur, const Pipeline::Step& s) {
  Size out = resize_shorter(cur.width, cur.height, s.width);
  if (s.max_size > 0) {
    const bool wide = cur.width > cur.height;
    int new_short = wide ? out.height : out.width, new_long = wide ? out.width : out.height;
    if (new_long > s.max_size) {
      new_short = static_cast<int>(static_cast<double>(int64_t{s.max_size} * new_short) / new_long);
      new_long = s.max_size;
    }
    out = wide ? Size{new_long, new_short} : Size{new_short, new_long};
  }
  return out;
}

}  // namespace

void Pipeline::plan(int width, int height, SampleRng& rng, std::vector<View>& views,
                    std::vector<ColorAdjust>* color) const {
  views.assign(1, whole_image_view(width, height));
  if (color) color->clear();
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::Resize:
        for (View& v : views) view_resize(v, s.height > 0 ? Size{s.width, s.height} : shorter_side_size(v.size(), s));
        break;
      case Kind::CenterCrop:
        for (View& v : views) view_crop(v, center_crop_box(v.size().width, v.size().height, s.width, s.height));
        break;
      case Kind::RandomResizedCrop:
        for (View& v : views) {
          view_crop(v, random_resized_crop_box(v.size().width, v.size().height, rng, s.scale[0], s.scale[1],
                                               s.ratio[0], s.ratio[1]));
          view_resize(v, Size{s.width, s.height});
        }
        break;
      case Kind::RandomCrop:
        for (View& v : views) plan_random_crop(v, s, rng);
        break;
      case Kind::RandomHFlip:
        for (View& v : views)
          if (rng.uniform() < s.p) view_hflip(v);
        break;
      case Kind::ColorJitter: {
        // Drawn even when the caller does not ask for them, so that later steps draw the same numbers.
        std::vector<ColorAdjust> unused;
        draw_color_jitter(s.jitter, rng, color ? *color : unused);
        break;
      }
      case Kind::FiveCrop:
      case Kind::TenCrop:
      case Kind::CenterCropWithFlip: {
        std::vector<View> out;
        for (const View& v : views) {
          View flipped = v;
          view_hflip(flipped);
          std::vector<const View*> bases{&v};
          if (s.kind != Kind::FiveCrop) bases.push_back(&flipped);  // img, then hflip(img)
          for (const View* base : bases) {
            const Size cur = base->size();
            if (s.kind == Kind::CenterCropWithFlip) {
              out.push_back(*base);
              view_crop(out.back(), center_crop_box(cur.width, cur.height, s.width, s.height));
              continue;
            }
            for (const Rect& box : five_crop_boxes(cur.width, cur.height, s.width, s.height)) {
              out.push_back(*base);
              view_crop(out.back(), box);
            }
          }
        }
        views = std::move(out);
        break;
      }
    }
  }
}

void Pipeline::run(const uint8_t* bytes, size_t size, SampleRng& rng, const DecodeOptions& options, float* out,
                   PipelineScratch& scratch) const {
  const Size out_size = output_size();
  auto choose = [&](int width, int height) {
    plan(width, height, rng, scratch.views, &scratch.color);
    DecodeRegion region;
    if (options.region) {
      int x0 = width, y0 = height, x1 = 0, y1 = 0;
      for (const View& v : scratch.views) {
        const Rect r = view_source_region(v);
        x0 = std::min(x0, r.x);
        y0 = std::min(y0, r.y);
        x1 = std::max(x1, r.x + r.width);
        y1 = std::max(y1, r.y + r.height);
      }
      region = DecodeRegion{x0, y0, x1 - x0, y1 - y0};
    }
    if (options.dct_scaling) {
      int denom = 8;
      for (const View& v : scratch.views) denom = std::min(denom, view_max_scale_denom(v, options.dct_margin));
      region.scale_denom = denom;
    }
    return region;
  };
  decode(bytes, size, scratch.decoded, choose);
  const int64_t crop_numel = int64_t{3} * out_size.width * out_size.height;
  for (size_t k = 0; k < scratch.views.size(); ++k) {
    const View& v = scratch.views[k];
    MPNCOV_CHECK(v.window.width == out_size.width && v.window.height == out_size.height,
                 "internal error: crop ", k, " is ", v.window.width, "x", v.window.height);
    if (scratch.color.empty()) {
      render_view(scratch.decoded, v, normalize_, out + k * crop_numel, scratch.render);
    } else {
      render_view_pixels(scratch.decoded, v, scratch.crop, scratch.render);
      for (const ColorAdjust& a : scratch.color) adjust_color(scratch.crop, a);
      to_tensor(scratch.crop, normalize_, out + k * crop_numel);
    }
  }
}

}  // namespace mpncov::data
