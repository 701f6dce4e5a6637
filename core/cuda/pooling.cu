// Max, average and adaptive average pooling on CUDA with the window rules of core/cpu/pooling.cpp. The
// forwards run one thread per output element. The backwards run one thread per input element, which
// gathers from the outputs whose window holds it, in the CPU's (row-major output) order: no atomics, so
// the input gradient is reproducible and equals the CPU's float32 result bit for bit.
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_nn_backend.h"

namespace mpncov::cuda {
namespace {

// x (planes, h, w) -> y, index (planes, oh, ow; null: not written)
__global__ void max_pool_forward_kernel(const float* x, float* y, int64_t* index, PoolShape s, ops::Pool2dParams p) {
  const int64_t total = s.planes * s.oh * s.ow;
  MPNCOV_GRID_LOOP(o, total) {
    const int64_t ox = o % s.ow, oy = (o / s.ow) % s.oh, pl = o / (s.ow * s.oh);
    const int64_t y0 = max(oy * p.stride_h - p.pad_h, int64_t(0)), y1 = min(oy * p.stride_h - p.pad_h + p.kernel_h, s.h);
    const int64_t x0 = max(ox * p.stride_w - p.pad_w, int64_t(0)), x1 = min(ox * p.stride_w - p.pad_w + p.kernel_w, s.w);
    const float* xp = x + pl * s.h * s.w;
    float best = -INFINITY;
    int64_t arg = y0 * s.w + x0;
    // The CPU's rule: a larger value or any NaN replaces the best, so a window holding NaNs gives NaN
    // at the last NaN's index (as PyTorch).
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) {
        const float v = xp[iy * s.w + ix];
        if (v > best || isnan(v)) {
          best = v;
          arg = iy * s.w + ix;
        }
      }
    y[o] = best;
    if (index) index[o] = arg;  // none in evaluation
  }
}

// The outputs [first, last] along one axis whose window (start o * stride - pad, `kernel` wide) holds
// input position i; empty when first > last.
struct Span {
  int64_t first, last;
};
__device__ __forceinline__ Span windows_holding(int64_t i, int64_t kernel, int64_t stride, int64_t pad, int64_t outs) {
  const int64_t lowest = i + pad - kernel + 1;  // o * stride >= lowest
  const int64_t first = lowest <= 0 ? 0 : (lowest + stride - 1) / stride;
  return {first, min((i + pad) / stride, outs - 1)};
}

__global__ void max_pool_backward_kernel(const float* dy, const int64_t* index, float* dx, PoolShape s,
                                         ops::Pool2dParams p) {
  const int64_t total = s.planes * s.h * s.w;
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t ix = i % s.w, iy = (i / s.w) % s.h, pl = i / (s.w * s.h);
    const Span ys = windows_holding(iy, p.kernel_h, p.stride_h, p.pad_h, s.oh);
    const Span xs = windows_holding(ix, p.kernel_w, p.stride_w, p.pad_w, s.ow);
    const int64_t here = iy * s.w + ix;
    float g = 0;
    for (int64_t oy = ys.first; oy <= ys.last; ++oy)
      for (int64_t ox = xs.first; ox <= xs.last; ++ox) {
        const int64_t o = (pl * s.oh + oy) * s.ow + ox;
        if (index[o] == here) g += dy[o];
      }
    dx[i] = g;
  }
}

struct Window {
  int64_t y0, y1, x0, x1, divisor;
};
__device__ __forceinline__ Window avg_window(int64_t oy, int64_t ox, const PoolShape& s, const ops::Pool2dParams& p) {
  int64_t y0 = oy * p.stride_h - p.pad_h, x0 = ox * p.stride_w - p.pad_w;
  int64_t y1 = min(y0 + p.kernel_h, s.h + p.pad_h), x1 = min(x0 + p.kernel_w, s.w + p.pad_w);
  const int64_t padded = (y1 - y0) * (x1 - x0);
  y0 = max(y0, int64_t(0));
  x0 = max(x0, int64_t(0));
  y1 = min(y1, s.h);
  x1 = min(x1, s.w);
  const int64_t inside = (y1 - y0) * (x1 - x0);
  return {y0, y1, x0, x1, p.count_include_pad ? padded : max(inside, int64_t(1))};
}

__global__ void avg_pool_forward_kernel(const float* x, float* y, PoolShape s, ops::Pool2dParams p) {
  const int64_t total = s.planes * s.oh * s.ow;
  MPNCOV_GRID_LOOP(o, total) {
    const int64_t ox = o % s.ow, oy = (o / s.ow) % s.oh, pl = o / (s.ow * s.oh);
    const Window win = avg_window(oy, ox, s, p);
    const float* xp = x + pl * s.h * s.w;
    float sum = 0;
    for (int64_t iy = win.y0; iy < win.y1; ++iy)
      for (int64_t ix = win.x0; ix < win.x1; ++ix) sum += xp[iy * s.w + ix];
    y[o] = sum / static_cast<float>(win.divisor);
  }
}

__global__ void avg_pool_backward_kernel(const float* dy, float* dx, PoolShape s, ops::Pool2dParams p) {
  const int64_t total = s.planes * s.h * s.w;
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t ix = i % s.w, iy = (i / s.w) % s.h, pl = i / (s.w * s.h);
    const Span ys = windows_holding(iy, p.kernel_h, p.stride_h, p.pad_h, s.oh);
    const Span xs = windows_holding(ix, p.kernel_w, p.stride_w, p.pad_w, s.ow);
    float g = 0;
    for (int64_t oy = ys.first; oy <= ys.last; ++oy)
      for (int64_t ox = xs.first; ox <= xs.last; ++ox)
        g += dy[(pl * s.oh + oy) * s.ow + ox] / static_cast<float>(avg_window(oy, ox, s, p).divisor);
    dx[i] = g;
  }
}

__device__ __forceinline__ int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

__global__ void adaptive_forward_kernel(const float* x, float* y, PoolShape s) {
  const int64_t total = s.planes * s.oh * s.ow;
  MPNCOV_GRID_LOOP(o, total) {
    const int64_t ox = o % s.ow, oy = (o / s.ow) % s.oh, pl = o / (s.ow * s.oh);
    const int64_t y0 = adaptive_start(oy, s.h, s.oh), y1 = adaptive_end(oy, s.h, s.oh);
    const int64_t x0 = adaptive_start(ox, s.w, s.ow), x1 = adaptive_end(ox, s.w, s.ow);
    const float* xp = x + pl * s.h * s.w;
    float sum = 0;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) sum += xp[iy * s.w + ix];
    y[o] = sum / static_cast<float>((y1 - y0) * (x1 - x0));
  }
}

// One thread per input element gathers from the (few) outputs whose window holds it: no atomics.
__global__ void adaptive_backward_kernel(const float* dy, float* dx, PoolShape s) {
  const int64_t total = s.planes * s.h * s.w;
  MPNCOV_GRID_LOOP(i, total) {
    const int64_t ix = i % s.w, iy = (i / s.w) % s.h, pl = i / (s.w * s.h);
    float g = 0;
    for (int64_t oy = (iy * s.oh) / s.h; oy < s.oh && adaptive_start(oy, s.h, s.oh) <= iy; ++oy) {
      const int64_t y0 = adaptive_start(oy, s.h, s.oh), y1 = adaptive_end(oy, s.h, s.oh);
      if (iy < y0 || iy >= y1) continue;
      for (int64_t ox = (ix * s.ow) / s.w; ox < s.ow && adaptive_start(ox, s.w, s.ow) <= ix; ++ox) {
        const int64_t x0 = adaptive_start(ox, s.w, s.ow), x1 = adaptive_end(ox, s.w, s.ow);
        if (ix < x0 || ix >= x1) continue;
        g += dy[(pl * s.oh + oy) * s.ow + ox] / static_cast<float>((y1 - y0) * (x1 - x0));
      }
    }
    dx[i] = g;
  }
}

}  // namespace

void max_pool2d_forward(int device, const float* x, float* y, int64_t* index, const PoolShape& s,
                        const ops::Pool2dParams& p) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  max_pool_forward_kernel<<<blocks_for(s.planes * s.oh * s.ow), kThreads, 0, ctx.stream()>>>(x, y, index, s, p);
  CUDA_CHECK_LAUNCH();
}

void max_pool2d_backward(int device, const float* dy, const int64_t* index, float* dx, const PoolShape& s,
                         const ops::Pool2dParams& p) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  max_pool_backward_kernel<<<blocks_for(s.planes * s.h * s.w), kThreads, 0, ctx.stream()>>>(dy, index, dx, s, p);
  CUDA_CHECK_LAUNCH();
}

void avg_pool2d_forward(int device, const float* x, float* y, const PoolShape& s, const ops::Pool2dParams& p) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  avg_pool_forward_kernel<<<blocks_for(s.planes * s.oh * s.ow), kThreads, 0, ctx.stream()>>>(x, y, s, p);
  CUDA_CHECK_LAUNCH();
}

void avg_pool2d_backward(int device, const float* dy, float* dx, const PoolShape& s, const ops::Pool2dParams& p) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  avg_pool_backward_kernel<<<blocks_for(s.planes * s.h * s.w), kThreads, 0, ctx.stream()>>>(dy, dx, s, p);
  CUDA_CHECK_LAUNCH();
}

void adaptive_avg_pool2d_forward(int device, const float* x, float* y, const PoolShape& s) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  adaptive_forward_kernel<<<blocks_for(s.planes * s.oh * s.ow), kThreads, 0, ctx.stream()>>>(x, y, s);
  CUDA_CHECK_LAUNCH();
}

void adaptive_avg_pool2d_backward(int device, const float* dy, float* dx, const PoolShape& s) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  adaptive_backward_kernel<<<blocks_for(s.planes * s.h * s.w), kThreads, 0, ctx.stream()>>>(dy, dx, s);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
