#include "data/transform_list.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "core/config.h"
#include "core/text.h"

namespace mpncov::data {

using Kind = Pipeline::Step::Kind;

namespace {

// The step names and, for the one-value shorthand (`resize: 256`), their first argument.
const std::map<std::string, std::string>& first_arguments() {
  static const std::map<std::string, std::string> names = {
      {"resize", "size"},          {"center_crop", "size"}, {"random_resized_crop", "size"},
      {"random_crop", "size"},     {"random_horizontal_flip", "p"}, {"color_jitter", "brightness"},
      {"normalize", "mean"},       {"to_tensor", ""},        {"five_crop", "size"},
      {"ten_crop", "size"},        {"center_crop_with_flip", "size"}};
  return names;
}

std::string where(const std::string& file, const YAML::Node& node) {
  return node.Mark().line >= 0 ? str(file, ":", node.Mark().line + 1) : file;
}

// size: an integer (square, or a shorter side for resize) or [height, width]; [s] is the integer s.
struct SizeArg {
  int height = 0, width = 0;
  bool pair = false;
};
SizeArg read_size(Config& c, const std::string& key = "size") {
  const YAML::Node v = c.value(key);
  c.ignore(key);
  if (!c.has(key)) c.fail(key, "is required");
  try {
    if (v.IsScalar()) return SizeArg{v.as<int>(), v.as<int>(), false};
    if (v.IsSequence() && v.size() == 1) return SizeArg{v[0].as<int>(), v[0].as<int>(), false};
    if (v.IsSequence() && v.size() == 2) return SizeArg{v[0].as<int>(), v[1].as<int>(), true};
  } catch (const YAML::Exception&) {
  }
  c.fail(key, str("expected an integer or [height, width], got '", YAML::Dump(v), "'"));
}

// A list of n numbers (or one number, for "n of the same" when broadcast is true).
std::vector<double> read_numbers(Config& c, const std::string& key, size_t n, bool broadcast) {
  const YAML::Node v = c.value(key);
  c.ignore(key);
  if (!c.has(key)) c.fail(key, "is required");
  try {
    if (broadcast && v.IsScalar()) return std::vector<double>(n, v.as<double>());
    if (v.IsSequence() && (v.size() == n || (broadcast && v.size() == 1))) {
      std::vector<double> out;
      for (size_t i = 0; i < n; ++i) out.push_back(v[v.size() == 1 ? 0 : i].as<double>());
      return out;
    }
  } catch (const YAML::Exception&) {
  }
  c.fail(key, str("expected ", broadcast ? "a number or " : "", "a list of ", n, " numbers, got '", YAML::Dump(v), "'"));
}

std::array<double, 2> read_range(Config& c, const std::string& key, std::array<double, 2> fallback) {
  if (!c.has(key)) {
    c.ignore(key);
    return fallback;
  }
  const std::vector<double> v = read_numbers(c, key, 2, false);
  return {v[0], v[1]};
}

// Arguments torchvision has that only one value of is supported here.
template <typename T>
void only(Config& c, const std::string& key, const T& supported, const std::string& why) {
  if (c.has(key) && c.get<T>(key, supported) != supported) c.fail(key, str("can only be ", supported, ": ", why));
  c.ignore(key);
}

void interpolation(Config& c) {
  only<std::string>(c, "interpolation", "bilinear", "the loader resamples as PIL's bilinear filter");
}

// ColorJitter's argument: a number v gives [max(0, center - v), center + v] (for hue: [-v, v]), a pair is
// the range itself; a range that is just the centre is absent (torchvision's None).
std::optional<std::array<double, 2>> jitter_range(Config& c, const std::string& key, double center) {
  c.ignore(key);
  if (!c.has(key)) return std::nullopt;
  const YAML::Node v = c.value(key);
  std::array<double, 2> r{};
  if (v.IsScalar()) {
    const double x = c.get<double>(key, 0.0);
    c.check(x >= 0, key, "must not be negative (a number v means the range [center - v, center + v])");
    r = {center - x, center + x};
    if (center != 0) r[0] = std::max(r[0], 0.0);
  } else {
    r = read_range(c, key, {});
  }
  if (r[0] == center && r[1] == center) return std::nullopt;
  return r;
}

void read_step(Pipeline& p, const std::string& name, Config& c) {
  if (name == "resize") {
    const SizeArg size = read_size(c);
    const int max_size = c.get<int>("max_size", 0);
    interpolation(c);
    if (size.pair) {
      c.check(max_size == 0, "max_size", "applies only when size is a single integer (torchvision's rule)");
      p.resize(size.height, size.width);
    } else {
      p.resize_shorter(size.height, max_size);
    }
  } else if (name == "center_crop") {
    const SizeArg size = read_size(c);
    p.center_crop(size.height, size.width);
  } else if (name == "random_resized_crop") {
    const SizeArg size = read_size(c);
    const auto scale = read_range(c, "scale", {0.08, 1.0});
    const auto ratio = read_range(c, "ratio", {3.0 / 4.0, 4.0 / 3.0});
    interpolation(c);
    p.random_resized_crop(size.height, size.width, scale[0], scale[1], ratio[0], ratio[1]);
  } else if (name == "random_crop") {
    const SizeArg size = read_size(c);
    std::array<int, 4> padding{};
    c.ignore("padding");
    if (c.has("padding")) {
      const YAML::Node v = c.value("padding");
      const size_t n = v.IsScalar() || (v.IsSequence() && v.size() == 1) ? 1 : v.IsSequence() && v.size() == 2 ? 2 : 4;
      std::vector<int> x;
      for (double d : read_numbers(c, "padding", n, n == 1)) {  // torchvision refuses fractions
        c.check(d == std::floor(d) && std::abs(d) < 1e9, "padding", "must be whole numbers of pixels");
        x.push_back(static_cast<int>(d));
      }
      if (n == 1) padding = {x[0], x[0], x[0], x[0]};
      else if (n == 2) padding = {x[0], x[1], x[0], x[1]};  // [left/right, top/bottom]
      else padding = {x[0], x[1], x[2], x[3]};               // [left, top, right, bottom]
    }
    const bool pad_if_needed = c.get<bool>("pad_if_needed", false);
    only<int>(c, "fill", 0, "padding is black");
    only<std::string>(c, "padding_mode", "constant", "padding is black");
    p.random_crop(size.height, size.width, padding, pad_if_needed);
  } else if (name == "random_horizontal_flip") {
    p.random_hflip(c.get<double>("p", 0.5));
  } else if (name == "color_jitter") {
    ColorJitterRanges r;
    r.range[0] = jitter_range(c, "brightness", 1.0);
    r.range[1] = jitter_range(c, "contrast", 1.0);
    r.range[2] = jitter_range(c, "saturation", 1.0);
    r.range[3] = jitter_range(c, "hue", 0.0);
    p.color_jitter(r);
  } else if (name == "normalize") {
    const auto mean = read_numbers(c, "mean", 3, true), sd = read_numbers(c, "std", 3, true);
    only<bool>(c, "inplace", false, "the output is a fresh tensor");
    p.normalize(Normalize({float(mean[0]), float(mean[1]), float(mean[2])}, {float(sd[0]), float(sd[1]), float(sd[2])}));
  } else if (name == "to_tensor") {
    // Implied: every pipeline ends in ToTensor (then normalize, when given).
  } else if (name == "five_crop") {
    const SizeArg size = read_size(c);
    p.five_crop(size.height, size.width);
  } else if (name == "ten_crop") {
    const SizeArg size = read_size(c);
    only<bool>(c, "vertical_flip", false, "the second five crops come from the horizontal mirror");
    p.ten_crop(size.height, size.width);
  } else if (name == "center_crop_with_flip") {
    const SizeArg size = read_size(c);
    c.check(size.height == size.width, "size", "must be square");
    p.center_crop_with_flip(size.height);
  }
}

}  // namespace

std::vector<std::string> transform_step_names() {
  std::vector<std::string> names;
  for (const auto& kv : first_arguments()) names.push_back(kv.first);
  return names;
}

Pipeline read_transform_list(const YAML::Node& list, const std::string& file, const std::string& owner) {
  if (!list.IsSequence())
    throw Error(str(where(file, list), ": ", owner, ": expected a list of steps (e.g. [resize: 256, center_crop: 224])"));
  Pipeline p;
  p.normalize(Normalize({0, 0, 0}, {1, 1, 1}));  // ToTensor alone unless a normalize step says otherwise
  bool normalized = false, tensor = false;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    std::string name;
    YAML::Node args;
    if (item.IsScalar()) {
      name = item.Scalar();
    } else if (item.IsMap() && item.size() == 1) {
      name = item.begin()->first.as<std::string>();
      args = item.begin()->second;
    } else {
      throw Error(str(where(file, item), ": ", owner, "[", i, "]: expected a step name or {step: arguments}, got '",
                      YAML::Dump(item), "'"));
    }
    const std::string step_owner = str(owner, "[", i, "] (", name, ")");
    const auto known = first_arguments().find(name);
    if (known == first_arguments().end()) {
      throw Error(str(where(file, item), ": ", owner, "[", i, "]: unknown step '", name, "'",
                      did_you_mean(name, transform_step_names()), " (steps: ", [] {
                        std::string all;
                        for (const std::string& n : transform_step_names()) all += (all.empty() ? "" : ", ") + n;
                        return all;
                      }(), ")"));
    }
    try {
      if (normalized) throw Error(str("normalize must be the last step"));
      if (tensor && name != "normalize") throw Error(str("only normalize may follow to_tensor"));
      // A value that is not a mapping is the step's first argument.
      // (YAML::Node assignment writes through to the node, so the mapping is chosen, not reassigned.)
      ConfigArgs shorthand;
      const bool single = args && !args.IsNull() && !args.IsMap();
      if (single) {
        if (known->second.empty()) throw Error(str(name, " takes no arguments"));
        shorthand[known->second] = args;
      }
      Config c(single ? YAML::Node() : args, file, step_owner, {}, shorthand);
      read_step(p, name, c);
      c.finish();
    } catch (const Error& e) {
      const std::string message = e.what();
      const bool located = message.rfind(file + ":", 0) == 0 && message.size() > file.size() + 1 &&
                           std::isdigit(static_cast<unsigned char>(message[file.size() + 1]));
      if (located) throw;  // Config's errors already give the line
      if (message.rfind(file + ": ", 0) == 0) throw Error(where(file, item) + message.substr(file.size()));
      throw Error(str(where(file, item), ": ", step_owner, ": ", message));
    }
    normalized |= name == "normalize";
    tensor |= name == "to_tensor";
  }
  return p;
}

namespace {

// The shortest decimal that reads back as the same double (or float, for Normalize's values).
template <typename T>
YAML::Node number(T v) {
  char buf[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(v));
    if (static_cast<T>(std::strtod(buf, nullptr)) == v) break;
  }
  return YAML::Node(std::string(buf));
}

YAML::Node flow_list(std::initializer_list<YAML::Node> items) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (const YAML::Node& i : items) n.push_back(i);
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

YAML::Node size_node(int height, int width) { return flow_list({YAML::Node(height), YAML::Node(width)}); }

}  // namespace

YAML::Node transform_list_yaml(const Pipeline& pipeline) {
  YAML::Node list(YAML::NodeType::Sequence);
  auto step = [&](const std::string& name, YAML::Node args) {
    YAML::Node item;
    args.SetStyle(YAML::EmitterStyle::Flow);
    item[name] = args;
    list.push_back(item);
  };
  for (const Pipeline::Step& s : pipeline.steps()) {
    YAML::Node a(YAML::NodeType::Map);
    switch (s.kind) {
      case Kind::Resize:
        if (s.height > 0) {
          a["size"] = size_node(s.height, s.width);
        } else {
          a["size"] = s.width;
          if (s.max_size) a["max_size"] = s.max_size;
        }
        step("resize", a);
        break;
      case Kind::CenterCrop:
        a["size"] = size_node(s.height, s.width);
        step("center_crop", a);
        break;
      case Kind::RandomResizedCrop:
        a["size"] = size_node(s.height, s.width);
        a["scale"] = flow_list({number(s.scale[0]), number(s.scale[1])});
        a["ratio"] = flow_list({number(s.ratio[0]), number(s.ratio[1])});
        step("random_resized_crop", a);
        break;
      case Kind::RandomCrop:
        a["size"] = size_node(s.height, s.width);
        a["padding"] = flow_list({YAML::Node(s.padding[0]), YAML::Node(s.padding[1]), YAML::Node(s.padding[2]),
                                  YAML::Node(s.padding[3])});
        a["pad_if_needed"] = s.pad_if_needed;
        step("random_crop", a);
        break;
      case Kind::RandomHFlip:
        a["p"] = number(s.p);
        step("random_horizontal_flip", a);
        break;
      case Kind::ColorJitter:
        for (int k = 0; k < 4; ++k) {
          // An absent range is written as its centre, which reads back as absent.
          const double center = k == 3 ? 0.0 : 1.0;
          const auto r = s.jitter.range[k].value_or(std::array<double, 2>{center, center});
          a[color_op_name(ColorOp(k))] = flow_list({number(r[0]), number(r[1])});
        }
        step("color_jitter", a);
        break;
      case Kind::FiveCrop:
        a["size"] = size_node(s.height, s.width);
        step("five_crop", a);
        break;
      case Kind::TenCrop:
        a["size"] = size_node(s.height, s.width);
        step("ten_crop", a);
        break;
      case Kind::CenterCropWithFlip:
        a["size"] = s.width;
        step("center_crop_with_flip", a);
        break;
    }
  }
  const Normalize& n = pipeline.normalization();
  YAML::Node a(YAML::NodeType::Map);
  a["mean"] = flow_list({number(n.mean()[0]), number(n.mean()[1]), number(n.mean()[2])});
  a["std"] = flow_list({number(n.std()[0]), number(n.std()[1]), number(n.std()[2])});
  step("normalize", a);
  return list;
}

}  // namespace mpncov::data
