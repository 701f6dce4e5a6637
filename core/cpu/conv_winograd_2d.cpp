// Float32 3x3 convolutions (stride 1, one group, nChw16c activations) as Winograd's F(7x7, 3x3): F(7, 3)
// nested over both axes, a 7x7 block of outputs from a 9x9 block of inputs in 81 products per channel pair
// instead of 441. oneDNN's F(4x4, 3x3) makes 36 per 16 outputs (2.25 a pixel against 1.65 here), and on
// 14x14 maps, where its 4x4 tiles cover 16x16, 2.94. ResNet's maps (56, 28, 14, 7) and Inception-v3's 35x35
// and 147x147 ones are whole 7x7 tiles.
//
// Three steps over P tiles (an image, a 7x7 block of outputs), each across the threads:
//   V[xi][eta][p][c] = sum_ij BT[xi][i] d_p[i][j][c] BT[eta][j]     the tile's 9x9 input pixels, transformed
//   M[xi][eta] = V[xi][eta] U[xi][eta]                              81 products (P x C by C x O)
//   y_p[i][j][o] = sum_{xi,eta} AT[i][xi] M[xi][eta][p][o] AT[j][eta]   7x7 outputs, bias, residual, ReLU
// with U[xi][eta][c][o] = s[o] sum_kl G[xi][k] w[o][c][k][l] G[eta][l] (s: an evaluation batch norm's scale,
// else 1). U is 9 times the weights (a 512-channel layer's 85 MB), made once and kept where the weights are
// fixed (evaluation), made at every call in training; the products stream it from memory, so that they need
// deep channels and a few dozen tiles to run at the machine's rate (conv_winograd_2d_forward's rule). U is
// stored in panels of 32 output channels, each panel's C rows of 32 (16 in a last, narrower panel) one after
// the other, so that the products read it in one sequential pass (oneDNN's matmul on U as a plain O x C
// matrix read it as many short rows and ran at 70 GFLOP/s a core from memory against 108 here,
// bench/RESULTS.md). Training runs
// the input gradient the same way: a padding-1 layer's dx is the padding-1 convolution of dy with the
// weights turned 180 degrees and transposed. The points are F(7, 3)'s (winograd_transform.h); over both
// axes the float32 results are within 3e-5 to 5e-5 of the largest output, as oneDNN's F(4x4, 3x3)
// (tests/core/test_conv_winograd_2d.cpp).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "core/cpu/cpu_ops.h"
#include "core/cpu/isa_clones.h"
#include "core/cpu/nn_cpu.h"
#include "core/cpu/onednn_support.h"
#include "core/cpu/parallel.h"
#include "core/cpu/winograd_transform.h"
#include "core/error.h"

namespace mpncov::cpu {
namespace {

constexpr winograd::Transform kF73 = winograd::make_transform(7, 3, winograd::kPoints73);
constexpr int kM = kF73.m, kAlpha = kF73.alpha, kPoints = kAlpha * kAlpha;
constexpr int kLanes = 16;  // channels per nChw16c block

using winograd::Epilogue;
using winograd::kWidth;
using winograd::Lanes;
using winograd::load;
using winograd::store;

struct Plane {
  int64_t n, c, o;       // images, input and output channels
  int64_t h, w, oh, ow;  // input and output planes
  int64_t pad_h, pad_w;
  int64_t th, tw;        // tiles down and across
  int64_t tiles() const { return n * th * tw; }
};

Plane plane_of(int64_t n, const ops::ConvGeometry& g, int64_t out_channels) {
  Plane p{n, g.channels, out_channels, g.height, g.width, g.out_h(), g.out_w(), g.pad_h, g.pad_w, 0, 0};
  p.th = (p.oh + kM - 1) / kM;
  p.tw = (p.ow + kM - 1) / kM;
  return p;
}

// V for tiles [p0, p1): row p - p0 of each V[point] (`count` rows of C apart), channel block after block.
MPNCOV_AVX2_CLONES void transform_input(const Plane& s, const float* x, int64_t p0, int64_t p1, int64_t count,
                                        float* v) {
  const int64_t blocks = s.c / kLanes, plane = s.h * s.w, stride = count * s.c;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t img = p / (s.th * s.tw), top = p / s.tw % s.th * kM - s.pad_h, left = p % s.tw * kM - s.pad_w;
    bool col_in[kAlpha];
    for (int j = 0; j < kAlpha; ++j) col_in[j] = left + j >= 0 && left + j < s.w;
    float* row0 = v + (p - p0) * s.c;
    for (int64_t half = 0; half < blocks * 2; ++half) {
      const int64_t cb = half / 2, lane = half % 2 * kWidth;
      const float* block = x + ((img * blocks + cb) * plane) * kLanes + lane;
      Lanes rows[kAlpha][kAlpha];  // [i][eta]: input row i transformed along the row
      for (int i = 0; i < kAlpha; ++i) {
        const int64_t y = top + i;
        Lanes d[kAlpha];
        if (y < 0 || y >= s.h) {
          for (int eta = 0; eta < kAlpha; ++eta) rows[i][eta] = Lanes{};
          continue;
        }
        const float* line = block + y * s.w * kLanes;
        for (int j = 0; j < kAlpha; ++j) {
          if (col_in[j])
            load(d[j], line + (left + j) * kLanes);
          else
            d[j] = Lanes{};
        }
#pragma GCC unroll 9
        for (int eta = 0; eta < kAlpha; ++eta) {
          Lanes acc{};
#pragma GCC unroll 9
          for (int j = 0; j < kAlpha; ++j)
            if (kF73.bt[eta][j] != 0) acc += static_cast<float>(kF73.bt[eta][j]) * d[j];
          rows[i][eta] = acc;
        }
      }
      float* to = row0 + cb * kLanes + lane;
      for (int eta = 0; eta < kAlpha; ++eta) {
#pragma GCC unroll 9
        for (int xi = 0; xi < kAlpha; ++xi) {
          Lanes acc{};
#pragma GCC unroll 9
          for (int i = 0; i < kAlpha; ++i)
            if (kF73.bt[xi][i] != 0) acc += static_cast<float>(kF73.bt[xi][i]) * rows[i][eta];
          store(to + (xi * kAlpha + eta) * stride, acc);
        }
      }
    }
  }
}

// One tile's 7x7 outputs for 8 channels (lane..lane + 7 of block ob) from its 81 products mv[point], with
// the epilogue.
inline MPNCOV_CLONE_INLINE void output_tile(const Plane& s, const Lanes* mv, int64_t p, int64_t ob, int64_t lane,
                                            const Epilogue& e, float* y) {
  const int64_t blocks = s.o / kLanes, plane = s.oh * s.ow;
  const int64_t img = p / (s.th * s.tw), top = p / s.tw % s.th * kM, left = p % s.tw * kM;
  const int64_t rows_out = std::min<int64_t>(kM, s.oh - top), cols_out = std::min<int64_t>(kM, s.ow - left);
  Lanes cols[kAlpha][kM];  // [xi][j]: row xi of the products transformed along the row
  for (int xi = 0; xi < kAlpha; ++xi) {
#pragma GCC unroll 7
    for (int j = 0; j < kM; ++j) {
      Lanes acc{};
#pragma GCC unroll 9
      for (int eta = 0; eta < kAlpha; ++eta)
        if (kF73.at[j][eta] != 0) acc += static_cast<float>(kF73.at[j][eta]) * mv[xi * kAlpha + eta];
      cols[xi][j] = acc;
    }
  }
  Lanes b{};
  if (e.bias) load(b, e.bias + ob * kLanes + lane);
  const int64_t block = ((img * blocks + ob) * plane + top * s.ow + left) * kLanes + lane;
  for (int i = 0; i < rows_out; ++i) {
    for (int j = 0; j < cols_out; ++j) {
      Lanes acc = b;
#pragma GCC unroll 9
      for (int xi = 0; xi < kAlpha; ++xi)
        if (kF73.at[i][xi] != 0) acc += static_cast<float>(kF73.at[i][xi]) * cols[xi][j];
      const int64_t at = block + (i * s.ow + j) * kLanes;
      if (e.residual) {
        Lanes r;
        load(r, e.residual + at);
        acc += r;
      }
      if (e.relu) acc = acc > 0 ? acc : Lanes{};
      store(y + at, acc);
    }
  }
}

// y for the group's tiles [p0, p1) (the group's first tile is `first`, its `count` tiles the rows of
// M[point], count x O), with the epilogue.
MPNCOV_AVX2_CLONES void transform_output(const Plane& s, const float* mt, int64_t p0, int64_t p1, int64_t count,
                                         int64_t first, const Epilogue& e, float* y) {
  const int64_t blocks = s.o / kLanes, stride = count * s.o;
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t half = 0; half < blocks * 2; ++half) {
      const int64_t ob = half / 2, lane = half % 2 * kWidth;
      const float* from = mt + p * s.o + ob * kLanes + lane;
      Lanes mv[kPoints];
      for (int point = 0; point < kPoints; ++point) load(mv[point], from + point * stride);
      output_tile(s, mv, first + p, ob, lane, e, y);
    }
  }
}

// U's panels: output channels [32 q, 32 q + 32) (the last 16 wide where O is an odd number of 16s), each
// the C rows of its channels' values for one point, one after the other.
constexpr int64_t kPanel = 32;
inline int64_t panel_count(int64_t o) { return (o + kPanel - 1) / kPanel; }
inline int64_t panel_width(int64_t o, int64_t panel) { return std::min(kPanel, o - panel * kPanel); }

// U[point] (C x O in panels, the products' right operand) from the weights w. Forward: w is (s.o, s.c, 3, 3),
// output channel o scaled by scale[o] (null: 1). Flipped (the input gradient's U): w is (s.c, s.o, 3, 3), read
// turned 180 degrees and transposed, so that the forward kernel run from dy gives dx. Eight input channels
// of a panel at a time go through a buffer that holds their 81 points, then out as 81 runs of 8 panel rows
// (1 KiB; 512 bytes in a 16-wide panel), streamed past the cache: the products read U once, from memory
// (stored straight, each point's matrix a multiple of 4 KiB from the next, the stores fought over one set).
MPNCOV_AVX2_CLONES void transform_weights(const Plane& s, const float* w, bool flipped, const float* scale, float* u) {
  const int64_t size = s.o * s.c, panels = panel_count(s.o);
  constexpr int64_t kRows = 8;  // input channels (panel rows) per run
  const int64_t runs = (s.c + kRows - 1) / kRows;
#pragma omp parallel if (size * kPoints >= kParallelWork)
  {
#pragma omp for schedule(static) nowait
    for (int64_t item = 0; item < panels * runs; ++item) {
      const int64_t panel = item / runs, c0 = item % runs * kRows, o0 = panel * kPanel;
      const int64_t width = panel_width(s.o, panel), rows = std::min(kRows, s.c - c0);
      alignas(64) float points[kPoints][kRows * kPanel];  // 81 KiB of the thread's stack
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t c = c0 + r;
        for (int64_t at = 0; at < width; at += kWidth) {  // a multiple of kWidth: the channels are of kLanes
          Lanes taps[9];  // [3 a + b]: tap (a, b) of eight kernels (output channels o0 + at...)
          Lanes k;
          for (int i = 0; i < kWidth; ++i) {
            const int64_t o = o0 + at + i;
            k[i] = scale ? scale[o] : 1.0f;
            for (int t = 0; t < 9; ++t) taps[t][i] = flipped ? w[(c * s.o + o) * 9 + 8 - t] : w[(o * s.c + c) * 9 + t];
          }
          Lanes g_w[kAlpha][3];  // G w: [xi][b]
          for (int xi = 0; xi < kAlpha; ++xi)
            for (int b = 0; b < 3; ++b)
              g_w[xi][b] = static_cast<float>(kF73.g[xi][0]) * taps[b] +
                           static_cast<float>(kF73.g[xi][1]) * taps[3 + b] +
                           static_cast<float>(kF73.g[xi][2]) * taps[6 + b];
          for (int xi = 0; xi < kAlpha; ++xi)
            for (int eta = 0; eta < kAlpha; ++eta)
              store(points[xi * kAlpha + eta] + r * width + at,
                    k * (g_w[xi][0] * static_cast<float>(kF73.g[eta][0]) +
                         g_w[xi][1] * static_cast<float>(kF73.g[eta][1]) +
                         g_w[xi][2] * static_cast<float>(kF73.g[eta][2])));
        }
      }
      const int64_t run = rows * width;  // floats, a multiple of 16: 64-byte aligned in U
      for (int point = 0; point < kPoints; ++point) {
        float* to = u + point * size + o0 * s.c + c0 * width;
        for (int64_t i = 0; i < run; i += 4) _mm_stream_ps(to + i, _mm_load_ps(points[point] + i));
      }
    }
  _mm_sfence();  // this thread's streamed stores ordered before the region's closing barrier
  }
}

// The products of one point, M[p][o] = sum_c V[p][c] U[c][o] for its `count` tiles, with AVX-512: a panel's
// 32 (or 16) channels in two (one) 16-lane vectors against up to 12 tiles, each V value broadcast, the sum
// over c in order (the same bits whichever thread and batch). The panel (32 KiB at 256 channels) is read
// from memory once, then from the cache for the panel's next tiles.
constexpr int kMostTiles = 12;  // 2 x 12 accumulators, 2 panel vectors and a broadcast: 27 of 32 registers

template <int kVectors, int kTiles>
__attribute__((target("avx512f"))) void panel_tiles(const float* u, const float* v, int64_t c, float* m, int64_t ldm) {
  __m512 acc[kTiles][kVectors];
#pragma GCC unroll 16
  for (int t = 0; t < kTiles; ++t)
    for (int q = 0; q < kVectors; ++q) acc[t][q] = _mm512_setzero_ps();
  for (int64_t k = 0; k < c; ++k) {
    __m512 row[kVectors];
    for (int q = 0; q < kVectors; ++q) row[q] = _mm512_loadu_ps(u + k * kVectors * 16 + q * 16);
#pragma GCC unroll 16
    for (int t = 0; t < kTiles; ++t) {
      const __m512 x = _mm512_set1_ps(v[t * c + k]);
      for (int q = 0; q < kVectors; ++q) acc[t][q] = _mm512_fmadd_ps(row[q], x, acc[t][q]);
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < kTiles; ++t)
    for (int q = 0; q < kVectors; ++q) _mm512_storeu_ps(m + t * ldm + q * 16, acc[t][q]);
}

using PanelTiles = void (*)(const float*, const float*, int64_t, float*, int64_t);
template <int kVectors, size_t... kTiles>
constexpr std::array<PanelTiles, sizeof...(kTiles)> panel_kernels(std::index_sequence<kTiles...>) {
  return {&panel_tiles<kVectors, static_cast<int>(kTiles) + 1>...};
}

__attribute__((target("avx512f"))) void point_products(const Plane& s, const float* u, const float* v, int64_t count,
                                                       float* m) {
  static constexpr auto kOne = panel_kernels<1>(std::make_index_sequence<kMostTiles>());
  static constexpr auto kTwo = panel_kernels<2>(std::make_index_sequence<kMostTiles>());
  for (int64_t panel = 0; panel < panel_count(s.o); ++panel) {
    const float* up = u + panel * kPanel * s.c;
    const auto& kernels = panel_width(s.o, panel) == kPanel ? kTwo : kOne;
    for (int64_t p = 0; p < count; p += kMostTiles) {
      const int64_t tiles = std::min<int64_t>(kMostTiles, count - p);
      kernels[static_cast<size_t>(tiles - 1)](up, v + p * s.c, s.c, m + p * s.o + panel * kPanel, s.o);
    }
  }
}

std::atomic<bool> blas_only{false};        // set_winograd_2d_blas
std::atomic<int64_t> blas_point_ranges{0};  // winograd_2d_blas_runs

// Points [q0, q1): AVX-512's kernel above, else BLAS a panel at a time over the points.
void products(const Plane& s, const float* u, const float* v, int64_t count, int64_t q0, int64_t q1, float* m) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  const int64_t size = s.o * s.c;
  if (avx512 && !blas_only.load()) {
    for (int64_t q = q0; q < q1; ++q) point_products(s, u + q * size, v + q * count * s.c, count, m + q * count * s.o);
    return;
  }
  blas_point_ranges.fetch_add(1);
  for (int64_t panel = 0; panel < panel_count(s.o); ++panel) {
    const int64_t width = panel_width(s.o, panel);
    gemm<float>(false, false, count, width, s.c, 1.0f, v + q0 * count * s.c, s.c, count * s.c,
                u + q0 * size + panel * kPanel * s.c, width, size, 0.0f, m + q0 * count * s.o + panel * kPanel, s.o,
                count * s.o, q1 - q0);
  }
}

// Tiles go through in groups whose V and M take at most this much (the whole batch where it fits: each
// group reads all of U again, 85 MB for 512 channels).
constexpr int64_t kGroupBytes = 64 << 20;
std::atomic<int64_t> group_bytes{kGroupBytes};  // set_winograd_2d_group_bytes
constexpr int64_t kLeastTiles = 32;     // conv_winograd_2d_forward's least tiles of a batch
constexpr int64_t kLeastChannels = 256;  // and least input and output channels

std::mutex scratch_mutex;  // the scratch below is shared
ScratchBuffer u_buffer, v_buffer, mt_buffer;
std::vector<float> bias_buffer;

void run_tiles(const Plane& s, const float* x, const float* u, const Epilogue& e, float* y) {
  const int64_t total = s.tiles(), tile_bytes = kPoints * (s.c + s.o) * int64_t{sizeof(float)};
  const int64_t cap = group_bytes.load();
  const int64_t groups = std::clamp<int64_t>((total * tile_bytes + cap - 1) / cap, 1, total);
  const int64_t most = (total + groups - 1) / groups;
  float* v = static_cast<float*>(v_buffer.reserve(static_cast<size_t>(kPoints * most * s.c) * sizeof(float),
                                                  "Winograd input tiles"));
  float* mt = static_cast<float*>(mt_buffer.reserve(static_cast<size_t>(kPoints * most * s.o) * sizeof(float),
                                                    "Winograd products"));
  for (int64_t group = 0; group < groups; ++group) {
    int64_t g0 = 0, g1 = 0;
    part_range(total, groups, group, 1, g0, g1);
    const int64_t count = g1 - g0, parts = std::min<int64_t>(free_threads(), count);
    run_tasks(parts, true, [&](int64_t k) {
      int64_t p0 = 0, p1 = 0;
      part_range(count, parts, k, 1, p0, p1);
      transform_input(s, x, g0 + p0, g0 + p1, count, v + p0 * s.c);
    });
    // A thread's share of the points each, their panels streamed from memory once.
    const int64_t threads = free_threads();
    run_tasks(threads, true, [&](int64_t k) {
      int64_t q0 = 0, q1 = 0;
      part_range(kPoints, threads, k, 1, q0, q1);
      products(s, u, v, count, q0, q1, mt);
    });
    run_tasks(parts, true, [&](int64_t k) {
      int64_t p0 = 0, p1 = 0;
      part_range(count, parts, k, 1, p0, p1);
      transform_output(s, mt, p0, p1, count, g0, e, y);
    });
  }
}

}  // namespace

void set_winograd_2d_blas(bool blas) { blas_only.store(blas); }
int64_t winograd_2d_blas_runs() { return blas_point_ranges.load(); }
void set_winograd_2d_group_bytes(int64_t bytes) { group_bytes.store(bytes > 0 ? bytes : kGroupBytes); }

namespace {

// Whether F(7x7, 3x3) takes this problem: the kernel fits, Auto, maps of whole 7x7 tiles, enough of them and
// deep enough channels for the products (bench/RESULTS.md); U kept (evaluation) or not (training: made at
// every call, 1.2 ms for 256 channels, so the same least size pays for it).
bool takes(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, const ConvLayouts& l, int64_t n) {
  const bool fits = groups == 1 && g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 &&
                    g.dilation_h == 1 && g.dilation_w == 1 && g.channels % kLanes == 0 && out_channels % kLanes == 0 &&
                    l.x == Layout::Blocked16 && l.y == Layout::Blocked16 && !l.x_bf16 && !l.y_bf16;
  // Auto only: `winograd` keeps meaning oneDNN's F(4x4, 3x3) and the one-axis route, `direct` neither.
  if (!fits || conv_algorithm() != ConvAlgorithm::Auto) return false;
  const int64_t th = (g.out_h() + kM - 1) / kM, tw = (g.out_w() + kM - 1) / kM;
  return g.out_h() % kM == 0 && g.out_w() % kM == 0 && n * th * tw >= kLeastTiles && g.channels >= kLeastChannels &&
         out_channels >= kLeastChannels;
}

}  // namespace

bool conv_winograd_2d_forward(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, const ConvLayouts& l,
                              int64_t n) {
  return takes(g, out_channels, groups, l, n);
}

void conv2d_forward_winograd_2d(const float* x, const float* w, const float* b, float* y, int64_t n,
                                const ops::ConvGeometry& g, int64_t out_channels, const ConvEpilogue& e) {
  const Plane s = plane_of(n, g, out_channels);
  std::lock_guard<std::mutex> lock(scratch_mutex);
  const size_t u_floats = static_cast<size_t>(kPoints * s.c * s.o);
  const float* bias = b;
  const float* u = winograd_weights(w, b, e, &kF73, u_floats, s.o, u_buffer, bias_buffer,
                                    [&](float* made) { transform_weights(s, w, false, e.scale, made); }, bias);
  run_tiles(s, x, u, Epilogue{bias, e.residual, e.relu}, y);
}

// The input gradient of a padding-1 layer is a padding-1 3x3 convolution of dy with the weights turned 180
// degrees and transposed (O in, C out), on the same maps.
bool conv_winograd_2d_backward_data(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                    const ConvLayouts& l, int64_t n) {
  return g.pad_h == 1 && g.pad_w == 1 && takes(g, out_channels, groups, l, n);
}

void conv2d_backward_data_winograd_2d(const float* w, const float* dy, float* dx, int64_t n,
                                      const ops::ConvGeometry& g, int64_t out_channels) {
  MPNCOV_CHECK(g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 &&
                   g.dilation_w == 1 && g.pad_h == 1 && g.pad_w == 1 && g.channels % kLanes == 0 &&
                   out_channels % kLanes == 0,
               "conv2d_backward_data_winograd_2d: not a problem it takes (3x3, stride 1, padding 1, channels of 16)");
  ops::ConvGeometry back = g;  // from dy (O channels) to dx (C)
  back.channels = out_channels;
  const Plane s = plane_of(n, back, g.channels);
  std::lock_guard<std::mutex> lock(scratch_mutex);
  float* u = static_cast<float*>(u_buffer.reserve(static_cast<size_t>(kPoints * s.c * s.o) * sizeof(float),
                                                  "Winograd weights"));
  transform_weights(s, w, true, nullptr, u);
  run_tiles(s, dy, u, Epilogue{nullptr, nullptr, false}, dx);
}

}  // namespace mpncov::cpu
