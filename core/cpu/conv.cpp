// Convolution on the CPU. A 1x1, stride-1, unpadded kernel is a plain GEMM on the image itself; in float32
// it goes to oneDNN instead when it has many channels (input + output >= 1536, e.g. ResNet layer4), where
// oneDNN's blocked kernels win by 10-25% because their two layout reorders per operand cost little beside
// the arithmetic, while at fewer channels the reorders make them lose by up to 2x (bench/RESULTS.md). Other
// float32 kernels go to oneDNN (conv_onednn.cpp); other float64 kernels run im2col + GEMM per image and
// group. Whole rounds of one image per thread are split between the threads, each running single-threaded
// GEMMs (OpenBLAS's OpenMP build stays on one thread inside a parallel region). The images left over (all
// of them when there are fewer images than threads) run one after another, each step on all threads:
// im2col and col2im split the channels, each GEMM cuts its output into blocks (gemm.cpp), and each block
// of the weight gradient sums over the whole image, so it needs no partial sums.
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/cpu/cpu_ops.h"
#include "core/cpu/nn_cpu.h"
#include "core/cpu/parallel.h"

namespace mpncov::cpu {
namespace {

bool is_pointwise(const ops::ConvGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

// Whether a float32 problem goes to oneDNN (see the top of this file). Fixed by the shape alone, so a run
// and its resumption always take the same route (and round the same way).
bool use_onednn(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  return !is_pointwise(g) || g.channels * groups + out_channels >= 1536;
}

// A per-thread scratch buffer that only grows, so steady-state steps allocate nothing.
template <typename T>
T* scratch(int slot, size_t n) {
  thread_local std::vector<T> buffers[2];
  std::vector<T>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

template <typename T>
void gemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
           int64_t ldb, T beta, T* c, int64_t ldc) {
  gemm<T>(ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

// The images the threads split: whole rounds of one image per thread. The rest (all of a batch smaller
// than the thread count) go one after another, each using all threads.
int64_t split_images(int64_t n) {
  const int64_t threads = free_threads();
  return threads > 1 ? n / threads * threads : 0;
}

// im2col and col2im of one image, one channel per task: a channel's rows of col come from, and go back to,
// that channel's plane alone.
template <typename T>
void im2col_channels(const T* x, const ops::ConvGeometry& g, T* col) {
  ops::ConvGeometry one = g;
  one.channels = 1;
  const int64_t plane = g.height * g.width, rows = one.col_rows() * one.col_cols();
  run_tasks(g.channels, g.channels * rows > kParallelWork,
            [&](int64_t c) { im2col<T>(x + c * plane, one, col + c * rows); });
}
template <typename T>
void col2im_channels(const T* col, const ops::ConvGeometry& g, T* x) {
  ops::ConvGeometry one = g;
  one.channels = 1;
  const int64_t plane = g.height * g.width, rows = one.col_rows() * one.col_cols();
  run_tasks(g.channels, g.channels * rows > kParallelWork, [&](int64_t c) {
    std::fill(x + c * plane, x + (c + 1) * plane, T(0));
    col2im<T>(col + c * rows, one, x + c * plane);
  });
}

}  // namespace

template <typename T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, int64_t n, const ops::ConvGeometry& g,
                    int64_t out_channels, int64_t groups) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_onednn(g, out_channels, groups)) {
      conv2d_forward_onednn(x, w, b, y, n, g, out_channels, groups);
      return;
    }
  }
  const int64_t in_image = g.channels * groups * g.height * g.width, in_group = g.channels * g.height * g.width;
  const int64_t k = g.col_rows(), cols = g.col_cols(), og = out_channels / groups;
  const bool pointwise = is_pointwise(g);
  // Inside the split route's parallel region each step below runs on its own thread; outside, each
  // uses all threads.
  auto image = [&](int64_t i, T* col) {
    T* yi = y + i * out_channels * cols;
    for (int64_t gi = 0; gi < groups; ++gi) {
      const T* xg = x + i * in_image + gi * in_group;
      if (!pointwise) im2col_channels<T>(xg, g, col);
      gemm1<T>(false, false, og, cols, k, T(1), w + gi * og * k, k, pointwise ? xg : col, cols, T(0),
               yi + gi * og * cols, cols);
    }
    if (b)
      run_tasks(out_channels, out_channels * cols > kParallelWork, [&](int64_t o) {
        T* row = yi + o * cols;
        const T bo = b[o];
        for (int64_t j = 0; j < cols; ++j) row[j] += bo;
      });
  };
  const int64_t split = split_images(n);
  if (split > 0) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < split; ++i) image(i, pointwise ? nullptr : scratch<T>(0, static_cast<size_t>(k * cols)));
  }
  T* col = pointwise || split == n ? nullptr : scratch<T>(0, static_cast<size_t>(k * cols));
  for (int64_t i = split; i < n; ++i) image(i, col);
}

template <typename T>
void conv2d_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, int64_t n,
                     const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_onednn(g, out_channels, groups)) return conv2d_backward_onednn(x, w, dy, dx, dw, db, n, g, out_channels, groups);
  }
  const int64_t in_image = g.channels * groups * g.height * g.width, in_group = g.channels * g.height * g.width;
  const int64_t k = g.col_rows(), cols = g.col_cols(), og = out_channels / groups;
  const int64_t wsize = out_channels * k;
  const bool pointwise = is_pointwise(g);

  if (db) {
#pragma omp parallel for schedule(static) if (out_channels * n * cols > (1 << 15))
    for (int64_t o = 0; o < out_channels; ++o) {
      double s = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T* row = dy + (i * out_channels + o) * cols;
        T part = 0;
        for (int64_t j = 0; j < cols; ++j) part += row[j];
        s += part;
      }
      db[o] += static_cast<T>(s);
    }
  }
  if (!dx && !dw) return;
  auto image = [&](int64_t i, T* dw_into, T* col) {
    const T* dyi = dy + i * out_channels * cols;
    for (int64_t gi = 0; gi < groups; ++gi) {
      const T* dyg = dyi + gi * og * cols;
      const T* wg = w + gi * og * k;
      if (dw) {
        const T* xg = x + i * in_image + gi * in_group;
        if (!pointwise) im2col_channels<T>(xg, g, col);
        gemm1<T>(false, true, og, k, cols, T(1), dyg, cols, pointwise ? xg : col, cols, T(1), dw_into + gi * og * k, k);
      }
      if (dx) {
        T* dxg = dx + i * in_image + gi * in_group;
        if (pointwise) {
          gemm1<T>(true, false, k, cols, og, T(1), wg, k, dyg, cols, T(0), dxg, cols);
        } else {
          gemm1<T>(true, false, k, cols, og, T(1), wg, k, dyg, cols, T(0), col, cols);
          col2im_channels<T>(col, g, dxg);
        }
      }
    }
  };
  const int64_t split = split_images(n);
  if (split > 0) {
    // Each thread sums its images' weight gradients privately; the partial sums are then added to dw in
    // thread order, so the result is the same bit for bit every run (resumed runs depend on it).
    const int threads = omp_get_max_threads();
    T* partials = dw ? scratch<T>(1, static_cast<size_t>(wsize * threads)) : nullptr;
#pragma omp parallel
    {
      T* dw_local = nullptr;
      if (dw) {
        dw_local = partials + static_cast<int64_t>(omp_get_thread_num()) * wsize;
        std::fill(dw_local, dw_local + wsize, T(0));
      }
      T* col = pointwise ? nullptr : scratch<T>(0, static_cast<size_t>(k * cols));
#pragma omp for schedule(static)
      for (int64_t i = 0; i < split; ++i) image(i, dw_local, col);
    }
    if (dw) {
#pragma omp parallel for schedule(static)
      for (int64_t j = 0; j < wsize; ++j) {
        T sum = dw[j];
        for (int t = 0; t < threads; ++t) sum += partials[static_cast<int64_t>(t) * wsize + j];
        dw[j] = sum;
      }
    }
  }
  // The remaining images add to dw directly, in order.
  T* col = pointwise || split == n ? nullptr : scratch<T>(0, static_cast<size_t>(k * cols));
  for (int64_t i = split; i < n; ++i) image(i, dw, col);
}

template void conv2d_forward<float>(const float*, const float*, const float*, float*, int64_t,
                                    const ops::ConvGeometry&, int64_t, int64_t);
template void conv2d_forward<double>(const double*, const double*, const double*, double*, int64_t,
                                     const ops::ConvGeometry&, int64_t, int64_t);
template void conv2d_backward<float>(const float*, const float*, const float*, float*, float*, float*, int64_t,
                                     const ops::ConvGeometry&, int64_t, int64_t);
template void conv2d_backward<double>(const double*, const double*, const double*, double*, double*, double*,
                                      int64_t, const ops::ConvGeometry&, int64_t, int64_t);

}  // namespace mpncov::cpu
