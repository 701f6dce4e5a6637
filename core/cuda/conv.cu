// Convolution on CUDA through cuDNN. Per input/weight geometry a plan holds the descriptors and the
// algorithms for the forward, backward-data and backward-filter passes, chosen once from cuDNN's
// heuristics (the fastest whose workspace fits kMaxWorkspace) and cached. Tensor cores are allowed
// (TF32 on Ampere and later), as PyTorch does by default.
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda_nn_backend.h"

namespace mpncov::cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t(512) << 20;

using PlanKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t>;

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

int to_int(int64_t v) {
  MPNCOV_CHECK(v <= INT32_MAX, "cuDNN convolution: dimension ", v, " exceeds 32 bits");
  return static_cast<int>(v);
}

// The first (fastest-ranked) algorithm that succeeded and fits the workspace bound.
template <typename Perf>
const Perf& pick(const std::vector<Perf>& perf, int count, const char* pass) {
  for (int i = 0; i < count; ++i)
    if (perf[static_cast<size_t>(i)].status == CUDNN_STATUS_SUCCESS &&
        perf[static_cast<size_t>(i)].memory <= kMaxWorkspace)
      return perf[static_cast<size_t>(i)];
  MPNCOV_FAIL("cuDNN convolution: no ", pass, " algorithm fits a ", kMaxWorkspace >> 20, " MiB workspace");
}

std::unique_ptr<Plan> make_plan(Context& ctx, int64_t n, const ops::ConvGeometry& g, int64_t out_channels,
                                int64_t groups) {
  auto p = std::make_unique<Plan>();
  const int c = to_int(g.channels * groups);
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(n), c, to_int(g.height),
                                         to_int(g.width)));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, to_int(out_channels),
                                         to_int(g.channels), to_int(g.kernel_h), to_int(g.kernel_w)));
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, to_int(g.pad_h), to_int(g.pad_w), to_int(g.stride_h),
                                              to_int(g.stride_w), to_int(g.dilation_h), to_int(g.dilation_w),
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, to_int(groups)));
  CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, CUDNN_DEFAULT_MATH));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(n), to_int(out_channels),
                                         to_int(g.out_h()), to_int(g.out_w())));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, to_int(out_channels), 1, 1));

  cudnnHandle_t h = ctx.cudnn();
  int count = 0;
  {
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, static_cast<int>(perf.size()),
                                                       &count, perf.data()));
    const auto& best = pick(perf, count, "forward");
    p->fwd = best.algo;
    p->fwd_bytes = best.memory;
  }
  {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x,
                                                            static_cast<int>(perf.size()), &count, perf.data()));
    const auto& best = pick(perf, count, "backward-data");
    p->bwd_data = best.algo;
    p->bwd_data_bytes = best.memory;
  }
  {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w,
                                                              static_cast<int>(perf.size()), &count, perf.data()));
    const auto& best = pick(perf, count, "backward-filter");
    p->bwd_filter = best.algo;
    p->bwd_filter_bytes = best.memory;
  }
  return p;
}

// The cached plan of a geometry on a device.
Plan& plan_for(Context& ctx, int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  static std::mutex mutex;
  static std::map<PlanKey, std::unique_ptr<Plan>> plans;
  const PlanKey key{ctx.device(), n,          g.channels,  g.height,    g.width,     g.kernel_h, g.kernel_w,  g.stride_h,
                    g.stride_w,   g.pad_h,    g.pad_w,     g.dilation_h, g.dilation_w, out_channels, groups};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_plan(ctx, n, g, out_channels, groups)).first;
  return *it->second;
}

}  // namespace

void conv2d_forward(int device, const float* x, const float* w, const float* b, float* y, int64_t n,
                    const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Plan& p = plan_for(ctx, n, g, out_channels, groups);
  cudnnHandle_t h = ctx.cudnn();
  const float one = 1.0f, zero = 0.0f;
  void* ws = p.fwd_bytes ? ctx.workspace(p.fwd_bytes) : nullptr;
  CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.x, x, p.w, w, p.conv, p.fwd, ws, p.fwd_bytes, &zero, p.y, y));
  if (b) CUDNN_CHECK(cudnnAddTensor(h, &one, p.bias, b, &one, p.y, y));
}

void conv2d_backward(int device, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                     int64_t n, const ops::ConvGeometry& g, int64_t out_channels, int64_t groups) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  Plan& p = plan_for(ctx, n, g, out_channels, groups);
  cudnnHandle_t h = ctx.cudnn();
  const float one = 1.0f, zero = 0.0f;
  if (db) CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, p.y, dy, &one, p.bias, db));
  if (dw) {
    void* ws = p.bwd_filter_bytes ? ctx.workspace(p.bwd_filter_bytes) : nullptr;
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.x, x, p.y, dy, p.conv, p.bwd_filter, ws, p.bwd_filter_bytes,
                                               &one, p.w, dw));
  }
  if (dx) {
    void* ws = p.bwd_data_bytes ? ctx.workspace(p.bwd_data_bytes) : nullptr;
    CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.w, w, p.y, dy, p.conv, p.bwd_data, ws, p.bwd_data_bytes, &zero,
                                             p.x, dx));
  }
}

}  // namespace mpncov::cuda
