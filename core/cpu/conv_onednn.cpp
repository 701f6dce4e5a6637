// Float32 convolution on the CPU through oneDNN (Debian's libdnnl), which is to the CPU what cuDNN is to
// the GPU: JIT direct-convolution kernels on blocked layouts (nChw16c), much faster than im2col + GEMM on
// 3x3 layers (bench/RESULTS.md, the layer tables before and after). An NCHW activation is reordered into
// the layout the chosen kernel wants and the result back; an activation already in one of the kernels'
// layouts (NHWC or nChw16c, core/layout.h: a net keeps them between layers that understand them) is used
// as it is, the kernel being asked for that layout, so it needs no reorder. Float64 keeps the im2col + GEMM path (conv.cpp):
// oneDNN has no double kernels, and the gradient checks need double.
//
// bfloat16 (mixed precision): the same plans with bfloat16 operands for the multiplications (input and weights
// forward; output gradient and weights for the input gradient; input and output gradient for the weight
// gradient), float32 weights, bias and their gradients. Activations stored in bfloat16 (a net's planned
// layouts in mixed precision, docs/layouts.md) go to the kernels as they are and the kernels write
// bfloat16 outputs and input gradients; float32 activations (at a net's boundaries) are rounded to bfloat16
// (nearest even) by the reorders into the kernel's layout, and float32 results come back. The kernels
// accumulate in float32.
//
// Forward may end in an epilogue (ConvEpilogue), so an evaluation-mode batch norm and ReLU cost no pass of
// their own: the per-output-channel scale multiplies the weights as the reorder into the kernel's layout
// copies them (a reorder with output scales, nearly free), the shift is added to the bias, and the ReLU is
// an eltwise post-op. (oneDNN's binary post-ops would do the scale and shift on the output, but they made
// 3x3 and 1x1 convolutions here up to 2x slower.) A residual add comes before the ReLU: a binary add
// post-op reading the residual tensor (no broadcast: within a few percent of the sum post-op here, far below
// a pass of its own), or a sum post-op where the residual is the output's own storage (a residual add in
// place on it).
//
// Float32 3x3 convolutions with stride 1 run oneDNN's Winograd kernel (F(4x4, 3x3): forward, input and
// weight gradients) where conv_wants_winograd says so, the direct one elsewhere and wherever oneDNN has no
// Winograd kernel for the problem (the plan falls back). A float32 1 x r or r x 1 forward, its input
// gradient and (without a bias) its weight gradient, go to our own one-axis Winograd (conv_winograd_1d.cpp)
// where conv_winograd_1d says so; so does a 5x5 forward, and an evaluation forward of a 3x3 layer on 7x7 or
// 8x8 where conv_winograd_1d_forward says so. A forward of a deep 3x3 layer on whole 7x7 tiles, and in
// training its input gradient, go to our F(7x7, 3x3) (conv_winograd_2d.cpp) where conv_winograd_2d_forward
// and conv_winograd_2d_backward_data say so.
//
// Plans (primitive descriptors, primitives and reorders) are built once per problem shape and kept;
// blocked copies live in per-role scratch buffers that only grow, so a steady-state step allocates
// nothing. DNNL_VERBOSE=1 in the environment prints the kernel oneDNN chose for each call.
#include <oneapi/dnnl/dnnl.hpp>

#include <cpuid.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cpu/blocked_weights.h"
#include "core/cpu/nn_cpu.h"
#include "core/cpu/onednn_support.h"
#include "core/error.h"
#include "core/mixed_ops.h"

namespace mpncov::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr memory::data_type kF32 = memory::data_type::f32;
constexpr memory::data_type kBF16 = memory::data_type::bf16;

dnnl::engine& engine() { return onednn_engine(); }

// One growable, 64-byte aligned buffer per role, so operands of one call never alias.
enum Slot { kSrc, kWeights, kDst, kDiffDst, kDiffDstW, kDiffWeights, kDiffBias, kStrided, kScratchpad, kSlots };

void* scratch(Slot slot, size_t bytes) {
  static ScratchBuffer buffers[kSlots];
  return buffers[slot].reserve(bytes, "convolution");
}

// oneDNN's scratchpad for one primitive (user mode: it lives in our scratch, not allocated per call).
memory scratchpad(size_t bytes) {
  return memory(memory::desc({static_cast<int64_t>(bytes)}, memory::data_type::u8, Tag::x), engine(),
                scratch(kScratchpad, bytes));
}

// An operand in our layout and in the kernel's, with the reorder between them when the two differ. A float32
// weight gradient tiled 16x16 comes back through our copy (blocked_weights.h): oneDNN's reorder, accumulating,
// took 2.5-7 ms for a 512 x 2048 or 2048 x 2048 1x1 layer's, ours 0.3-1 (bench/RESULTS.md).
struct Operand {
  memory::desc ours, kernel;
  dnnl::reorder reorder;
  bool needs_reorder = false;
  bool tiled_weights = false;  // an output: ours plain (O, I, kh, kw), the kernel's tiled 16x16
  bool accumulate = false;

  Operand() = default;
  // to_kernel: ours -> kernel (inputs); otherwise kernel -> ours (outputs), accumulating if asked.
  Operand(const memory::desc& ours_md, const memory::desc& kernel_md, bool to_kernel, bool accumulate_into = false)
      : ours(ours_md), kernel(kernel_md), needs_reorder(accumulate_into || ours_md != kernel_md),
        accumulate(accumulate_into) {
    if (!needs_reorder) return;
    tiled_weights = !to_kernel && ours_md != kernel_md && blocked_weights_fit(ours_md, kernel_md);
    if (tiled_weights) return;
    dnnl::primitive_attr attr;
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    const memory::desc& from = to_kernel ? ours : kernel;
    const memory::desc& to = to_kernel ? kernel : ours;
    reorder = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to, attr));
  }

  // The operand in the kernel's layout: `data` itself or its reordered copy in `slot`.
  memory input(const void* data, Slot slot, dnnl::stream& s) const {
    memory user(ours, engine(), const_cast<void*>(data));
    if (!needs_reorder) return user;
    memory copy(kernel, engine(), scratch(slot, kernel.get_size()));
    reorder.execute(s, user, copy);
    return copy;
  }
  // Where the kernel writes the result: `data` itself or a buffer in `slot` that finish() reorders.
  memory output(void* data, Slot slot) const {
    return needs_reorder ? memory(kernel, engine(), scratch(slot, kernel.get_size()))
                         : memory(ours, engine(), data);
  }
  void finish(memory result, void* data, dnnl::stream& s) const {
    if (!needs_reorder) return;
    if (tiled_weights) {
      s.wait();  // the kernel's result complete before our copy reads it
      weights_from_blocked(static_cast<const float*>(result.get_data_handle()), static_cast<float*>(data), kernel,
                           accumulate);
      return;
    }
    memory user(ours, engine(), data);
    reorder.execute(s, result, user);
  }
};

Tag tag_of(Layout l) {
  switch (l) {
    case Layout::NCHW: return Tag::nchw;
    case Layout::NHWC: return Tag::nhwc;
    case Layout::Blocked16: return Tag::nChw16c;
  }
  return Tag::nchw;
}

// The shape of one convolution problem in oneDNN's terms.
struct Problem {
  memory::dims src, weights, bias, dst, strides, dilates, pad_l, pad_r;
  Tag weights_tag;
  memory::data_type mul;  // the type the kernels multiply in: float32, or bfloat16 (mixed precision)
  Layout src_layout, dst_layout;  // of our activations (and their gradients)
  memory::data_type src_type, dst_type;  // likewise: float32, or bfloat16 in mixed precision
  // Whether the kernels are asked for our layout of the activations (else they choose; ours is reordered).
  bool pin = true;
  bool winograd = false;  // asks for the Winograd algorithm (else direct)
  bool affine = false, relu = false;  // the forward epilogue (ConvEpilogue): scaled weights, a ReLU post-op
  enum Residual { kNone, kBinary, kSum } residual = kNone;  // its residual add: another tensor, or in place

  Problem(int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, memory::data_type mul_type,
          ConvLayouts l = {})
      : mul(mul_type),
        src_layout(l.x),
        dst_layout(l.y),
        src_type(l.x_bf16 ? kBF16 : kF32),
        dst_type(l.y_bf16 ? kBF16 : kF32) {
    const int64_t oh = g.out_h(), ow = g.out_w();
    src = {n, g.channels * groups, g.height, g.width};
    dst = {n, out_channels, oh, ow};
    bias = {out_channels};
    if (groups == 1) {
      weights = {out_channels, g.channels, g.kernel_h, g.kernel_w};
      weights_tag = Tag::oihw;
    } else {
      weights = {groups, out_channels / groups, g.channels, g.kernel_h, g.kernel_w};
      weights_tag = Tag::goihw;
    }
    strides = {g.stride_h, g.stride_w};
    dilates = {g.dilation_h - 1, g.dilation_w - 1};  // oneDNN counts the gaps, PyTorch the step
    pad_l = {g.pad_h, g.pad_w};
    // The right padding that makes oneDNN's size rule give our output size.
    pad_r = {(oh - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1 - g.height - g.pad_h,
             (ow - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1 - g.width - g.pad_w};
  }
  dnnl::algorithm algorithm() const {
    return winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
  }
  memory::desc any(const memory::dims& d) const { return memory::desc(d, kF32, Tag::any); }
  memory::desc any_mul(const memory::dims& d) const { return memory::desc(d, mul, Tag::any); }
  // An activation as the kernel should take it: in our layout when that is one of the kernels' own, else
  // its choice.
  memory::desc act(const memory::dims& d, Layout l, memory::data_type t) const {
    return memory::desc(d, t, pin && l != Layout::NCHW ? tag_of(l) : Tag::any);
  }
  memory::desc src_k(memory::data_type t) const { return act(src, src_layout, t); }
  memory::desc dst_k(memory::data_type t) const { return act(dst, dst_layout, t); }
  memory::desc src_md() const { return memory::desc(src, src_type, tag_of(src_layout)); }
  memory::desc dst_md() const { return memory::desc(dst, dst_type, tag_of(dst_layout)); }
  memory::desc weights_md() const { return memory::desc(weights, kF32, weights_tag); }
  memory::desc bias_md() const { return memory::desc(bias, kF32, Tag::x); }

  dnnl::convolution_forward::primitive_desc forward_pd(bool with_bias) const {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::post_ops ops;
    if (residual == kBinary) ops.append_binary(dnnl::algorithm::binary_add, dst_md());
    if (residual == kSum) ops.append_sum(1.0f);
    if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    if (ops.len() > 0) attr.set_post_ops(ops);
    const auto kind = dnnl::prop_kind::forward_training;
    const auto algo = algorithm();
    if (with_bias)
      return {dnnl::convolution_forward::desc(kind, algo, src_k(mul), any_mul(weights), any(bias), dst_k(dst_type),
                                              strides, dilates, pad_l, pad_r),
              attr, engine()};
    return {dnnl::convolution_forward::desc(kind, algo, src_k(mul), any_mul(weights), dst_k(dst_type), strides, dilates,
                                            pad_l, pad_r),
            attr, engine()};
  }
};

struct ForwardPlan {
  dnnl::convolution_forward conv;
  Operand src, weights, dst;
  memory::desc bias;
  size_t scratchpad = 0;
  dnnl::reorder scaled_weights;  // with an epilogue's scale: ours -> kernel's, each output channel scaled
  bool reference = false;  // oneDNN's reference kernel (kept only where no other takes the problem)
  bool winograd = false;   // the Winograd algorithm (else direct)
};

struct BackwardPlan {
  // Input gradient.
  dnnl::convolution_backward_data data;
  Operand data_dy, data_weights, dx;
  Operand dx_add;  // dx added to ours (accumulate_dx): the kernel writes scratch, a summing reorder adds it
  size_t data_scratchpad = 0;
  // The forward's copy of the weights (ops::ConvWeightCache) into the data pass's layout, built at first
  // use for the forward plan forward_weights_plan.
  dnnl::reorder forward_weights;
  const void* forward_weights_plan = nullptr;
  // Weight (and bias) gradient, accumulated into ours (dw) or written (dw_write: the kernel writes ours
  // directly where it takes that layout).
  dnnl::convolution_backward_weights weights;
  Operand weights_src, weights_dy, dw, dw_write, db;
  size_t weights_scratchpad = 0;
  // A pointwise convolution's weight gradient as one matrix product, dw = dy^T x over the N*OH*OW output
  // pixels (bfloat16 NHWC activations, no bias): oneDNN's matmul writes (or with a sum post-op adds to) our
  // (O, C) gradient directly, 2-4x faster here than its backward-weights kernel plus the reorder. With a
  // stride, the input pixels the kernel reads are first gathered into a dense copy (gather_pixels).
  bool pointwise_matmul = false;
  dnnl::matmul dw_matmul, dw_matmul_sum;
  memory::desc matmul_dy, matmul_x, matmul_dw;
  size_t matmul_scratchpad = 0;
  bool strided = false;
  int64_t stride_h = 1, stride_w = 1;
  // With a stride, the input gradient too: dy times the (O, C) bfloat16 weights gives the gradient of the
  // pixels the kernel read (dense rows), scattered into the zeroed dx (scatter_pixels); oneDNN's
  // backward-data kernel is 2-3x slower on these. (Stride 1: the kernel is as fast as a matmul.)
  bool strided_data = false;
  dnnl::matmul dx_matmul;
  dnnl::reorder weights_bf16;  // our float32 weights to bfloat16, the same (O, C) layout
  memory::desc dx_dy, dx_weights, dx_rows;
  bool reference = false;  // a pass fell to oneDNN's reference kernel
};

// Whether oneDNN fell back to its reference kernel (orders of magnitude slower), as it may when asked for
// a layout its fast kernels do not take (e.g. a 3-channel input); the plan then lets it choose instead.
bool is_reference(const std::string& impl) { return impl.rfind("ref", 0) == 0; }

// The most scratchpad one convolution call may take (set_conv_scratchpad_cap), and the calls that ran
// on halves of their batch to stay within it.
std::atomic<size_t> scratchpad_cap{size_t{64} << 20};
std::atomic<int64_t> batch_splits{0};

// A Winograd plan oneDNN cannot make (no kernel for these channel counts, or only a reference one) falls
// back to the direct algorithm.
template <typename Make>
auto with_fallback(Problem& p, bool with_bias, Make make) {
  if (p.winograd) {
    try {
      auto plan = make(p, with_bias);
      if (!plan.reference) return plan;
    } catch (const dnnl::error&) {  // unimplemented for this problem: the direct plan below
    }
    p.winograd = false;
  }
  return make(p, with_bias);
}

ForwardPlan make_forward_as(Problem p, bool with_bias) {
  auto pd = p.forward_pd(with_bias);
  if (p.pin && is_reference(pd.impl_info_str())) {
    p.pin = false;
    pd = p.forward_pd(with_bias);
  }
  ForwardPlan plan;
  plan.conv = dnnl::convolution_forward(pd);
  plan.src = Operand(p.src_md(), pd.src_desc(), true);
  plan.weights = Operand(p.weights_md(), pd.weights_desc(), true);
  plan.dst = Operand(p.dst_md(), pd.dst_desc(), false);
  if (with_bias) plan.bias = pd.bias_desc();
  plan.scratchpad = pd.scratchpad_desc().get_size();
  plan.reference = is_reference(pd.impl_info_str());
  plan.winograd = p.winograd;
  if (p.affine) {  // the weights' output channels: dimension 0 (oihw), or 0 and 1 (goihw: group-major)
    dnnl::primitive_attr attr;
    attr.set_output_scales(p.weights.size() == 4 ? 1 : 3, {DNNL_RUNTIME_F32_VAL});
    plan.scaled_weights =
        dnnl::reorder(dnnl::reorder::primitive_desc(engine(), p.weights_md(), engine(), pd.weights_desc(), attr));
  }
  return plan;
}

ForwardPlan make_forward(Problem p, bool with_bias) { return with_fallback(p, with_bias, &make_forward_as); }

// The input pixels (n, oh * sh, ow * sw) a strided 1x1 kernel reads, each a row of C bfloat16 values in
// NHWC, copied into a dense (N * OH * OW, C) matrix.
void gather_pixels(const uint16_t* x, uint16_t* rows, int64_t n, const ops::ConvGeometry& g, int64_t sh, int64_t sw) {
  const int64_t c = g.channels, oh = g.out_h(), ow = g.out_w();
  const size_t bytes = static_cast<size_t>(c) * sizeof(uint16_t);
#pragma omp parallel for collapse(2)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < oh; ++r) {
      const uint16_t* from = x + ((i * g.height + r * sh) * g.width) * c;
      uint16_t* to = rows + ((i * oh + r) * ow) * c;
      for (int64_t q = 0; q < ow; ++q) std::memcpy(to + q * c, from + q * sw * c, bytes);
    }
}

// The reverse for the input gradient: dx is zero but at those pixels, which take the rows.
void scatter_pixels(const uint16_t* rows, uint16_t* dx, int64_t n, const ops::ConvGeometry& g, int64_t sh, int64_t sw) {
  const int64_t c = g.channels, oh = g.out_h(), ow = g.out_w();
  const size_t bytes = static_cast<size_t>(c) * sizeof(uint16_t);
#pragma omp parallel for collapse(2)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < g.height; ++h) {
      uint16_t* to = dx + (i * g.height + h) * g.width * c;
      std::memset(to, 0, bytes * static_cast<size_t>(g.width));
      if (h % sh != 0 || h / sh >= oh) continue;
      const uint16_t* from = rows + ((i * oh + h / sh) * ow) * c;
      for (int64_t q = 0; q < ow; ++q) std::memcpy(to + q * sw * c, from + q * c, bytes);
    }
}

// Sets up BackwardPlan::pointwise_matmul where it applies: a 1x1 kernel with no padding (a negative right
// padding only leaves input rows unread), one group and no bias, bfloat16 activations in NHWC (a row of C
// channels per pixel, so the pixels the kernel reads make a P x C matrix and dy a P x O one), and a fast
// (not reference) matmul kernel.
void plan_pointwise_matmul(const Problem& p, bool with_bias, BackwardPlan& plan) {
  const bool pointwise = p.weights.size() == 4 && p.weights[2] == 1 && p.weights[3] == 1 && p.pad_l[0] == 0 &&
                         p.pad_l[1] == 0 && p.pad_r[0] <= 0 && p.pad_r[1] <= 0;
  if (!pointwise || with_bias || p.mul != kBF16 || p.src_type != kBF16 || p.dst_type != kBF16 ||
      p.src_layout != Layout::NHWC || p.dst_layout != Layout::NHWC)
    return;
  const int64_t pixels = p.dst[0] * p.dst[2] * p.dst[3], c = p.src[1], o = p.dst[1];
  plan.strided = p.strides[0] != 1 || p.strides[1] != 1;
  plan.stride_h = p.strides[0];
  plan.stride_w = p.strides[1];
  plan.matmul_dy = memory::desc({o, pixels}, kBF16, memory::dims{1, o});  // dy^T
  plan.matmul_x = memory::desc({pixels, c}, kBF16, memory::dims{c, 1});
  plan.matmul_dw = memory::desc({o, c}, kF32, memory::dims{c, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::primitive_desc write(dnnl::matmul::desc(plan.matmul_dy, plan.matmul_x, plan.matmul_dw), attr,
                                           engine());
  dnnl::post_ops sum;
  sum.append_sum(1.0f);
  attr.set_post_ops(sum);
  const dnnl::matmul::primitive_desc add(dnnl::matmul::desc(plan.matmul_dy, plan.matmul_x, plan.matmul_dw), attr,
                                         engine());
  if (is_reference(write.impl_info_str()) || is_reference(add.impl_info_str())) return;
  plan.dw_matmul = dnnl::matmul(write);
  plan.dw_matmul_sum = dnnl::matmul(add);
  plan.matmul_scratchpad = std::max(write.scratchpad_desc().get_size(), add.scratchpad_desc().get_size());
  plan.pointwise_matmul = true;
  if (!plan.strided) return;
  plan.dx_weights = memory::desc({o, c}, kBF16, memory::dims{c, 1});
  plan.dx_rows = memory::desc({pixels, c}, kBF16, memory::dims{c, 1});
  dnnl::primitive_attr data_attr;
  data_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  plan.dx_dy = memory::desc({pixels, o}, kBF16, memory::dims{o, 1});
  const dnnl::matmul::primitive_desc data(dnnl::matmul::desc(plan.dx_dy, plan.dx_weights, plan.dx_rows), data_attr,
                                          engine());
  if (is_reference(data.impl_info_str())) return;
  plan.dx_matmul = dnnl::matmul(data);
  plan.weights_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), p.weights_md(), engine(),
                                                                  memory::desc(p.weights, kBF16, Tag::oihw)));
  plan.matmul_scratchpad = std::max(plan.matmul_scratchpad, data.scratchpad_desc().get_size());
  plan.strided_data = true;
}

BackwardPlan make_backward_as(const Problem& p, bool with_bias) {
  const auto hint = p.forward_pd(with_bias);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto algo = p.algorithm();
  BackwardPlan plan;

  const dnnl::convolution_backward_data::primitive_desc data_pd(
      dnnl::convolution_backward_data::desc(algo, p.src_k(p.src_type), p.any_mul(p.weights), p.dst_k(p.mul), p.strides,
                                            p.dilates, p.pad_l, p.pad_r),
      attr, engine(), hint);
  plan.data = dnnl::convolution_backward_data(data_pd);
  plan.data_dy = Operand(p.dst_md(), data_pd.diff_dst_desc(), true);
  plan.data_weights = Operand(p.weights_md(), data_pd.weights_desc(), true);
  plan.dx = Operand(p.src_md(), data_pd.diff_src_desc(), false);
  plan.dx_add = Operand(p.src_md(), data_pd.diff_src_desc(), false, /*accumulate=*/true);
  plan.data_scratchpad = data_pd.scratchpad_desc().get_size();

  const auto weights_pd =
      with_bias ? dnnl::convolution_backward_weights::primitive_desc(
                      dnnl::convolution_backward_weights::desc(algo, p.src_k(p.mul), p.any(p.weights),
                                                               p.any(p.bias), p.dst_k(p.mul), p.strides, p.dilates,
                                                               p.pad_l, p.pad_r),
                      attr, engine(), hint)
                : dnnl::convolution_backward_weights::primitive_desc(
                      dnnl::convolution_backward_weights::desc(algo, p.src_k(p.mul), p.any(p.weights),
                                                               p.dst_k(p.mul), p.strides, p.dilates, p.pad_l,
                                                               p.pad_r),
                      attr, engine(), hint);
  plan.weights = dnnl::convolution_backward_weights(weights_pd);
  plan.weights_src = Operand(p.src_md(), weights_pd.src_desc(), true);
  plan.weights_dy = Operand(p.dst_md(), weights_pd.diff_dst_desc(), true);
  plan.dw = Operand(p.weights_md(), weights_pd.diff_weights_desc(), false, /*accumulate=*/true);
  plan.dw_write = Operand(p.weights_md(), weights_pd.diff_weights_desc(), false);
  if (with_bias) plan.db = Operand(p.bias_md(), weights_pd.diff_bias_desc(), false, /*accumulate=*/true);
  plan.weights_scratchpad = weights_pd.scratchpad_desc().get_size();
  plan.reference = is_reference(data_pd.impl_info_str()) || is_reference(weights_pd.impl_info_str());
  plan_pointwise_matmul(p, with_bias, plan);
  return plan;
}

BackwardPlan make_backward_pinned(Problem p, bool with_bias) {
  if (p.pin) {
    BackwardPlan plan = make_backward_as(p, with_bias);
    if (!plan.reference) return plan;
    p.pin = false;
  }
  return make_backward_as(p, with_bias);
}

BackwardPlan make_backward(Problem p, bool with_bias) { return with_fallback(p, with_bias, &make_backward_pinned); }

// Plans by problem: batch, channels, size, outputs, groups, kernel, stride, padding, dilation, bias,
// multiplication type, layouts and storage types of the input and the output, the forward epilogue's
// scale, ReLU and residual add.
using Key = std::array<int64_t, 24>;
Key key_of(int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, bool with_bias,
           memory::data_type mul, ConvLayouts l, bool affine, bool relu, bool winograd, Problem::Residual residual) {
  return {n,          g.channels,  g.height,   g.width,   out_channels,    groups,          g.kernel_h, g.kernel_w,
          g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w, with_bias ? 1 : 0,
          static_cast<int64_t>(mul), static_cast<int64_t>(l.x), static_cast<int64_t>(l.y), l.x_bf16 ? 1 : 0,
          l.y_bf16 ? 1 : 0, affine ? 1 : 0, relu ? 1 : 0, winograd ? 1 : 0, static_cast<int64_t>(residual)};
}

std::mutex plans_mutex;

template <typename Plan>
const Plan& plan_for(std::map<Key, std::unique_ptr<Plan>>& plans, Plan (*make)(Problem, bool), int64_t n,
                     const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, bool with_bias,
                     memory::data_type mul, ConvLayouts l, bool affine = false, bool relu = false,
                     Problem::Residual residual = Problem::kNone) {
  const bool winograd = mul == kF32 && conv_wants_winograd(n, g, groups);
  const Key key = key_of(n, g, out_channels, groups, with_bias, mul, l, affine, relu, winograd, residual);
  auto it = plans.find(key);
  if (it == plans.end()) {
    Problem p(n, g, out_channels, groups, mul, l);
    p.affine = affine;
    p.relu = relu;
    p.winograd = winograd;
    p.residual = residual;
    it = plans.emplace(key, std::make_unique<Plan>(make(p, with_bias))).first;
  }
  return *it->second;
}

[[noreturn]] void rethrow(const dnnl::error& e, const char* what) {
  MPNCOV_FAIL("convolution (oneDNN, ", what, "): ", e.what(), " (status ", static_cast<int>(e.status), ")");
}

}  // namespace

void* reserve_weight_cache(ops::ConvWeightCache& cache, size_t bytes, const char* what) {
  if (cache.bytes >= bytes) return cache.data;
  std::free(cache.data);
  cache.data = nullptr;
  cache.bytes = 0;
  const size_t rounded = (bytes + 63) / 64 * 64;
  cache.data = std::aligned_alloc(64, rounded);
  MPNCOV_CHECK(cache.data, "convolution: cannot allocate ", rounded, " bytes for ", what);
  cache.bytes = rounded;
  return cache.data;
}

ConvAlgorithm conv_algorithm_named(const std::string& name) {
  if (name == "auto") return ConvAlgorithm::Auto;
  if (name == "direct") return ConvAlgorithm::Direct;
  if (name == "winograd") return ConvAlgorithm::Winograd;
  MPNCOV_FAIL("MPNCOV_CONV_ALGORITHM=", name, ": expected auto, direct or winograd");
}

namespace {
std::atomic<int> chosen_algorithm{-1};  // -1: not read from the environment yet
}  // namespace

ConvAlgorithm conv_algorithm() {
  int a = chosen_algorithm.load();
  if (a < 0) {
    const char* v = std::getenv("MPNCOV_CONV_ALGORITHM");
    a = static_cast<int>(v && *v ? conv_algorithm_named(v) : ConvAlgorithm::Auto);
    chosen_algorithm.store(a);
  }
  return static_cast<ConvAlgorithm>(a);
}

void set_conv_algorithm(ConvAlgorithm a) { chosen_algorithm.store(static_cast<int>(a)); }

int64_t winograd_tiles(int64_t n, const ops::ConvGeometry& g) {
  return n * ((g.out_h() + 3) / 4) * ((g.out_w() + 3) / 4);
}

bool avx512_in_halves() {
  static const bool yes = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d) || b != 0x68747541) return false;  // "AuthenticAMD"
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    unsigned family = (a >> 8) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    return family == 0x19 && __builtin_cpu_supports("avx512f");  // 0x19 with AVX-512: Zen 4
  }();
  return yes;
}

int64_t winograd_least_tiles(bool avx512_halves) { return avx512_halves ? 32 : kWinogradManyTiles; }

void set_conv_scratchpad_cap(size_t bytes) { scratchpad_cap.store(bytes); }
size_t conv_scratchpad_cap() { return scratchpad_cap.load(); }
int64_t conv_batch_splits() { return batch_splits.load(); }

bool conv_wants_winograd(int64_t n, const ops::ConvGeometry& g, int64_t groups) {
  const ConvAlgorithm a = conv_algorithm();
  const bool fits = groups == 1 && g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 &&
                    g.dilation_h == 1 && g.dilation_w == 1;
  if (!fits || a == ConvAlgorithm::Direct) return false;
  if (a == ConvAlgorithm::Winograd) return true;
  // Auto: the kernel splits the work by 4x4 output tiles; with too few in the batch (a 14x14 image has 16,
  // a 7x7 one 4) the threads idle and the direct kernel is faster. On Zen 5, 8 images of 7x7 (32 tiles)
  // ran 1.2-1.4x faster direct, one of 28x28 (49 tiles) 1.4x faster in Winograd; on Zen 4, whose cores run
  // a 512-bit FMA as two halves (the direct kernel's rate halved, not the transforms' memory traffic), the
  // 32 tiles ran 1.1-1.2x faster in Winograd (bench/RESULTS.md).
  return winograd_tiles(n, g) >= winograd_least_tiles(avx512_in_halves());
}

std::string onednn_summary() {
  const dnnl_version_t* v = dnnl::version();
  std::string kernel = "?";
  try {  // the kernel it picks for a typical 3x3 layer, e.g. jit:avx512_core (the instruction set it uses)
    ops::ConvGeometry g;
    g.channels = 64; g.height = g.width = 56; g.kernel_h = g.kernel_w = 3; g.pad_h = g.pad_w = 1;
    kernel = Problem(8, g, 64, 1, kF32).forward_pd(false).impl_info_str();
  } catch (const dnnl::error&) {
  }
  return str("oneDNN ", v->major, ".", v->minor, ".", v->patch, " ", kernel);
}

namespace {

std::map<Key, std::unique_ptr<ForwardPlan>> forward_plans;
std::map<Key, std::unique_ptr<BackwardPlan>> backward_plans;

// The weights as the forward kernel reads them: a reordered copy in scratch, or in `cache` (kept for the
// backward pass, ops::ConvWeightCache).
memory forward_weights(const ForwardPlan& plan, const float* w, ops::ConvWeightCache* cache, dnnl::stream& s) {
  if (!cache || !plan.weights.needs_reorder) return plan.weights.input(w, kWeights, s);
  memory copy(plan.weights.kernel, engine(),
              reserve_weight_cache(*cache, plan.weights.kernel.get_size(), "the bfloat16 weights"));
  memory user(plan.weights.ours, engine(), const_cast<float*>(w));
  plan.weights.reorder.execute(s, user, copy);
  cache->plan = &plan;
  cache->weights = w;
  return copy;
}

// An epilogue's operands (called under the lock): the weights scaled per output channel in the kernel's
// layout, returned, and the folded bias scale * b + shift, left in e.prepared's bias or else in
// folded_bias. From e.prepared as they are when it was made for this plan, these weights and this scale
// and shift (ops::PreparedConv); else made (into e.prepared when given, else into scratch).
std::vector<float> folded_bias;
memory affine_operands(const ForwardPlan& plan, const float* w, const float* b, int64_t out_channels,
                       const ConvEpilogue& e, dnnl::stream& s) {
  const memory::desc& kernel = plan.weights.kernel;
  const size_t o = static_cast<size_t>(out_channels);
  ops::PreparedConv* kept = e.prepared;
  const auto same = [o](const std::vector<float>& v, const float* p) {
    return v.size() == o && std::memcmp(v.data(), p, o * sizeof(float)) == 0;
  };
  if (kept && kept->weights.plan == &plan && kept->weights.weights == w && same(kept->scale, e.scale) &&
      same(kept->shift, e.shift))
    return memory(kernel, engine(), kept->weights.data);
  void* data = kept ? reserve_weight_cache(kept->weights, kernel.get_size(), "the prepared weights") : scratch(kWeights, kernel.get_size());
  if (kept) kept->weights.plan = nullptr;  // set again once it holds the new operands
  memory weights(kernel, engine(), data);
  plan.scaled_weights.execute(s, {{DNNL_ARG_FROM, memory(plan.weights.ours, engine(), const_cast<float*>(w))},
                                  {DNNL_ARG_TO, weights},
                                  {DNNL_ARG_ATTR_OUTPUT_SCALES,
                                   memory({{out_channels}, kF32, Tag::x}, engine(), const_cast<float*>(e.scale))}});
  std::vector<float>& bias = kept ? kept->bias : folded_bias;
  bias.resize(o);
  for (size_t c = 0; c < o; ++c) bias[c] = b ? e.scale[c] * b[c] + e.shift[c] : e.shift[c];
  if (kept) {
    kept->scale.assign(e.scale, e.scale + o);
    kept->shift.assign(e.shift, e.shift + o);
    kept->weights.weights = w;
    kept->weights.plan = &plan;
  }
  return weights;
}

// False, writing nothing, where a residual add would cost the kernel its Winograd algorithm (whose
// kernels take no binary post-op here): adding in a pass of its own is cheaper than the direct kernel;
// and where no kernel takes the add writing our layout.
bool forward(const void* x, const float* w, const float* b, void* y, int64_t n, const ops::ConvGeometry& g,
             int64_t out_channels, int64_t groups, memory::data_type mul, ConvLayouts l, const ConvEpilogue& e = {},
             ops::ConvWeightCache* cache = nullptr) {
  if (mul == kF32 && conv_winograd_2d_forward(g, out_channels, groups, l, n)) {
    conv2d_forward_winograd_2d(static_cast<const float*>(x), w, b, static_cast<float*>(y), n, g, out_channels, e);
    return true;
  }
  if (mul == kF32 && conv_winograd_1d_forward(g, out_channels, groups, l, n, e.scale && e.prepared)) {
    conv2d_forward_winograd_1d(static_cast<const float*>(x), w, b, static_cast<float*>(y), n, g, out_channels, e);
    return true;
  }
  std::unique_lock<std::mutex> lock(plans_mutex);
  const bool affine = e.scale != nullptr;
  const Problem::Residual residual = !e.residual ? Problem::kNone : e.residual == y ? Problem::kSum : Problem::kBinary;
  if (cache) cache->plan = nullptr;  // refilled below, or left empty if this forward fails
  try {
    const ForwardPlan& plan = plan_for(forward_plans, &make_forward, n, g, out_channels, groups,
                                       b != nullptr || affine, mul, l, affine, e.relu, residual);
    // Over the cap: halves, where a half still takes Winograd and needs less (on small maps the scratchpad
    // is mostly the transformed weights, which a smaller batch does not shrink).
    if (!affine && residual == Problem::kNone && plan.winograd && plan.scratchpad > scratchpad_cap.load() &&
        n > 1 && conv_wants_winograd(n / 2, g, groups) &&
        4 * plan_for(forward_plans, &make_forward, n / 2, g, out_channels, groups, b != nullptr, mul, l, false,
                     e.relu, residual).scratchpad < 3 * plan.scratchpad) {
      const size_t x_image = plan.src.ours.get_size() / static_cast<size_t>(n),
                   y_image = plan.dst.ours.get_size() / static_cast<size_t>(n);
      const int64_t h = n / 2;
      lock.unlock();
      ++batch_splits;
      forward(x, w, b, y, h, g, out_channels, groups, mul, l, e, cache);
      forward(static_cast<const char*>(x) + h * x_image, w, b, static_cast<char*>(y) + h * y_image, n - h, g,
              out_channels, groups, mul, l, e, cache);
      return true;
    }
    // The post-ops read the residual (or the output's old values) where the kernel writes: in our layout.
    // Where only a kernel writing another one takes the problem (an NCHW input and an NHWC output with a
    // binary post-op fall to oneDNN's reference kernel, which the plan refuses), the caller adds apart.
    if (residual != Problem::kNone && plan.dst.needs_reorder) return false;
    if (residual != Problem::kNone && !plan.winograd && mul == kF32 && conv_wants_winograd(n, g, groups)) {
      const ForwardPlan& plain = plan_for(forward_plans, &make_forward, n, g, out_channels, groups,
                                          b != nullptr || affine, mul, l, affine, e.relu);
      if (plain.winograd) return false;
    }
    dnnl::stream s(engine());
    memory src = plan.src.input(x, kSrc, s);
    memory weights;
    if (affine) {
      weights = affine_operands(plan, w, b, out_channels, e, s);
      b = e.prepared ? e.prepared->bias.data() : folded_bias.data();
    } else {
      weights = forward_weights(plan, w, cache, s);
    }
    memory dst = plan.dst.output(y, kDst);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                         {DNNL_ARG_WEIGHTS, weights},
                                         {DNNL_ARG_DST, dst},
                                         {DNNL_ARG_SCRATCHPAD, scratchpad(plan.scratchpad)}};
    if (b) args.emplace(DNNL_ARG_BIAS, memory(plan.bias, engine(), const_cast<float*>(b)));
    if (residual == Problem::kBinary)
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                   memory(plan.dst.ours, engine(), const_cast<float*>(e.residual)));
    plan.conv.execute(s, args);
    plan.dst.finish(dst, y, s);
    s.wait();
  } catch (const dnnl::error& e) {
    if (cache) cache->plan = nullptr;
    rethrow(e, "forward");
  }
  return true;
}

// A pointwise layer's input gradient added to dx (accumulate_dx): dx += W^T dy is the forward pass of a 1x1
// convolution from O to C channels whose weights are W read transposed (an (C, O) view, "iohw"), and
// oneDNN's forward kernels take a sum post-op, so the gradient is added as the kernel writes it instead of
// being written to scratch and added by a pass of its own (the input-gradient kernel takes no post-op).
// A net asks for this where an input is read by several layers (its gradient the sum of theirs). Float32,
// 1x1, stride 1, unpadded, one group, activations in a kernel layout; false, writing nothing, elsewhere.
std::map<Key, std::unique_ptr<ForwardPlan>> data_add_plans;

bool add_pointwise_input_gradient(const float* w, const float* dy, float* dx, int64_t n, const ops::ConvGeometry& g,
                                  int64_t out_channels, int64_t groups, ConvLayouts l) {
  const bool pointwise = groups == 1 && g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 &&
                         g.pad_h == 0 && g.pad_w == 0;
  if (!pointwise || l.x == Layout::NCHW || l.y == Layout::NCHW || l.x_bf16 || l.y_bf16) return false;
  ops::ConvGeometry t;  // the transposed problem: O channels in, C out, same pixels
  t.channels = out_channels;
  t.height = g.height;
  t.width = g.width;
  const ConvLayouts tl{l.y, l.x};
  const Key key = key_of(n, t, g.channels, 1, false, kF32, tl, false, false, false, Problem::kSum);
  auto it = data_add_plans.find(key);
  if (it == data_add_plans.end()) {
    Problem p(n, t, g.channels, 1, kF32, tl);
    p.residual = Problem::kSum;
    ForwardPlan plan = make_forward_as(p, false);
    plan.weights = Operand(memory::desc({g.channels, out_channels, 1, 1}, kF32, Tag::iohw), plan.weights.kernel, true);
    it = data_add_plans.emplace(key, std::make_unique<ForwardPlan>(std::move(plan))).first;
  }
  const ForwardPlan& plan = *it->second;
  // The sum reads dx where the kernel writes: only without reorders of the activations.
  if (plan.reference || plan.src.needs_reorder || plan.dst.needs_reorder) return false;
  dnnl::stream s(engine());
  plan.conv.execute(s, {{DNNL_ARG_SRC, memory(plan.src.ours, engine(), const_cast<float*>(dy))},
                        {DNNL_ARG_WEIGHTS, plan.weights.input(w, kWeights, s)},
                        {DNNL_ARG_DST, memory(plan.dst.ours, engine(), dx)},
                        {DNNL_ARG_SCRATCHPAD, scratchpad(plan.scratchpad)}});
  s.wait();
  return true;
}

// The weights as the data pass reads them: from the copy the forward made in `cache` when it holds these
// weights (a bfloat16 to bfloat16 reorder, about half the cost of converting the float32 weights again),
// else from w. Plans live as long as the program, so the cache's plan pointer stays valid.
memory backward_data_weights(BackwardPlan& plan, const float* w, const ops::ConvWeightCache* cache,
                             dnnl::stream& s) {
  if (!cache || !cache->plan || cache->weights != w) return plan.data_weights.input(w, kWeights, s);
  const ForwardPlan& fwd = *static_cast<const ForwardPlan*>(cache->plan);
  if (fwd.weights.ours != plan.data_weights.ours) return plan.data_weights.input(w, kWeights, s);
  memory copy(fwd.weights.kernel, engine(), cache->data);
  if (fwd.weights.kernel == plan.data_weights.kernel) return copy;
  if (plan.forward_weights_plan != &fwd) {
    plan.forward_weights = dnnl::reorder(
        dnnl::reorder::primitive_desc(engine(), fwd.weights.kernel, engine(), plan.data_weights.kernel));
    plan.forward_weights_plan = &fwd;
  }
  memory weights(plan.data_weights.kernel, engine(), scratch(kWeights, plan.data_weights.kernel.get_size()));
  plan.forward_weights.execute(s, copy, weights);
  return weights;
}

void backward(const void* x, const float* w, const void* dy, void* dx, float* dw, float* db, int64_t n,
              const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, memory::data_type mul, ConvLayouts l,
              bool accumulate_dw, bool accumulate_dx, ops::ConvWeightCache* cache = nullptr) {
  if (dx && accumulate_dx && mul == kF32) {
    std::lock_guard<std::mutex> lock(plans_mutex);
    try {
      if (add_pointwise_input_gradient(w, static_cast<const float*>(dy), static_cast<float*>(dx), n, g, out_channels,
                                       groups, l))
        dx = nullptr;
    } catch (const dnnl::error& e) {
      rethrow(e, "backward, input gradient added");
    }
  }
  if (dx && !accumulate_dx && mul == kF32 && conv_winograd_2d_backward_data(g, out_channels, groups, l, n)) {
    conv2d_backward_data_winograd_2d(w, static_cast<const float*>(dy), static_cast<float*>(dx), n, g, out_channels);
    dx = nullptr;
  }
  if (dx && !accumulate_dx && mul == kF32 && conv_winograd_1d_backward_data(g, out_channels, groups, l)) {
    conv2d_backward_data_winograd_1d(w, static_cast<const float*>(dy), static_cast<float*>(dx), n, g, out_channels);
    dx = nullptr;
  }
  if (dw && !db && mul == kF32 && conv_winograd_1d_backward_weights(g, out_channels, groups, l)) {
    conv2d_backward_weights_winograd_1d(static_cast<const float*>(x), static_cast<const float*>(dy), dw, accumulate_dw,
                                        n, g, out_channels);
    dw = nullptr;
  }
  if (!dx && !dw && !db) return;
  std::unique_lock<std::mutex> lock(plans_mutex);
  try {
    BackwardPlan& plan = const_cast<BackwardPlan&>(
        plan_for(backward_plans, &make_backward, n, g, out_channels, groups, db != nullptr, mul, l));
    const size_t cap = scratchpad_cap.load();
    const auto needs = [&](const BackwardPlan& q) {
      return std::max(dx ? q.data_scratchpad : 0, dw || db ? q.weights_scratchpad : 0);
    };
    if (needs(plan) > cap && mul == kF32 && n > 1 && conv_wants_winograd(n, g, groups) &&
        conv_wants_winograd(n / 2, g, groups) &&
        4 * needs(plan_for(backward_plans, &make_backward, n / 2, g, out_channels, groups, db != nullptr, mul, l)) <
            3 * needs(plan)) {
      const size_t x_image = plan.weights_src.ours.get_size() / static_cast<size_t>(n),
                   y_image = plan.data_dy.ours.get_size() / static_cast<size_t>(n);
      const int64_t h = n / 2;
      lock.unlock();
      ++batch_splits;
      backward(x, w, dy, dx, dw, db, h, g, out_channels, groups, mul, l, accumulate_dw, accumulate_dx, cache);
      backward(static_cast<const char*>(x) + h * x_image, w, static_cast<const char*>(dy) + h * y_image,
               dx ? static_cast<char*>(dx) + h * x_image : nullptr, dw, db, n - h, g, out_channels, groups, mul, l,
               /*accumulate_dw=*/true, accumulate_dx, cache);
      return;
    }
    dnnl::stream s(engine());
    memory data_dy;  // dy as the data kernel reads it, when that pass runs
    if (dx && plan.strided_data && !accumulate_dx) {
      memory weights(plan.dx_weights, engine(), scratch(kWeights, plan.dx_weights.get_size()));
      memory user(plan.data_weights.ours, engine(), const_cast<float*>(w));
      plan.weights_bf16.execute(s, user, weights);
      void* rows = scratch(kStrided, plan.dx_rows.get_size());
      plan.dx_matmul.execute(s, {{DNNL_ARG_SRC, memory(plan.dx_dy, engine(), const_cast<void*>(dy))},
                                 {DNNL_ARG_WEIGHTS, weights},
                                 {DNNL_ARG_DST, memory(plan.dx_rows, engine(), rows)},
                                 {DNNL_ARG_SCRATCHPAD, scratchpad(plan.matmul_scratchpad)}});
      scatter_pixels(static_cast<const uint16_t*>(rows), static_cast<uint16_t*>(dx), n, g, plan.stride_h,
                     plan.stride_w);
    } else if (dx) {
      data_dy = plan.data_dy.input(dy, kDiffDst, s);
      memory weights = backward_data_weights(plan, w, cache, s);
      const Operand& dx_op = accumulate_dx ? plan.dx_add : plan.dx;
      memory diff_src = dx_op.output(dx, kSrc);
      plan.data.execute(s, {{DNNL_ARG_DIFF_DST, data_dy},
                            {DNNL_ARG_WEIGHTS, weights},
                            {DNNL_ARG_DIFF_SRC, diff_src},
                            {DNNL_ARG_SCRATCHPAD, scratchpad(plan.data_scratchpad)}});
      dx_op.finish(diff_src, dx, s);
    }
    if (cache) cache->plan = nullptr;  // used once: the next backward needs the next forward's copy
    if (dw && plan.pointwise_matmul) {
      void* rows = const_cast<void*>(x);
      if (plan.strided) {
        rows = scratch(kStrided, static_cast<size_t>(n * g.out_h() * g.out_w() * g.channels) * 2);
        gather_pixels(static_cast<const uint16_t*>(x), static_cast<uint16_t*>(rows), n, g, plan.stride_h,
                      plan.stride_w);
      }
      (accumulate_dw ? plan.dw_matmul_sum : plan.dw_matmul)
          .execute(s, {{DNNL_ARG_SRC, memory(plan.matmul_dy, engine(), const_cast<void*>(dy))},
                       {DNNL_ARG_WEIGHTS, memory(plan.matmul_x, engine(), rows)},
                       {DNNL_ARG_DST, memory(plan.matmul_dw, engine(), dw)},
                       {DNNL_ARG_SCRATCHPAD, scratchpad(plan.matmul_scratchpad)}});
    } else if (dw || db) {
      memory src = plan.weights_src.input(x, kSrc, s);
      // The data pass's dy is reused when both kernels want the same layout.
      memory diff_dst = data_dy && plan.weights_dy.kernel == plan.data_dy.kernel
                            ? data_dy
                            : plan.weights_dy.input(dy, kDiffDstW, s);
      // Accumulated: results land in scratch and are added to ours by the summing reorder. Written: the
      // kernel writes ours, directly or through a plain reorder.
      const Operand& dw_op = accumulate_dw ? plan.dw : plan.dw_write;
      memory diff_weights = dw ? dw_op.output(dw, kDiffWeights)
                               : memory(plan.dw.kernel, engine(), scratch(kDiffWeights, plan.dw.kernel.get_size()));
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                           {DNNL_ARG_DIFF_DST, diff_dst},
                                           {DNNL_ARG_DIFF_WEIGHTS, diff_weights},
                                           {DNNL_ARG_SCRATCHPAD, scratchpad(plan.weights_scratchpad)}};
      memory diff_bias;
      if (db) {
        diff_bias = memory(plan.db.kernel, engine(), scratch(kDiffBias, plan.db.kernel.get_size()));
        args.emplace(DNNL_ARG_DIFF_BIAS, diff_bias);
      }
      plan.weights.execute(s, args);
      if (dw) dw_op.finish(diff_weights, dw, s);
      if (db) plan.db.finish(diff_bias, db, s);
    }
    s.wait();
  } catch (const dnnl::error& e) {
    if (cache) cache->plan = nullptr;
    rethrow(e, "backward");
  }
}

}  // namespace

bool conv2d_forward_onednn(const float* x, const float* w, const float* b, float* y, int64_t n,
                           const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, ConvLayouts l,
                           const ConvEpilogue& e) {
  return forward(x, w, b, y, n, g, out_channels, groups, kF32, l, e);
}
void conv2d_backward_onednn(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                            int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                            ConvLayouts l, bool accumulate_dw, bool accumulate_dx) {
  backward(x, w, dy, dx, dw, db, n, g, out_channels, groups, kF32, l, accumulate_dw, accumulate_dx);
}
void conv2d_forward_onednn_bf16(const void* x, const float* w, const float* b, void* y, int64_t n,
                                const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, ConvLayouts l,
                                ops::ConvWeightCache* cache) {
  forward(x, w, b, y, n, g, out_channels, groups, kBF16, l, {}, cache);
}
void conv2d_backward_onednn_bf16(const void* x, const float* w, const void* dy, void* dx, float* dw, float* db,
                                 int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                 ConvLayouts l, bool accumulate_dw, ops::ConvWeightCache* cache) {
  backward(x, w, dy, dx, dw, db, n, g, out_channels, groups, kBF16, l, accumulate_dw, /*accumulate_dx=*/false, cache);
}

}  // namespace mpncov::cpu
