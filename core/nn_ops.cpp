// Argument checks and backend dispatch for core/nn_ops.h.
#include "core/nn_ops.h"

#include <algorithm>
#include <cstdlib>

#include "core/cpu/blocked.h"
#include "core/cpu/nn_cpu.h"
#include "core/cuda_nn_backend.h"
#include "core/dispatch.h"
#include "core/layout_ops.h"

namespace mpncov::ops {
namespace {

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& want) {
  if (!t.defined()) return;
  MPNCOV_CHECK(t.shape() == want, op, ": ", name, " has shape ", t.shape().str(), ", expected ", want.str());
}

void check_numel(const char* op, const char* name, const Tensor& t, int64_t want) {
  if (!t.defined()) return;
  MPNCOV_CHECK(t.numel() == want, op, ": ", name, " has ", t.numel(), " elements (", t.shape().str(), "), expected ",
               want);
}

// x is an activation (float32, float64, or bfloat16 storage); every other defined tensor (per-channel
// tensors, global pooling's output) is of the dtype x computes in (float32 for bfloat16), on x's device.
void check_computed(const char* op, const Tensor& x, std::initializer_list<const Tensor*> others) {
  check_float(op, x, kStorageTypes);
  const DType want = x.dtype() == DType::BF16 ? DType::F32 : x.dtype();
  for (const Tensor* t : others) {
    if (!t->defined()) continue;
    MPNCOV_CHECK(t->device() == x.device(), op, ": tensors on different devices (", x.str(), ", ", t->str(), ")");
    MPNCOV_CHECK(t->dtype() == want, op, ": ", t->str(), " should be ", dtype_name(want), " for the input ", x.str());
  }
}

// Runs f(S{}) with S the storage type of x, float or bfloat16, for the kernels of core/cpu/blocked.h: the
// kernel layouts (check_layouts) and bfloat16 storage in any layout, both CPU-only.
template <typename F>
void blocked(const char* op, const Tensor& x, F&& f) {
  dispatch<kFloat32 | kBfloat16>(
      x, [&](auto) { MPNCOV_FAIL(op, ": layouts and bfloat16 storage are for CPU tensors, got ", x.str()); }, f);
}

// Whether an op on these activations runs the blocked kernels: a kernel layout, or bfloat16 storage.
bool use_blocked(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (t->defined() && t->dtype() == DType::BF16) return true;
  return !is_nchw(tensors);
}

}  // namespace

// ---- convolution --------------------------------------------------------------------------------

ConvGeometry conv_geometry(const Shape& x, const Shape& w, const Conv2dParams& p) {
  MPNCOV_CHECK(x.ndim() == 4, "conv2d: input must be (N, C, H, W), got ", x.str());
  MPNCOV_CHECK(w.ndim() == 4, "conv2d: weight must be (O, C/groups, kh, kw), got ", w.str());
  MPNCOV_CHECK(p.groups >= 1 && x[1] % p.groups == 0 && w[0] % p.groups == 0, "conv2d: ", p.groups,
               " groups do not divide the ", x[1], " input and ", w[0], " output channels");
  MPNCOV_CHECK(w[1] * p.groups == x[1], "conv2d: weight ", w.str(), " expects ", w[1] * p.groups,
               " input channels, the input ", x.str(), " has ", x[1]);
  ConvGeometry g;
  g.channels = x[1] / p.groups;
  g.height = x[2];
  g.width = x[3];
  g.kernel_h = w[2];
  g.kernel_w = w[3];
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.pad_h = p.pad_h;
  g.pad_w = p.pad_w;
  g.dilation_h = p.dilation_h;
  g.dilation_w = p.dilation_w;
  g.validate();
  return g;
}

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dParams& p) {
  check_same("conv2d_forward", {&x, &w, &b, &y});
  const ConvGeometry g = conv_geometry(x.shape(), w.shape(), p);
  const int64_t n = x.dim(0), o = w.dim(0);
  check_shape("conv2d_forward", "bias", b, Shape{o});
  check_shape("conv2d_forward", "output", y, Shape{n, o, g.out_h(), g.out_w()});
  if (n == 0) return;
  if (!is_nchw({&x, &y})) {  // activations in a kernel layout: oneDNN, which takes them as they are
    check_layouts("conv2d_forward", {&x});
    check_layouts("conv2d_forward", {&y});
    if (cpu::conv_nhwc_pointwise(g, p.groups, {x.layout(), y.layout()}))
      return cpu::conv2d_forward_nhwc_pointwise(x.data<float>(), w.data<float>(), ptr<float>(b), y.data<float>(), n,
                                                g, o);
    cpu::conv2d_forward_onednn(x.data<float>(), w.data<float>(), ptr<float>(b), y.data<float>(), n, g, o, p.groups,
                               {x.layout(), y.layout()});
    return;
  }
  dispatch(
      x,
      [&](auto device) {
        cuda::conv2d_forward(device, x.data<float>(), w.data<float>(), ptr<float>(b), y.data<float>(), n, g, o,
                             p.groups);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::conv2d_forward<T>(x.data<T>(), w.data<T>(), ptr<T>(b), y.data<T>(), n, g, o, p.groups);
      });
}

ConvWeightCache::~ConvWeightCache() { std::free(data); }

bool conv2d_forward_affine(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dParams& p,
                           const Tensor& scale, const Tensor& shift, bool relu, PreparedConv* prepared,
                           const Tensor& residual) {
  check_same("conv2d_forward_affine", {&x, &w, &b, &y, &scale, &shift, &residual});
  const ConvGeometry g = conv_geometry(x.shape(), w.shape(), p);
  const int64_t n = x.dim(0), o = w.dim(0);
  check_shape("conv2d_forward_affine", "bias", b, Shape{o});
  check_shape("conv2d_forward_affine", "output", y, Shape{n, o, g.out_h(), g.out_w()});
  check_shape("conv2d_forward_affine", "scale", scale, Shape{o});
  check_shape("conv2d_forward_affine", "shift", shift, Shape{o});
  MPNCOV_CHECK(scale.defined() && shift.defined(), "conv2d_forward_affine: scale and shift are required");
  if (!x.device().is_cpu() || x.dtype() != DType::F32) return false;
  const cpu::ConvLayouts l{x.layout(), y.layout()};
  // oneDNN even where plain forward would run a GEMM of ours on NCHW (1x1 with few channels): its reorders
  // cost less than the passes the fusion saves (bench/RESULTS.md, Evaluation fusion). Not on NHWC 1x1.
  if (cpu::conv_nhwc_pointwise(g, p.groups, l)) return false;
  if (residual.defined()) {
    check_shape("conv2d_forward_affine", "residual", residual, y.shape());
    if (y.layout() == Layout::NCHW || residual.layout() != y.layout()) return false;  // see nn_ops.h
  }
  check_layouts("conv2d_forward_affine", {&x});
  check_layouts("conv2d_forward_affine", {&y});
  if (n == 0) return true;
  return cpu::conv2d_forward_onednn(x.data<float>(), w.data<float>(), ptr<float>(b), y.data<float>(), n, g, o, p.groups,
                                    l, {scale.data<float>(), shift.data<float>(), relu, prepared, ptr<float>(residual)});
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx, const Tensor& dw,
                     const Tensor& db, const Conv2dParams& p, bool accumulate_dw, bool accumulate_dx) {
  check_same("conv2d_backward", {&x, &w, &dy, &dx, &dw, &db});
  const ConvGeometry g = conv_geometry(x.shape(), w.shape(), p);
  const int64_t n = x.dim(0), o = w.dim(0);
  check_shape("conv2d_backward", "output gradient", dy, Shape{n, o, g.out_h(), g.out_w()});
  check_shape("conv2d_backward", "input gradient", dx, x.shape());
  check_shape("conv2d_backward", "weight gradient", dw, w.shape());
  check_shape("conv2d_backward", "bias gradient", db, Shape{o});
  if (n == 0) {
    if (dw.defined() && !accumulate_dw) fill(dw, 0.0);
    return;
  }
  // oneDNN on kernel-layout activations: the one route that adds the input gradient (accumulate_dx) itself;
  // elsewhere the gradient goes to a buffer that is added after.
  const bool onednn = !is_nchw({&x, &dy, &dx}) && !cpu::conv_nhwc_pointwise(g, p.groups, {x.layout(), dy.layout()});
  if (dx.defined() && accumulate_dx && !onednn) {
    Tensor part = Tensor::empty(dx.shape(), dx.dtype(), dx.device()).with_layout(dx.layout());
    conv2d_backward(x, w, dy, part, dw, db, p, accumulate_dw);
    axpby(1.0, part, 1.0, dx);
    return;
  }
  if (!is_nchw({&x, &dy, &dx})) {
    check_layouts("conv2d_backward", {&x, &dx});
    check_layouts("conv2d_backward", {&dy});
    if (!onednn)
      return cpu::conv2d_backward_nhwc_pointwise(x.data<float>(), w.data<float>(), dy.data<float>(), ptr<float>(dx),
                                                 ptr<float>(dw), ptr<float>(db), n, g, o, accumulate_dw);
    return cpu::conv2d_backward_onednn(x.data<float>(), w.data<float>(), dy.data<float>(), ptr<float>(dx),
                                       ptr<float>(dw), ptr<float>(db), n, g, o, p.groups, {x.layout(), dy.layout()},
                                       accumulate_dw, accumulate_dx);
  }
  if (dw.defined() && !accumulate_dw) fill(dw, 0.0);  // the routes below accumulate
  dispatch(
      x,
      [&](auto device) {
        cuda::conv2d_backward(device, x.data<float>(), w.data<float>(), dy.data<float>(), ptr<float>(dx),
                              ptr<float>(dw), ptr<float>(db), n, g, o, p.groups);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::conv2d_backward<T>(x.data<T>(), w.data<T>(), dy.data<T>(), ptr<T>(dx), ptr<T>(dw), ptr<T>(db), n, g, o,
                                p.groups);
      });
}

bool conv2d_adds_input_grad(const Shape& weight, const Conv2dParams& p, DType dtype, Device device, Layout x_layout,
                            Layout y_layout) {
  // The oneDNN route's pointwise case (cpu::conv2d_backward_onednn): not NCHW, nor NHWC's GEMM route.
  const bool pointwise = weight.ndim() == 4 && weight[2] == 1 && weight[3] == 1 && p.stride_h == 1 &&
                         p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0 && p.groups == 1;
  return pointwise && dtype == DType::F32 && device.is_cpu() && x_layout != Layout::NCHW &&
         y_layout != Layout::NCHW && !(x_layout == Layout::NHWC && y_layout == Layout::NHWC);
}

// ---- pooling ------------------------------------------------------------------------------------

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode) {
  MPNCOV_CHECK(kernel > 0 && stride > 0 && pad >= 0, "pooling: kernel and stride must be positive, padding "
               "non-negative (kernel ", kernel, ", stride ", stride, ", padding ", pad, ")");
  MPNCOV_CHECK(pad * 2 <= kernel, "pooling: padding ", pad, " must be at most half the kernel size ", kernel);
  const int64_t span = in + 2 * pad - kernel;
  MPNCOV_CHECK(span >= 0, "pooling: kernel ", kernel, " is larger than the padded input ", in + 2 * pad);
  int64_t out = (span + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  // In ceil mode the last window must start inside the input or its left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

namespace {
detail::PoolShape pool_shape(const char* op, const Tensor& x, const Tensor& y) {
  MPNCOV_CHECK(x.ndim() == 4 && y.ndim() == 4 && x.dim(0) == y.dim(0) && x.dim(1) == y.dim(1), op,
               ": needs (N, C, H, W) input and output with the same N and C, got ", x.shape().str(), " and ",
               y.shape().str());
  detail::PoolShape s;
  s.planes = x.dim(0) * x.dim(1);
  s.h = x.dim(2);
  s.w = x.dim(3);
  s.oh = y.dim(2);
  s.ow = y.dim(3);
  return s;
}

void check_pool(const char* op, const detail::PoolShape& s, const Pool2dParams& p) {
  const int64_t oh = pool_output_size(s.h, p.kernel_h, p.stride_h, p.pad_h, p.ceil_mode);
  const int64_t ow = pool_output_size(s.w, p.kernel_w, p.stride_w, p.pad_w, p.ceil_mode);
  MPNCOV_CHECK(s.oh == oh && s.ow == ow, op, ": output is ", s.oh, "x", s.ow, ", the parameters give ", oh, "x", ow);
}

void check_index(const char* op, const Tensor& index, const Tensor& like, bool optional = false) {
  if (optional && !index.defined()) return;
  MPNCOV_CHECK(index.defined() && index.dtype() == DType::I64 && index.device() == like.device() &&
                   index.numel() == like.numel(),
               op, ": index must be int64 with one element per output, on the output's device");
}
}  // namespace

void max_pool2d_forward(const Tensor& x, const Tensor& y, const Tensor& index, const Pool2dParams& p) {
  check_same("max_pool2d_forward", {&x, &y}, kStorageTypes);
  const detail::PoolShape s = pool_shape("max_pool2d_forward", x, y);
  check_pool("max_pool2d_forward", s, p);
  check_index("max_pool2d_forward", index, y, /*optional=*/true);
  int64_t* at = index.defined() ? index.data<int64_t>() : nullptr;
  if (y.numel() == 0) return;
  if (use_blocked({&x, &y})) {
    check_layouts("max_pool2d_forward", {&x, &y});
    return blocked("max_pool2d_forward", x, [&](auto zero) {
      using S = decltype(zero);
      cpu::max_pool_blocked_forward<S>(x.data<S>(), y.data<S>(), at, s, p,
                                       layout_block(x.layout(), x.dim(1)));
    });
  }
  dispatch(
      x,
      [&](auto device) {
        cuda::max_pool2d_forward(device, x.data<float>(), y.data<float>(), at, s, p);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::max_pool2d_forward<T>(x.data<T>(), y.data<T>(), at, s, p);
      });
}

void max_pool2d_backward(const Tensor& dy, const Tensor& index, const Tensor& dx, const Pool2dParams& p) {
  check_same("max_pool2d_backward", {&dy, &dx}, kStorageTypes);
  const detail::PoolShape s = pool_shape("max_pool2d_backward", dx, dy);
  check_pool("max_pool2d_backward", s, p);
  check_index("max_pool2d_backward", index, dy);
  if (dx.numel() == 0) return;
  if (use_blocked({&dy, &dx})) {
    check_layouts("max_pool2d_backward", {&dy, &dx});
    return blocked("max_pool2d_backward", dx, [&](auto zero) {
      using S = decltype(zero);
      cpu::max_pool_blocked_backward<S>(dy.data<S>(), index.data<int64_t>(), dx.data<S>(), s, p,
                                        layout_block(dx.layout(), dx.dim(1)));
    });
  }
  dispatch(
      dy,
      [&](auto device) {
        cuda::max_pool2d_backward(device, dy.data<float>(), index.data<int64_t>(), dx.data<float>(), s, p);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::max_pool2d_backward<T>(dy.data<T>(), index.data<int64_t>(), dx.data<T>(), s);
      });
}

void avg_pool2d_forward(const Tensor& x, const Tensor& y, const Pool2dParams& p) {
  check_same("avg_pool2d_forward", {&x, &y}, kStorageTypes);
  const detail::PoolShape s = pool_shape("avg_pool2d_forward", x, y);
  check_pool("avg_pool2d_forward", s, p);
  check_layouts("avg_pool2d_forward", {&x, &y});
  if (y.numel() == 0) return;
  if (use_blocked({&x, &y}))
    return blocked("avg_pool2d_forward", x, [&](auto zero) {
      using S = decltype(zero);
      cpu::avg_pool_blocked_forward<S>(x.data<S>(), y.data<S>(), s, p, layout_block(x.layout(), x.dim(1)));
    });
  dispatch(
      x, [&](auto device) { cuda::avg_pool2d_forward(device, x.data<float>(), y.data<float>(), s, p); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::avg_pool2d_forward<T>(x.data<T>(), y.data<T>(), s, p);
      });
}

void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const Pool2dParams& p) {
  check_same("avg_pool2d_backward", {&dy, &dx}, kStorageTypes);
  const detail::PoolShape s = pool_shape("avg_pool2d_backward", dx, dy);
  check_pool("avg_pool2d_backward", s, p);
  check_layouts("avg_pool2d_backward", {&dy, &dx});
  if (dx.numel() == 0) return;
  if (use_blocked({&dy, &dx}))
    return blocked("avg_pool2d_backward", dx, [&](auto zero) {
      using S = decltype(zero);
      cpu::avg_pool_blocked_backward<S>(dy.data<S>(), dx.data<S>(), s, p, layout_block(dx.layout(), dx.dim(1)));
    });
  dispatch(
      dy, [&](auto device) { cuda::avg_pool2d_backward(device, dy.data<float>(), dx.data<float>(), s, p); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::avg_pool2d_backward<T>(dy.data<T>(), dx.data<T>(), s, p);
      });
}

void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& y) {
  const char* op = "adaptive_avg_pool2d_forward";
  check_computed(op, x, {&y});  // a bfloat16 input pools into float32
  const detail::PoolShape s = pool_shape(op, x, y);
  MPNCOV_CHECK(s.oh > 0 && s.ow > 0 && s.h > 0 && s.w > 0, "adaptive_avg_pool2d_forward: empty input or output");
  // Global pooling of an activation in a kernel layout or in bfloat16; y (N, C, 1, 1) is the same in all layouts.
  if (use_blocked({&x})) {
    check_layouts(op, {&x});
    MPNCOV_CHECK(s.oh == 1 && s.ow == 1 && y.layout() == Layout::NCHW, op, ": input ", x.str(),
                 " takes global pooling only, to an NCHW output, got ", y.str());
    return blocked(op, x, [&](auto zero) {
      using S = decltype(zero);
      cpu::global_avg_pool_blocked_forward<S>(x.data<S>(), y.data<float>(), x.dim(0), x.dim(1), s.h * s.w,
                                              layout_block(x.layout(), x.dim(1)));
    });
  }
  dispatch(
      x, [&](auto device) { cuda::adaptive_avg_pool2d_forward(device, x.data<float>(), y.data<float>(), s); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::adaptive_avg_pool2d_forward<T>(x.data<T>(), y.data<T>(), s);
      });
}

void adaptive_avg_pool2d_backward(const Tensor& dy, const Tensor& dx) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_computed(op, dx, {&dy});  // a bfloat16 input gradient from a float32 one
  const detail::PoolShape s = pool_shape(op, dx, dy);
  MPNCOV_CHECK(s.oh > 0 && s.ow > 0 && s.h > 0 && s.w > 0, "adaptive_avg_pool2d_backward: empty input or output");
  if (use_blocked({&dx})) {
    check_layouts(op, {&dx});
    MPNCOV_CHECK(s.oh == 1 && s.ow == 1 && dy.layout() == Layout::NCHW, op, ": input gradient ", dx.str(),
                 " takes global pooling only, from an NCHW gradient, got ", dy.str());
    return blocked(op, dx, [&](auto zero) {
      using S = decltype(zero);
      cpu::global_avg_pool_blocked_backward<S>(dy.data<float>(), dx.data<S>(), dx.dim(0), dx.dim(1), s.h * s.w,
                                               layout_block(dx.layout(), dx.dim(1)));
    });
  }
  dispatch(
      dy, [&](auto device) { cuda::adaptive_avg_pool2d_backward(device, dy.data<float>(), dx.data<float>(), s); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::adaptive_avg_pool2d_backward<T>(dy.data<T>(), dx.data<T>(), s);
      });
}

// ---- batch normalisation ------------------------------------------------------------------------

namespace {
void batch_norm_forward(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                        const Tensor& mean, const Tensor& invstd, const Tensor& running_mean, const Tensor& running_var,
                        bool training, double momentum, double eps, bool relu, const Tensor& residual) {
  check_same(op, {&x, &y, &residual}, kStorageTypes);
  MPNCOV_CHECK(!relu || x.device().is_cpu(), op, ": a fused ReLU is for CPU tensors, got ", x.str());
  MPNCOV_CHECK(!residual.defined() || relu, op, ": a fused residual add comes with its ReLU");
  check_computed(op, x, {&weight, &bias, &mean, &invstd, &running_mean, &running_var});  // float32 for bfloat16
  MPNCOV_CHECK(x.ndim() >= 2, op, ": input must be (N, C, ...), got ", x.shape().str());
  MPNCOV_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  MPNCOV_CHECK(mean.defined() && invstd.defined() && y.defined(), op, ": output, mean and invstd are required");
  const int64_t n = x.dim(0), c = x.dim(1), inner = x.shape().product(2, x.ndim());
  check_shape(op, "output", y, x.shape());
  check_shape(op, "residual", residual, x.shape());
  for (const Tensor* t : {&weight, &bias, &mean, &invstd, &running_mean, &running_var})
    check_numel(op, "a per-channel tensor", *t, c);
  MPNCOV_CHECK(running_mean.defined() == running_var.defined(), op, ": running mean and variance come together");
  MPNCOV_CHECK(training || running_mean.defined(), op, ": evaluation needs the running statistics");
  MPNCOV_CHECK(!training || n * inner > 1, op, ": training needs more than one value per channel, got input ",
               x.shape().str());
  if (x.numel() == 0) return;
  if (use_blocked({&x, &y, &residual})) {
    check_layouts(op, {&x, &y, &residual});
    return blocked(op, x, [&](auto zero) {
      using S = decltype(zero);
      cpu::batch_norm_forward_blocked<S>(x.data<S>(), ptr<float>(weight), ptr<float>(bias), y.data<S>(),
                                         mean.data<float>(), invstd.data<float>(), ptr<float>(running_mean),
                                         ptr<float>(running_var), n, c, inner, layout_block(x.layout(), c), training,
                                         momentum, eps, relu, ptr<S>(residual));
    });
  }
  dispatch(
      x,
      [&](auto device) {
        cuda::batch_norm_forward(device, x.data<float>(), ptr<float>(weight), ptr<float>(bias), y.data<float>(),
                                 mean.data<float>(), invstd.data<float>(), ptr<float>(running_mean),
                                 ptr<float>(running_var), n, c, inner, training, momentum, eps);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::batch_norm_forward<T>(x.data<T>(), ptr<T>(weight), ptr<T>(bias), y.data<T>(), mean.data<T>(),
                                   invstd.data<T>(), ptr<T>(running_mean), ptr<T>(running_var), n, c, inner, training,
                                   momentum, eps, relu, ptr<T>(residual));
      });
}
}  // namespace

void batch_norm_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                              const Tensor& mean, const Tensor& invstd, const Tensor& running_mean,
                              const Tensor& running_var, double momentum, double eps, bool relu,
                              const Tensor& residual) {
  MPNCOV_CHECK(momentum >= 0 && momentum <= 1, "batch_norm_forward_train: momentum ", momentum, " outside [0, 1]");
  batch_norm_forward("batch_norm_forward_train", x, weight, bias, y, mean, invstd, running_mean, running_var, true,
                     momentum, eps, relu, residual);
}

void batch_norm_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                             const Tensor& mean, const Tensor& invstd, const Tensor& running_mean,
                             const Tensor& running_var, double eps, bool relu) {
  batch_norm_forward("batch_norm_forward_eval", x, weight, bias, y, mean, invstd, running_mean, running_var, false, 0,
                     eps, relu, Tensor());
}

void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         bool training, const Tensor& relu_out) {
  const char* op = "batch_norm_backward";
  check_same(op, {&x, &dy, &dx, &relu_out}, kStorageTypes);
  if (relu_out.defined()) {
    MPNCOV_CHECK(x.device().is_cpu(), op, ": a fused ReLU is for CPU tensors, got ", x.str());
    check_shape(op, "ReLU output", relu_out, x.shape());
  }
  check_computed(op, x, {&weight, &mean, &invstd, &dweight, &dbias});  // float32 for bfloat16
  MPNCOV_CHECK(x.ndim() >= 2, op, ": input must be (N, C, ...), got ", x.shape().str());
  const int64_t n = x.dim(0), c = x.dim(1), inner = x.shape().product(2, x.ndim());
  check_shape(op, "output gradient", dy, x.shape());
  check_shape(op, "input gradient", dx, x.shape());
  MPNCOV_CHECK(mean.defined() && invstd.defined(), op, ": mean and invstd are required");
  for (const Tensor* t : {&weight, &mean, &invstd, &dweight, &dbias}) check_numel(op, "a per-channel tensor", *t, c);
  if (x.numel() == 0) return;
  if (use_blocked({&x, &dy, &dx, &relu_out})) {
    check_layouts(op, {&x, &dy, &dx, &relu_out});
    return blocked(op, x, [&](auto zero) {
      using S = decltype(zero);
      cpu::batch_norm_backward_blocked<S>(x.data<S>(), dy.data<S>(), ptr<S>(relu_out), ptr<float>(weight), mean.data<float>(),
                                          invstd.data<float>(), ptr<S>(dx), ptr<float>(dweight), ptr<float>(dbias), n,
                                          c, inner, layout_block(x.layout(), c), training);
    });
  }
  dispatch(
      x,
      [&](auto device) {
        cuda::batch_norm_backward(device, x.data<float>(), dy.data<float>(), ptr<float>(weight), mean.data<float>(),
                                  invstd.data<float>(), ptr<float>(dx), ptr<float>(dweight), ptr<float>(dbias), n, c,
                                  inner, training);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::batch_norm_backward<T>(x.data<T>(), dy.data<T>(), ptr<T>(relu_out), ptr<T>(weight), mean.data<T>(), invstd.data<T>(),
                                    ptr<T>(dx), ptr<T>(dweight), ptr<T>(dbias), n, c, inner, training);
      });
}

// ---- local response normalisation ---------------------------------------------------------------

void lrn_forward(const Tensor& x, const Tensor& y, const Tensor& scale, const LrnParams& p) {
  check_same("lrn_forward", {&x, &y, &scale});
  MPNCOV_CHECK(x.ndim() >= 2, "lrn_forward: input must be (N, C, ...), got ", x.shape().str());
  MPNCOV_CHECK(p.size >= 1, "lrn_forward: size must be at least 1, got ", p.size);
  check_shape("lrn_forward", "output", y, x.shape());
  check_shape("lrn_forward", "scale", scale, x.shape());
  MPNCOV_CHECK(y.defined() && scale.defined(), "lrn_forward: output and scale are required");
  const int64_t n = x.dim(0), c = x.dim(1), inner = x.shape().product(2, x.ndim());
  if (x.numel() == 0) return;
  dispatch(
      x,
      [&](auto device) {
        cuda::lrn_forward(device, x.data<float>(), y.data<float>(), scale.data<float>(), n, c, inner, p);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::lrn_forward<T>(x.data<T>(), y.data<T>(), scale.data<T>(), n, c, inner, p);
      });
}

void lrn_backward(const Tensor& x, const Tensor& y, const Tensor& scale, const Tensor& dy, const Tensor& dx,
                  const LrnParams& p) {
  check_same("lrn_backward", {&x, &y, &scale, &dy, &dx});
  MPNCOV_CHECK(x.ndim() >= 2, "lrn_backward: input must be (N, C, ...), got ", x.shape().str());
  for (const Tensor* t : {&y, &scale, &dy, &dx}) {
    MPNCOV_CHECK(t->defined(), "lrn_backward: every tensor is required");
    check_shape("lrn_backward", "a tensor", *t, x.shape());
  }
  const int64_t n = x.dim(0), c = x.dim(1), inner = x.shape().product(2, x.ndim());
  if (x.numel() == 0) return;
  dispatch(
      x,
      [&](auto device) {
        cuda::lrn_backward(device, x.data<float>(), y.data<float>(), scale.data<float>(), dy.data<float>(),
                           dx.data<float>(), n, c, inner, p);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::lrn_backward<T>(x.data<T>(), y.data<T>(), scale.data<T>(), dy.data<T>(), dx.data<T>(), n, c, inner, p);
      });
}

// ---- softmax cross-entropy ----------------------------------------------------------------------

namespace {
void check_labels(const char* op, const Tensor& labels, const Tensor& like, int64_t n) {
  MPNCOV_CHECK(labels.defined() && labels.dtype() == DType::I64 && labels.device() == like.device(), op,
               ": labels must be int64 on the logits' device, got ", labels.defined() ? labels.str() : "undefined");
  MPNCOV_CHECK(labels.numel() == n, op, ": ", labels.numel(), " labels for ", n, " rows of logits");
}
}  // namespace

void softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& prob, const Tensor& loss,
                                   double smoothing) {
  const char* op = "softmax_cross_entropy_forward";
  check_same(op, {&logits, &prob, &loss});
  MPNCOV_CHECK(logits.ndim() == 2 && logits.dim(1) > 0, op, ": logits must be (N, K), got ", logits.shape().str());
  MPNCOV_CHECK(smoothing >= 0 && smoothing <= 1, op, ": label smoothing ", smoothing, " outside [0, 1]");
  const int64_t n = logits.dim(0), k = logits.dim(1);
  check_labels(op, labels, logits, n);
  MPNCOV_CHECK(prob.defined() && loss.defined(), op, ": prob and loss are required");
  check_shape(op, "prob", prob, logits.shape());
  check_numel(op, "loss", loss, 1);
  dispatch(
      logits,
      [&](auto device) {
        cuda::softmax_cross_entropy_forward(device, logits.data<float>(), labels.data<int64_t>(), prob.data<float>(),
                                            loss.data<float>(), n, k, smoothing);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::softmax_cross_entropy_forward<T>(logits.data<T>(), labels.data<int64_t>(), prob.data<T>(),
                                              loss.data<T>(), n, k, smoothing);
      });
}

void softmax_cross_entropy_backward(const Tensor& prob, const Tensor& labels, const Tensor& dloss,
                                    const Tensor& dlogits, double smoothing) {
  const char* op = "softmax_cross_entropy_backward";
  check_same(op, {&prob, &dloss, &dlogits});
  MPNCOV_CHECK(prob.ndim() == 2, op, ": prob must be (N, K), got ", prob.shape().str());
  const int64_t n = prob.dim(0), k = prob.dim(1);
  check_labels(op, labels, prob, n);
  MPNCOV_CHECK(dloss.defined() && dlogits.defined(), op, ": dloss and dlogits are required");
  check_numel(op, "dloss", dloss, 1);
  check_shape(op, "dlogits", dlogits, prob.shape());
  dispatch(
      prob,
      [&](auto device) {
        cuda::softmax_cross_entropy_backward(device, prob.data<float>(), labels.data<int64_t>(), dloss.data<float>(),
                                             dlogits.data<float>(), n, k, smoothing);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::softmax_cross_entropy_backward<T>(prob.data<T>(), labels.data<int64_t>(), dloss.data<T>(),
                                               dlogits.data<T>(), n, k, smoothing);
      });
}

// ---- helpers ------------------------------------------------------------------------------------

void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  check_same("relu_backward", {&y, &dy, &dx}, kStorageTypes);
  MPNCOV_CHECK(dy.defined() && dx.defined(), "relu_backward: dy and dx are required");
  check_numel("relu_backward", "dy", dy, y.numel());
  check_numel("relu_backward", "dx", dx, y.numel());
  if (y.numel() == 0) return;
  dispatch<kStorageTypes>(
      y,
      [&](auto device) {
        cuda::relu_backward(device, y.data<float>(), dy.data<float>(), dx.data<float>(), y.numel());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::relu_backward<T>(y.data<T>(), dy.data<T>(), dx.data<T>(), y.numel());
      });
}

void add_relu_forward(const Tensor& a, const Tensor& b, const Tensor& y) {
  const char* op = "add_relu_forward";
  check_same(op, {&a, &b, &y}, kStorageTypes);
  MPNCOV_CHECK(a.defined() && b.defined() && y.defined(), op, ": a, b and y are required");
  MPNCOV_CHECK(a.device().is_cpu(), op, ": a fused ReLU is for CPU tensors, got ", a.str());
  check_shape(op, "b", b, a.shape());
  check_shape(op, "output", y, a.shape());
  check_layouts(op, {&a, &b, &y});
  dispatch<kStorageTypes>(
      a, [&](auto) {},
      [&](auto zero) {
        using T = decltype(zero);
        cpu::add_relu_forward<T>(a.data<T>(), b.data<T>(), y.data<T>(), a.numel());
      });
}

void add_relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx0, const Tensor& dx1) {
  const char* op = "add_relu_backward";
  check_same(op, {&y, &dy, &dx0, &dx1}, kStorageTypes);
  MPNCOV_CHECK(y.defined() && dy.defined(), op, ": y and dy are required");
  MPNCOV_CHECK(y.device().is_cpu(), op, ": a fused ReLU is for CPU tensors, got ", y.str());
  check_shape(op, "output gradient", dy, y.shape());
  check_shape(op, "first input gradient", dx0, y.shape());
  check_shape(op, "second input gradient", dx1, y.shape());
  check_layouts(op, {&y, &dy, &dx0, &dx1});
  dispatch<kStorageTypes>(
      y, [&](auto) {},
      [&](auto zero) {
        using T = decltype(zero);
        cpu::add_relu_backward<T>(y.data<T>(), dy.data<T>(), ptr<T>(dx0), ptr<T>(dx1), y.numel());
      });
}

void channel_bias(const Tensor& y, const Tensor& bias, bool relu) {
  const char* op = "channel_bias";
  check_same(op, {&y, &bias});
  MPNCOV_CHECK(y.defined() && bias.defined(), op, ": y and bias are required");
  MPNCOV_CHECK(y.device().is_cpu(), op, ": CPU tensors only, got ", y.str());
  MPNCOV_CHECK(y.ndim() >= 2, op, ": y must be (N, C, ...), got ", y.shape().str());
  const int64_t c = y.dim(1), inner = y.shape().product(2, y.ndim());
  check_numel(op, "bias", bias, c);
  check_layouts(op, {&y});
  const int64_t block = layout_block(y.layout(), c);
  dispatch(
      y, [&](auto) {},  // refused above
      [&](auto zero) {
        using T = decltype(zero);
        cpu::channel_bias<T>(y.data<T>(), bias.data<T>(), y.dim(0) * (c / block), c, block, inner, relu);
      });
}

void copy_channels(const Tensor& src, int64_t src_offset, const Tensor& dst, int64_t dst_offset, int64_t count) {
  check_same("copy_channels", {&src, &dst}, kStorageTypes);
  check_layouts("copy_channels", {&src, &dst});
  MPNCOV_CHECK(src.ndim() >= 2 && dst.ndim() == src.ndim() && src.dim(0) == dst.dim(0), "copy_channels: ",
               src.shape().str(), " and ", dst.shape().str(), " must both be (N, C, ...) with the same N");
  for (int i = 2; i < src.ndim(); ++i)
    MPNCOV_CHECK(src.dim(i) == dst.dim(i), "copy_channels: trailing dimensions differ: ", src.shape().str(), " and ",
                 dst.shape().str());
  MPNCOV_CHECK(count >= 0 && src_offset >= 0 && dst_offset >= 0 && src_offset + count <= src.dim(1) &&
                   dst_offset + count <= dst.dim(1),
               "copy_channels: channels [", src_offset, ", ", src_offset + count, ") of ", src.shape().str(),
               " into [", dst_offset, ", ", dst_offset + count, ") of ", dst.shape().str(), " are out of range");
  const int64_t n = src.dim(0), inner = src.shape().product(2, src.ndim());
  if (n == 0 || count == 0 || inner == 0) return;
  if (use_blocked({&src, &dst}))  // each side in its own channel blocks; the offsets need not be aligned
    return blocked("copy_channels", src, [&](auto zero) {
      using S = decltype(zero);
      cpu::copy_channels_blocked<S>(src.data<S>(), src.dim(1), layout_block(src.layout(), src.dim(1)), src_offset,
                                    dst.data<S>(), dst.dim(1), layout_block(dst.layout(), dst.dim(1)), dst_offset,
                                    count, n, inner);
    });
  dispatch(
      src,
      [&](auto device) {
        cuda::copy_channels(device, src.data<float>(), src.dim(1), src_offset, dst.data<float>(), dst.dim(1),
                            dst_offset, count, n, inner);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::copy_channels<T>(src.data<T>(), src.dim(1), src_offset, dst.data<T>(), dst.dim(1), dst_offset, count, n,
                              inner);
      });
}

}  // namespace mpncov::ops
