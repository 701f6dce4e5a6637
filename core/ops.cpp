// Argument checks and backend dispatch for every op in ops.h.
#include "core/ops.h"

#include <algorithm>

#include "core/cpu/cpu_ops.h"
#include "core/cuda_mixed_backend.h"
#include "core/dispatch.h"
#include "core/half.h"

namespace mpncov::ops {

// ---- matrix products ----------------------------------------------------------------------------

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, MatrixArg a, MatrixArg b,
          double beta, const Tensor& c, int64_t c_offset, int64_t ldc, int64_t c_stride, int64_t batch) {
  check_same("gemm", {&c, &a.tensor, &b.tensor});
  MPNCOV_CHECK(m >= 0 && n >= 0 && k >= 0 && batch >= 0, "gemm: negative size m=", m, " n=", n, " k=", k);
  if (m == 0 || n == 0 || batch == 0) return;
  // Bounds: the last element each batch entry touches must lie inside its tensor.
  auto check_bounds = [&](const char* name, const Tensor& t, int64_t off, int64_t ld, int64_t stride,
                          int64_t rows, int64_t cols) {
    if (rows == 0 || cols == 0) return;
    MPNCOV_CHECK(ld >= cols, "gemm: leading dimension of ", name, " is ", ld, ", less than its ", cols, " columns");
    const int64_t last = off + (batch - 1) * stride + (rows - 1) * ld + cols - 1;
    MPNCOV_CHECK(off >= 0 && stride >= 0 && last < t.numel(), "gemm: ", name, " (", rows, "x", cols,
                 ", ld ", ld, ", offset ", off, ", stride ", stride, ", batch ", batch, ") exceeds ", t.str());
  };
  check_bounds("A", a.tensor, a.offset, a.ld, a.stride, trans_a ? k : m, trans_a ? m : k);
  check_bounds("B", b.tensor, b.offset, b.ld, b.stride, trans_b ? n : k, trans_b ? k : n);
  check_bounds("C", c, c_offset, ldc, c_stride, m, n);
  dispatch(
      c,
      [&](auto device) {
        cuda::gemm(device, trans_a, trans_b, m, n, k, static_cast<float>(alpha), a.tensor.data<float>() + a.offset,
                   a.ld, a.stride, b.tensor.data<float>() + b.offset, b.ld, b.stride, static_cast<float>(beta),
                   c.data<float>() + c_offset, ldc, c_stride, batch);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::gemm<T>(trans_a, trans_b, m, n, k, static_cast<T>(alpha), a.tensor.data<T>() + a.offset, a.ld,
                     a.stride, b.tensor.data<T>() + b.offset, b.ld, b.stride, static_cast<T>(beta),
                     c.data<T>() + c_offset, ldc, c_stride, batch);
      });
}

void matmul(const Tensor& a, const Tensor& b, const Tensor& c, bool trans_a, bool trans_b, double alpha,
            double beta) {
  MPNCOV_CHECK(a.ndim() == b.ndim() && a.ndim() == c.ndim() && (a.ndim() == 2 || a.ndim() == 3),
               "matmul: needs three 2-D or three 3-D tensors, got ", a.str(), ", ", b.str(), ", ", c.str());
  const int o = a.ndim() - 2;
  const int64_t batch = o ? a.dim(0) : 1;
  MPNCOV_CHECK(!o || (b.dim(0) == batch && c.dim(0) == batch), "matmul: batch sizes differ: ", a.str(), ", ",
               b.str(), ", ", c.str());
  const int64_t m = trans_a ? a.dim(o + 1) : a.dim(o), k = trans_a ? a.dim(o) : a.dim(o + 1);
  const int64_t kb = trans_b ? b.dim(o + 1) : b.dim(o), n = trans_b ? b.dim(o) : b.dim(o + 1);
  MPNCOV_CHECK(k == kb && c.dim(o) == m && c.dim(o + 1) == n, "matmul: shapes do not agree: op(A) ", m, "x", k,
               ", op(B) ", kb, "x", n, ", C ", c.shape().str());
  gemm(trans_a, trans_b, m, n, k, alpha, {a, 0, a.dim(o + 1), a.dim(o) * a.dim(o + 1)},
       {b, 0, b.dim(o + 1), b.dim(o) * b.dim(o + 1)}, beta, c, 0, n, m * n, batch);
}

// ---- image <-> columns --------------------------------------------------------------------------

void ConvGeometry::validate() const {
  MPNCOV_CHECK(channels > 0 && height > 0 && width > 0, "convolution geometry: empty image ", channels, "x",
               height, "x", width);
  MPNCOV_CHECK(kernel_h > 0 && kernel_w > 0 && stride_h > 0 && stride_w > 0 && dilation_h > 0 && dilation_w > 0 &&
                   pad_h >= 0 && pad_w >= 0,
               "convolution geometry: kernel, stride and dilation must be positive and padding non-negative");
  MPNCOV_CHECK(out_h() > 0 && out_w() > 0, "convolution geometry: kernel ", kernel_h, "x", kernel_w,
               " (dilation ", dilation_h, "x", dilation_w, ") does not fit the padded ", height, "x", width,
               " input");
}

namespace {
void check_im2col(const char* op, const Tensor& x, const ConvGeometry& g, const Tensor& col) {
  g.validate();
  check_same(op, {&x, &col});
  MPNCOV_CHECK(x.ndim() == 4 && x.dim(1) == g.channels && x.dim(2) == g.height && x.dim(3) == g.width, op,
               ": image tensor ", x.shape().str(), " does not match the geometry (N, ", g.channels, ", ",
               g.height, ", ", g.width, ")");
  MPNCOV_CHECK(col.numel() == x.dim(0) * g.col_rows() * g.col_cols(), op, ": column tensor ", col.shape().str(),
               " should hold (", x.dim(0), ", ", g.col_rows(), ", ", g.col_cols(), ")");
}
}  // namespace

void im2col(const Tensor& x, const ConvGeometry& g, const Tensor& col) {
  check_im2col("im2col", x, g, col);
  const int64_t n = x.dim(0);
  dispatch(
      x, [&](auto device) { cuda::im2col(device, x.data<float>(), g, n, col.data<float>()); },
      [&](auto zero) {
        using T = decltype(zero);
        const int64_t xs = g.channels * g.height * g.width, cs = g.col_rows() * g.col_cols();
        const T* xp = x.data<T>();
        T* cp = col.data<T>();
#pragma omp parallel for if (n > 1)
        for (int64_t i = 0; i < n; ++i) cpu::im2col<T>(xp + i * xs, g, cp + i * cs);
      });
}

void col2im(const Tensor& col, const ConvGeometry& g, const Tensor& x) {
  check_im2col("col2im", x, g, col);
  const int64_t n = x.dim(0);
  dispatch(
      x, [&](auto device) { cuda::col2im(device, col.data<float>(), g, n, x.data<float>()); },
      [&](auto zero) {
        using T = decltype(zero);
        const int64_t xs = g.channels * g.height * g.width, cs = g.col_rows() * g.col_cols();
        const T* cp = col.data<T>();
        T* xp = x.data<T>();
#pragma omp parallel for if (n > 1)
        for (int64_t i = 0; i < n; ++i) cpu::col2im<T>(cp + i * cs, g, xp + i * xs);
      });
}

// ---- elementwise --------------------------------------------------------------------------------

void unary(Unary op, const Tensor& x, const Tensor& y) {
  check_same("unary", {&x, &y}, kStorageTypes);
  MPNCOV_CHECK(x.numel() == y.numel(), "unary: ", x.str(), " into ", y.str());
  // bfloat16 storage: the maps between the layers of a bfloat16 net (ReLU, copies).
  MPNCOV_CHECK(x.dtype() != DType::BF16 || op == Unary::Copy || op == Unary::Relu,
               "unary: bfloat16 storage takes copy and relu only (compute in float32), got ", x.str());
  dispatch<kStorageTypes>(
      x, [&](auto device) { cuda::unary(device, op, x.data<float>(), y.data<float>(), x.numel()); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::unary<T>(op, x.data<T>(), y.data<T>(), x.numel());
      });
}

void binary(Binary op, const Tensor& a, const Tensor& b, const Tensor& out) {
  check_same("binary", {&a, &b, &out}, kStorageTypes);
  // bfloat16 storage: the residual sums of a bfloat16 net.
  MPNCOV_CHECK(a.dtype() != DType::BF16 || (op == Binary::Add && b.shape() == a.shape()),
               "binary: bfloat16 storage takes the sum of two tensors of one shape only (compute in float32), got ",
               a.str(), " and ", b.str());
  MPNCOV_CHECK(out.numel() == a.numel(), "binary: output ", out.str(), " does not match ", a.str());
  detail::BroadcastPlan plan;
  plan.n = a.numel();
  plan.b_numel = b.numel();
  if (b.shape() == a.shape() || b.numel() == 1) {
    plan.inner = 1;
  } else if (b.ndim() == 1 && a.ndim() >= 2 && b.dim(0) == a.dim(1)) {
    plan.inner = a.shape().product(2, a.ndim());
  } else {
    MPNCOV_FAIL("binary: cannot broadcast ", b.shape().str(), " against ", a.shape().str(),
                " (same shape, one element, or one per channel of dimension 1)");
  }
  if (plan.n == 0) return;
  dispatch<kStorageTypes>(
      a, [&](auto device) { cuda::binary(device, op, a.data<float>(), b.data<float>(), out.data<float>(), plan); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::binary<T>(op, a.data<T>(), b.data<T>(), out.data<T>(), plan);
      });
}

void binary_scalar(Binary op, const Tensor& a, double s, const Tensor& out) {
  check_same("binary_scalar", {&a, &out});
  MPNCOV_CHECK(out.numel() == a.numel(), "binary_scalar: output ", out.str(), " does not match ", a.str());
  dispatch(
      a,
      [&](auto device) {
        cuda::binary_scalar(device, op, a.data<float>(), static_cast<float>(s), out.data<float>(), a.numel());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::binary_scalar<T>(op, a.data<T>(), static_cast<T>(s), out.data<T>(), a.numel());
      });
}

void axpby(double alpha, const Tensor& x, double beta, const Tensor& y) {
  check_same("axpby", {&x, &y}, kStorageTypes);  // bfloat16: the gradient sums of a bfloat16 net
  MPNCOV_CHECK(x.numel() == y.numel(), "axpby: ", x.str(), " and ", y.str(), " differ in size");
  dispatch<kStorageTypes>(
      x,
      [&](auto device) {
        cuda::axpby(device, static_cast<float>(alpha), x.data<float>(), static_cast<float>(beta), y.data<float>(),
                    x.numel());
      },
      [&](auto zero) {
        using T = decltype(zero);
        using C = compute_t<T>;
        cpu::axpby<T>(static_cast<C>(alpha), x.data<T>(), static_cast<C>(beta), y.data<T>(), x.numel());
      });
}

void fill(const Tensor& t, double value) {
  MPNCOV_CHECK(t.defined(), "fill: undefined tensor");
  if (t.numel() == 0) return;
  if (t.device().is_cuda()) {
    MPNCOV_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::I64, "fill: the CUDA backend fills float32 and int64, got ",
                 t.str());
    if constexpr (cuda::kBuilt) return cuda::fill(t.device().index, t.raw(), t.dtype(), t.numel(), value);
    else cuda::absent(t.device());
  }
  switch (t.dtype()) {
    case DType::F32: return cpu::fill<float>(t.data<float>(), t.numel(), static_cast<float>(value));
    case DType::F64: return cpu::fill<double>(t.data<double>(), t.numel(), value);
    case DType::I64: return cpu::fill<int64_t>(t.data<int64_t>(), t.numel(), static_cast<int64_t>(value));
    case DType::F16:
    case DType::BF16: {
      const uint16_t bits = t.dtype() == DType::F16 ? half::float_to_f16(static_cast<float>(value))
                                                    : half::float_to_bf16(static_cast<float>(value));
      auto* p = static_cast<uint16_t*>(t.raw());
      std::fill(p, p + t.numel(), bits);
      return;
    }
  }
}

namespace {
// Element i of a CPU tensor of any dtype as double, and back.
double load(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F64: return static_cast<const double*>(p)[i];
    case DType::I64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::F16: return half::f16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return half::bf16_to_float(static_cast<const uint16_t*>(p)[i]);
  }
  return 0;
}
void store(void* p, DType t, int64_t i, double v) {
  switch (t) {
    case DType::F32: static_cast<float*>(p)[i] = static_cast<float>(v); return;
    case DType::F64: static_cast<double*>(p)[i] = v; return;
    case DType::I64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); return;
    // Straight from the double: a float in between would round twice.
    case DType::F16: static_cast<uint16_t*>(p)[i] = half::double_to_f16(v); return;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = half::double_to_bf16(v); return;
  }
}
}  // namespace

void cast(const Tensor& src, const Tensor& dst) {
  MPNCOV_CHECK(src.defined() && dst.defined(), "cast: undefined tensor");
  MPNCOV_CHECK(src.numel() == dst.numel(), "cast: ", src.str(), " into ", dst.str());
  MPNCOV_CHECK(src.device() == dst.device(), "cast: tensors on different devices");
  if (src.dtype() == dst.dtype()) {
    const_cast<Tensor&>(dst).copy_from(src);
    return;
  }
  const int64_t n = src.numel();
  const void* sp = src.raw();
  void* dp = dst.raw();
  const DType st = src.dtype(), dt = dst.dtype();
  // float32 <-> bfloat16 on a GPU: the conversion kernels of mixed precision.
  if (src.device().is_cuda() && ((st == DType::F32 && dt == DType::BF16) || (st == DType::BF16 && dt == DType::F32))) {
    if constexpr (cuda::kBuilt) {
      const int device = src.device().index;
      if (st == DType::F32)
        cuda::to_bf16(device, static_cast<const float*>(sp), static_cast<uint16_t*>(dp), n);
      else
        cuda::from_bf16(device, static_cast<const uint16_t*>(sp), static_cast<float*>(dp), n);
    } else {
      cuda::absent(src.device());
    }
    return;
  }
  MPNCOV_CHECK(src.device().is_cpu(), "cast: converting ", dtype_name(src.dtype()), " to ", dtype_name(dst.dtype()),
               " runs on the CPU (float32 <-> bfloat16 also on a GPU); move the tensor there first");
  // float32 <-> bfloat16 is what mixed precision does on every step: a direct loop, no double in between.
  if (st == DType::F32 && dt == DType::BF16) {
    const auto* s = static_cast<const float*>(sp);
    auto* d = static_cast<uint16_t*>(dp);
#pragma omp parallel for if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) d[i] = half::float_to_bf16(s[i]);
    return;
  }
  if (st == DType::BF16 && dt == DType::F32) {
    const auto* s = static_cast<const uint16_t*>(sp);
    auto* d = static_cast<float*>(dp);
#pragma omp parallel for if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) d[i] = half::bf16_to_float(s[i]);
    return;
  }
#pragma omp parallel for if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) store(dp, dt, i, load(sp, st, i));
}

// ---- reductions ---------------------------------------------------------------------------------

namespace {
std::vector<bool> reduced_mask(const Shape& x, const std::vector<int>& axes) {
  std::vector<bool> mask(static_cast<size_t>(x.ndim()), false);
  for (int a : axes) {
    const int k = a < 0 ? a + x.ndim() : a;
    MPNCOV_CHECK(k >= 0 && k < x.ndim(), "reduce: axis ", a, " out of range for ", x.str());
    MPNCOV_CHECK(!mask[static_cast<size_t>(k)], "reduce: axis ", a, " given twice");
    mask[static_cast<size_t>(k)] = true;
  }
  return mask;
}
}  // namespace

Shape reduced_shape(const Shape& x, const std::vector<int>& axes, bool keep_dims) {
  const std::vector<bool> mask = reduced_mask(x, axes);
  std::vector<int64_t> dims;
  for (int i = 0; i < x.ndim(); ++i) {
    if (!mask[static_cast<size_t>(i)]) dims.push_back(x[i]);
    else if (keep_dims) dims.push_back(1);
  }
  return Shape(dims);
}

namespace detail {
ReducePlan plan_reduce(const Shape& x, const std::vector<int>& axes) {
  const std::vector<bool> mask = reduced_mask(x, axes);
  ReducePlan p;
  int64_t stride = 1;
  int last_kind = -1;  // 0 kept, 1 reduced; merging walks from the innermost dimension out
  std::vector<int64_t> ks, kst, rs, rst;
  for (int i = x.ndim() - 1; i >= 0; --i) {
    const int64_t size = x[i];
    const int kind = mask[static_cast<size_t>(i)] ? 1 : 0;
    auto& sizes = kind ? rs : ks;
    auto& strides = kind ? rst : kst;
    if (size != 1) {
      if (kind == last_kind && !sizes.empty()) {
        sizes.back() *= size;  // contiguous with the previous same-kind dimension
      } else {
        sizes.push_back(size);
        strides.push_back(stride);
      }
      last_kind = kind;
    }
    stride *= size;
  }
  std::reverse(ks.begin(), ks.end());
  std::reverse(kst.begin(), kst.end());
  std::reverse(rs.begin(), rs.end());
  std::reverse(rst.begin(), rst.end());
  p.kept_dims = static_cast<int>(ks.size());
  p.reduced_dims = static_cast<int>(rs.size());
  for (size_t i = 0; i < ks.size(); ++i) {
    p.kept_size[i] = ks[i];
    p.kept_stride[i] = kst[i];
    p.out_numel *= ks[i];
  }
  for (size_t i = 0; i < rs.size(); ++i) {
    p.reduced_size[i] = rs[i];
    p.reduced_stride[i] = rst[i];
    p.reduced_numel *= rs[i];
  }
  if (x.numel() == 0) {  // an empty input: no outputs if a kept dim is 0, else empty reductions
    p.out_numel = 1;
    p.reduced_numel = 1;
    for (int i = 0; i < x.ndim(); ++i) (mask[static_cast<size_t>(i)] ? p.reduced_numel : p.out_numel) *= x[i];
    p.kept_dims = p.reduced_dims = 0;
  }
  return p;
}
}  // namespace detail

void reduce(Reduce op, const Tensor& x, const std::vector<int>& axes, const Tensor& out, const Tensor* index) {
  check_same("reduce", {&x, &out});
  const detail::ReducePlan plan = detail::plan_reduce(x.shape(), axes);
  MPNCOV_CHECK(out.numel() == plan.out_numel, "reduce: output ", out.str(), " should have ", plan.out_numel,
               " elements");
  MPNCOV_CHECK(op == Reduce::Max || index == nullptr, "reduce: an index output is only for max");
  MPNCOV_CHECK(op != Reduce::Max || plan.reduced_numel > 0 || plan.out_numel == 0,
               "reduce: max over an empty set of elements");
  if (index) {
    MPNCOV_CHECK(index->dtype() == DType::I64 && index->numel() == out.numel() && index->device() == x.device(),
                 "reduce: index must be int64 with one element per output, on the same device");
  }
  if (plan.out_numel == 0) return;
  if (x.numel() == 0) return fill(out, 0.0);  // sum or mean of nothing
  int64_t* ip = index ? index->data<int64_t>() : nullptr;
  dispatch(
      x, [&](auto device) { cuda::reduce(device, op, x.data<float>(), plan, out.data<float>(), ip); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::reduce<T>(op, x.data<T>(), plan, out.data<T>(), ip);
      });
}

Tensor reduce(Reduce op, const Tensor& x, const std::vector<int>& axes, bool keep_dims) {
  Tensor out = Tensor::empty(reduced_shape(x.shape(), axes, keep_dims), x.dtype(), x.device());
  reduce(op, x, axes, out);
  return out;
}

// ---- random fills -------------------------------------------------------------------------------

namespace {
void fill_random(detail::Random kind, const Tensor& t, double a, double b, uint64_t seed, uint64_t stream,
                 uint64_t first = 0) {
  check_float("random fill", t);
  if (t.numel() == 0) return;
  dispatch(
      t, [&](auto device) { cuda::fill_random(device, kind, t.data<float>(), t.numel(), a, b, seed, stream, first); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::fill_random<T>(kind, t.data<T>(), t.numel(), a, b, seed, stream, first);
      });
}
}  // namespace

void fill_uniform(const Tensor& t, double low, double high, uint64_t seed, uint64_t stream) {
  MPNCOV_CHECK(low <= high, "fill_uniform: low ", low, " > high ", high);
  fill_random(detail::Random::Uniform, t, low, high, seed, stream);
}

void fill_normal(const Tensor& t, double mean, double stddev, uint64_t seed, uint64_t stream) {
  MPNCOV_CHECK(stddev >= 0, "fill_normal: negative standard deviation ", stddev);
  fill_random(detail::Random::Normal, t, mean, stddev, seed, stream);
}

void fill_bernoulli(const Tensor& t, double p, uint64_t seed, uint64_t stream, uint64_t first) {
  MPNCOV_CHECK(p >= 0 && p <= 1, "fill_bernoulli: probability ", p, " outside [0, 1]");
  fill_random(detail::Random::Bernoulli, t, p, 0.0, seed, stream, first);
}

}  // namespace mpncov::ops
