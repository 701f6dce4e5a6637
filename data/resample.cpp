#include "data/resample.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

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

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
#define MPNCOV_X86 1
#endif

inline uint32_t load4(const uint8_t* p) {
  uint32_t u;
  std::memcpy(&u, p, 4);
  return u;
}

// One source row to out_w pixels. Portable version.
void horizontal_row_generic(const uint8_t* in, const AxisWeights& xa, uint8_t* o) {
  const int out_w = xa.count();
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

#if MPNCOV_X86
// AVX2: two taps per step, each pixel's three channels in one 4-lane half (a 4-byte load whose fourth
// byte is ignored: Image leaves bytes readable past its last pixel), and 4-byte stores whose fourth byte
// the next pixel overwrites (the output rows have slack too).
__attribute__((target("avx2"))) void horizontal_row_avx2(const uint8_t* in, const AxisWeights& xa, uint8_t* o) {
  const int out_w = xa.count();
  const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  for (int x = 0; x < out_w; ++x) {
    const int32_t* k = &xa.weights[static_cast<size_t>(x) * xa.max_taps];
    const uint8_t* p = in + 3 * xa.first[x];
    const int taps = xa.taps[x];
    __m256i acc2 = _mm256_setzero_si256();
    int t = 0;
    for (; t + 2 <= taps; t += 2, p += 6) {
      const __m128i two =
          _mm_insert_epi32(_mm_cvtsi32_si128(static_cast<int>(load4(p))), static_cast<int>(load4(p + 3)), 1);
      const __m256i px = _mm256_cvtepu8_epi32(two);
      // Weights k[t] x4, k[t+1] x4, by a lane permute (building them through memory stalls the loads).
      const __m128i kk = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(k + t));
      const __m256i w = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(kk), spread);
      acc2 = _mm256_add_epi32(acc2, _mm256_mullo_epi32(px, w));
    }
    __m128i acc = _mm_add_epi32(_mm256_castsi256_si128(acc2), _mm256_extracti128_si256(acc2, 1));
    acc = _mm_add_epi32(acc, _mm_set1_epi32(kHalf));
    if (t < taps) {
      const __m128i px = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(static_cast<int>(load4(p))));
      acc = _mm_add_epi32(acc, _mm_mullo_epi32(px, _mm_set1_epi32(k[t])));
    }
    // clip8: shift, then saturate to 16 and to 8 bits.
    const __m128i v = _mm_srai_epi32(acc, kPrecisionBits);
    const uint32_t bytes = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(v, v), v)));
    std::memcpy(o + 3 * x, &bytes, 4);
  }
}

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

std::atomic<bool> force_portable{false};

void horizontal_row(const uint8_t* in, const AxisWeights& xa, uint8_t* o) {
#if MPNCOV_X86
  if (have_avx2() && !force_portable.load(std::memory_order_relaxed)) return horizontal_row_avx2(in, xa, o);
#endif
  horizontal_row_generic(in, xa, o);
}

// One output row from taps rows of the horizontal pass: contiguous, so the compiler vectorises it; built
// for the baseline and for AVX2 (no ifunc clones: their resolvers run before sanitizers initialise).
__attribute__((always_inline)) inline void vertical_row_body(const uint8_t* rows, int64_t rows_stride, const int32_t* k,
                                                             int taps, int row_bytes, int32_t* sums, uint8_t* o) {
  for (int j = 0; j < row_bytes; ++j) sums[j] = kHalf;
  for (int t = 0; t < taps; ++t) {
    const uint8_t* r = rows + t * rows_stride;
    const int32_t kt = k[t];
    for (int j = 0; j < row_bytes; ++j) sums[j] += r[j] * kt;
  }
  for (int j = 0; j < row_bytes; ++j) o[j] = clip8(sums[j]);
}

void vertical_row_generic(const uint8_t* rows, int64_t rows_stride, const int32_t* k, int taps, int row_bytes,
                          int32_t* sums, uint8_t* o) {
  vertical_row_body(rows, rows_stride, k, taps, row_bytes, sums, o);
}

#if MPNCOV_X86
__attribute__((target("avx2"))) void vertical_row_avx2(const uint8_t* rows, int64_t rows_stride, const int32_t* k,
                                                       int taps, int row_bytes, int32_t* sums, uint8_t* o) {
  vertical_row_body(rows, rows_stride, k, taps, row_bytes, sums, o);
}
#endif

void vertical_row(const uint8_t* rows, int64_t rows_stride, const int32_t* k, int taps, int row_bytes, int32_t* sums,
                  uint8_t* o) {
#if MPNCOV_X86
  if (have_avx2() && !force_portable.load(std::memory_order_relaxed))
    return vertical_row_avx2(rows, rows_stride, k, taps, row_bytes, sums, o);
#endif
  vertical_row_generic(rows, rows_stride, k, taps, row_bytes, sums, o);
}

}  // namespace

void resample_force_portable(bool on) { force_portable = on; }

void resample(const uint8_t* src, int64_t src_stride, const AxisWeights& xa, const AxisWeights& ya, uint8_t* out,
              int64_t out_stride, ResampleScratch& scratch) {
  const int out_w = xa.count(), out_h = ya.count();
  if (out_w == 0 || out_h == 0) return;
  const int row_bytes = out_w * 3;

  // Horizontal pass over the source rows the vertical pass reads, into 8-bit rows (as PIL does). The
  // rows get 4 bytes of slack, like Image, for horizontal_row's loads when the vertical pass is skipped.
  const int y_begin = ya.source_begin(), y_end = ya.source_end();
  const uint8_t* rows;
  int64_t rows_stride;
  if (xa.identity) {
    rows = src + static_cast<int64_t>(y_begin) * src_stride + 3 * xa.first[0];
    rows_stride = src_stride;
  } else {
    scratch.rows.resize(static_cast<size_t>(y_end - y_begin) * row_bytes + 4);
    for (int y = y_begin; y < y_end; ++y)
      horizontal_row(src + static_cast<int64_t>(y) * src_stride, xa,
                     scratch.rows.data() + static_cast<size_t>(y - y_begin) * row_bytes);
    rows = scratch.rows.data();
    rows_stride = row_bytes;
  }

  if (ya.identity) {
    for (int y = 0; y < out_h; ++y)
      std::memcpy(out + y * out_stride, rows + static_cast<int64_t>(ya.first[y] - y_begin) * rows_stride, row_bytes);
    return;
  }
  scratch.sums.resize(row_bytes);
  for (int y = 0; y < out_h; ++y)
    vertical_row(rows + static_cast<int64_t>(ya.first[y] - y_begin) * rows_stride, rows_stride,
                 &ya.weights[static_cast<size_t>(y) * ya.max_taps], ya.taps[y], row_bytes, scratch.sums.data(),
                 out + y * out_stride);
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
