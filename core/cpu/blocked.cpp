// The ops that keep activations in a convolution kernel's layout (core/layout.h), on the CPU in float32:
// batch normalisation, global average pooling and the conversion between layouts. Each loop runs over
// the tensor as rows of B channels (B = 1, C or 16; row r of image n, block cb, pixel p), the innermost
// loop over the B contiguous channels of a row, so it vectorises in every layout.
//
// The activations (x, y and their gradients) are stored as S, float or bfloat16: every element is widened
// to float on load (widen), the float arithmetic is the same for both, and results are rounded to S on
// store (narrow<S>, core/bfloat16.h). So a bfloat16 result is the float32 kernel's result on the widened
// inputs, rounded. Per-channel statistics and parameters are float in both. The loops over the elements
// run as AVX2 where the CPU has it (core/cpu/isa_clones.h: the same bits, every sum stays in its lane).
//
// Per-channel sums are accurate as in batchnorm.cpp: float within chunks of at most 256 rows of one block,
// double across chunks. Chunks are split between the threads statically and the per-thread sums added in
// thread order, so results are the same every run for a given thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/bfloat16.h"
#include "core/cpu/blocked.h"
#include "core/cpu/isa_clones.h"

namespace mpncov::cpu {
namespace {

constexpr int64_t kChunk = 256;
constexpr int64_t kBlock16 = 16;  // nChw16c's block, which the per-block paths below are written for

struct Rows {
  int64_t n, c, inner, block;
  int64_t blocks() const { return c / block; }
  // Chunks: per (image, block) segment of `inner` rows, pieces of at most kChunk rows.
  int64_t pieces() const { return (inner + kChunk - 1) / kChunk; }
  int64_t chunks() const { return n * blocks() * pieces(); }
  // The first row, the row count and the first channel of chunk k.
  void chunk(int64_t k, int64_t& row, int64_t& rows, int64_t& ch0) const {
    const int64_t seg = k / pieces(), piece = k % pieces();
    const int64_t first = piece * kChunk;
    row = seg * inner + first;
    rows = std::min(kChunk, inner - first);
    ch0 = (seg % blocks()) * block;
  }
};

bool parallel(const Rows& s) { return s.n * s.c * s.inner > (1 << 14); }

// A fused ReLU, as Unary::Relu: 0 where the value is not > 0 (NaN included). Rounding to bfloat16 after it
// gives what rounding first and then the ReLU on the stored bits gives.
inline float relu_of(float v) { return v > 0.0f ? v : 0.0f; }

// The gradient g through a ReLU whose output is out, as relu_backward: g where out > 0, else +0 (NaN g
// included). As a bit mask, which vectorises inside every loop here (a select did not in all of them).
inline float relu_grad(float out, float g) {
  uint32_t bits;
  std::memcpy(&bits, &g, sizeof bits);
  bits &= out > 0.0f ? 0xffffffffu : 0u;
  std::memcpy(&g, &bits, sizeof g);
  return g;
}

// sa[ch] += sum over the channel's values of fa(x, ch), sb likewise of fb(x, y, ch). Masked: x counts as 0
// where mask > 0 does not hold (the gradient through a fused ReLU whose output is mask, as relu_backward).
template <bool Masked, typename S, typename FA, typename FB>
MPNCOV_AVX2_CLONES void channel_sums(const Rows& s, const S* x, const S* y, const S* mask, double* sa, double* sb, FA fa,
                                     FB fb) {
  const int threads = parallel(s) ? omp_get_max_threads() : 1;
  std::vector<double> acc(static_cast<size_t>(threads) * 2 * s.c, 0.0);
#pragma omp parallel num_threads(threads)
  {
    double* ta = acc.data() + static_cast<size_t>(omp_get_thread_num()) * 2 * s.c;
    double* tb = ta + s.c;
    std::vector<float> pa(static_cast<size_t>(s.block)), pb(static_cast<size_t>(s.block));
#pragma omp for schedule(static)
    for (int64_t k = 0; k < s.chunks(); ++k) {
      int64_t row, rows, ch0;
      s.chunk(k, row, rows, ch0);
      std::fill(pa.begin(), pa.end(), 0.0f);
      std::fill(pb.begin(), pb.end(), 0.0f);
      float* qa = pa.data();
      float* qb = pb.data();
      for (int64_t r = row; r < row + rows; ++r) {
        const S* xr = x + r * s.block;
        const S* yr = y + r * s.block;
        const S* mr = mask + r * s.block;
#pragma omp simd
        for (int64_t i = 0; i < s.block; ++i) {
          float xv = widen(xr[i]);
          if constexpr (Masked) xv = relu_grad(widen(mr[i]), xv);
          qa[i] += fa(xv, ch0 + i);
          qb[i] += fb(xv, widen(yr[i]), ch0 + i);
        }
      }
      for (int64_t i = 0; i < s.block; ++i) {
        ta[ch0 + i] += qa[i];
        tb[ch0 + i] += qb[i];
      }
    }
  }
  for (int t = 0; t < threads; ++t)
    for (int64_t ch = 0; ch < s.c; ++ch) {
      sa[ch] += acc[static_cast<size_t>(t) * 2 * s.c + static_cast<size_t>(ch)];
      sb[ch] += acc[static_cast<size_t>(t) * 2 * s.c + static_cast<size_t>(s.c + ch)];
    }
}

// The sums of channel block cb alone, one thread: sa[i] += fa over the block's channel i, sb likewise
// (Masked as channel_sums).
template <bool Masked, typename S, typename FA, typename FB>
MPNCOV_AVX2_CLONES void block_sums(const Rows& s, int64_t cb, const S* x, const S* y, const S* mask, double* sa,
                                   double* sb, FA fa, FB fb) {
  constexpr int64_t b = kBlock16;  // a constant trip count: the loops below unroll into single vectors
  const int64_t ch0 = cb * b;
  float pa[16], pb[16];
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t seg_row = (i * s.blocks() + cb) * s.inner;
    for (int64_t p0 = 0; p0 < s.inner; p0 += kChunk) {
      std::fill(pa, pa + b, 0.0f);
      std::fill(pb, pb + b, 0.0f);
      for (int64_t r = seg_row + p0; r < seg_row + std::min(s.inner, p0 + kChunk); ++r) {
        const S* xr = x + r * b;
        const S* yr = y + r * b;
        const S* mr = mask + r * b;
#pragma omp simd
        for (int64_t k = 0; k < b; ++k) {
          float xv = widen(xr[k]);
          if constexpr (Masked) xv = relu_grad(widen(mr[k]), xv);
          pa[k] += fa(xv, ch0 + k);
          pb[k] += fb(xv, widen(yr[k]), ch0 + k);
        }
      }
      for (int64_t k = 0; k < b; ++k) {
        sa[k] += pa[k];
        sb[k] += pb[k];
      }
    }
  }
}

// f(offset of a row, its first channel) for every row of channel block cb, one thread.
template <typename F>
MPNCOV_AVX2_CLONES void block_rows(const Rows& s, int64_t cb, F f) {
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t seg_row = (i * s.blocks() + cb) * s.inner;
    for (int64_t r = seg_row; r < seg_row + s.inner; ++r) f(r * kBlock16, cb * kBlock16);
  }
}

// out[row] = f(x row, y row, first channel) for every row of B channels, in parallel.
template <typename F>
MPNCOV_AVX2_CLONES void for_rows(const Rows& s, F f) {
#pragma omp parallel for schedule(static) if (parallel(s))
  for (int64_t k = 0; k < s.chunks(); ++k) {
    int64_t row, rows, ch0;
    s.chunk(k, row, rows, ch0);
    for (int64_t r = row; r < row + rows; ++r) f(r * s.block, ch0);
  }
}

}  // namespace

template <typename S>
void batch_norm_forward_blocked(const S* x, const float* weight, const float* bias, S* y, float* mean, float* invstd,
                                float* running_mean, float* running_var, int64_t n, int64_t c, int64_t inner,
                                int64_t block, bool training, double momentum, double eps, bool relu,
                                const S* residual) {
  const Rows s{n, c, inner, block};
  const int64_t m = n * inner;
  if (block == kBlock16 && s.blocks() > 1) {
    // Channel blocks (nChw16c): every pass over one block while its slab is in cache, as the NCHW
    // kernel does per channel, the blocks split between the threads.
#pragma omp parallel for schedule(static) if (parallel(s))
    for (int64_t cb = 0; cb < s.blocks(); ++cb) {
      const int64_t ch0 = cb * block;
      double mu[16], inv[16], sum[16] = {}, sq[16] = {}, unused[16] = {};
      float mt[16], sa[16], sb[16];
      if (training) {
        block_sums<false>(s, cb, x, x, x, sum, unused, [](float v, int64_t) { return v; },
                   [](float, float, int64_t) { return 0.0f; });
        for (int64_t k = 0; k < block; ++k) {
          mu[k] = sum[k] / static_cast<double>(m);
          mt[k] = static_cast<float>(mu[k]);
        }
        block_sums<false>(s, cb, x, x, x, sq, unused,
                   [&mt, ch0](float v, int64_t ch) { return (v - mt[ch - ch0]) * (v - mt[ch - ch0]); },
                   [](float, float, int64_t) { return 0.0f; });
        for (int64_t k = 0; k < block; ++k) {
          const double shift = mu[k] - static_cast<double>(mt[k]);
          const double q = std::max(0.0, sq[k] - static_cast<double>(m) * shift * shift);
          inv[k] = 1.0 / std::sqrt(q / static_cast<double>(m) + eps);
          if (running_mean) {
            float& rm = running_mean[ch0 + k];
            float& rv = running_var[ch0 + k];
            rm = static_cast<float>((1 - momentum) * rm + momentum * mu[k]);
            rv = static_cast<float>((1 - momentum) * rv + momentum * q / static_cast<double>(m - 1));
          }
        }
      } else {
        for (int64_t k = 0; k < block; ++k) {
          mu[k] = running_mean[ch0 + k];
          inv[k] = 1.0 / std::sqrt(static_cast<double>(running_var[ch0 + k]) + eps);
        }
      }
      for (int64_t k = 0; k < block; ++k) {
        mean[ch0 + k] = static_cast<float>(mu[k]);
        invstd[ch0 + k] = static_cast<float>(inv[k]);
        const double a = (weight ? weight[ch0 + k] : 1.0) * inv[k];
        sa[k] = static_cast<float>(a);
        sb[k] = static_cast<float>((bias ? bias[ch0 + k] : 0.0) - mu[k] * a);
      }
      if (residual) {
        block_rows(s, cb, [&](int64_t at, int64_t) {
          const S* xr = x + at;
          const S* rr = residual + at;
          S* yr = y + at;
#pragma omp simd
          for (int64_t k = 0; k < kBlock16; ++k)
            yr[k] = narrow<S>(relu_of(widen(narrow<S>(widen(xr[k]) * sa[k] + sb[k])) + widen(rr[k])));
        });
      } else if (relu) {
        block_rows(s, cb, [&](int64_t at, int64_t) {
          const S* xr = x + at;
          S* yr = y + at;
#pragma omp simd
          for (int64_t k = 0; k < kBlock16; ++k) yr[k] = narrow<S>(relu_of(widen(xr[k]) * sa[k] + sb[k]));
        });
      } else {
        block_rows(s, cb, [&](int64_t at, int64_t) {
          const S* xr = x + at;
          S* yr = y + at;
#pragma omp simd
          for (int64_t k = 0; k < kBlock16; ++k) yr[k] = narrow<S>(widen(xr[k]) * sa[k] + sb[k]);
        });
      }
    }
    return;
  }
  std::vector<double> mu(static_cast<size_t>(c)), inv(static_cast<size_t>(c));
  if (training) {
    std::vector<double> sum(static_cast<size_t>(c), 0.0), sq(static_cast<size_t>(c), 0.0), unused(static_cast<size_t>(c));
    channel_sums<false>(s, x, x, x, sum.data(), unused.data(), [](float v, int64_t) { return v; },
                 [](float, float, int64_t) { return 0.0f; });
    std::vector<float> mt(static_cast<size_t>(c));
    for (int64_t ch = 0; ch < c; ++ch) {
      mu[ch] = sum[ch] / static_cast<double>(m);
      mt[ch] = static_cast<float>(mu[ch]);
    }
    // Two passes centred on mu rounded to float, then the exact shift (as batchnorm.cpp).
    const float* mtp = mt.data();
    channel_sums<false>(s, x, x, x, sq.data(), unused.data(),
                 [mtp](float v, int64_t ch) { return (v - mtp[ch]) * (v - mtp[ch]); },
                 [](float, float, int64_t) { return 0.0f; });
    for (int64_t ch = 0; ch < c; ++ch) {
      const double shift = mu[ch] - static_cast<double>(mt[ch]);
      const double q = std::max(0.0, sq[ch] - static_cast<double>(m) * shift * shift);
      inv[ch] = 1.0 / std::sqrt(q / static_cast<double>(m) + eps);
      if (running_mean) {
        running_mean[ch] = static_cast<float>((1 - momentum) * running_mean[ch] + momentum * mu[ch]);
        running_var[ch] = static_cast<float>((1 - momentum) * running_var[ch] + momentum * q / static_cast<double>(m - 1));
      }
    }
  } else {
    for (int64_t ch = 0; ch < c; ++ch) {
      mu[ch] = running_mean[ch];
      inv[ch] = 1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps);
    }
  }
  std::vector<float> sa(static_cast<size_t>(c)), sb(static_cast<size_t>(c));
  for (int64_t ch = 0; ch < c; ++ch) {
    mean[ch] = static_cast<float>(mu[ch]);
    invstd[ch] = static_cast<float>(inv[ch]);
    const double a = (weight ? weight[ch] : 1.0) * inv[ch];
    sa[ch] = static_cast<float>(a);
    sb[ch] = static_cast<float>((bias ? bias[ch] : 0.0) - mu[ch] * a);
  }
  const float* pa = sa.data();
  const float* pb = sb.data();
  if (residual) {
    for_rows(s, [&](int64_t at, int64_t ch0) {
      const S* xr = x + at;
      const S* rr = residual + at;
      S* yr = y + at;
#pragma omp simd
      for (int64_t i = 0; i < block; ++i)
        yr[i] = narrow<S>(relu_of(widen(narrow<S>(widen(xr[i]) * pa[ch0 + i] + pb[ch0 + i])) + widen(rr[i])));
    });
  } else if (relu) {
    for_rows(s, [&](int64_t at, int64_t ch0) {
      const S* xr = x + at;
      S* yr = y + at;
#pragma omp simd
      for (int64_t i = 0; i < block; ++i) yr[i] = narrow<S>(relu_of(widen(xr[i]) * pa[ch0 + i] + pb[ch0 + i]));
    });
  } else {
    for_rows(s, [&](int64_t at, int64_t ch0) {
      const S* xr = x + at;
      S* yr = y + at;
#pragma omp simd
      for (int64_t i = 0; i < block; ++i) yr[i] = narrow<S>(widen(xr[i]) * pa[ch0 + i] + pb[ch0 + i]);
    });
  }
}

template <typename S>
void batch_norm_backward_blocked(const S* x, const S* dy, const S* relu_out, const float* weight, const float* mean,
                                 const float* invstd, S* dx, float* dweight, float* dbias, int64_t n, int64_t c,
                                 int64_t inner, int64_t block, bool training) {
  const Rows s{n, c, inner, block};
  const int64_t m = n * inner;
  if (block == kBlock16 && s.blocks() > 1) {  // per channel block, as the forward
#pragma omp parallel for schedule(static) if (parallel(s))
    for (int64_t cb = 0; cb < s.blocks(); ++cb) {
      const int64_t ch0 = cb * block;
      double sdy[16] = {}, sdx[16] = {};
      float ts[16], tk1[16], tk2[16];
      const auto fa = [](float g, int64_t) { return g; };
      const auto fb = [mean](float g, float p, int64_t ch) { return g * (p - mean[ch]); };
      if (relu_out) block_sums<true>(s, cb, dy, x, relu_out, sdy, sdx, fa, fb);
      else block_sums<false>(s, cb, dy, x, dy, sdy, sdx, fa, fb);
      for (int64_t k = 0; k < block; ++k) {
        const double mu = mean[ch0 + k], inv = invstd[ch0 + k];
        const double sxh = (sdx[k] - (mu - static_cast<double>(static_cast<float>(mu))) * sdy[k]) * inv;
        if (dbias) dbias[ch0 + k] += static_cast<float>(sdy[k]);
        if (dweight) dweight[ch0 + k] += static_cast<float>(sxh);
        ts[k] = static_cast<float>((weight ? weight[ch0 + k] : 1.0) * inv);
        tk1[k] = static_cast<float>(training ? sdy[k] / static_cast<double>(m) : 0.0);
        tk2[k] = static_cast<float>(training ? sxh / static_cast<double>(m) * inv : 0.0);
      }
      if (!dx) continue;
      const float* mb = mean + ch0;
      if (relu_out) {
        block_rows(s, cb, [&](int64_t at, int64_t) {
          const S* xr = x + at;
          const S* gr = dy + at;
          const S* orow = relu_out + at;
          S* qr = dx + at;
#pragma omp simd
          for (int64_t k = 0; k < kBlock16; ++k) {
            const float g = relu_grad(widen(orow[k]), widen(gr[k]));
            qr[k] = narrow<S>(ts[k] * (g - tk1[k] - (widen(xr[k]) - mb[k]) * tk2[k]));
          }
        });
      } else {
        block_rows(s, cb, [&](int64_t at, int64_t) {
          const S* xr = x + at;
          const S* gr = dy + at;
          S* qr = dx + at;
#pragma omp simd
          for (int64_t k = 0; k < kBlock16; ++k)
            qr[k] = narrow<S>(ts[k] * (widen(gr[k]) - tk1[k] - (widen(xr[k]) - mb[k]) * tk2[k]));
        });
      }
    }
    return;
  }
  std::vector<double> sum_dy(static_cast<size_t>(c), 0.0), sum_dy_xhat(static_cast<size_t>(c), 0.0);
  const auto fa = [](float g, int64_t) { return g; };
  const auto fb = [mean](float g, float p, int64_t ch) { return g * (p - mean[ch]); };
  if (relu_out) channel_sums<true>(s, dy, x, relu_out, sum_dy.data(), sum_dy_xhat.data(), fa, fb);
  else channel_sums<false>(s, dy, x, dy, sum_dy.data(), sum_dy_xhat.data(), fa, fb);
  std::vector<float> ts(static_cast<size_t>(c)), tk1(static_cast<size_t>(c)), tk2(static_cast<size_t>(c));
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mu = mean[ch], inv = invstd[ch];
    const float mt = static_cast<float>(mu);
    double sdx = (sum_dy_xhat[ch] - (mu - static_cast<double>(mt)) * sum_dy[ch]) * inv;
    if (dbias) dbias[ch] += static_cast<float>(sum_dy[ch]);
    if (dweight) dweight[ch] += static_cast<float>(sdx);
    ts[ch] = static_cast<float>((weight ? weight[ch] : 1.0) * inv);
    tk1[ch] = static_cast<float>(training ? sum_dy[ch] / static_cast<double>(m) : 0.0);
    tk2[ch] = static_cast<float>(training ? sdx / static_cast<double>(m) * inv : 0.0);
  }
  if (!dx) return;
  const float* ps = ts.data();
  const float* p1 = tk1.data();
  const float* p2 = tk2.data();
  if (relu_out) {
    for_rows(s, [&](int64_t at, int64_t ch0) {
      const S* xr = x + at;
      const S* gr = dy + at;
      const S* orow = relu_out + at;
      S* qr = dx + at;
#pragma omp simd
      for (int64_t i = 0; i < block; ++i) {
        const float g = relu_grad(widen(orow[i]), widen(gr[i]));
        qr[i] = narrow<S>(ps[ch0 + i] * (g - p1[ch0 + i] - (widen(xr[i]) - mean[ch0 + i]) * p2[ch0 + i]));
      }
    });
  } else {
    for_rows(s, [&](int64_t at, int64_t ch0) {
      const S* xr = x + at;
      const S* gr = dy + at;
      S* qr = dx + at;
#pragma omp simd
      for (int64_t i = 0; i < block; ++i)
        qr[i] = narrow<S>(ps[ch0 + i] * (widen(gr[i]) - p1[ch0 + i] - (widen(xr[i]) - mean[ch0 + i]) * p2[ch0 + i]));
    });
  }
}

template <typename S>
MPNCOV_AVX2_CLONES void global_avg_pool_blocked_forward(const S* x, float* y, int64_t n, int64_t c, int64_t inner, int64_t block) {
  const int64_t blocks = c / block;
#pragma omp parallel for schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t seg = 0; seg < n * blocks; ++seg) {
    const int64_t image = seg / blocks, ch0 = (seg % blocks) * block;
    float* out = y + image * c + ch0;  // y is (N, C, 1, 1)
    std::fill(out, out + block, 0.0f);
    // Pixel by pixel in order, as the NCHW kernel sums a plane, so the results are the same bit for bit.
    for (int64_t p = 0; p < inner; ++p) {
      const S* xr = x + (seg * inner + p) * block;
#pragma omp simd
      for (int64_t i = 0; i < block; ++i) out[i] += widen(xr[i]);
    }
    for (int64_t i = 0; i < block; ++i) out[i] /= static_cast<float>(inner);
  }
}

template <typename S>
MPNCOV_AVX2_CLONES void global_avg_pool_blocked_backward(const float* dy, S* dx, int64_t n, int64_t c, int64_t inner, int64_t block) {
  const int64_t blocks = c / block;
#pragma omp parallel for schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t seg = 0; seg < n * blocks; ++seg) {
    const float* g = dy + (seg / blocks) * c + (seg % blocks) * block;
    for (int64_t p = 0; p < inner; ++p) {
      S* q = dx + (seg * inner + p) * block;
#pragma omp simd
      for (int64_t i = 0; i < block; ++i) q[i] = narrow<S>(g[i] / static_cast<float>(inner));
    }
  }
}

template <typename SX, typename SY>
MPNCOV_AVX2_CLONES void convert_layout(const SX* x, int64_t x_block, SY* y, int64_t y_block, int64_t n, int64_t c, int64_t inner) {
#pragma omp parallel for schedule(static) if (n * c * inner > (1 << 14))
  for (int64_t nc = 0; nc < n * c; ++nc) {
    const int64_t image = nc / c, ch = nc % c;
    const SX* xp = x + ((image * (c / x_block) + ch / x_block) * inner) * x_block + ch % x_block;
    SY* yp = y + ((image * (c / y_block) + ch / y_block) * inner) * y_block + ch % y_block;
    if constexpr (std::is_same_v<SX, SY>) {  // the stored values as they are
      for (int64_t p = 0; p < inner; ++p) yp[p * y_block] = xp[p * x_block];
    } else {  // float32 <-> bfloat16
      for (int64_t p = 0; p < inner; ++p) yp[p * y_block] = narrow<SY>(widen(xp[p * x_block]));
    }
  }
}

}  // namespace mpncov::cpu

namespace mpncov::cpu {

#define MPNCOV_INSTANTIATE(S)                                                                                 \
  template void batch_norm_forward_blocked<S>(const S*, const float*, const float*, S*, float*, float*, float*,  \
                                              float*, int64_t, int64_t, int64_t, int64_t, bool, double, double,  \
                                              bool, const S*);                                                   \
  template void batch_norm_backward_blocked<S>(const S*, const S*, const S*, const float*, const float*,         \
                                               const float*, S*, float*, float*, int64_t, int64_t, int64_t,      \
                                               int64_t, bool);                                                   \
  template void global_avg_pool_blocked_forward<S>(const S*, float*, int64_t, int64_t, int64_t, int64_t);       \
  template void global_avg_pool_blocked_backward<S>(const float*, S*, int64_t, int64_t, int64_t, int64_t);
MPNCOV_INSTANTIATE(float)
MPNCOV_INSTANTIATE(bfloat16)
#undef MPNCOV_INSTANTIATE
template void convert_layout<float, float>(const float*, int64_t, float*, int64_t, int64_t, int64_t, int64_t);
template void convert_layout<float, bfloat16>(const float*, int64_t, bfloat16*, int64_t, int64_t, int64_t, int64_t);
template void convert_layout<bfloat16, float>(const bfloat16*, int64_t, float*, int64_t, int64_t, int64_t, int64_t);
template void convert_layout<bfloat16, bfloat16>(const bfloat16*, int64_t, bfloat16*, int64_t, int64_t, int64_t,
                                                 int64_t);

}  // namespace mpncov::cpu
