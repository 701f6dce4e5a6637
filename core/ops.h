// The op set every layer is written against. Each op validates its arguments here, once, then runs
// the backend of the tensors' device: core/cpu/ (float and double) or core/cuda/ (float).
// Conventions: tensors are contiguous and row-major; outputs are written (=) unless an op says it
// accumulates (+=); all tensors of one call share one device and one dtype.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mpncov::ops {

// ---- matrix products ----------------------------------------------------------------------------
// Strided batched GEMM, row-major: for b < batch,
//   C_b = alpha * op(A_b) * op(B_b) + beta * C_b,  op(A_b) is m x k, op(B_b) is k x n, C_b is m x n.
// X_b starts at element x_offset + b * x_stride of its tensor; ld is the row stride of the stored
// (untransposed) matrix.
struct MatrixArg {
  const Tensor& tensor;
  int64_t offset = 0;
  int64_t ld = 0;
  int64_t stride = 0;
};
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, MatrixArg a,
          MatrixArg b, double beta, const Tensor& c, int64_t c_offset, int64_t ldc, int64_t c_stride,
          int64_t batch = 1);
// C = alpha * op(A) op(B) + beta * C for 2-D tensors, or batched over dimension 0 for 3-D ones.
void matmul(const Tensor& a, const Tensor& b, const Tensor& c, bool trans_a = false, bool trans_b = false,
            double alpha = 1.0, double beta = 0.0);

// ---- image <-> columns --------------------------------------------------------------------------
struct ConvGeometry {
  int64_t channels = 1, height = 1, width = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t out_h() const { return (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1; }
  int64_t out_w() const { return (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1; }
  int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  int64_t col_cols() const { return out_h() * out_w(); }
  void validate() const;
};
// x (N, C, H, W) -> col (N, C*kh*kw, oh*ow); padding reads as zero.
void im2col(const Tensor& x, const ConvGeometry& g, const Tensor& col);
// col (N, C*kh*kw, oh*ow) -> x (N, C, H, W), ACCUMULATING (+=) the overlapping contributions.
void col2im(const Tensor& col, const ConvGeometry& g, const Tensor& x);

// ---- elementwise --------------------------------------------------------------------------------
enum class Unary { Copy, Neg, Abs, Sign, Square, Sqrt, Exp, Log, Reciprocal, Relu };
// y = f(x); y may be x (in place).
void unary(Unary op, const Tensor& x, const Tensor& y);

enum class Binary { Add, Sub, Mul, Div, Max, Min };
// out = a (op) b, where b is a tensor of a's shape, a one-element tensor (scalar), or a 1-D tensor of
// a.dim(1) elements (per channel: broadcast over every other dimension of a). out may alias a.
void binary(Binary op, const Tensor& a, const Tensor& b, const Tensor& out);
// out = a (op) s.
void binary_scalar(Binary op, const Tensor& a, double s, const Tensor& out);
// y = alpha * x + beta * y (beta = 0 ignores y's old contents, NaN included).
void axpby(double alpha, const Tensor& x, double beta, const Tensor& y);
// Every element set to value.
void fill(const Tensor& t, double value);
// dst = src converted to dst's dtype (same numel, same device).
void cast(const Tensor& src, const Tensor& dst);

// ---- reductions ---------------------------------------------------------------------------------
enum class Reduce { Sum, Mean, Max };
// out = reduction of x over the given axes (any set, any order, negative counts from the end).
// out must have numel = product of the kept dims (its shape is the caller's: keep-dim or not).
// For Max, `index` (int64, same numel as out, optional) receives the flat position of the maximum
// within the reduced sub-block, in row-major order of the reduced axes; ties pick the first.
void reduce(Reduce op, const Tensor& x, const std::vector<int>& axes, const Tensor& out,
            const Tensor* index = nullptr);
// The shape reduce() gives with keep_dims = false / true.
Shape reduced_shape(const Shape& x, const std::vector<int>& axes, bool keep_dims = false);
Tensor reduce(Reduce op, const Tensor& x, const std::vector<int>& axes, bool keep_dims = false);

// ---- random fills (Philox: the same values on CPU and GPU for the same seed, stream, index) ------
void fill_uniform(const Tensor& t, double low, double high, uint64_t seed, uint64_t stream);
void fill_normal(const Tensor& t, double mean, double stddev, uint64_t seed, uint64_t stream);
// Each element 1 with probability p, else 0. Element i draws Philox index first + i, so a part of a larger
// draw (one process's rows of a batch) can be made alone.
void fill_bernoulli(const Tensor& t, double p, uint64_t seed, uint64_t stream, uint64_t first = 0);

}  // namespace mpncov::ops

namespace mpncov::ops::detail {
// A reduction as the backends see it: x's dimensions split into kept and reduced ones, adjacent
// dimensions of the same kind merged, sizes and element strides of each.
struct ReducePlan {
  int kept_dims = 0, reduced_dims = 0;
  int64_t kept_size[Shape::kMaxDims] = {}, kept_stride[Shape::kMaxDims] = {};
  int64_t reduced_size[Shape::kMaxDims] = {}, reduced_stride[Shape::kMaxDims] = {};
  int64_t out_numel = 1, reduced_numel = 1;
};
ReducePlan plan_reduce(const Shape& x, const std::vector<int>& axes);

// Broadcast of the second operand of a binary op: b index = (i / inner) % b_numel.
struct BroadcastPlan {
  int64_t n = 0, b_numel = 0, inner = 1;
};

enum class Random { Uniform, Normal, Bernoulli };
}  // namespace mpncov::ops::detail
