// Convolution on CUDA through cuDNN. Per input/weight geometry and math options, a plan holds the
// descriptors and, for each of the forward, backward-data and backward-filter passes, the algorithms
// usable in the order cuDNN's heuristics rank them. Each entry carries:
//  - the math type it runs with: the heuristic's own when the context allows TF32, else FMA math (full
//    FP32), entries that need tensor cores being left out;
//  - the workspace cuDNN reports for that exact (algorithm, math type) pair, at most kMaxWorkspace;
//  - when the context asks for determinism, only algorithms cuDNN marks deterministic.
// A pass runs its current entry. If cuDNN refuses it (a "not supported" status: nothing ran) or its
// workspace cannot be allocated, the pass moves on to the next entry, for good. Each pass has its own
// convolution descriptor, so the math type set on it is always its current entry's.
//
// bfloat16 (mixed precision, core/cuda_mixed_backend.h): plans of their own whose data descriptors are
// CUDNN_DATA_BFLOAT16 (cuDNN's bfloat16 configuration: input, weights and output bfloat16, float32
// accumulation), tensor-core math always allowed. The float32 operands are rounded into temporary bfloat16
// buffers and the bfloat16 results widened back; the bias and its gradient stay float32.
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/cuda/bf16_convert.h"
#include "core/cuda/conv_plan.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda_mixed_backend.h"
#include "core/cuda_nn_backend.h"

namespace mpncov::cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t(512) << 20;

using PlanKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, int>;

struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t bytes = 0;
};

struct Pass {
  cudnnConvolutionDescriptor_t conv = nullptr;
  std::vector<Choice> choices;
  size_t current = 0;
};

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnTensorDescriptor_t y_float = nullptr;  // bfloat16 plans: the output as float32, for the bias
  cudnnFilterDescriptor_t w = nullptr;
  Pass fwd, bwd_data, bwd_filter;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (y_float) cudnnDestroyTensorDescriptor(y_float);
    if (w) cudnnDestroyFilterDescriptor(w);
    for (Pass* p : {&fwd, &bwd_data, &bwd_filter})
      if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
  }
  // The descriptor of the float32 output (or output gradient) the bias is added to (taken from).
  cudnnTensorDescriptor_t y32() const { return y_float ? y_float : y; }
};

int to_int(int64_t v) {
  MPNCOV_CHECK(v <= INT32_MAX, "cuDNN convolution: dimension ", v, " exceeds 32 bits");
  return static_cast<int>(v);
}

const char* const kForwardNames[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM",     "DIRECT",
                                     "FFT",           "FFT_TILING",            "WINOGRAD", "WINOGRAD_NONFUSED"};
const char* const kBackwardDataNames[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
const char* const kBackwardFilterNames[] = {"ALGO_0",   "ALGO_1",            "FFT",       "ALGO_3",
                                            "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"};

const char* math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op-conversion";
    case CUDNN_FMA_MATH: return "fma";
  }
  return "unknown";
}

// The usable entries of a heuristic's ranking (see the top of the file). tensor_ops: tensor-core math is
// allowed (TF32 for float32, when the context allows it; always for bfloat16). workspace(algo, math, &bytes)
// asks cuDNN for the workspace of the pair and says whether cuDNN accepts it.
template <typename Perf, typename Workspace>
std::vector<Choice> usable(const std::vector<Perf>& perf, int count, const MathOptions& m, bool tensor_ops,
                           Workspace workspace) {
  std::vector<Choice> out;
  for (int i = 0; i < count; ++i) {
    const Perf& e = perf[static_cast<size_t>(i)];
    if (e.status != CUDNN_STATUS_SUCCESS) continue;
    if (m.deterministic && e.determinism != CUDNN_DETERMINISTIC) continue;
    cudnnMathType_t math = e.mathType;
    if (!tensor_ops) {
      if (math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
      math = CUDNN_FMA_MATH;  // CUDNN_DEFAULT_MATH would still let cuDNN use TF32 on Ampere and later
    }
    bool seen = false;
    for (const Choice& c : out) seen = seen || (c.algo == static_cast<int>(e.algo) && c.math == math);
    if (seen) continue;
    size_t bytes = 0;
    if (!workspace(e.algo, math, &bytes) || bytes > kMaxWorkspace) continue;
    out.push_back({static_cast<int>(e.algo), math, bytes});
  }
  return out;
}

void check_choices(const Pass& p, const char* pass, const MathOptions& m) {
  MPNCOV_CHECK(!p.choices.empty(), "cuDNN convolution: no ", pass, " algorithm fits a ", kMaxWorkspace >> 20,
               " MiB workspace", m.deterministic ? " among the deterministic ones (MPNCOV_CUDA_DETERMINISTIC)" : "",
               m.allow_tf32 ? "" : " with FP32 math (TF32 not allowed)");
}

cudnnConvolutionDescriptor_t make_conv(const ops::ConvGeometry& g, int64_t groups, bool tensor_ops) {
  cudnnConvolutionDescriptor_t conv = nullptr;
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, to_int(g.pad_h), to_int(g.pad_w), to_int(g.stride_h),
                                              to_int(g.stride_w), to_int(g.dilation_h), to_int(g.dilation_w),
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, to_int(groups)));
  // What the heuristics may rank: FMA-only kernels unless tensor cores are allowed. The compute type above
  // is float32 for bfloat16 data too: float32 accumulation.
  CUDNN_CHECK(cudnnSetConvolutionMathType(conv, tensor_ops ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  return conv;
}

std::unique_ptr<Plan> make_plan(Context& ctx, int64_t n, const ops::ConvGeometry& g, int64_t out_channels,
                                int64_t groups, const MathOptions& m, cudnnDataType_t type) {
  auto p = std::make_unique<Plan>();
  const bool tensor_ops = m.allow_tf32 || type == CUDNN_DATA_BFLOAT16;
  const int c = to_int(g.channels * groups);
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, type, to_int(n), c, to_int(g.height),
                                         to_int(g.width)));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, type, CUDNN_TENSOR_NCHW, to_int(out_channels),
                                         to_int(g.channels), to_int(g.kernel_h), to_int(g.kernel_w)));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, type, to_int(n), to_int(out_channels),
                                         to_int(g.out_h()), to_int(g.out_w())));
  if (type != CUDNN_DATA_FLOAT) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y_float));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y_float, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(n),
                                           to_int(out_channels), to_int(g.out_h()), to_int(g.out_w())));
  }
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, to_int(out_channels), 1, 1));
  for (Pass* pass : {&p->fwd, &p->bwd_data, &p->bwd_filter}) pass->conv = make_conv(g, groups, tensor_ops);

  cudnnHandle_t h = ctx.cudnn();
  int count = 0;
  {
    Pass& pass = p->fwd;
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, pass.conv, p->y, static_cast<int>(perf.size()),
                                                       &count, perf.data()));
    pass.choices = usable(perf, count, m, tensor_ops, [&](cudnnConvolutionFwdAlgo_t a, cudnnMathType_t math, size_t* bytes) {
      return cudnnSetConvolutionMathType(pass.conv, math) == CUDNN_STATUS_SUCCESS &&
             cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, pass.conv, p->y, a, bytes) == CUDNN_STATUS_SUCCESS;
    });
    check_choices(pass, "forward", m);
  }
  {
    Pass& pass = p->bwd_data;
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, pass.conv, p->x,
                                                            static_cast<int>(perf.size()), &count, perf.data()));
    pass.choices = usable(perf, count, m, tensor_ops, [&](cudnnConvolutionBwdDataAlgo_t a, cudnnMathType_t math, size_t* bytes) {
      return cudnnSetConvolutionMathType(pass.conv, math) == CUDNN_STATUS_SUCCESS &&
             cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, pass.conv, p->x, a, bytes) ==
                 CUDNN_STATUS_SUCCESS;
    });
    check_choices(pass, "backward-data", m);
  }
  {
    Pass& pass = p->bwd_filter;
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, pass.conv, p->w,
                                                              static_cast<int>(perf.size()), &count, perf.data()));
    pass.choices = usable(perf, count, m, tensor_ops, [&](cudnnConvolutionBwdFilterAlgo_t a, cudnnMathType_t math, size_t* bytes) {
      return cudnnSetConvolutionMathType(pass.conv, math) == CUDNN_STATUS_SUCCESS &&
             cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, pass.conv, p->w, a, bytes) ==
                 CUDNN_STATUS_SUCCESS;
    });
    check_choices(pass, "backward-filter", m);
  }
  return p;
}

// The cached plan of a geometry and data type on a device under its context's current math options.
Plan& plan_for(Context& ctx, int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups,
               cudnnDataType_t type = CUDNN_DATA_FLOAT) {
  static std::mutex mutex;
  static std::map<PlanKey, std::unique_ptr<Plan>> plans;
  const MathOptions m = ctx.math();
  const PlanKey key{ctx.device(), n,        g.channels,   g.height,     g.width,      g.kernel_h,
                    g.kernel_w,   g.stride_h, g.stride_w, g.pad_h,      g.pad_w,      g.dilation_h,
                    g.dilation_w, out_channels, groups,   m.allow_tf32, m.deterministic, static_cast<int>(type)};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_plan(ctx, n, g, out_channels, groups, m, type)).first;
  return *it->second;
}

// Runs the pass's current entry with run(choice, workspace) -> status, moving on as described at the top.
template <typename Run>
void run_pass(Context& ctx, Pass& pass, const char* name, Run run) {
  std::string why;
  for (; pass.current < pass.choices.size(); ++pass.current) {
    const Choice& c = pass.choices[pass.current];
    void* ws = nullptr;
    if (c.bytes) {
      try {
        ws = ctx.workspace(c.bytes);
      } catch (const Error& e) {  // out of memory: an entry with a smaller workspace may still fit
        why = e.what();
        continue;
      }
    }
    CUDNN_CHECK(cudnnSetConvolutionMathType(pass.conv, c.math));
    const cudnnStatus_t status = run(c, ws);
    if (status == CUDNN_STATUS_SUCCESS) {
      CUDA_CHECK_LAUNCH();
      return;
    }
    if (CUDNN_STATUS_CATEGORY(status) != CUDNN_STATUS_NOT_SUPPORTED) CUDNN_CHECK(status);
    why = cudnnGetErrorString(status);
  }
  MPNCOV_FAIL("cuDNN convolution: every ", name, " algorithm failed; the last one: ", why);
}

std::string describe(const Pass& p, const char* const* names) {
  if (p.current >= p.choices.size()) return "none left";
  const Choice& c = p.choices[p.current];
  return str(names[c.algo], " math=", math_name(c.math), " workspace=", c.bytes, " (entry ", p.current + 1, " of ",
             p.choices.size(), ")");
}

}  // namespace

void conv2d_forward(int device, const float* x, const float* w, const float* b, float* y, int64_t n,
                    const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Plan& p = plan_for(ctx, n, g, out_channels, groups);
  cudnnHandle_t h = ctx.cudnn();
  const float one = 1.0f, zero = 0.0f;
  run_pass(ctx, p.fwd, "forward", [&](const Choice& c, void* ws) {
    return cudnnConvolutionForward(h, &one, p.x, x, p.w, w, p.fwd.conv, static_cast<cudnnConvolutionFwdAlgo_t>(c.algo),
                                   ws, c.bytes, &zero, p.y, y);
  });
  if (b) {
    CUDNN_CHECK(cudnnAddTensor(h, &one, p.bias, b, &one, p.y, y));
    CUDA_CHECK_LAUNCH();
  }
}

void conv2d_backward(int device, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                     int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Plan& p = plan_for(ctx, n, g, out_channels, groups);
  cudnnHandle_t h = ctx.cudnn();
  const float one = 1.0f, zero = 0.0f;
  // Parameter gradients accumulate (beta = 1); the input gradient is written (beta = 0).
  if (db) {
    CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, p.y, dy, &one, p.bias, db));
    CUDA_CHECK_LAUNCH();
  }
  if (dw)
    run_pass(ctx, p.bwd_filter, "backward-filter", [&](const Choice& c, void* ws) {
      return cudnnConvolutionBackwardFilter(h, &one, p.x, x, p.y, dy, p.bwd_filter.conv,
                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws, c.bytes, &one,
                                            p.w, dw);
    });
  if (dx)
    run_pass(ctx, p.bwd_data, "backward-data", [&](const Choice& c, void* ws) {
      return cudnnConvolutionBackwardData(h, &one, p.w, w, p.y, dy, p.bwd_data.conv,
                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws, c.bytes, &zero, p.x,
                                          dx);
    });
}

void conv2d_forward_bf16(int device, const float* x, const float* w, const float* b, float* y, int64_t n,
                         const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Plan& p = plan_for(ctx, n, g, out_channels, groups, CUDNN_DATA_BFLOAT16);
  cudnnHandle_t h = ctx.cudnn();
  const int64_t x_count = n * g.channels * groups * g.height * g.width;
  const int64_t w_count = out_channels * g.channels * g.kernel_h * g.kernel_w;
  const int64_t y_count = n * out_channels * g.out_h() * g.out_w();
  Bf16Buffer x16(device, x_count), w16(device, w_count), y16(device, y_count);
  to_bf16(device, x, x16.get(), x_count);
  to_bf16(device, w, w16.get(), w_count);
  const float one = 1.0f, zero = 0.0f;
  run_pass(ctx, p.fwd, "bfloat16 forward", [&](const Choice& c, void* ws) {
    return cudnnConvolutionForward(h, &one, p.x, x16.get(), p.w, w16.get(), p.fwd.conv,
                                   static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws, c.bytes, &zero, p.y, y16.get());
  });
  from_bf16(device, y16.get(), y, y_count, false);
  if (b) {
    CUDNN_CHECK(cudnnAddTensor(h, &one, p.bias, b, &one, p.y32(), y));
    CUDA_CHECK_LAUNCH();
  }
}

void conv2d_backward_bf16(int device, const float* x, const float* w, const float* dy, float* dx, float* dw,
                          float* db, int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Plan& p = plan_for(ctx, n, g, out_channels, groups, CUDNN_DATA_BFLOAT16);
  cudnnHandle_t h = ctx.cudnn();
  const int64_t x_count = n * g.channels * groups * g.height * g.width;
  const int64_t w_count = out_channels * g.channels * g.kernel_h * g.kernel_w;
  const int64_t y_count = n * out_channels * g.out_h() * g.out_w();
  const float one = 1.0f, zero = 0.0f;
  if (db) {  // float32, from the float32 output gradient
    CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, p.y32(), dy, &one, p.bias, db));
    CUDA_CHECK_LAUNCH();
  }
  if (!dw && !dx) return;
  Bf16Buffer dy16(device, y_count);
  to_bf16(device, dy, dy16.get(), y_count);
  if (dw) {  // bf16(x) by bf16(dy) into a bfloat16 gradient, accumulated into the float32 one
    Bf16Buffer x16(device, x_count), dw16(device, w_count);
    to_bf16(device, x, x16.get(), x_count);
    run_pass(ctx, p.bwd_filter, "bfloat16 backward-filter", [&](const Choice& c, void* ws) {
      return cudnnConvolutionBackwardFilter(h, &one, p.x, x16.get(), p.y, dy16.get(), p.bwd_filter.conv,
                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws, c.bytes, &zero,
                                            p.w, dw16.get());
    });
    from_bf16(device, dw16.get(), dw, w_count, true);
  }
  if (dx) {  // bf16(dy) by bf16(w), written
    Bf16Buffer w16(device, w_count), dx16(device, x_count);
    to_bf16(device, w, w16.get(), w_count);
    run_pass(ctx, p.bwd_data, "bfloat16 backward-data", [&](const Choice& c, void* ws) {
      return cudnnConvolutionBackwardData(h, &one, p.w, w16.get(), p.y, dy16.get(), p.bwd_data.conv,
                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws, c.bytes, &zero, p.x,
                                          dx16.get());
    });
    from_bf16(device, dx16.get(), dx, x_count, false);
  }
}

std::string conv_plan_description(int device, int64_t n, const ops::ConvGeometry& g, int64_t out_channels,
                                  int64_t groups) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  const Plan& p = plan_for(ctx, n, g, out_channels, groups);
  return str("forward ", describe(p.fwd, kForwardNames), "; backward-data ",
             describe(p.bwd_data, kBackwardDataNames), "; backward-filter ",
             describe(p.bwd_filter, kBackwardFilterNames));
}

}  // namespace mpncov::cuda
