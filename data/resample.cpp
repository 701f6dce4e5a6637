#include "data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace mpncov::data {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's: 8 bits of result, 2 of headroom
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

inline double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

int AxisWeights::source_begin() const {
  int lo = first.empty() ? 0 : first[0];
  for (int v : first) lo = std::min(lo, v);
  return lo;
}

int AxisWeights::source_end() const {
  int hi = 0;
  for (size_t i = 0; i < first.size(); ++i) hi = std::max(hi, first[i] + taps[i]);
  return hi;
}

void bilinear_axis(int in_size, double in0, double in1, int out_size, int out_begin, int out_end, int offset,
                   AxisWeights& axis) {
  MPNCOV_CHECK(in_size > 0 && out_size > 0 && 0 <= out_begin && out_begin <= out_end && out_end <= out_size,
               "bad resample axis: ", in_size, " -> ", out_size, " [", out_begin, ", ", out_end, ")");
  const int n = out_end - out_begin;
  axis.first.resize(n);
  axis.taps.resize(n);
  axis.identity = in0 == 0.0 && in1 == in_size && in_size == out_size;
  if (axis.identity) {
    axis.max_taps = 1;
    axis.weights.assign(n, int32_t{1} << kPrecisionBits);
    for (int i = 0; i < n; ++i) {
      axis.first[i] = out_begin + i + offset;
      axis.taps[i] = 1;
    }
    return;
  }
  // The arithmetic below follows PIL's precompute_coeffs and normalize_coeffs_8bpc step by step, so the
  // weights are bit-identical.
  const double scale = (in1 - in0) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;
  const int max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.max_taps = max_taps;
  axis.weights.assign(static_cast<size_t>(n) * max_taps, 0);
  std::vector<double> w(max_taps);
  const double inv = 1.0 / filter_scale;
  for (int i = 0; i < n; ++i) {
    const int xx = out_begin + i;
    const double center = in0 + (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    const int taps = std::max(0, xmax - xmin);
    double total = 0.0;
    for (int t = 0; t < taps; ++t) {
      w[t] = triangle((t + xmin - center + 0.5) * inv);
      total += w[t];
    }
    int32_t* k = &axis.weights[static_cast<size_t>(i) * max_taps];
    for (int t = 0; t < taps; ++t) {
      const double v = total != 0.0 ? w[t] / total : w[t];
      k[t] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    axis.first[i] = xmin + offset;
    axis.taps[i] = taps;
  }
}

void resample(const uint8_t* src, int64_t src_stride, const AxisWeights& xa, const AxisWeights& ya, uint8_t* out,
              int64_t out_stride, ResampleScratch& scratch) {
  const int out_w = xa.count(), out_h = ya.count();
  if (out_w == 0 || out_h == 0) return;
  const int row_bytes = out_w * 3;

  // Horizontal pass over the source rows the vertical pass reads, into 8-bit rows (as PIL does).
  const int y_begin = ya.source_begin(), y_end = ya.source_end();
  const uint8_t* rows;
  int64_t rows_stride;
  if (xa.identity) {
    rows = src + static_cast<int64_t>(y_begin) * src_stride + 3 * xa.first[0];
    rows_stride = src_stride;
  } else {
    scratch.rows.resize(static_cast<size_t>(y_end - y_begin) * row_bytes);
    for (int y = y_begin; y < y_end; ++y) {
      const uint8_t* in = src + static_cast<int64_t>(y) * src_stride;
      uint8_t* o = scratch.rows.data() + static_cast<size_t>(y - y_begin) * row_bytes;
      for (int x = 0; x < out_w; ++x) {
        const int32_t* k = &xa.weights[static_cast<size_t>(x) * xa.max_taps];
        const uint8_t* p = in + 3 * xa.first[x];
        int32_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
        for (int t = 0, taps = xa.taps[x]; t < taps; ++t, p += 3) {
          s0 += p[0] * k[t];
          s1 += p[1] * k[t];
          s2 += p[2] * k[t];
        }
        o[3 * x + 0] = clip8(s0);
        o[3 * x + 1] = clip8(s1);
        o[3 * x + 2] = clip8(s2);
      }
    }
    rows = scratch.rows.data();
    rows_stride = row_bytes;
  }

  // Vertical pass: contiguous rows, so the inner loop vectorises.
  if (ya.identity) {
    for (int y = 0; y < out_h; ++y)
      std::memcpy(out + y * out_stride, rows + static_cast<int64_t>(ya.first[y] - y_begin) * rows_stride, row_bytes);
    return;
  }
  scratch.sums.resize(row_bytes);
  int32_t* sums = scratch.sums.data();
  for (int y = 0; y < out_h; ++y) {
    std::fill(sums, sums + row_bytes, kHalf);
    const int32_t* k = &ya.weights[static_cast<size_t>(y) * ya.max_taps];
    for (int t = 0, taps = ya.taps[y]; t < taps; ++t) {
      const uint8_t* r = rows + static_cast<int64_t>(ya.first[y] + t - y_begin) * rows_stride;
      const int32_t kt = k[t];
      for (int j = 0; j < row_bytes; ++j) sums[j] += r[j] * kt;
    }
    uint8_t* o = out + y * out_stride;
    for (int j = 0; j < row_bytes; ++j) o[j] = clip8(sums[j]);
  }
}

Image resize_bilinear(const Image& src, int width, int height) {
  MPNCOV_CHECK(!src.empty() && width > 0 && height > 0, "cannot resize a ", src.width(), "x", src.height(),
               " image to ", width, "x", height);
  AxisWeights xa, ya;
  bilinear_axis(src.width(), 0, src.width(), width, 0, width, 0, xa);
  bilinear_axis(src.height(), 0, src.height(), height, 0, height, 0, ya);
  Image out(width, height);
  ResampleScratch scratch;
  resample(src.data(), src.stride(), xa, ya, out.data(), out.stride(), scratch);
  return out;
}

}  // namespace mpncov::data
