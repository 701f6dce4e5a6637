// im2col / col2im over a whole batch on CUDA. Row (c, ki, kj) of image n's columns holds, at output
// position (oy, ox), the pixel x[n, c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw] (zero outside the image);
// see core/cpu/im2col.cpp for the same loops on one image.
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_backend.h"

namespace mpncov::cuda {
namespace {

// Geometry in the index type of the launch.
template <typename I>
struct Geometry {
  I channels, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  I out_h, out_w;
};

template <typename I>
Geometry<I> geometry(const ops::ConvGeometry& g) {
  return {static_cast<I>(g.channels), static_cast<I>(g.height),   static_cast<I>(g.width),
          static_cast<I>(g.kernel_h), static_cast<I>(g.kernel_w), static_cast<I>(g.stride_h),
          static_cast<I>(g.stride_w), static_cast<I>(g.pad_h),    static_cast<I>(g.pad_w),
          static_cast<I>(g.dilation_h), static_cast<I>(g.dilation_w), static_cast<I>(g.out_h()),
          static_cast<I>(g.out_w())};
}

// x (N, C, H, W) -> col (N, C*kh*kw, oh*ow): one thread per (n, c, oy, ox) writes its kh*kw column
// entries; adjacent threads write adjacent addresses.
template <typename I>
__global__ void im2col_kernel(const float* x, Geometry<I> g, int64_t total, float* col) {
  const I plane = g.out_h * g.out_w;
  MPNCOV_GRID_LOOP(i, total) {
    I t = static_cast<I>(i);
    const I ox = t % g.out_w;
    t /= g.out_w;
    const I oy = t % g.out_h;
    const I nc = t / g.out_h;  // n * C + c
    const float* xc = x + nc * g.height * g.width;
    float* out = col + nc * g.kernel_h * g.kernel_w * plane + oy * g.out_w + ox;
    for (I ki = 0; ki < g.kernel_h; ++ki) {
      const I iy = oy * g.stride_h - g.pad_h + ki * g.dilation_h;
      const bool row_in = iy >= 0 && iy < g.height;
      for (I kj = 0; kj < g.kernel_w; ++kj) {
        const I ix = ox * g.stride_w - g.pad_w + kj * g.dilation_w;
        *out = (row_in && ix >= 0 && ix < g.width) ? xc[iy * g.width + ix] : 0.0f;
        out += plane;
      }
    }
  }
}

// col (N, C*kh*kw, oh*ow) -> x (N, C, H, W) +=: one thread per input pixel gathers every column entry
// that reads it, adding in (ki, kj) order onto the old value as the CPU loop does (no atomics).
template <typename I>
__global__ void col2im_kernel(const float* col, Geometry<I> g, int64_t total, float* x) {
  const I plane = g.out_h * g.out_w;
  MPNCOV_GRID_LOOP(i, total) {
    I t = static_cast<I>(i);
    const I ix = t % g.width;
    t /= g.width;
    const I iy = t % g.height;
    const I nc = t / g.height;
    const float* colc = col + nc * g.kernel_h * g.kernel_w * plane;
    float acc = x[i];
    for (I ki = 0; ki < g.kernel_h; ++ki) {
      const I ty = iy + g.pad_h - ki * g.dilation_h;  // oy * stride_h, if some oy reads this pixel
      if (ty < 0) break;                              // only falls as ki grows
      if (ty % g.stride_h != 0) continue;
      const I oy = ty / g.stride_h;
      if (oy >= g.out_h) continue;
      for (I kj = 0; kj < g.kernel_w; ++kj) {
        const I tx = ix + g.pad_w - kj * g.dilation_w;
        if (tx < 0) break;
        if (tx % g.stride_w != 0) continue;
        const I ox = tx / g.stride_w;
        if (ox >= g.out_w) continue;
        acc += colc[(ki * g.kernel_w + kj) * plane + oy * g.out_w + ox];
      }
    }
    x[i] = acc;
  }
}

}  // namespace

void im2col(int device, const float* x, const ops::ConvGeometry& g, int64_t batch, float* col) {
  const int64_t total = batch * g.channels * g.out_h() * g.out_w();
  if (total == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  // 32-bit indices when every offset (into x and into col) fits.
  const int64_t largest = std::max(batch * g.channels * g.height * g.width, batch * g.col_rows() * g.col_cols());
  if (fits_int32(largest)) {
    im2col_kernel<int32_t><<<blocks_for(total), kThreads, 0, ctx.stream()>>>(x, geometry<int32_t>(g), total, col);
  } else {
    im2col_kernel<int64_t><<<blocks_for(total), kThreads, 0, ctx.stream()>>>(x, geometry<int64_t>(g), total, col);
  }
  CUDA_CHECK_LAUNCH();
}

void col2im(int device, const float* col, const ops::ConvGeometry& g, int64_t batch, float* x) {
  const int64_t total = batch * g.channels * g.height * g.width;
  if (total == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  const int64_t largest = std::max(total, batch * g.col_rows() * g.col_cols());
  if (fits_int32(largest)) {
    col2im_kernel<int32_t><<<blocks_for(total), kThreads, 0, ctx.stream()>>>(col, geometry<int32_t>(g), total, x);
  } else {
    col2im_kernel<int64_t><<<blocks_for(total), kThreads, 0, ctx.stream()>>>(col, geometry<int64_t>(g), total, x);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace mpncov::cuda
