// Float32 1 x r and r x 1 convolutions (r = 3, 5, 7; stride 1, one group, nChw16c activations) as
// Winograd's minimal filtering F(m, r) along their one long axis: F(6, 7), F(4, 5), F(4, 3); 5x5 ones as
// five rows of 1x5 taps, F(4, 5) along the rows; 3x3 ones with rows of 7 or 8 outputs as three rows of 1x3
// taps, one F(7, 3) or F(8, 3) tile a row (where oneDNN's F(4x4, 3x3) would leave tiles partial or too
// few). oneDNN 2.6 has Winograd kernels only for 3x3, and
// Inception's 1x7 / 7x1 layers (about a quarter of inception_v3's evaluation time) and 5x5 ones ran its
// direct kernel. m outputs along the axis take alpha = m + r - 1 products instead
// of m r: 12 instead of 42 for F(6, 7), 6 instead of 12 for F(4, 3).
//
// Three steps over P tiles (an image, a line across the axis, m outputs along it):
//   V[xi][p][c] = sum_i BT[xi][i] d_p[i][c]     the tile's alpha input pixels, transformed
//   M[xi] = V[xi] U[xi]                         alpha products (P x C by C x O) on oneDNN's matmul
//   y_p[j][o] = sum_xi AT[j][xi] M[xi][p][o]    back to m outputs, plus the bias (and a residual), ReLU
// with U[xi][c][o] = s[o] sum_k G[xi][k] w[o][c][k] (s: an evaluation batch norm's scale, else 1). For
// 5x5 and 3x3, c runs over (kernel row, channel) and d_p over the tile's five or three input rows. The
// gradients of the strips use the same transforms (conv2d_backward_data_winograd_1d,
// conv2d_backward_weights_winograd_1d).
//
// The matrices (winograd_transform.h) interpolate at alpha - 1 finite points and infinity. The points are
// the ones whose float32 rounding error came out smallest among the sets tried (docs/layers.md): F(6, 7)'s
// results are within 1e-5 to 2e-5 of the largest output, F(7, 3)'s and F(8, 3)'s within 1e-5, F(4, 3)'s and
// F(4, 5)'s within 1e-6, the direct kernel's within 4e-7 (oneDNN's own F(4x4, 3x3) within 5e-5).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "core/cpu/cpu_ops.h"
#include "core/cpu/isa_clones.h"
#include "core/cpu/nn_cpu.h"
#include "core/cpu/onednn_support.h"
#include "core/cpu/parallel.h"
#include "core/cpu/winograd_transform.h"
#include "core/error.h"

namespace mpncov::cpu {
namespace {

using winograd::make_transform;
using winograd::Transform;
using winograd::kMaxAlpha;
using winograd::kPoints73;
using winograd::Epilogue;
using winograd::kWidth;
using winograd::Lanes;
using winograd::load;
using winograd::store;
constexpr int kLanes = 16;  // channels per nChw16c block

// The points, chosen for the smallest float32 error among the candidates tried (docs/layers.md).
constexpr double kPoints43[] = {0, 1, -1, 2, -2};
constexpr double kPoints45[] = {0, 1, -1, 2, -2, 0.5, -0.5};
constexpr double kPoints67[] = {0, 1, -1, 2, -2, 0.5, -0.5, 0.75, -0.75, 1.5, -1.5};
constexpr double kPoints83[] = {0, 1, -1, 2, -2, 0.5, -0.5, -1.5, 0.75};
// F(4, 3), F(4, 5), F(6, 7) for strips and 5x5; F(7, 3), F(8, 3) for 3x3 layers of 7 or 8 outputs a line,
// one tile covering the line.
constexpr Transform kTransforms[] = {make_transform(4, 3, kPoints43), make_transform(4, 5, kPoints45),
                                     make_transform(6, 7, kPoints67), make_transform(7, 3, kPoints73),
                                     make_transform(8, 3, kPoints83)};

// The transform for kernels of r taps along lines of `length` outputs (square: r x r), or null.
const Transform* transform_for(int64_t r, bool square, int64_t length) {
  if (square && r == 3) return length == 7 ? &kTransforms[3] : length == 8 ? &kTransforms[4] : nullptr;
  if (square && r != 5) return nullptr;
  return r == 3 ? &kTransforms[0] : r == 5 ? &kTransforms[1] : r == 7 ? &kTransforms[2] : nullptr;
}

// f(std::integral_constant<int, K>) for t = &kTransforms[K]: the steps below are compiled per transform.
template <typename F>
void with_transform(const Transform* t, F&& f) {
  switch (t - kTransforms) {
    case 0: f(std::integral_constant<int, 0>{}); break;
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    default: f(std::integral_constant<int, 4>{}); break;
  }
}

// The problem along the long axis. Pixel (line q, position s along the axis) of an h x w plane sits at
// q * w + s (1 x r and r x r: lines are rows) or s * w + q (r x 1: lines are columns). An r x r kernel
// (across = r) is r rows of 1 x r taps: output line q sums input lines q + a - pad_across, a < across, so its
// products run over across * c inputs, the transformed input lines side by side.
struct Strip {
  const Transform* t;
  int64_t n, c, o;            // images, input and output channels
  int64_t h, w, oh, ow;       // input and output planes
  bool rows;                  // lines are rows (1 x r, r x r), else columns (r x 1)
  int64_t length, out_length, pad, lines, tiles;
  int64_t across, pad_across, in_lines;  // the kernel's extent across the lines, its padding, input lines
  int64_t k() const { return across * c; }  // the products' depth
  int64_t tiles_total() const { return n * lines * tiles; }  // P
  int64_t in_pixel(int64_t q, int64_t s) const { return rows ? q * w + s : s * w + q; }
  int64_t out_pixel(int64_t q, int64_t s) const { return rows ? q * ow + s : s * ow + q; }
};

Strip strip_of(int64_t n, const ops::ConvGeometry& g, int64_t out_channels) {
  Strip s;
  s.rows = g.kernel_w != 1;
  s.n = n;
  s.c = g.channels;
  s.o = out_channels;
  s.h = g.height;
  s.w = g.width;
  s.oh = g.out_h();
  s.ow = g.out_w();
  s.length = s.rows ? g.width : g.height;
  s.out_length = s.rows ? s.ow : s.oh;
  s.pad = s.rows ? g.pad_w : g.pad_h;
  s.lines = s.rows ? s.oh : s.ow;
  s.t = transform_for(s.rows ? g.kernel_w : g.kernel_h, g.kernel_h == g.kernel_w, s.out_length);
  s.tiles = s.t ? (s.out_length + s.t->m - 1) / s.t->m : 0;
  s.across = s.rows ? g.kernel_h : g.kernel_w;
  s.pad_across = s.rows ? g.pad_h : g.pad_w;
  s.in_lines = s.rows ? g.height : g.width;
  return s;
}

// Tile p's image, line and first output along the axis.
struct TileAt {
  int64_t img, line, first;
};
inline TileAt tile_at(const Strip& s, int64_t p) {
  return {p / (s.lines * s.tiles), p / s.tiles % s.lines, p % s.tiles * s.t->m};
}

// V for tiles [p0, p1) (row p - p0 of each V[xi], `count` rows apart), input line after input line (one for
// a strip), channel block after channel block.
template <int K>
MPNCOV_AVX2_CLONES void transform_input(const Strip& s, const float* x, int64_t p0, int64_t p1, int64_t count,
                                        float* v) {
  constexpr int alpha = kTransforms[K].alpha;
  constexpr const Transform& t = kTransforms[K];
  const int64_t blocks = s.c / kLanes, plane = s.h * s.w;
  const int64_t step = (s.rows ? 1 : s.w) * kLanes;  // floats between neighbours along the axis
  const int64_t depth = s.k();
  for (int64_t p = p0; p < p1; ++p) {
    const TileAt at = tile_at(s, p);
    const int64_t first = at.first - s.pad;
    bool present[alpha];
    for (int i = 0; i < alpha; ++i) present[i] = first + i >= 0 && first + i < s.length;
    for (int64_t a = 0; a < s.across; ++a) {
      const int64_t line_in = at.line + a - s.pad_across;
      float* row0 = v + (p - p0) * depth + a * s.c;
      if (line_in < 0 || line_in >= s.in_lines) {  // a padding line: zero in every transform
        for (int xi = 0; xi < alpha; ++xi) std::memset(row0 + xi * count * depth, 0, sizeof(float) * s.c);
        continue;
      }
      // The line's first pixel; the tile starts at `first` along it, before it where padded.
      const float* start = x + (at.img * blocks * plane + s.in_pixel(line_in, 0)) * kLanes;
      for (int64_t half = 0; half < blocks * 2; ++half) {
        const int64_t cb = half / 2, lane = half % 2 * kWidth;
        const float* line = start + cb * plane * kLanes + lane;
        Lanes d[alpha];
        for (int i = 0; i < alpha; ++i) {
          if (present[i])
            load(d[i], line + (first + i) * step);
          else
            d[i] = Lanes{};
        }
#pragma GCC unroll 16
        for (int xi = 0; xi < alpha; ++xi) {
          Lanes acc{};
#pragma GCC unroll 16
          for (int i = 0; i < alpha; ++i)
            if (t.bt[xi][i] != 0) acc += static_cast<float>(t.bt[xi][i]) * d[i];
          store(row0 + xi * count * depth + cb * kLanes + lane, acc);
        }
      }
    }
  }
}

// y for tiles [p0, p1) from M (laid out as V), with the epilogue.
template <int K>
MPNCOV_AVX2_CLONES void transform_output(const Strip& s, const float* m, int64_t p0, int64_t p1, int64_t count,
                                         const Epilogue& e, float* y) {
  constexpr int alpha = kTransforms[K].alpha;
  constexpr const Transform& t = kTransforms[K];
  const int64_t blocks = s.o / kLanes, plane = s.oh * s.ow;
  const int64_t step = (s.rows ? 1 : s.ow) * kLanes;
  for (int64_t p = p0; p < p1; ++p) {
    const TileAt at = tile_at(s, p);
    const int64_t outputs = std::min<int64_t>(t.m, s.out_length - at.first);
    const int64_t pixel0 = (at.img * blocks * plane + s.out_pixel(at.line, at.first)) * kLanes;
    const float* row0 = m + (p - p0) * s.o;
    for (int64_t half = 0; half < blocks * 2; ++half) {
      const int64_t ob = half / 2, lane = half % 2 * kWidth, line = pixel0 + ob * plane * kLanes + lane;
      Lanes mv[alpha];
      for (int xi = 0; xi < alpha; ++xi) load(mv[xi], row0 + xi * count * s.o + ob * kLanes + lane);
      Lanes b{};
      if (e.bias) load(b, e.bias + ob * kLanes + lane);
#pragma GCC unroll 8
      for (int j = 0; j < t.m; ++j) {
        Lanes acc = b;
#pragma GCC unroll 16
        for (int xi = 0; xi < alpha; ++xi)
          if (t.at[j][xi] != 0) acc += static_cast<float>(t.at[j][xi]) * mv[xi];
        if (j >= outputs) continue;
        if (e.residual) {
          Lanes r;
          load(r, e.residual + line + j * step);
          acc += r;
        }
        if (e.relu) acc = acc > 0 ? acc : Lanes{};
        store(y + line + j * step, acc);
      }
    }
  }
}

// Z for tiles [p0, p1) from dy (laid out as V): the output transform transposed, Z[xi][p][o] =
// sum_j AT[j][xi] dy_p[j][o], outputs past the line's end counting as zero.
template <int K>
MPNCOV_AVX2_CLONES void transform_gradient(const Strip& s, const float* dy, int64_t p0, int64_t p1, int64_t count,
                                           float* z) {
  constexpr int alpha = kTransforms[K].alpha;
  constexpr const Transform& t = kTransforms[K];
  constexpr int m = kTransforms[K].m;
  const int64_t blocks = s.o / kLanes, plane = s.oh * s.ow;
  const int64_t step = (s.rows ? 1 : s.ow) * kLanes;
  for (int64_t p = p0; p < p1; ++p) {
    const TileAt at = tile_at(s, p);
    const int64_t outputs = std::min<int64_t>(m, s.out_length - at.first);
    const float* pixel0 = dy + (at.img * blocks * plane + s.out_pixel(at.line, at.first)) * kLanes;
    float* row0 = z + (p - p0) * s.o;
    for (int64_t half = 0; half < blocks * 2; ++half) {
      const int64_t ob = half / 2, lane = half % 2 * kWidth;
      const float* line = pixel0 + ob * plane * kLanes + lane;
      Lanes d[m];
      for (int j = 0; j < m; ++j) {
        if (j < outputs)
          load(d[j], line + j * step);
        else
          d[j] = Lanes{};
      }
#pragma GCC unroll 16
      for (int xi = 0; xi < alpha; ++xi) {
        Lanes acc{};
#pragma GCC unroll 8
        for (int j = 0; j < m; ++j)
          if (t.at[j][xi] != 0) acc += static_cast<float>(t.at[j][xi]) * d[j];
        store(row0 + xi * count * s.o + ob * kLanes + lane, acc);
      }
    }
  }
}

// M = V U for `count` tiles: alpha products (count x depth by depth x O), on oneDNN's matmul.
template <int K>
void multiply(const Strip& s, const float* v, const float* u, bool u_transposed, int64_t count, float* m) {
  constexpr int alpha = kTransforms[K].alpha;
  const int64_t depth = s.k(), ldu = u_transposed ? depth : s.o;
  if (!onednn_matmul(false, u_transposed, count, s.o, depth, 1.0f, v, depth, count * depth, u, ldu, depth * s.o, 0.0f,
                     m, s.o, count * s.o, alpha))
    gemm<float>(false, u_transposed, count, s.o, depth, 1.0f, v, depth, count * depth, u, ldu, depth * s.o, 0.0f, m,
                s.o, count * s.o, alpha);
}

// The three steps for tiles [p0, p1) on the calling thread, in its own buffers: V and M of a chunk stay in
// its cache (for Inception's 17x17 layers at batch 8 and up, the whole batch's V and M through memory cost
// more than the multiplications they save).
template <int K>
void run_chunk(const Strip& s, const float* x, const float* u, bool u_transposed, const Epilogue& e, float* y,
               int64_t p0, int64_t p1) {
  constexpr int alpha = kTransforms[K].alpha;
  thread_local ScratchBuffer v_buffer, m_buffer;
  const int64_t count = p1 - p0;
  float* v = static_cast<float*>(v_buffer.reserve(static_cast<size_t>(alpha * count * s.k()) * sizeof(float),
                                                  "Winograd input tiles"));
  float* m = static_cast<float*>(m_buffer.reserve(static_cast<size_t>(alpha * count * s.o) * sizeof(float),
                                                  "Winograd output tiles"));
  transform_input<K>(s, x, p0, p1, count, v);
  multiply<K>(s, v, u, u_transposed, count, m);
  transform_output<K>(s, m, p0, p1, count, e, y);
}

// The three steps over every tile at once, each across the threads: for deep products over few tiles
// (resnet's 7x7 3x3 layers), where a thread's chunk that fits its cache would hold too few tiles for the
// products to run well, and the batch's V and M still fit the shared cache.
ScratchBuffer whole_v_buffer, whole_m_buffer;  // under scratch_mutex, as the callers hold it
template <int K>
void run_whole(const Strip& s, const float* x, const float* u, bool u_transposed, const Epilogue& e, float* y) {
  constexpr int alpha = kTransforms[K].alpha;
  const int64_t total = s.tiles_total(), depth = s.k();
  float* v = static_cast<float*>(whole_v_buffer.reserve(static_cast<size_t>(alpha * total * depth) * sizeof(float),
                                                        "Winograd input tiles"));
  float* m = static_cast<float*>(whole_m_buffer.reserve(static_cast<size_t>(alpha * total * s.o) * sizeof(float),
                                                        "Winograd output tiles"));
  const int64_t parts = std::min<int64_t>(free_threads(), total);
  run_tasks(parts, true, [&](int64_t k) {
    int64_t p0 = 0, p1 = 0;
    part_range(total, parts, k, 1, p0, p1);
    transform_input<K>(s, x, p0, p1, total, v + p0 * depth);
  });
  multiply<K>(s, v, u, u_transposed, total, m);
  run_tasks(parts, true, [&](int64_t k) {
    int64_t p0 = 0, p1 = 0;
    part_range(total, parts, k, 1, p0, p1);
    transform_output<K>(s, m + p0 * s.o, p0, p1, total, e, y);
  });
}

// Every tile, in chunks of about kChunkBytes of V and M spread over the threads, or all at once where the
// cache would cut a thread's share into chunks of fewer than kThinChunk tiles and the whole batch's V and M
// take at most kWholeBytes.
constexpr int64_t kChunkBytes = 512 << 10;
constexpr int64_t kSquareRows = 48;  // conv_winograd_1d_forward's least rows of a batch for a 3x3 layer
constexpr int64_t kThinChunk = 32;
constexpr int64_t kWholeBytes = 16 << 20;
template <int K>
void run_tiles(const Strip& s, const float* x, const float* u, bool u_transposed, const Epilogue& e, float* y) {
  constexpr int alpha = kTransforms[K].alpha;
  const int64_t total = s.tiles_total(), tile_bytes = alpha * (s.k() + s.o) * int64_t{sizeof(float)};
  const int64_t cached = kChunkBytes / tile_bytes;
  const int64_t shared = (total + free_threads() - 1) / free_threads();  // a chunk for every thread at least
  // (A batch whose threads' shares are thin anyway, e.g. one image, keeps the one parallel region of chunks:
  // three regions for a few tiles cost more, 0.29 -> 0.39 ms for a 1x7 layer at batch 1.)
  if (cached < kThinChunk && cached < shared && total * tile_bytes <= kWholeBytes)
    return run_whole<K>(s, x, u, u_transposed, e, y);
  const int64_t per_chunk = std::max<int64_t>(4, std::min(cached, shared));
  const int64_t chunks = (total + per_chunk - 1) / per_chunk;
  run_tasks(chunks, true, [&](int64_t k) {
    int64_t p0 = 0, p1 = 0;
    part_range(total, chunks, k, 1, p0, p1);
    run_chunk<K>(s, x, u, u_transposed, e, y, p0, p1);
  });
}

// The weight gradient's transformed sums D[xi] = sum_p Z[xi][p]^T V[xi][p] (O x C each) over every tile:
// each thread sums its share of the tiles, in chunks of at most kGradientChunkBytes of V and Z, into its own
// D (products with K = the chunk's tiles, accumulated), and the threads' D are added at the end into d.
constexpr int64_t kGradientChunkBytes = 4 << 20;
template <int K>
void weight_sums(const Strip& s, const float* x, const float* dy, float* d) {
  constexpr int alpha = kTransforms[K].alpha;
  const int64_t total = s.tiles_total(), size = alpha * s.o * s.c;
  const int64_t per_chunk = std::max<int64_t>(16, kGradientChunkBytes / (alpha * (s.c + s.o) * int64_t{sizeof(float)}));
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(free_threads(), total / 16)));
  thread_local ScratchBuffer partial_buffer;
  float* partial = static_cast<float*>(
      partial_buffer.reserve(sizeof(float) * static_cast<size_t>(size * (threads - 1)), "Winograd weight sums"));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int id = omp_get_thread_num(), team = omp_get_num_threads();
    int64_t p0 = 0, p1 = 0;
    part_range(total, team, id, 1, p0, p1);
    float* sums = id == 0 ? d : partial + (id - 1) * size;
    thread_local ScratchBuffer v_buffer, z_buffer;
    float beta = 0;
    for (int64_t c0 = p0; c0 < p1; c0 += per_chunk) {
      const int64_t c1 = std::min(p1, c0 + per_chunk), count = c1 - c0;
      float* v = static_cast<float*>(v_buffer.reserve(sizeof(float) * static_cast<size_t>(alpha * count * s.c),
                                                      "Winograd input tiles"));
      float* z = static_cast<float*>(z_buffer.reserve(sizeof(float) * static_cast<size_t>(alpha * count * s.o),
                                                      "Winograd gradient tiles"));
      transform_input<K>(s, x, c0, c1, count, v);
      transform_gradient<K>(s, dy, c0, c1, count, z);
      if (!onednn_matmul(true, false, s.o, s.c, count, 1.0f, z, s.o, count * s.o, v, s.c, count * s.c, beta, sums, s.c,
                         s.o * s.c, alpha))
        gemm<float>(true, false, s.o, s.c, count, 1.0f, z, s.o, count * s.o, v, s.c, count * s.c, beta, sums, s.c,
                    s.o * s.c, alpha);
      beta = 1;
    }
    if (beta == 0) std::memset(sums, 0, sizeof(float) * static_cast<size_t>(size));
  }
  for (int id = 1; id < threads; ++id) {
    const float* from = partial + (id - 1) * size;
#pragma omp parallel for schedule(static) if (size >= kParallelWork)
    for (int64_t i = 0; i < size; ++i) d[i] += from[i];
  }
}

// U from the weights w (O, C, across, r): U[xi] row by row, C entries a row, each sum_k G[xi][k] w[o][c][a][k]
// (times scale[o]; null: 1). A forward's U is its strip's (across * C, O) transposed (u_transposed): row (o,
// a), so that a row's depth runs line-major as V's does. An input gradient's (flipped: a strip, across = 1,
// from dy's s.c = O channels to dx's s.o = C) is its strip's (O, C) as it is, G's taps reversed (the weights
// read backwards along the axis). One pass over the weights, U written once: in
// training this runs at every step, and U is three times the weights' size.
MPNCOV_AVX2_CLONES void transform_weights(const Strip& s, const float* w, bool flipped, const float* scale, float* u) {
  const Transform& t = *s.t;
  const int64_t r = t.r, across = s.across;
  const int64_t outs = flipped ? s.c : s.o, ins = flipped ? s.o : s.c;  // the weights' O and C
  const int64_t size = outs * across * ins;                            // U[xi]'s
#pragma omp parallel for schedule(static) if (size * t.alpha >= kParallelWork)
  for (int64_t o = 0; o < outs; ++o) {
    thread_local std::vector<float> taps;  // w[o] as (a, k, c): every tap's C values side by side
    taps.resize(static_cast<size_t>(across * r * ins));
    const float* wo = w + o * ins * across * r;
    for (int64_t c = 0; c < ins; ++c)
      for (int64_t ak = 0; ak < across * r; ++ak) taps[static_cast<size_t>(ak * ins + c)] = wo[c * across * r + ak];
    const float k = scale ? scale[o] : 1.0f;
    for (int64_t a = 0; a < across; ++a) {
      const int64_t row = o * across + a;
      for (int xi = 0; xi < t.alpha; ++xi) {
        float* to = u + xi * size + row * ins;
        std::fill(to, to + ins, 0.0f);
        for (int64_t i = 0; i < r; ++i) {
          const float gk = k * static_cast<float>(t.g[xi][flipped ? r - 1 - i : i]);
          if (gk == 0) continue;
          const float* from = taps.data() + (a * r + i) * ins;
          for (int64_t c = 0; c < ins; ++c) to[c] += gk * from[c];
        }
      }
    }
  }
}

std::mutex scratch_mutex;  // the scratch below is shared; oneDNN's forward serialises likewise
ScratchBuffer u_buffer;
std::vector<float> bias_buffer;

}  // namespace

bool conv_winograd_1d(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, const ConvLayouts& l) {
  const ConvAlgorithm a = conv_algorithm();
  if (a == ConvAlgorithm::Direct) return false;
  const bool rows = g.kernel_h == 1, columns = g.kernel_w == 1;
  const bool strip = rows != columns && (rows ? g.pad_h : g.pad_w) == 0;
  // 5x5 as five rows of 1x5 taps (2.5x fewer products); 3x3 as three rows of 1x3 only where a row of 7 or 8
  // outputs is one F(7, 3) or F(8, 3) tile (2.3-2.4x fewer), the 7x7 and 8x8 layers that oneDNN's F(4x4,
  // 3x3) covers with partial or few tiles; elsewhere its 4x fewer products win.
  const bool square = g.kernel_h == g.kernel_w && (g.kernel_h == 5 || g.kernel_h == 3);
  const bool fits = groups == 1 && (strip || square) &&
                    transform_for(columns ? g.kernel_h : g.kernel_w, square, columns ? g.out_h() : g.out_w()) &&
                    g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1 &&
                    g.channels % kLanes == 0 && out_channels % kLanes == 0 && l.x == Layout::Blocked16 &&
                    l.y == Layout::Blocked16 && !l.x_bf16 && !l.y_bf16;
  if (!fits || a == ConvAlgorithm::Winograd) return fits;
  // Auto: lines of at least 8 outputs (shorter ones leave much of a tile empty; a 3x3 one is a whole tile).
  // Any batch: at batch 1 the 17x17 1x7 layers still run 1.7-2x faster than the direct kernel, the 8x8 1x3
  // ones 1.2x.
  return (square && g.kernel_h == 3) || (columns ? g.out_h() : g.out_w()) >= 8;
}

bool conv_winograd_1d_forward(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, const ConvLayouts& l,
                              int64_t n, bool weights_kept) {
  if (!conv_winograd_1d(g, out_channels, groups, l)) return false;
  // A 3x3 layer's transformed weights are three times its weights (a 512-channel one's 28 MB), made in about
  // the time its products take at batch 8 on 7x7 and read from memory at every call: only where they are
  // kept between calls (evaluation), where the batch holds enough rows to pay for reading them (7x7,
  // forward ms direct / ours: batch 1 1.1 / 1.5-1.9, 4 2.9 / 2.1-3.5, 8 5.4 / 3.0) and where oneDNN's F(4x4,
  // 3x3) has many tiles (at batch 32 it runs 5-10% faster than ours; bench/RESULTS.md). With fewer, ours
  // is the faster on either kind of core, also where Auto trains with oneDNN's (conv_wants_winograd).
  if (g.kernel_h != 3 || g.kernel_w != 3 || conv_algorithm() == ConvAlgorithm::Winograd) return true;
  return weights_kept && n * g.out_h() >= kSquareRows && winograd_tiles(n, g) < kWinogradManyTiles;
}

void conv2d_forward_winograd_1d(const float* x, const float* w, const float* b, float* y, int64_t n,
                                const ops::ConvGeometry& g, int64_t out_channels, const ConvEpilogue& e) {
  const Strip s = strip_of(n, g, out_channels);
  MPNCOV_CHECK(s.t, "conv2d_forward_winograd_1d: not a problem it takes");
  const Transform& t = *s.t;
  std::lock_guard<std::mutex> lock(scratch_mutex);
  const size_t u_floats = static_cast<size_t>(t.alpha * s.k() * s.o);

  const float* bias = b;
  const float* u = winograd_weights(w, b, e, &t, u_floats, s.o, u_buffer, bias_buffer,
                                    [&](float* made) { transform_weights(s, w, false, e.scale, made); }, bias);

  const Epilogue epilogue{bias, e.residual, e.relu};
  with_transform(s.t, [&](auto k) { run_tiles<decltype(k)::value>(s, x, u, true, epilogue, y); });
}

const float* winograd_weights(const float* w, const float* b, const ConvEpilogue& e, const void* plan,
                              size_t u_floats, int64_t out_channels, ScratchBuffer& scratch, std::vector<float>& folded,
                              const std::function<void(float*)>& make, const float*& bias) {
  const size_t o = static_cast<size_t>(out_channels);
  ops::PreparedConv* kept = e.scale ? e.prepared : nullptr;
  const auto same = [o](const std::vector<float>& v, const float* p) {
    return v.size() == o && std::memcmp(v.data(), p, o * sizeof(float)) == 0;
  };
  if (kept && kept->weights.plan == plan && kept->weights.weights == w &&
      kept->weights.bytes >= u_floats * sizeof(float) && same(kept->scale, e.scale) && same(kept->shift, e.shift)) {
    bias = kept->bias.data();
    return static_cast<const float*>(kept->weights.data);
  }
  float* made = nullptr;
  if (kept) {
    kept->weights.plan = nullptr;
    made = static_cast<float*>(reserve_weight_cache(kept->weights, u_floats * sizeof(float), "the prepared weights"));
  } else {
    made = static_cast<float*>(scratch.reserve(u_floats * sizeof(float), "Winograd weights"));
  }
  make(made);
  bias = b;
  if (e.scale) {
    std::vector<float>& to = kept ? kept->bias : folded;
    to.resize(o);
    for (size_t c = 0; c < o; ++c) to[c] = b ? e.scale[c] * b[c] + e.shift[c] : e.shift[c];
    bias = to.data();
    if (kept) {
      kept->scale.assign(e.scale, e.scale + o);
      kept->shift.assign(e.shift, e.shift + o);
      kept->weights.weights = w;
      kept->weights.plan = plan;
    }
  }
  return made;
}

bool conv_winograd_1d_backward_data(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                    const ConvLayouts& l) {
  const int64_t r = std::max(g.kernel_h, g.kernel_w), pad = g.kernel_h == 1 ? g.pad_w : g.pad_h;
  return conv_winograd_1d_backward_weights(g, out_channels, groups, l) && pad <= r - 1;
}

void conv2d_backward_data_winograd_1d(const float* w, const float* dy, float* dx, int64_t n,
                                      const ops::ConvGeometry& g, int64_t out_channels) {
  // dx is dy correlated with the weights reversed along the axis, their channel roles swapped: a forward
  // strip from dy's channels to dx's, padded by r - 1 - pad, which gives back the input's length.
  ops::ConvGeometry back = g;
  back.channels = out_channels;
  back.height = g.out_h();
  back.width = g.out_w();
  if (g.kernel_h == 1)
    back.pad_w = g.kernel_w - 1 - g.pad_w;
  else
    back.pad_h = g.kernel_h - 1 - g.pad_h;
  const Strip s = strip_of(n, back, g.channels);
  MPNCOV_CHECK(s.t && s.oh == g.height && s.ow == g.width,
               "conv2d_backward_data_winograd_1d: not a 1 x r / r x 1 problem it takes");
  const Transform& t = *s.t;
  std::lock_guard<std::mutex> lock(scratch_mutex);
  float* u = static_cast<float*>(u_buffer.reserve(static_cast<size_t>(t.alpha * s.c * s.o) * sizeof(float),
                                                  "Winograd weights"));
  transform_weights(s, w, true, nullptr, u);
  with_transform(s.t, [&](auto k) { run_tiles<decltype(k)::value>(s, dy, u, false, Epilogue{}, dx); });
}

bool conv_winograd_1d_backward_weights(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                       const ConvLayouts& l) {
  return (g.kernel_h == 1) != (g.kernel_w == 1) && conv_winograd_1d(g, out_channels, groups, l);
}

void conv2d_backward_weights_winograd_1d(const float* x, const float* dy, float* dw, bool accumulate, int64_t n,
                                         const ops::ConvGeometry& g, int64_t out_channels) {
  const Strip s = strip_of(n, g, out_channels);
  MPNCOV_CHECK(s.t && s.across == 1, "conv2d_backward_weights_winograd_1d: not a 1 x r / r x 1 problem it takes");
  const Transform& t = *s.t;
  std::lock_guard<std::mutex> lock(scratch_mutex);
  const int64_t rows = s.o * s.c;
  float* d = static_cast<float*>(u_buffer.reserve(sizeof(float) * static_cast<size_t>(t.alpha * rows),
                                                  "Winograd weight sums"));
  with_transform(s.t, [&](auto k) { weight_sums<decltype(k)::value>(s, x, dy, d); });
  // dw[(o, c)][k] = sum_xi D[xi][(o, c)] G[xi][k]: one product, D^T G, added to dw or written.
  float gm[kMaxAlpha * kMaxAlpha];
  for (int xi = 0; xi < t.alpha; ++xi)
    for (int k = 0; k < t.r; ++k) gm[xi * t.r + k] = static_cast<float>(t.g[xi][k]);
  const float beta = accumulate ? 1.0f : 0.0f;
  if (!onednn_matmul(true, false, rows, t.r, t.alpha, 1.0f, d, rows, 0, gm, t.r, 0, beta, dw, t.r, 0, 1))
    gemm<float>(true, false, rows, t.r, t.alpha, 1.0f, d, rows, 0, gm, t.r, 0, beta, dw, t.r, 0, 1);
}

}  // namespace mpncov::cpu
