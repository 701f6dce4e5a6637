#include "core/mixed_ops.h"

#include <cstdlib>

#include "core/cpu/nn_cpu.h"
#include "core/cuda_mixed_backend.h"
#include "core/dispatch.h"
#include "core/half.h"
#include "core/layout_ops.h"

namespace mpncov::ops {
namespace {

// Every defined tensor is a float32 tensor on the first one's device: mixed precision takes float32 in and
// gives float32 out.
void check_f32(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = *tensors.begin();
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    MPNCOV_CHECK(t->dtype() == DType::F32, op, ": mixed precision takes float32 tensors, got ", t->str());
    MPNCOV_CHECK(t->device() == first->device(), op, ": tensors on different devices: ", first->str(), " and ",
                 t->str());
  }
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& want) {
  if (!t.defined()) return;
  MPNCOV_CHECK(t.shape() == want, op, ": ", name, " has shape ", t.shape().str(), ", expected ", want.str());
}

const float* ptr(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
float* mut(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

// The activations of a mixed-precision convolution: float32, or bfloat16 storage on the CPU (a net's
// planned layouts, docs/layouts.md), each in one of the layouts (core/layout.h).
void check_activations(const char* op, const Tensor& weights, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    MPNCOV_CHECK(t->dtype() == DType::F32 || (t->dtype() == DType::BF16 && t->device().is_cpu()), op,
                 ": activations are float32 (or bfloat16 on the CPU), got ", t->str());
    MPNCOV_CHECK(t->device() == weights.device(), op, ": tensors on different devices: ", weights.str(), " and ",
                 t->str());
    MPNCOV_CHECK(t->layout() == Layout::NCHW || (t->device().is_cpu() && t->ndim() == 4), op, ": layout ",
                 layout_name(t->layout()), " is for 4-D CPU tensors, got ", t->str());
  }
}

// The input and its gradient share a layout and a type, as do the output and its gradient.
cpu::ConvLayouts conv_layouts(const char* op, const Tensor& x, const Tensor& dx, const Tensor& y) {
  if (dx.defined())
    MPNCOV_CHECK(dx.layout() == x.layout() && dx.dtype() == x.dtype(), op, ": the input ", x.str(),
                 " and its gradient ", dx.str(), " differ in layout or type");
  cpu::ConvLayouts l;
  l.x = x.layout();
  l.y = y.layout();
  l.x_bf16 = x.dtype() == DType::BF16;
  l.y_bf16 = y.dtype() == DType::BF16;
  return l;
}

}  // namespace

void conv2d_forward_bf16(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dParams& p,
                         ConvWeightCache* cache) {
  if (cache) cache->plan = nullptr;  // whatever happens, no copy of older weights is left for the backward
  MPNCOV_CHECK(x.defined() && w.defined() && y.defined(), "conv2d_forward_bf16: undefined tensor");
  check_f32("conv2d_forward_bf16", {&w, &b});
  check_activations("conv2d_forward_bf16", w, {&x, &y});
  const ConvGeometry g = conv_geometry(x.shape(), w.shape(), p);
  const int64_t n = x.dim(0), o = w.dim(0);
  check_shape("conv2d_forward_bf16", "bias", b, Shape{o});
  check_shape("conv2d_forward_bf16", "output", y, Shape{n, o, g.out_h(), g.out_w()});
  if (y.numel() == 0) return;
  ops::dispatch(
      w,
      [&](auto device) {
        cuda::conv2d_forward_bf16(device, x.data<float>(), w.data<float>(), ptr(b), y.data<float>(), n, g, o,
                                  p.groups);
      },
      [&](auto) {
        cpu::conv2d_forward_onednn_bf16(x.raw(), w.data<float>(), ptr(b), y.raw(), n, g, o, p.groups,
                                        conv_layouts("conv2d_forward_bf16", x, Tensor(), y), cache);
      });
}

void conv2d_backward_bf16(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx, const Tensor& dw,
                          const Tensor& db, const Conv2dParams& p, bool accumulate_dw, ConvWeightCache* cache) {
  MPNCOV_CHECK(x.defined() && w.defined() && dy.defined(), "conv2d_backward_bf16: undefined tensor");
  check_f32("conv2d_backward_bf16", {&w, &dw, &db});
  check_activations("conv2d_backward_bf16", w, {&x, &dy, &dx});
  const ConvGeometry g = conv_geometry(x.shape(), w.shape(), p);
  const int64_t n = x.dim(0), o = w.dim(0);
  check_shape("conv2d_backward_bf16", "output gradient", dy, Shape{n, o, g.out_h(), g.out_w()});
  check_shape("conv2d_backward_bf16", "input gradient", dx, x.shape());
  check_shape("conv2d_backward_bf16", "weight gradient", dw, w.shape());
  check_shape("conv2d_backward_bf16", "bias gradient", db, Shape{o});
  if (dy.numel() == 0) {
    if (dx.defined()) fill(dx, 0.0);  // dx is written; the accumulated gradients gain nothing
    if (dw.defined() && !accumulate_dw) fill(dw, 0.0);
    if (cache) cache->plan = nullptr;
    return;
  }
  ops::dispatch(
      w,
      [&](auto device) {
        if (dw.defined() && !accumulate_dw) fill(dw, 0.0);  // cuDNN's filter gradient accumulates here
        cuda::conv2d_backward_bf16(device, x.data<float>(), w.data<float>(), dy.data<float>(), mut(dx), mut(dw),
                                   mut(db), n, g, o, p.groups);
      },
      [&](auto) {
        cpu::conv2d_backward_onednn_bf16(x.raw(), w.data<float>(), dy.raw(), dx.defined() ? dx.raw() : nullptr,
                                         mut(dw), mut(db), n, g, o, p.groups,
                                         conv_layouts("conv2d_backward_bf16", x, dx, dy), accumulate_dw, cache);
      });
}

void round_to_bf16(const Tensor& x, const Tensor& y) {
  MPNCOV_CHECK(x.defined() && y.defined(), "round_to_bf16: undefined tensor");
  check_f32("round_to_bf16", {&x, &y});
  MPNCOV_CHECK(x.numel() == y.numel(), "round_to_bf16: ", x.str(), " into ", y.str());
  const float* s = x.data<float>();
  float* d = y.data<float>();
  const int64_t count = x.numel();
  ops::dispatch(
      x, [&](auto device) { cuda::round_to_bf16(device, s, d, count); },
      [&](auto) {
#pragma omp parallel for if (count > (1 << 15))
        for (int64_t i = 0; i < count; ++i) d[i] = half::bf16_to_float(half::float_to_bf16(s[i]));
      });
}

void matmul_bf16(const Tensor& a, const Tensor& b, const Tensor& c, bool trans_a, bool trans_b, double alpha,
                 double beta) {
  MPNCOV_CHECK(a.defined() && b.defined() && c.defined(), "matmul_bf16: undefined tensor");
  check_f32("matmul_bf16", {&a, &b, &c});
  ops::dispatch(
      a,
      [&](auto device) {  // cuBLAS on bfloat16 copies (tensor cores), float32 accumulation
        MPNCOV_CHECK(a.ndim() == b.ndim() && a.ndim() == c.ndim() && (a.ndim() == 2 || a.ndim() == 3),
                     "matmul_bf16: needs three 2-D or three 3-D tensors, got ", a.str(), ", ", b.str(), ", ", c.str());
        const int o = a.ndim() - 2;
        const int64_t batch = o ? a.dim(0) : 1;
        const int64_t m = trans_a ? a.dim(o + 1) : a.dim(o), k = trans_a ? a.dim(o) : a.dim(o + 1);
        const int64_t kb = trans_b ? b.dim(o + 1) : b.dim(o), n = trans_b ? b.dim(o) : b.dim(o + 1);
        MPNCOV_CHECK((!o || (b.dim(0) == batch && c.dim(0) == batch)) && k == kb && c.dim(o) == m && c.dim(o + 1) == n,
                     "matmul_bf16: shapes do not agree: ", a.str(), ", ", b.str(), ", ", c.str());
        cuda::gemm_bf16(device, trans_a, trans_b, m, n, k, static_cast<float>(alpha), a.data<float>(), a.dim(o + 1),
                        a.dim(o) * a.dim(o + 1), b.data<float>(), b.dim(o + 1), b.dim(o) * b.dim(o + 1),
                        static_cast<float>(beta), c.data<float>(), n, m * n, batch);
      },
      [&](auto) {  // the rounded operands multiplied in float32: each product is exact
        Tensor ra = Tensor::empty(a.shape()), rb = Tensor::empty(b.shape());
        round_to_bf16(a, ra);
        round_to_bf16(b, rb);
        matmul(ra, rb, c, trans_a, trans_b, alpha, beta);
      });
}

}  // namespace mpncov::ops
