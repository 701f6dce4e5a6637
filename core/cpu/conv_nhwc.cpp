// Pointwise (1x1, stride 1, unpadded, one group) float32 convolution on NHWC activations: one GEMM over
// every pixel of the batch, the layout being a (N*H*W, C) matrix. It replaces oneDNN's 1x1 kernels, which
// lose to a single GEMM on the large early layers (bench/RESULTS.md), without the layout reorders the
// NCHW GEMM route would need.
#include <algorithm>
#include <vector>

#include "core/cpu/cpu_ops.h"
#include "core/cpu/nn_cpu.h"

namespace mpncov::cpu {

bool conv_nhwc_pointwise(const ops::ConvGeometry& g, int64_t groups, ConvLayouts l) {
  return l.x == Layout::NHWC && l.y == Layout::NHWC && groups == 1 && g.kernel_h == 1 && g.kernel_w == 1 &&
         g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

void conv2d_forward_nhwc_pointwise(const float* x, const float* w, const float* b, float* y, int64_t n,
                                   const ops::ConvGeometry& g, int64_t out_channels) {
  const int64_t rows = n * g.height * g.width, c = g.channels, o = out_channels;
  gemm<float>(false, true, rows, o, c, 1.0f, x, c, 0, w, c, 0, 0.0f, y, o, 0, 1);  // y = x w^T
  if (!b) return;
#pragma omp parallel for schedule(static) if (rows * o > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * o;
#pragma omp simd
    for (int64_t j = 0; j < o; ++j) yr[j] += b[j];
  }
}

void conv2d_backward_nhwc_pointwise(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                                    int64_t n, const ops::ConvGeometry& g, int64_t out_channels, bool accumulate_dw) {
  const int64_t rows = n * g.height * g.width, c = g.channels, o = out_channels;
  if (dx) gemm<float>(false, false, rows, c, o, 1.0f, dy, o, 0, w, c, 0, 0.0f, dx, c, 0, 1);  // dx = dy w
  // dw += dy^T x, or dw = dy^T x (beta 0: the old contents are not read)
  if (dw) gemm<float>(true, false, o, c, rows, 1.0f, dy, o, 0, x, c, 0, accumulate_dw ? 1.0f : 0.0f, dw, c, 0, 1);
  if (!db) return;
  // Column sums in blocks of rows, each block's partial sums in float, added in order.
  constexpr int64_t kBlock = 256;
  std::vector<double> total(static_cast<size_t>(o), 0.0);
  std::vector<float> part(static_cast<size_t>(o));
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    std::fill(part.begin(), part.end(), 0.0f);
    float* pp = part.data();
    for (int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r) {
      const float* g_row = dy + r * o;
#pragma omp simd
      for (int64_t j = 0; j < o; ++j) pp[j] += g_row[j];
    }
    for (int64_t j = 0; j < o; ++j) total[static_cast<size_t>(j)] += pp[j];
  }
  for (int64_t j = 0; j < o; ++j) db[j] += static_cast<float>(total[static_cast<size_t>(j)]);
}

}  // namespace mpncov::cpu
