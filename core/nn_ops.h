// The neural-network ops the layers are written against: convolution, pooling, batch normalisation,
// local response normalisation, softmax cross-entropy, and the small helpers (relu backward, channel
// copies, channel sums). Same conventions as core/ops.h: contiguous row-major NCHW tensors, one device
// and one float dtype per call; outputs are written (=) unless the op says it accumulates (+=).
// Argument checks live in core/nn_ops.cpp; the backends in core/cpu/ and core/cuda/nn_*.cu.
#pragma once
#include <cstdint>
#include <vector>

#include "core/ops.h"

namespace mpncov::ops {

// ---- convolution --------------------------------------------------------------------------------
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};
// The im2col geometry of one group for input x (N, C, H, W) and weight (O, C/groups, kh, kw).
ConvGeometry conv_geometry(const Shape& x, const Shape& weight, const Conv2dParams& p);
// x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O) or undefined -> y (N, O, oh, ow).
void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                    const Conv2dParams& p);
// Forward with an epilogue in the same kernel: y = scale * conv(x) + shift per output channel (scale, shift
// (O)), then + residual when it is defined, then max(y, 0) when relu: an evaluation-mode batch norm, a
// residual add and a ReLU folded in (nets/eval_fusion.h). Only where one kernel does it all: CPU float32
// through oneDNN, which it takes for every layout but NHWC 1x1 convolutions (a GEMM of ours), and with a
// residual only where y is in a kernel layout (not NCHW), the residual in y's layout and shape (it may
// be y itself, holding the residual on entry), the add would not cost the kernel its Winograd algorithm
// (whose kernels take no such post-op) and a kernel takes it writing y's layout (not for an NCHW x and an
// NHWC y adding a separate residual); elsewhere it writes nothing and returns false.
// prepared (may be null): keeps the kernel's operands between calls (see PreparedConv).
struct PreparedConv;
bool conv2d_forward_affine(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                           const Conv2dParams& p, const Tensor& scale, const Tensor& shift, bool relu,
                           PreparedConv* prepared = nullptr, const Tensor& residual = Tensor());
// What a training convolution keeps from its forward pass for its backward pass in mixed precision: its
// weights as the CPU's bfloat16 forward kernel reads them. Forward converts the float32 master weights into
// it; the backward pass right after reads the input-gradient kernel's weights from this copy (a cheaper
// bfloat16 reorder than converting the master weights again) and drops it, so a copy never outlives the
// step it was made in: the next forward converts the weights as they are then (after an update, a load or
// any change). The backward pass uses the weights of the forward before it. Empty (plan null): the
// backward pass converts the master weights. Owned by the layer; only the CPU uses it. PreparedConv below
// keeps one too.
struct ConvWeightCache {
  ConvWeightCache() = default;
  ConvWeightCache(const ConvWeightCache&) = delete;
  ConvWeightCache& operator=(const ConvWeightCache&) = delete;
  ~ConvWeightCache();

  void* data = nullptr;  // 64-byte aligned, `bytes` long
  size_t bytes = 0;
  const void* plan = nullptr;      // the forward plan that filled it (conv_onednn.cpp); null: empty
  const float* weights = nullptr;  // the master weights it holds
};

// What conv2d_forward_affine prepares before its kernel runs, kept between calls where the weights stay
// fixed (an evaluation pass, Net::set_weights_fixed): the weights scaled per output channel in the kernel's
// layout and the folded bias (scale * bias + shift). A call runs from them when they were made for the same
// problem, from a weight tensor at the same address, with the same scale and shift (compared bit for bit,
// so batch-norm statistics that moved are seen); else it makes them again. What is not compared, the values
// of the weights and the bias, the caller answers for. CPU only; empty: weights.plan null.
struct PreparedConv {
  ConvWeightCache weights;                // the scaled weights, their plan and source weight tensor
  std::vector<float> bias, scale, shift;  // the folded bias; the scale and shift it was made with
};

// From dy (N, O, oh, ow): dx (written; undefined: not needed), dweight and dbias (ACCUMULATED;
// undefined: not needed). accumulate_dweight false: dweight is written instead, its old contents never
// read (a gradient known to be zero needs no zeroing first, layers/layer.h's Parameter::overwrite_grad).
// accumulate_dx: dx is added to instead (+=), as one route does in its own passes (a float32 pointwise
// convolution on activations in a kernel layout, conv2d_adds_input_grad) and the others through a buffer.
void conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, const Tensor& dx,
                     const Tensor& dweight, const Tensor& dbias, const Conv2dParams& p,
                     bool accumulate_dweight = true, bool accumulate_dx = false);
// Whether conv2d_backward adds the input gradient (accumulate_dx) within its own passes for such operands:
// x and dy in layouts x_layout and y_layout (else through a buffer and a pass of its own).
bool conv2d_adds_input_grad(const Shape& weight, const Conv2dParams& p, DType dtype, Device device, Layout x_layout,
                            Layout y_layout);

// ---- pooling ------------------------------------------------------------------------------------
struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};
// PyTorch's output size rule: floor or ceil of (in + 2 pad - k) / s + 1, where in ceil mode the last
// window must start inside the input or the left padding.
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode);
// x (N, C, H, W) -> y (N, C, oh, ow); index (int64, y's numel) gets each maximum's position h * W + w
// within its plane (ties pick the first in row-major order; a NaN wins, the last one if several, as in
// PyTorch). An undefined index: the maxima only (evaluation, where no backward reads them).
void max_pool2d_forward(const Tensor& x, const Tensor& y, const Tensor& index, const Pool2dParams& p);
// dx (written) from dy and the forward's index; p is the forward's (CUDA gathers over the windows).
void max_pool2d_backward(const Tensor& dy, const Tensor& index, const Tensor& dx, const Pool2dParams& p);
// Average pooling; dx written. Max and average pooling take activations in any layout (core/layout.h, the
// output in the input's) and bfloat16 storage on the CPU, with the NCHW float32 kernel's results (bfloat16:
// on the widened values, rounded).
void avg_pool2d_forward(const Tensor& x, const Tensor& y, const Pool2dParams& p);
void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const Pool2dParams& p);
// Adaptive average pooling: output cell (i, j) averages rows [floor(i H / oh), ceil((i + 1) H / oh)) and
// the same for columns. x (N, C, H, W) -> y (N, C, oh, ow).
void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& y);
void adaptive_avg_pool2d_backward(const Tensor& dy, const Tensor& dx);

// ---- batch normalisation (per channel, dimension 1; any trailing dimensions) -----------------------
// Training: normalises with the batch mean and biased variance, writes mean and invstd = 1/sqrt(var+eps)
// (C) for the backward, and when running_mean/running_var are defined updates them PyTorch's way:
// r = (1 - momentum) r + momentum * batch statistic, with the unbiased variance.
// weight/bias (C) may be undefined (affine off).
// relu: a ReLU fused in, y = max(0, normalised) in the same pass, bit for bit the batch norm then
// Unary::Relu (nets/train_fusion.h). CPU only (float32, float64, bfloat16 storage; every layout).
// residual (defined: needs relu; x's shape, type and layout; may alias y): a residual add before the ReLU,
// y = max(0, normalised + residual), bit for bit the batch norm then add_relu_forward(its output, residual).
void batch_norm_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                              const Tensor& mean, const Tensor& invstd, const Tensor& running_mean,
                              const Tensor& running_var, double momentum, double eps, bool relu = false,
                              const Tensor& residual = Tensor());
// Evaluation: normalises with the running statistics; writes mean and invstd as above from them.
void batch_norm_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                             const Tensor& mean, const Tensor& invstd, const Tensor& running_mean,
                             const Tensor& running_var, double eps, bool relu = false);
// dx (written, may be undefined), dweight and dbias (ACCUMULATED, may be undefined). training says
// whether the statistics came from the batch (then they depend on x) or were constants.
// relu_out defined: a fused ReLU (CPU only, as the forward's relu): dy is the gradient of that ReLU's
// output relu_out (x's shape and layout; it may be the batch norm's y, overwritten in place), masked by
// relu_out > 0 inside both passes, bit for bit relu_backward(relu_out, dy) then the batch norm backward.
void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         bool training, const Tensor& relu_out = Tensor());

// ---- local response normalisation across channels (PyTorch's LocalResponseNorm) -------------------
// scale_c = k + alpha / size * sum of x_j^2 for j in [c - size/2, c + (size-1)/2]; y = x * scale^-beta.
struct LrnParams {
  int64_t size = 5;
  double alpha = 1e-4, beta = 0.75, k = 1.0;
};
// x (N, C, ...) -> y, and scale (x's shape) kept for the backward.
void lrn_forward(const Tensor& x, const Tensor& y, const Tensor& scale, const LrnParams& p);
void lrn_backward(const Tensor& x, const Tensor& y, const Tensor& scale, const Tensor& dy, const Tensor& dx,
                  const LrnParams& p);

// ---- softmax cross-entropy ----------------------------------------------------------------------
// logits (N, K), labels int64 (N) -> prob (N, K) softmax, loss (one element): the mean over the batch
// of -sum_k q_k log p_k with q = (1 - s) onehot + s / K (s = label_smoothing). A label outside [0, K)
// makes the loss NaN.
void softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& prob,
                                   const Tensor& loss, double label_smoothing);
// dlogits = dloss * (prob - q) / N; dloss is a one-element tensor on the same device.
void softmax_cross_entropy_backward(const Tensor& prob, const Tensor& labels, const Tensor& dloss,
                                    const Tensor& dlogits, double label_smoothing);

// ---- helpers ------------------------------------------------------------------------------------
// dx = dy where y > 0, else 0. dx may alias dy or y (relu runs in place).
void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx);
// A residual add and the ReLU after it in one pass (nets/train_fusion.h), bit for bit the two ops:
// y = max(0, a + b), y may alias a or b; backward: dx0 and dx1 (either undefined, or aliasing dy) = dy
// where y > 0, else 0, as relu_backward. CPU only (float32, float64, bfloat16 storage); all operands of one
// shape and layout.
void add_relu_forward(const Tensor& a, const Tensor& b, const Tensor& y);
void add_relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx0, const Tensor& dx1);
// y += bias (C) per channel (dimension 1), then y = max(0, y) when relu (as Unary::Relu, 0 where not > 0): in
// place, any layout. CPU only, float32 and float64; the epilogue of evaluation fusion's
// commuted average pooling (nets/eval_fusion.h).
void channel_bias(const Tensor& y, const Tensor& bias, bool relu);
// Copies `count` channels (dimension 1) of src, starting at channel src_offset, into dst starting at
// dst_offset, for every batch entry; trailing dimensions must agree. Used by concat and its backward.
// On the CPU also in a kernel layout (both in the same one) and in bfloat16; any offsets (a run of
// channels may start and end inside an nChw16c block).
void copy_channels(const Tensor& src, int64_t src_offset, const Tensor& dst, int64_t dst_offset, int64_t count);

}  // namespace mpncov::ops

namespace mpncov::ops::detail {
// Pooling as the backends see it: planes = N * C images of h x w, each pooled to oh x ow.
struct PoolShape {
  int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;
};
}  // namespace mpncov::ops::detail
