// Batched small-matrix ops for the representation layers (covariance pooling, the Newton-Schulz square
// root, bilinear pooling): products with square results that may be known symmetric, traces, identity
// shifts, triangular gather/scatter, row centring, signed square roots and row L2 normalisation.
// Same conventions as core/ops.h: contiguous row-major tensors, one device and one float dtype per call,
// outputs written (=). A "batch of square matrices" is a tensor (B, n, n); per-sample scalars are (B).
// Argument checks in core/matrix_ops.cpp; backends in core/cpu/matrix_ops.cpp and core/cuda/matrix_ops.cu.
#pragma once
#include <cstdint>

#include "core/ops.h"

namespace mpncov::ops {

// What is known about a product's result.
enum class Structure {
  General,
  Symmetric,  // e.g. X X^T, or the product of two commuting symmetric matrices
  Skew,       // e.g. the product of a symmetric and a skew matrix that commute in the sense S K S
};

// c_b (n x n) = alpha * op(a_b) op(b_b) + beta * c_b for each b < B; a and b are 3-D (B, ., .).
// For Symmetric and Skew the CPU computes only the upper triangle, by row strips (float: 5/8 of the work at
// n = 256) or panels (double: 56%), and mirrors it (negated for Skew); the result then depends only on c's
// upper triangle where beta is not 0. The CUDA backend
// computes the whole product (cuBLAS has no strided-batched triangular product), so there the result is
// symmetric up to rounding.
void square_matmul(const Tensor& a, const Tensor& b, const Tensor& c, Structure structure = Structure::General,
                   bool trans_a = false, bool trans_b = false, double alpha = 1.0, double beta = 0.0);

// out_b = alpha * p_b * x_b + beta * q_b * I for x (B, n, n), where p and q are optional per-sample
// tensors (B) (1 where undefined). out may be x. With beta = 0 this scales each sample by alpha p_b.
void add_identity(const Tensor& x, double alpha, double beta, const Tensor& out, const Tensor& p = Tensor(),
                  const Tensor& q = Tensor());

// out_b = alpha x_b + beta (w_b + sign w_b^T) + gamma z_b for (B, n, n) tensors; sign is +1 or -1; z may be
// undefined (then gamma is ignored). out may be x or z but not w. With x undefined alpha is ignored.
void symmetric_combine(double alpha, const Tensor& x, double beta, const Tensor& w, int sign, double gamma,
                       const Tensor& z, const Tensor& out);

// out (B) = trace(x_b) for x (B, n, n).
void trace(const Tensor& x, const Tensor& out);

// out (B) = sum over the trailing elements of x_b * y_b: x and y (B, ...) of one shape. Accumulates in
// double on the CPU.
void batched_dot(const Tensor& x, const Tensor& y, const Tensor& out);

// The trace guard of iSQRT-COV (fast-MPN-COV issue #24): for each sample, keep = 1 and used = trace when
// trace is finite and >= eps; otherwise keep = 0 and used = eps. All three tensors (B).
void trace_guard(const Tensor& trace, double eps, const Tensor& used, const Tensor& keep);

// out = x minus the mean of each row, x viewed as rows of its last dimension. out may be x.
void center_rows(const Tensor& x, const Tensor& out);

// Upper triangle (diagonal included) of x (B, n, n) in row-major order, (0,0), (0,1), ..., (n-1,n-1), into
// out (B, n(n+1)/2), times scale_b when scale (B) is defined.
void triu_gather(const Tensor& x, const Tensor& scale, const Tensor& out);
// The adjoint: g (B, n(n+1)/2) into out (B, n, n), times scale_b when defined. symmetric = false writes the
// upper triangle and zeros below (the exact adjoint of triu_gather); symmetric = true writes
// (G + G^T) / 2 of that matrix: the diagonal as is, each off-diagonal value halved into both places.
void triu_scatter(const Tensor& g, const Tensor& scale, const Tensor& out, bool symmetric);

// y = sign(x) * sqrt(|x| + thresh), elementwise (bilinear and compact bilinear pooling). y may be x.
void signed_sqrt(const Tensor& x, double thresh, const Tensor& y);
// dx = dy / (2 sqrt(|x| + thresh)) where x != 0, and 0 where x == 0 (sign's derivative, as autograd).
void signed_sqrt_backward(const Tensor& x, const Tensor& dy, double thresh, const Tensor& dx);

// Each row of x (B, K) divided by max(||row||_2, eps), as PyTorch's F.normalize; norm (B) gets the
// norms. y may be x.
void l2_normalize_rows(const Tensor& x, double eps, const Tensor& y, const Tensor& norm);
// From the forward's y and norm: dx = (dy - y <y, dy>) / norm where norm > eps, else dy / eps.
void l2_normalize_rows_backward(const Tensor& y, const Tensor& norm, const Tensor& dy, double eps,
                                const Tensor& dx);

}  // namespace mpncov::ops
