// Reductions over any set of axes on CUDA, from the plan of ops::detail::plan_reduce (kept and reduced
// dimensions, merged, with their strides). Output o reduces the R elements x[base(o) + offset(r)].
// Three strategies, by shape:
//  - R <= 32: one thread per output, looping over r like the CPU;
//  - outputs adjacent in memory (the innermost dimension is kept, e.g. the batch sum of an (N, C) gradient):
//    a block covers 32 adjacent outputs (coalesced loads) with 8 rows of threads splitting r;
//  - otherwise (e.g. the per-channel sum of (N, C, H, W) over N, H, W): one block per output, its threads
//    striding over r (coalesced along W), combined through warp shuffles and shared memory.
// With too few outputs to fill the device, r is also split over several blocks whose partial results a
// second kernel combines in a fixed order: no atomics, so results are deterministic on a given device.
// Sums accumulate in float, Kahan-compensated within each thread. Max keeps the CPU's rule: the first
// maximum in row-major order of the reduced axes, a NaN beating every number (the first NaN wins).
#include <climits>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/launch.h"
#include "core/cuda_backend.h"

namespace mpncov::cuda {
namespace {

using ops::Reduce;

// Sizes and element strides of merged dimensions, in the index type I of the launch.
template <typename I>
struct Dims {
  int n = 0;
  I size[Shape::kMaxDims] = {}, stride[Shape::kMaxDims] = {};
};

template <typename I>
Dims<I> dims(int n, const int64_t* size, const int64_t* stride) {
  Dims<I> d;
  d.n = n;
  for (int i = 0; i < n; ++i) {
    d.size[i] = static_cast<I>(size[i]);
    d.stride[i] = static_cast<I>(stride[i]);
  }
  return d;
}

// Element offset of flat index i (row-major over d's sizes). The outermost dimension needs no modulo.
template <typename I>
__device__ __forceinline__ I offset_of(I i, const Dims<I>& d) {
  I off = 0;
  for (int k = d.n - 1; k > 0; --k) {
    const I q = i / d.size[k];
    off += (i - q * d.size[k]) * d.stride[k];
    i = q;
  }
  return d.n > 0 ? off + i * d.stride[0] : off;
}

// A partial result: the running sum, or the best value so far and its r (-1: nothing seen yet).
struct Partial {
  float value;
  int64_t index;
};

template <Reduce op>
struct Acc;

template <>
struct Acc<Reduce::Sum> {
  float sum = 0.0f, comp = 0.0f;  // Kahan: comp holds the low-order part lost by the last addition
  __device__ void add(float v, int64_t) {
    const float y = v - comp;
    const float t = sum + y;
    // Once the sum is infinite (or NaN) the compensation would be inf - inf = NaN: drop it, so the sum
    // stays +-inf as the CPU's does (or becomes NaN only where the CPU's would).
    comp = isfinite(t) ? (t - sum) - y : 0.0f;
    sum = t;
  }
  __device__ Partial partial() const { return {sum, 0}; }
  __device__ static Partial combine(Partial a, Partial b) { return {a.value + b.value, 0}; }
  __device__ static Partial empty() { return {0.0f, 0}; }
};
template <>
struct Acc<Reduce::Mean> : Acc<Reduce::Sum> {};

__device__ __forceinline__ bool is_nan(float v) { return v != v; }

template <>
struct Acc<Reduce::Max> {
  float best = 0.0f;
  int64_t at = -1;
  // The CPU's scan: replace on a strictly greater value, or on the first NaN; r increases between calls.
  __device__ void add(float v, int64_t r) {
    if (at < 0 || v > best || (is_nan(v) && !is_nan(best))) {
      best = v;
      at = r;
    }
  }
  __device__ Partial partial() const { return {best, at}; }
  // Whether a comes before b: seen, then NaN, then larger, then earlier. A total order, so any grouping
  // of partials picks the CPU's answer.
  __device__ static bool before(const Partial& a, const Partial& b) {
    if (a.index < 0 || b.index < 0) return b.index < 0 && a.index >= 0;
    const bool an = is_nan(a.value), bn = is_nan(b.value);
    if (an != bn) return an;
    if (!an && a.value != b.value) return a.value > b.value;
    return a.index < b.index;
  }
  __device__ static Partial combine(Partial a, Partial b) { return before(b, a) ? b : a; }
  __device__ static Partial empty() { return {0.0f, -1}; }
};

// Writes output o from its complete result.
template <Reduce op>
__device__ __forceinline__ void finish(Partial p, int64_t o, int64_t reduced, float* out, int64_t* index) {
  if (op == Reduce::Mean) p.value /= static_cast<float>(reduced);
  out[o] = p.value;
  if (op == Reduce::Max && index) index[o] = p.index;
}

// Where a block's result goes: the output when r is not split, else slot (split, o) of the partials.
struct Target {
  float* out;
  int64_t* index;
  float* part_value;    // (splits, out_numel)
  int64_t* part_index;  // (splits, out_numel), max only
  int64_t out_numel, reduced;
  int splits;
};

template <Reduce op>
__device__ __forceinline__ void store(const Target& t, Partial p, int64_t o, int split) {
  if (t.splits == 1) {
    finish<op>(p, o, t.reduced, t.out, t.index);
  } else {
    t.part_value[split * t.out_numel + o] = p.value;
    if (op == Reduce::Max) t.part_index[split * t.out_numel + o] = p.index;
  }
}

__device__ __forceinline__ Partial shfl_down(Partial p, int delta) {
  return {__shfl_down_sync(0xffffffffu, p.value, delta), __shfl_down_sync(0xffffffffu, p.index, delta)};
}

// One thread per output, the whole range of r in order.
template <Reduce op, typename I>
__global__ void reduce_thread_kernel(const float* x, Dims<I> kept, Dims<I> red, I reduced, Target t) {
  MPNCOV_GRID_LOOP(o, t.out_numel) {
    const float* base = x + offset_of(static_cast<I>(o), kept);
    Acc<op> acc;
    for (I r = 0; r < reduced; ++r) acc.add(base[offset_of(r, red)], static_cast<int64_t>(r));
    finish<op>(acc.partial(), o, t.reduced, t.out, t.index);
  }
}

constexpr int kRowThreads = 256;  // reduce_row_kernel's block

// Block (o, split): its kRowThreads threads stride over r in [split * chunk, (split + 1) * chunk).
template <Reduce op, typename I>
__global__ void __launch_bounds__(kRowThreads)
    reduce_row_kernel(const float* x, Dims<I> kept, Dims<I> red, I reduced, I chunk, Target t) {
  __shared__ Partial warp_results[kRowThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int split = blockIdx.y;
  const I r_begin = static_cast<I>(split) * chunk;
  const I r_end = reduced - r_begin < chunk ? reduced : r_begin + chunk;
  for (int64_t o = blockIdx.x; o < t.out_numel; o += gridDim.x) {
    const float* base = x + offset_of(static_cast<I>(o), kept);
    Acc<op> acc;
    for (I r = r_begin + threadIdx.x; r < r_end; r += kRowThreads) acc.add(base[offset_of(r, red)], r);
    Partial p = acc.partial();
    for (int d = 16; d > 0; d /= 2) p = Acc<op>::combine(p, shfl_down(p, d));
    if (lane == 0) warp_results[warp] = p;
    __syncthreads();
    if (warp == 0) {
      p = lane < kRowThreads / 32 ? warp_results[lane] : Acc<op>::empty();
      for (int d = 16; d > 0; d /= 2) p = Acc<op>::combine(p, shfl_down(p, d));
      if (lane == 0) store<op>(t, p, o, split);
    }
    __syncthreads();  // warp_results is reused by the next output
  }
}

constexpr int kColumnWidth = 32, kColumnRows = 8;  // reduce_column_kernel's block

// Block (g, split): outputs [32 g, 32 g + 32) along threadIdx.x, its 8 rows of threads striding over r
// in the split's range; the rows are then combined in order.
template <Reduce op, typename I>
__global__ void __launch_bounds__(kColumnWidth* kColumnRows)
    reduce_column_kernel(const float* x, Dims<I> kept, Dims<I> red, I reduced, I chunk, Target t) {
  __shared__ Partial rows[kColumnRows][kColumnWidth];
  const int split = blockIdx.y;
  const I r_begin = static_cast<I>(split) * chunk;
  const I r_end = reduced - r_begin < chunk ? reduced : r_begin + chunk;
  for (int64_t g = blockIdx.x; g * kColumnWidth < t.out_numel; g += gridDim.x) {
    const int64_t o = g * kColumnWidth + threadIdx.x;
    Acc<op> acc;
    if (o < t.out_numel) {
      const float* base = x + offset_of(static_cast<I>(o), kept);
      for (I r = r_begin + threadIdx.y; r < r_end; r += kColumnRows) acc.add(base[offset_of(r, red)], r);
    }
    rows[threadIdx.y][threadIdx.x] = acc.partial();
    __syncthreads();
    if (threadIdx.y == 0 && o < t.out_numel) {
      Partial p = rows[0][threadIdx.x];
      for (int k = 1; k < kColumnRows; ++k) p = Acc<op>::combine(p, rows[k][threadIdx.x]);
      store<op>(t, p, o, split);
    }
    __syncthreads();
  }
}

// Combines the splits' partial results of each output, in split order.
template <Reduce op>
__global__ void reduce_splits_kernel(Target t) {
  MPNCOV_GRID_LOOP(o, t.out_numel) {
    Partial p = {t.part_value[o], op == Reduce::Max ? t.part_index[o] : 0};
    for (int s = 1; s < t.splits; ++s) {
      const Partial q = {t.part_value[s * t.out_numel + o], op == Reduce::Max ? t.part_index[s * t.out_numel + o] : 0};
      p = Acc<op>::combine(p, q);
    }
    finish<op>(p, o, t.reduced, t.out, t.index);
  }
}

template <Reduce op, typename I>
void launch(Context& ctx, const float* x, const ops::detail::ReducePlan& plan, float* out, int64_t* index) {
  const Dims<I> kept = dims<I>(plan.kept_dims, plan.kept_size, plan.kept_stride);
  const Dims<I> red = dims<I>(plan.reduced_dims, plan.reduced_size, plan.reduced_stride);
  const int64_t outs = plan.out_numel, reduced = plan.reduced_numel;
  Target t{out, index, nullptr, nullptr, outs, reduced, 1};
  cudaStream_t stream = ctx.stream();

  if (reduced <= 32) {
    reduce_thread_kernel<op, I><<<blocks_for(outs), kThreads, 0, stream>>>(x, kept, red, static_cast<I>(reduced), t);
    CUDA_CHECK_LAUNCH();
    return;
  }
  // Adjacent outputs are adjacent in memory when the innermost kept dimension has stride 1; worth a
  // column block when it is at least half a block wide.
  const bool columns = plan.kept_dims > 0 && plan.kept_stride[plan.kept_dims - 1] == 1 &&
                       plan.kept_size[plan.kept_dims - 1] >= kColumnWidth / 2;
  const int64_t base_blocks = columns ? (outs + kColumnWidth - 1) / kColumnWidth : outs;
  // Enough blocks to fill the device a few times over, each thread still reading at least 8 elements.
  const int64_t target_blocks = 8LL * ctx.multiprocessors();
  const int64_t per_split_min = 8LL * (columns ? kColumnRows : kRowThreads);
  int64_t splits = (target_blocks + base_blocks - 1) / base_blocks;
  splits = std::min<int64_t>({splits, (reduced + per_split_min - 1) / per_split_min, 65535});
  splits = std::max<int64_t>(splits, 1);
  const int64_t chunk = (reduced + splits - 1) / splits;
  splits = (reduced + chunk - 1) / chunk;  // no empty split
  t.splits = static_cast<int>(splits);

  // Partials live in a temporary buffer, released in stream order after the combining kernel.
  const size_t part = static_cast<size_t>(splits > 1 ? splits * outs : 0);
  DeviceBuffer values(ctx.device(), part * sizeof(float));
  DeviceBuffer indices(ctx.device(), op == Reduce::Max ? part * sizeof(int64_t) : 0);
  t.part_value = values.as<float>();
  t.part_index = indices.as<int64_t>();

  const unsigned grid_x = static_cast<unsigned>(std::min<int64_t>(base_blocks, INT_MAX));
  const dim3 grid(grid_x, static_cast<unsigned>(splits));
  if (columns) {
    reduce_column_kernel<op, I><<<grid, dim3(kColumnWidth, kColumnRows), 0, stream>>>(
        x, kept, red, static_cast<I>(reduced), static_cast<I>(chunk), t);
  } else {
    reduce_row_kernel<op, I><<<grid, kRowThreads, 0, stream>>>(x, kept, red, static_cast<I>(reduced),
                                                                static_cast<I>(chunk), t);
  }
  CUDA_CHECK_LAUNCH();
  if (splits > 1) {
    reduce_splits_kernel<op><<<blocks_for(outs), kThreads, 0, stream>>>(t);
    CUDA_CHECK_LAUNCH();
  }
}

template <Reduce op>
void launch(Context& ctx, const float* x, const ops::detail::ReducePlan& plan, float* out, int64_t* index) {
  // Unsigned 32-bit division is the cheapest; every index and offset must fit it.
  if (plan.out_numel * plan.reduced_numel <= INT32_MAX) launch<op, uint32_t>(ctx, x, plan, out, index);
  else launch<op, int64_t>(ctx, x, plan, out, index);
}

}  // namespace

void reduce(int device, Reduce op, const float* x, const ops::detail::ReducePlan& plan, float* out,
            int64_t* index) {
  if (plan.out_numel == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  switch (op) {
    case Reduce::Sum: return launch<Reduce::Sum>(ctx, x, plan, out, index);
    case Reduce::Mean: return launch<Reduce::Mean>(ctx, x, plan, out, index);
    case Reduce::Max: return launch<Reduce::Max>(ctx, x, plan, out, index);
  }
}

}  // namespace mpncov::cuda
