#include "data/pipeline.h"

#include <algorithm>
#include <optional>

#include "core/error.h"

namespace mpncov::data {

using Kind = Pipeline::Step::Kind;

// Each crop is one View, which holds one resize with crops before it and after it, and mirrors after the
// resize; orders outside that are refused here rather than at the first image.
Pipeline& Pipeline::add(Step step) {
  bool resized = false, flipped = false, multi = false;
  for (const Step& s : steps_) {
    resized |= s.kind == Kind::Resize || s.kind == Kind::RandomResizedCrop;
    flipped |= s.kind == Kind::RandomHFlip;
    multi |= s.kind == Kind::TenCrop || s.kind == Kind::CenterCropWithFlip;
  }
  MPNCOV_CHECK(!multi, "a multi-crop step (TenCrop, CenterCropWithFlip) must be the last step");
  if (step.kind == Kind::Resize || step.kind == Kind::RandomResizedCrop) {
    MPNCOV_CHECK(!resized, "a pipeline can resize once (Resize or RandomResizedCrop)");
    MPNCOV_CHECK(!flipped, "RandomHorizontalFlip must come after the resize");
  }
  steps_.push_back(step);
  return *this;
}

Pipeline& Pipeline::resize(int shorter_side) {
  MPNCOV_CHECK(shorter_side > 0, "Resize size must be positive");
  return add(Step{Kind::Resize, shorter_side, 0});
}
Pipeline& Pipeline::resize(int height, int width) {
  MPNCOV_CHECK(height > 0 && width > 0, "Resize size must be positive");
  return add(Step{Kind::Resize, width, height});
}
Pipeline& Pipeline::center_crop(int size) { return center_crop(size, size); }
Pipeline& Pipeline::center_crop(int height, int width) {
  MPNCOV_CHECK(height > 0 && width > 0, "CenterCrop size must be positive");
  return add(Step{Kind::CenterCrop, width, height});
}
Pipeline& Pipeline::random_resized_crop(int size, double scale_min, double scale_max, double ratio_min,
                                        double ratio_max) {
  MPNCOV_CHECK(size > 0, "RandomResizedCrop size must be positive");
  MPNCOV_CHECK(0 < scale_min && scale_min <= scale_max && 0 < ratio_min && ratio_min <= ratio_max,
               "RandomResizedCrop needs 0 < scale_min <= scale_max and 0 < ratio_min <= ratio_max");
  return add(Step{Kind::RandomResizedCrop, size, size, scale_min, scale_max, ratio_min, ratio_max});
}
Pipeline& Pipeline::random_hflip(double p) {
  MPNCOV_CHECK(p >= 0 && p <= 1, "RandomHorizontalFlip p must be in [0, 1]");
  return add(Step{Kind::RandomHFlip, 0, 0, p});
}
Pipeline& Pipeline::ten_crop(int size) {
  MPNCOV_CHECK(size > 0, "TenCrop size must be positive");
  return add(Step{Kind::TenCrop, size, size});
}
Pipeline& Pipeline::center_crop_with_flip(int size) {
  MPNCOV_CHECK(size > 0, "CenterCropWithFlip size must be positive");
  return add(Step{Kind::CenterCropWithFlip, size, size});
}
Pipeline& Pipeline::normalize(const Normalize& n) {
  normalize_ = n;
  return *this;
}

int Pipeline::crops() const {
  int n = 1;
  for (const Step& s : steps_) {
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
      case Kind::RandomHFlip: break;
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
  std::string out;
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::Resize:
        out += s.height > 0 ? str("Resize((", s.height, ", ", s.width, ")) ") : str("Resize(", s.width, ") ");
        break;
      case Kind::CenterCrop:
        out += s.width == s.height ? str("CenterCrop(", s.width, ") ")
                                   : str("CenterCrop((", s.height, ", ", s.width, ")) ");
        break;
      case Kind::RandomResizedCrop:
        out += str("RandomResizedCrop(", s.width, ", scale=(", s.a, ", ", s.b, "), ratio=(", s.c, ", ", s.d, ")) ");
        break;
      case Kind::RandomHFlip: out += str("RandomHorizontalFlip(", s.a, ") "); break;
      case Kind::TenCrop: out += str("TenCrop(", s.width, ") "); break;
      case Kind::CenterCropWithFlip: out += str("CenterCropWithFlip(", s.width, ") "); break;
    }
  }
  const auto& m = normalize_.mean();
  const auto& d = normalize_.std();
  return out + str("ToTensor Normalize(mean=(", m[0], ", ", m[1], ", ", m[2], "), std=(", d[0], ", ", d[1], ", ",
                   d[2], "))");
}

void Pipeline::plan(int width, int height, SampleRng& rng, std::vector<View>& views) const {
  views.assign(1, whole_image_view(width, height));
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::Resize:
        for (View& v : views) {
          const Size cur = v.size();
          view_resize(v, s.height > 0 ? Size{s.width, s.height} : resize_shorter(cur.width, cur.height, s.width));
        }
        break;
      case Kind::CenterCrop:
        for (View& v : views) view_crop(v, center_crop_box(v.size().width, v.size().height, s.width, s.height));
        break;
      case Kind::RandomResizedCrop:
        for (View& v : views) {
          view_crop(v, random_resized_crop_box(v.size().width, v.size().height, rng, s.a, s.b, s.c, s.d));
          view_resize(v, Size{s.width, s.height});
        }
        break;
      case Kind::RandomHFlip:
        for (View& v : views)
          if (rng.uniform() < s.a) view_hflip(v);
        break;
      case Kind::TenCrop:
      case Kind::CenterCropWithFlip: {
        std::vector<View> out;
        for (const View& v : views) {
          View flipped = v;
          view_hflip(flipped);
          for (const View* base : {&v, static_cast<const View*>(&flipped)}) {  // img, then hflip(img)
            const Size cur = base->size();
            if (s.kind == Kind::TenCrop) {
              for (const Rect& box : five_crop_boxes(cur.width, cur.height, s.width, s.height)) {
                out.push_back(*base);
                view_crop(out.back(), box);
              }
            } else {
              out.push_back(*base);
              view_crop(out.back(), center_crop_box(cur.width, cur.height, s.width, s.height));
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
    plan(width, height, rng, scratch.views);
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
    render_view(scratch.decoded, v, normalize_, out + k * crop_numel, scratch.render);
  }
}

}  // namespace mpncov::data
