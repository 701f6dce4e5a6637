#include "core/layout.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace mpncov {
namespace {

LayoutMode from_environment() {
  const char* v = std::getenv("MPNCOV_LAYOUT");
  const std::string s = v ? v : "auto";  // default: the kernels' layouts (docs/layouts.md)
  if (s == "nchw") return LayoutMode::Off;
  if (s == "auto" || s.empty()) return LayoutMode::Auto;
  if (s == "nhwc") return LayoutMode::NHWC;
  if (s == "blocked") return LayoutMode::Blocked16;
  MPNCOV_FAIL("MPNCOV_LAYOUT=", s, ": expected nchw, auto, nhwc or blocked");
}

std::atomic<int>& mode_slot() {
  static std::atomic<int> mode{static_cast<int>(from_environment())};
  return mode;
}

}  // namespace

LayoutMode layout_mode() { return static_cast<LayoutMode>(mode_slot().load()); }
void set_layout_mode(LayoutMode mode) { mode_slot().store(static_cast<int>(mode)); }

Layout convolution_layout(bool bfloat16, int64_t channels) {
  Layout l = Layout::NCHW;
  switch (layout_mode()) {
    case LayoutMode::Off: return Layout::NCHW;
    case LayoutMode::Auto: l = bfloat16 ? Layout::NHWC : Layout::Blocked16; break;
    case LayoutMode::NHWC: l = Layout::NHWC; break;
    case LayoutMode::Blocked16: l = Layout::Blocked16; break;
  }
  return layout_fits(l, channels) ? l : Layout::NHWC;
}

}  // namespace mpncov
