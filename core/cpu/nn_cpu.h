// The CPU backend of core/nn_ops.h, pointer-level, float and double. core/nn_ops.cpp has checked the
// arguments. The CUDA backend (core/cuda_nn_backend.h) has the same functions in float.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/layout.h"
#include "core/nn_ops.h"

namespace mpncov::cpu {

class ScratchBuffer;  // core/cpu/onednn_support.h

// g: the geometry of one group (g.channels = C / groups); y (n, out_channels, oh, ow).
template <typename T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, int64_t n, const ops::ConvGeometry& g,
                    int64_t out_channels, int64_t groups);
// dx written when non-null; dw, db accumulated when non-null.
template <typename T>
void conv2d_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, int64_t n,
                     const ops::ConvGeometry& g, int64_t out_channels, int64_t groups);
// The float32 kernels behind them where conv.cpp's use_onednn says so (conv_onednn.cpp); same contract.
// The layouts of the input (and its gradient) and of the output (and its gradient); the weights are
// (O, C/groups, kh, kw) float32 always. In mixed precision the activations may also be stored in bfloat16
// (x_bf16: the input and its gradient, y_bf16: the output and its gradient); float32 otherwise.
struct ConvLayouts {
  Layout x = Layout::NCHW, y = Layout::NCHW;
  bool x_bf16 = false, y_bf16 = false;
};
// What forward does to each output after the convolution (and its bias): y = scale[o] * y + shift[o] per
// output channel o when scale is set (then shift is too), then + residual when set (a residual add: a
// tensor of y's shape in y's layout, which must be a kernel layout; it may be y itself, which then holds
// the residual on entry), then max(y, 0) when relu. prepared (with a scale; may be null): the scaled
// weights and folded bias kept between calls (ops::PreparedConv).
struct ConvEpilogue {
  const float* scale = nullptr;
  const float* shift = nullptr;
  bool relu = false;
  ops::PreparedConv* prepared = nullptr;
  const float* residual = nullptr;
};
// False, writing nothing, where the epilogue's residual add would cost the kernel its Winograd algorithm,
// or where no kernel takes the add writing y's layout (conv_onednn.cpp); true otherwise.
bool conv2d_forward_onednn(const float* x, const float* w, const float* b, float* y, int64_t n,
                           const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, ConvLayouts l = {},
                           const ConvEpilogue& e = {});
// accumulate_dw false: dw is written (=), not accumulated; accumulate_dx true: dx is added to (+=), not
// written (ops::conv2d_backward).
void conv2d_backward_onednn(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                            int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                            ConvLayouts l = {}, bool accumulate_dw = true, bool accumulate_dx = false);
// The same in mixed precision: the multiplications in bfloat16 with float32 accumulation (conv_onednn.cpp).
// x, y, dy, dx point to float32 or bfloat16 activations as l says; float32 ones are rounded to bfloat16
// for the multiplications, results are rounded to a bfloat16 destination. Weights, bias and their
// gradients are float32. cache (may be null): forward keeps its bfloat16 weights there, and the backward
// pass after it reuses and drops them (ops::ConvWeightCache).
void conv2d_forward_onednn_bf16(const void* x, const float* w, const float* b, void* y, int64_t n,
                                const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                ConvLayouts l = {}, ops::ConvWeightCache* cache = nullptr);
void conv2d_backward_onednn_bf16(const void* x, const float* w, const void* dy, void* dx, float* dw, float* db,
                                 int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                 ConvLayouts l = {}, bool accumulate_dw = true,
                                 ops::ConvWeightCache* cache = nullptr);
// Pointwise float32 convolution on NHWC input and output as single GEMMs (conv_nhwc.cpp), where
// conv_nhwc_pointwise says so; same contract as above.
bool conv_nhwc_pointwise(const ops::ConvGeometry& g, int64_t groups, ConvLayouts l);
void conv2d_forward_nhwc_pointwise(const float* x, const float* w, const float* b, float* y, int64_t n,
                                   const ops::ConvGeometry& g, int64_t out_channels);
void conv2d_backward_nhwc_pointwise(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                                    int64_t n, const ops::ConvGeometry& g, int64_t out_channels,
                                    bool accumulate_dw = true);
// "oneDNN 2.6.3 jit:avx512_core": the library's version and the kernel it picks for a 3x3 layer here.
std::string onednn_summary();
// The algorithm of float32 3x3 convolutions with stride 1 (conv_onednn.cpp). Winograd's F(4x4, 3x3)
// makes a quarter of the direct kernel's multiplications (2x faster whole layers here) at the cost of a
// slightly larger rounding error (about 1e-6 of the result's scale, docs/layers.md). Auto, the default,
// takes it where a batch has enough 4x4 output tiles to keep every thread busy; Direct never; Winograd
// wherever oneDNN has the kernel. Set by MPNCOV_CONV_ALGORITHM=auto|direct|winograd in the environment
// (read once), or set_conv_algorithm (tests, benchmarks).
enum class ConvAlgorithm { Auto, Direct, Winograd };
ConvAlgorithm conv_algorithm();
void set_conv_algorithm(ConvAlgorithm a);
// Whether a float32 forward runs as Winograd's F(m, r) along the long axis of a 1 x r or r x 1 kernel
// (r = 3, 5, 7), or along the rows of a 5x5 one, or of a 3x3 one with rows of 7 or 8 outputs
// (conv_winograd_1d.cpp), rather than oneDNN's kernels: stride 1, one group, channel counts that are
// multiples of 16, float32 nChw16c input and output. Auto takes it for lines of 8 outputs or more (3x3: 7
// or 8), at any batch; Direct never; Winograd wherever it fits.
bool conv_winograd_1d(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                      const ConvLayouts& l);
// The same for the forward of n images, whose transformed weights are kept between calls (evaluation's
// prepared weights) or not: Auto takes a 3x3 layer only with kept weights, 48 rows of output in the batch
// or more, and where conv_wants_winograd does not.
bool conv_winograd_1d_forward(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, const ConvLayouts& l,
                              int64_t n, bool weights_kept);
// That forward, with conv2d_forward_onednn's contract; e.prepared keeps the transformed weights and folded
// bias between calls.
void conv2d_forward_winograd_1d(const float* x, const float* w, const float* b, float* y, int64_t n,
                                const ops::ConvGeometry& g, int64_t out_channels, const ConvEpilogue& e);
// Whether a float32 3x3 forward of n images runs as Winograd's F(7x7, 3x3) over both axes
// (conv_winograd_2d.cpp) rather than oneDNN's kernels or the one-axis route: stride 1, one group, channel
// counts that are multiples of 16, float32 nChw16c input and output; under Auto only, 256 or more input and
// output channels, on maps that are whole 7x7 tiles with 32 or more of them in the batch.
bool conv_winograd_2d_forward(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups, const ConvLayouts& l,
                              int64_t n);
// Whether the input gradient of such a layer runs the same way (padding 1; dx written, not added), and that
// input gradient (any padding-1 problem that fits, whatever the rule).
bool conv_winograd_2d_backward_data(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                    const ConvLayouts& l, int64_t n);
void conv2d_backward_data_winograd_2d(const float* w, const float* dy, float* dx, int64_t n,
                                      const ops::ConvGeometry& g, int64_t out_channels);
// That forward (any 3x3 stride-1 problem that fits, whatever the rule), with conv2d_forward_onednn's contract.
void conv2d_forward_winograd_2d(const float* x, const float* w, const float* b, float* y, int64_t n,
                                const ops::ConvGeometry& g, int64_t out_channels, const ConvEpilogue& e);
// Its products run our AVX-512 kernel where the CPU has it, else BLAS; true here runs BLAS anyway (tests: the
// path other CPUs take), and winograd_2d_blas_runs counts the point ranges BLAS has multiplied. Tiles go
// through in groups whose transforms take at most 64 MiB; set_winograd_2d_group_bytes sets another bound
// (tests: several groups on small problems; 0 restores it).
void set_winograd_2d_blas(bool blas);
int64_t winograd_2d_blas_runs();
void set_winograd_2d_group_bytes(int64_t bytes);
// A Winograd forward's transformed weights U (returned) and bias (into `bias`): kept in e.prepared (with an
// evaluation batch norm folded in) where made there for these weights, this transform (`plan`), this scale
// and shift; else made by make(U) into e.prepared or `scratch`, the bias folded (scale * b + shift) into
// e.prepared or `folded`. Shared by conv_winograd_1d.cpp and conv_winograd_2d.cpp.
const float* winograd_weights(const float* w, const float* b, const ConvEpilogue& e, const void* plan,
                              size_t u_floats, int64_t out_channels, ScratchBuffer& scratch, std::vector<float>& folded,
                              const std::function<void(float*)>& make, const float*& bias);
// The input gradient by the same algorithm (a forward strip from dy to dx with the weights reversed along
// the axis), for 1 x r and r x 1 kernels where conv_winograd_1d holds and the padding along the axis is at
// most r - 1; written, not accumulated.
bool conv_winograd_1d_backward_data(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                    const ConvLayouts& l);
void conv2d_backward_data_winograd_1d(const float* w, const float* dy, float* dx, int64_t n,
                                      const ops::ConvGeometry& g, int64_t out_channels);
// The weight gradient likewise, for 1 x r and r x 1 kernels where conv_winograd_1d holds: over every tile,
// the transformed input times the transposed output transform of dy, back through G; added to dw when
// accumulate, else written. (A bias gradient keeps oneDNN's kernel, which then does the weights too.)
bool conv_winograd_1d_backward_weights(const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
                                       const ConvLayouts& l);
void conv2d_backward_weights_winograd_1d(const float* x, const float* dy, float* dw, bool accumulate, int64_t n,
                                         const ops::ConvGeometry& g, int64_t out_channels);
// The cache's buffer grown to at least `bytes` (old contents lost); `what` names it in the error.
void* reserve_weight_cache(ops::ConvWeightCache& cache, size_t bytes, const char* what);
// "auto", "direct" or "winograd"; anything else fails, naming the variable.
ConvAlgorithm conv_algorithm_named(const std::string& name);
// Whether a float32 convolution of n images with this geometry asks oneDNN for Winograd under the current
// setting (it runs the direct kernel where oneDNN has no Winograd one, e.g. for channel counts it cannot
// block).
bool conv_wants_winograd(int64_t n, const ops::ConvGeometry& g, int64_t groups);
// The 4x4 output tiles of n images: the unit oneDNN's Winograd kernel splits its work by.
int64_t winograd_tiles(int64_t n, const ops::ConvGeometry& g);
// Auto's least tiles for oneDNN's Winograd: kWinogradManyTiles, or 32 on cores that run a 512-bit FMA as
// two 256-bit halves (avx512_in_halves: AMD Zen 4), where the direct kernel is relatively slower.
constexpr int64_t kWinogradManyTiles = 48;
int64_t winograd_least_tiles(bool avx512_halves);
bool avx512_in_halves();
// The most scratchpad one oneDNN convolution call may take (default 64 MiB). A float32 Winograd pass whose
// plan asks for more (oneDNN keeps transformed copies of its operands there, which on large maps outgrow
// the activations: 615 MB for Inception-v3's 147x147 layer's weight gradient at batch 32, 415 and 461 for
// its 73x73 layer's forward and input gradient) runs on halves of the batch where a half still takes
// Winograd and its plan needs under three quarters of the whole one's; weight gradients add up over the
// halves. conv_batch_splits counts such calls.
void set_conv_scratchpad_cap(size_t bytes);
size_t conv_scratchpad_cap();
int64_t conv_batch_splits();

// Pooling over s.planes = N * C images (see ops::detail::PoolShape).
using ops::detail::PoolShape;
template <typename T>
void max_pool2d_forward(const T* x, T* y, int64_t* index, const PoolShape& s, const ops::Pool2dParams& p);
template <typename T>
void max_pool2d_backward(const T* dy, const int64_t* index, T* dx, const PoolShape& s);
// Average pooling's window of output (oy, ox) clipped to the input, [y0, y1) x [x0, x1), and its divisor:
// PyTorch's, the window clipped to the padded input (count_include_pad) or to the input itself.
struct AvgWindow {
  int64_t y0, y1, x0, x1, divisor;
};
inline AvgWindow avg_pool_window(int64_t oy, int64_t ox, const PoolShape& s, const ops::Pool2dParams& p) {
  int64_t y0 = oy * p.stride_h - p.pad_h, x0 = ox * p.stride_w - p.pad_w;
  int64_t y1 = std::min(y0 + p.kernel_h, s.h + p.pad_h), x1 = std::min(x0 + p.kernel_w, s.w + p.pad_w);
  const int64_t padded = (y1 - y0) * (x1 - x0);
  y0 = std::max<int64_t>(y0, 0);
  x0 = std::max<int64_t>(x0, 0);
  y1 = std::min(y1, s.h);
  x1 = std::min(x1, s.w);
  const int64_t inside = (y1 - y0) * (x1 - x0);
  return {y0, y1, x0, x1, p.count_include_pad ? padded : std::max<int64_t>(inside, 1)};
}
template <typename T>
void avg_pool2d_forward(const T* x, T* y, const PoolShape& s, const ops::Pool2dParams& p);
template <typename T>
void avg_pool2d_backward(const T* dy, T* dx, const PoolShape& s, const ops::Pool2dParams& p);
template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* y, const PoolShape& s);
template <typename T>
void adaptive_avg_pool2d_backward(const T* dy, T* dx, const PoolShape& s);

// Batch norm over x viewed as (n, c, inner). relu: y = max(0, normalised) (a ReLU fused in); with a
// residual (null: none; needs relu) y = max(0, normalised + residual) as add_relu_forward; relu_out (null:
// none): dy is the gradient of that ReLU's output relu_out, masked by relu_out > 0 as relu_backward.
template <typename T>
void batch_norm_forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* invstd, T* running_mean,
                        T* running_var, int64_t n, int64_t c, int64_t inner, bool training, double momentum,
                        double eps, bool relu, const T* residual = nullptr);
template <typename T>
void batch_norm_backward(const T* x, const T* dy, const T* relu_out, const T* weight, const T* mean, const T* invstd,
                         T* dx, T* dweight, T* dbias, int64_t n, int64_t c, int64_t inner, bool training);

// LRN over x viewed as (n, c, inner).
template <typename T>
void lrn_forward(const T* x, T* y, T* scale, int64_t n, int64_t c, int64_t inner, const ops::LrnParams& p);
template <typename T>
void lrn_backward(const T* x, const T* y, const T* scale, const T* dy, T* dx, int64_t n, int64_t c, int64_t inner,
                  const ops::LrnParams& p);

template <typename T>
void softmax_cross_entropy_forward(const T* logits, const int64_t* labels, T* prob, T* loss, int64_t n, int64_t k,
                                   double smoothing);
template <typename T>
void softmax_cross_entropy_backward(const T* prob, const int64_t* labels, const T* dloss, T* dlogits, int64_t n,
                                    int64_t k, double smoothing);

// T: float, double or bfloat16 (storage, computed in float32: core/bfloat16.h).
template <typename T>
void relu_backward(const T* y, const T* dy, T* dx, int64_t n);
// y = max(0, a + b); dx0, dx1 (null: not wanted) = dy where y > 0, else 0 (nn_ops.h add_relu_*).
template <typename T>
void add_relu_forward(const T* a, const T* b, T* y, int64_t n);
template <typename T>
void add_relu_backward(const T* y, const T* dy, T* dx0, T* dx1, int64_t n);
// y += bias per channel, then y = max(0, y) when relu, over `segments` runs of `inner` pixels of `block`
// channels each (NCHW: block 1; NHWC: block C; nChw16c: 16), run r holding channels (r % (C / block)) * block
// onwards (nn_ops.h channel_bias).
template <typename T>
void channel_bias(T* y, const T* bias, int64_t segments, int64_t channels, int64_t block, int64_t inner, bool relu);
// For each of n batch entries: count * inner elements from src (+ src_offset * inner within an entry of
// src_channels * inner) to dst likewise.
template <typename T>
void copy_channels(const T* src, int64_t src_channels, int64_t src_offset, T* dst, int64_t dst_channels,
                   int64_t dst_offset, int64_t count, int64_t n, int64_t inner);

}  // namespace mpncov::cpu
