// Float32 3x3 convolutions (stride 1, one group, nChw16c activations) as Winograd's F(7x7, 3x3): F(7, 3)
// nested over both axes, a 7x7 block of outputs from a 9x9 block of inputs in 81 products per channel pair
// instead of 441. oneDNN's F(4x4, 3x3) makes 36 per 16 outputs (2.25 a pixel against 1.65 here), and on
// 14x14 maps, where its 4x4 tiles cover 16x16, 2.94. ResNet's maps (56, 28, 14, 7) and Inception-v3's 35x35
// and 147x147 ones are whole 7x7 tiles.
//
// Three steps over P tiles (an image, a 7x7 block of outputs), each across the threads:
//   V[xi][eta][p][c] = sum_ij BT[xi][i] d_p[i][j][c] BT[eta][j]     the tile's 9x9 input pixels, transformed
//   M^T[xi][eta] = U[xi][eta] V[xi][eta]^T                       81 products (O x C by C x P), oneDNN's matmul
//   y_p[i][j][o] = sum_{xi,eta} AT[i][xi] M^T[xi][eta][o][p] AT[j][eta]   7x7 outputs, bias, residual, ReLU
// with U[xi][eta][o][c] = s[o] sum_kl G[xi][k] w[o][c][k][l] G[eta][l] (s: an evaluation batch norm's scale,
// else 1). U is 9 times the weights (a 512-channel layer's 85 MB), made once and kept where the weights are
// fixed (evaluation), made at every call in training (0.9 ms for 256 channels); the products
// stream it from memory, so that they need deep channels and a few dozen tiles to run at the machine's rate
// (conv_winograd_2d_forward's rule). Training runs the input gradient the same way: a padding-1 layer's dx
// is the padding-1 convolution of dy with the weights turned 180 degrees and transposed. The points are
// F(7, 3)'s (winograd_transform.h); over both axes the float32 results are within 3e-5 to 5e-5 of the
// largest output, as oneDNN's F(4x4, 3x3) (tests/core/test_conv_winograd_2d.cpp).
#include <xmmintrin.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
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

// Lane indices, for __builtin_shuffle.
using Index = int32_t __attribute__((vector_size(kWidth * sizeof(int32_t))));

// r[i][j] becomes r[j][i]: rows s apart exchange their s-lane blocks, for s = 4, 2, 1.
template <int S>
inline MPNCOV_CLONE_INLINE void exchange(Lanes (&r)[kWidth], const Index& low, const Index& high) {
  for (int i = 0; i < kWidth; ++i) {
    if (i / S % 2) continue;
    const Lanes a = r[i], b = r[i + S];
    r[i] = __builtin_shuffle(a, b, low);
    r[i + S] = __builtin_shuffle(a, b, high);
  }
}
inline MPNCOV_CLONE_INLINE void transpose(Lanes (&r)[kWidth]) {
  exchange<4>(r, Index{0, 1, 2, 3, 8, 9, 10, 11}, Index{4, 5, 6, 7, 12, 13, 14, 15});
  exchange<2>(r, Index{0, 1, 8, 9, 4, 5, 12, 13}, Index{2, 3, 10, 11, 6, 7, 14, 15});
  exchange<1>(r, Index{0, 8, 2, 10, 4, 12, 6, 14}, Index{1, 9, 3, 11, 5, 13, 7, 15});
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

// y for the group's tiles [p0, p1) (the group's first tile is `first`, its `count` tiles the columns of
// M^T[point], O x count), with the epilogue. Eight tiles at a time: their products for 8 channels come out
// of M^T as 8 x 8 blocks, transposed in registers into channel vectors.
MPNCOV_AVX2_CLONES void transform_output(const Plane& s, const float* mt, int64_t p0, int64_t p1, int64_t count,
                                         int64_t first, const Epilogue& e, float* y) {
  const int64_t blocks = s.o / kLanes, stride = count * s.o;
  for (int64_t pb = p0; pb < p1; pb += kWidth) {
    const int64_t tiles = std::min<int64_t>(kWidth, p1 - pb);
    for (int64_t half = 0; half < blocks * 2; ++half) {
      const int64_t ob = half / 2, lane = half % 2 * kWidth;
      const float* from = mt + (ob * kLanes + lane) * count + pb;
      Lanes mv[kWidth][kPoints];  // [tile][point]
      for (int point = 0; point < kPoints; ++point) {
        const float* at = from + point * stride;
        if (tiles == kWidth) {
          Lanes r[kWidth];  // [channel][tile], then [tile][channel]
          for (int i = 0; i < kWidth; ++i) load(r[i], at + i * count);
          transpose(r);
          for (int t = 0; t < kWidth; ++t) mv[t][point] = r[t];
        } else {
          for (int t = 0; t < tiles; ++t)
            for (int i = 0; i < kWidth; ++i) mv[t][point][i] = at[i * count + t];
        }
      }
      for (int t = 0; t < tiles; ++t) output_tile(s, mv[t], first + pb + t, ob, lane, e, y);
    }
  }
}

// U[point] (s.o x s.c, the products' left operand) from the weights w. Forward: w is (s.o, s.c, 3, 3), row o
// scaled by scale[o] (null: 1). Flipped (the input gradient's U): w is (s.c, s.o, 3, 3), read turned 180
// degrees and transposed, so that the forward kernel run from dy gives dx. A row's columns go 64 at a time
// through a buffer that holds their 81 points, then out as 81 runs of 64: stored straight, each point's
// matrix U[point]'s size apart from the next (a multiple of 4 KiB), the stores fought over one cache set,
// and the float64 scalar version cost about 15 ms of a 256-channel layer's forward, more than its products.
MPNCOV_AVX2_CLONES void transform_weights(const Plane& s, const float* w, bool flipped, const float* scale, float* u) {
  const int64_t rows = s.o, cols = s.c, size = rows * cols;
  constexpr int64_t kRun = 64;
#pragma omp parallel if (size * kPoints >= kParallelWork)
  {
#pragma omp for schedule(static) nowait
    for (int64_t row = 0; row < rows; ++row) {
      const float k = scale ? scale[row] : 1.0f;
      for (int64_t col0 = 0; col0 < cols; col0 += kRun) {
        const int64_t run = std::min(kRun, cols - col0);  // a multiple of kWidth: the channels are of kLanes
        alignas(64) float points[kPoints][kRun];
        for (int64_t at = 0; at < run; at += kWidth) {
          Lanes taps[9];  // [3 a + b]: tap (a, b) of eight kernels
          for (int t = 0; t < 9; ++t)
            for (int i = 0; i < kWidth; ++i) {
              const int64_t c = col0 + at + i;
              taps[t][i] = flipped ? w[(c * rows + row) * 9 + 8 - t] : w[(row * cols + c) * 9 + t];
            }
          Lanes g_w[kAlpha][3];  // G w: [xi][b]
          for (int xi = 0; xi < kAlpha; ++xi)
            for (int b = 0; b < 3; ++b)
              g_w[xi][b] = static_cast<float>(kF73.g[xi][0]) * taps[b] +
                           static_cast<float>(kF73.g[xi][1]) * taps[3 + b] +
                           static_cast<float>(kF73.g[xi][2]) * taps[6 + b];
          for (int xi = 0; xi < kAlpha; ++xi)
            for (int eta = 0; eta < kAlpha; ++eta)
              store(points[xi * kAlpha + eta] + at,
                    k * (g_w[xi][0] * static_cast<float>(kF73.g[eta][0]) +
                         g_w[xi][1] * static_cast<float>(kF73.g[eta][1]) +
                         g_w[xi][2] * static_cast<float>(kF73.g[eta][2])));
        }
        for (int point = 0; point < kPoints; ++point) {
          float* to = u + point * size + row * cols + col0;
          for (int64_t i = 0; i < run; i += 4) _mm_stream_ps(to + i, _mm_load_ps(points[point] + i));
        }
      }
    }
  _mm_sfence();  // this thread's streamed stores ordered before the region's closing barrier
  }
}

// Tiles go through in groups whose V and M take at most this much (the whole batch where it fits: each
// group reads all of U again, 85 MB for 512 channels).
constexpr int64_t kGroupBytes = 64 << 20;
constexpr int64_t kLeastTiles = 32;     // conv_winograd_2d_forward's least tiles of a batch
constexpr int64_t kLeastChannels = 256;  // and least input and output channels

std::mutex scratch_mutex;  // the scratch below is shared
ScratchBuffer u_buffer, v_buffer, mt_buffer;
std::vector<float> bias_buffer;

void run_tiles(const Plane& s, const float* x, const float* u, const Epilogue& e, float* y) {
  const int64_t total = s.tiles(), tile_bytes = kPoints * (s.c + s.o) * int64_t{sizeof(float)};
  const int64_t groups = std::max<int64_t>(1, (total * tile_bytes + kGroupBytes - 1) / kGroupBytes);
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
    // M^T = U^T V^T (O x P a point): oneDNN's kernel streams U, the large operand, better as the left one
    // (a 512-channel layer's products at batch 8: 7.9 against 10.3 ms), and a thread's share of the points
    // on its own ran faster than all of them on oneDNN's threads (7.9 against 8.2 ms; 256 channels 2.6
    // against 3.2).
    const int64_t threads = free_threads();
    run_tasks(threads, true, [&](int64_t k) {
      int64_t q0 = 0, q1 = 0;
      part_range(kPoints, threads, k, 1, q0, q1);
      const float* uq = u + q0 * s.c * s.o;
      const float* vq = v + q0 * count * s.c;
      float* mq = mt + q0 * count * s.o;
      if (!onednn_matmul(false, true, s.o, count, s.c, 1.0f, uq, s.c, s.c * s.o, vq, s.c, count * s.c, 0.0f, mq, count,
                         count * s.o, q1 - q0))
        gemm<float>(false, true, s.o, count, s.c, 1.0f, uq, s.c, s.c * s.o, vq, s.c, count * s.c, 0.0f, mq, count,
                    count * s.o, q1 - q0);
    });
    run_tasks(parts, true, [&](int64_t k) {
      int64_t p0 = 0, p1 = 0;
      part_range(count, parts, k, kWidth, p0, p1);
      transform_output(s, mt, p0, p1, count, g0, e, y);
    });
  }
}

}  // namespace

namespace {

// Whether F(7x7, 3x3) takes this problem: the kernel fits, Auto, maps of whole 7x7 tiles, enough of them and
// deep enough channels for the products (bench/RESULTS.md); U kept (evaluation) or not (training: made at
// every call, about 0.9 ms for 256 channels, so the same least size pays for it).
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
