#include "train/curves.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace mpncov {
namespace {

std::string fmt(double v, const char* format = "%.6g") {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Text for an SVG (XML) element: a title taken from a file path may hold & or <, which would leave the
// file unreadable to every SVG viewer.
std::string xml_text(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

struct Series {
  const char* label;
  const char* color;
  std::vector<double> values;
};

// One panel: axes, ticks and the series as polylines with dots, in a w x h box at (x0, y0).
std::string panel(double x0, double y0, double w, double h, const std::string& title, const std::vector<Series>& series,
                  int64_t epochs) {
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  const Axis axis = nice_axis(lo, hi);
  lo = axis.lo;
  hi = axis.hi;
  const double left = x0 + 50, right = x0 + w - 10, top = y0 + 30, bottom = y0 + h - 35;
  auto px = [&](double epoch) { return epochs <= 1 ? (left + right) / 2 : left + (right - left) * (epoch - 1) / (epochs - 1); };
  auto py = [&](double v) { return bottom - (bottom - top) * (v - lo) / (hi - lo); };
  std::string out = str("<text x=\"", (left + right) / 2, "\" y=\"", y0 + 18, "\" text-anchor=\"middle\" font-size=\"14\">",
                        title, "</text>\n");
  out += str("<rect x=\"", left, "\" y=\"", top, "\" width=\"", right - left, "\" height=\"", bottom - top,
             "\" fill=\"none\" stroke=\"#888\"/>\n");
  for (const double v : axis.ticks()) {
    out += str("<text x=\"", left - 4, "\" y=\"", py(v) + 4, "\" text-anchor=\"end\" font-size=\"10\">", fmt(v, "%g"),
               "</text>\n<line x1=\"", left, "\" x2=\"", right, "\" y1=\"", py(v), "\" y2=\"", py(v),
               "\" stroke=\"#eee\"/>\n");
  }
  const int64_t step = std::max<int64_t>(1, epochs / 8);
  for (int64_t e = 1; e <= epochs; e += step)
    out += str("<text x=\"", px(static_cast<double>(e)), "\" y=\"", bottom + 14, "\" text-anchor=\"middle\" font-size=\"10\">",
               e, "</text>\n");
  out += str("<text x=\"", (left + right) / 2, "\" y=\"", bottom + 30, "\" text-anchor=\"middle\" font-size=\"11\">epoch</text>\n");
  int legend = 0;
  for (const Series& s : series) {
    std::string points, dots;
    for (size_t i = 0; i < s.values.size(); ++i) {
      if (!std::isfinite(s.values[i])) continue;
      const double x = px(static_cast<double>(i + 1)), y = py(s.values[i]);
      points += str(x, ",", y, " ");
      dots += str("<circle cx=\"", x, "\" cy=\"", y, "\" r=\"2.5\" fill=\"", s.color, "\"/>\n");
    }
    if (points.empty()) continue;
    out += str("<polyline points=\"", points, "\" fill=\"none\" stroke=\"", s.color, "\" stroke-width=\"1.5\"/>\n", dots);
    out += str("<text x=\"", right - 6, "\" y=\"", top + 14 + 14 * legend++, "\" text-anchor=\"end\" font-size=\"11\" fill=\"",
               s.color, "\">", s.label, "</text>\n");
  }
  return out;
}

}  // namespace

Axis nice_axis(double lo, double hi, int max_ticks) {
  MPNCOV_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi && max_ticks >= 1, "nice_axis: bad range");
  const bool non_negative = lo >= 0;
  if (hi - lo <= 1e-12 * std::max(1.0, std::abs(hi))) {  // a single value: a window of 10% around it
    const double half = lo != 0 ? 0.1 * std::abs(lo) : 1.0;
    lo -= half;
    hi += half;
  }
  const double raw = (hi - lo) / max_ticks;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  Axis a;
  for (int k = 0;; ++k) {  // 1, 2, 5, 10, 20, 50, ... x magnitude until it fits
    a.step = (k % 3 == 0 ? 1.0 : k % 3 == 1 ? 2.0 : 5.0) * magnitude;
    if (k % 3 == 2) magnitude *= 10;
    a.lo = std::floor(lo / a.step) * a.step;
    a.hi = std::ceil(hi / a.step) * a.step;
    if (non_negative) a.lo = std::max(0.0, a.lo);
    if ((a.hi - a.lo) / a.step <= max_ticks + 1e-9) break;
  }
  return a;
}

std::vector<double> Axis::ticks() const {
  std::vector<double> t;
  const int64_t n = static_cast<int64_t>(std::llround((hi - lo) / step));
  for (int64_t i = 0; i <= n; ++i) {
    const double v = lo + static_cast<double>(i) * step;
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);  // no "-0" or 1e-17 at zero
  }
  return t;
}

std::string metrics_csv(const std::vector<EpochMetrics>& history) {
  std::string out = "epoch,train_loss,train_top1,train_top5,val_loss,val_top1,val_top5,lr,seconds,images_per_second\n";
  for (const EpochMetrics& m : history)
    out += str(m.epoch, ",", fmt(m.train_loss), ",", fmt(m.train_top1), ",", fmt(m.train_top5), ",", fmt(m.val_loss), ",",
               fmt(m.val_top1), ",", fmt(m.val_top5), ",", fmt(m.lr), ",", fmt(m.seconds, "%.2f"), ",",
               fmt(m.images_per_second, "%.1f"), "\n");
  return out;
}

std::string curves_svg(const std::vector<EpochMetrics>& history, const std::string& title) {
  const int64_t epochs = history.empty() ? 1 : history.back().epoch;
  // Series indexed by epoch number (1-based) so a history with gaps still lines up.
  auto series = [&](double EpochMetrics::*field, bool error) {
    std::vector<double> v(static_cast<size_t>(epochs), NAN);
    for (const EpochMetrics& m : history)
      if (m.epoch >= 1 && m.epoch <= epochs) v[static_cast<size_t>(m.epoch - 1)] = error ? 100 - m.*field : m.*field;
    return v;
  };
  const double w = 330, h = 260;
  std::string out = str("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", 3 * w, "\" height=\"", h + 24,
                        "\" font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
                        "<text x=\"8\" y=\"16\" font-size=\"12\" fill=\"#555\">", xml_text(title), "</text>\n");
  out += panel(0, 24, w, h, "objective", {{"train", "#1f77b4", series(&EpochMetrics::train_loss, false)},
                                          {"val", "#d62728", series(&EpochMetrics::val_loss, false)}}, epochs);
  out += panel(w, 24, w, h, "top-1 error (%)", {{"train", "#1f77b4", series(&EpochMetrics::train_top1, true)},
                                                {"val", "#d62728", series(&EpochMetrics::val_top1, true)}}, epochs);
  out += panel(2 * w, 24, w, h, "top-5 error (%)", {{"train", "#1f77b4", series(&EpochMetrics::train_top5, true)},
                                                    {"val", "#d62728", series(&EpochMetrics::val_top5, true)}}, epochs);
  return out + "</svg>\n";
}

}  // namespace mpncov
