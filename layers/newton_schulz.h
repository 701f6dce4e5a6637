// The matrix square root of iSQRT-COV (Li et al., CVPR 2018) on a batch of symmetric matrices Sigma:
// trace pre-normalisation A = Sigma / tr(Sigma), the coupled Newton-Schulz iteration
//   Y_0 = A, Z_0 = I,  T_k = (3I - Z_{k-1} Y_{k-1}) / 2,  Y_k = Y_{k-1} T_k,  Z_k = T_k Z_{k-1},
// whose last step updates Y only (and whose first needs no product, Z_0 Y_0 = A), and post-compensation
// out = sqrt(tr(Sigma)) Y_N. Shared by the mpncov layer (fused with covariance pooling) and the sqrtm
// layer.
//
// Every Y_k, Z_k is a polynomial in A, so all of them are symmetric and commute; products of two of them
// are computed as symmetric (about half the work on the CPU), and V_k = Z_k Y_k, computed in the forward, is
// kept for the backward.
//
// Backward. The seed's recurrences (docs/seed.md §2.3) before its final transpose are the exact adjoint of this
// forward: with P = sqrt(t) G and, from the last step back,
//   dY = 3P/2 - (P V + V P)/2,  dZ = -Y P Y/2,
//   dY' = 3dY/2 - (dY V_i + V_i dY)/2 - Z_i dZ Z_i/2,  dZ' = 3dZ/2 - (dZ V_i + V_i dZ)/2 - Y_i dY Y_i/2,
//   D = 3dY/2 - (dY A + A dY)/2 - dZ/2,
//   dSigma = D / t + (<G, Y_N> / (2 sqrt(t)) - <D, Sigma> / t^2) I.
// The seed then returns D^T in place of D: the transpose of the exact gradient, which agrees with it only
// when G is symmetric (end to end the difference vanishes, because covariance pooling uses G + G^T).
// We return the exact gradient. The map G -> dSigma commutes with transposition (Sigma is symmetric), so
// a symmetric G gives a symmetric dY, dZ, D at every step and a skew G a skew one: then V dY is
// +-(dY V)^T and one product serves both terms. backward() takes G's symmetric or skew part; a general G
// is the sum of the two calls.
//
// Spectral evaluation (CPU, n >= spectral_min, in training). The iteration is a fixed polynomial p applied to A, so
// Y_N = E^T diag(p(lambda)) E from A's eigendecomposition A = E^T diag(lambda) E gives the same root, and
// the exact adjoint is the Daleckii-Krein formula D = E^T (L o (E P E^T)) E with L_ij the divided
// difference p[lambda_i, lambda_j] (p'(lambda_i) on the diagonal). The scalar iteration and its divided
// differences (by the product rule (fg)[a,b] = f[a,b] g(b) + f(a) g[a,b], no cancellation) run in double.
// One syevd plus five products instead of 12 + 22 products at n = 256. The CUDA path keeps the products
// (cuBLAS makes them cheap; there is no batched eigensolver to match).
//
// The trace guard: a sample whose trace is not finite or below eps is normalised by eps instead, as a
// constant (no trace terms in its gradient), and counted; a zero feature map so gives a zero output and a
// zero gradient instead of NaN (fast-MPN-COV issue #24).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace mpncov {

// The most iterations a layer accepts. By 50 the scalar iteration has converged in double precision for
// every eigenvalue of A down to 1e-16 (1e-10, the trace guard's scale, takes 33; the paper uses 3 to 5), so
// more would change nothing but cost time and memory: each iteration keeps B n x n matrices for the backward.
inline constexpr int kMaxNewtonSchulzIterations = 50;

class NewtonSchulzSqrt {
 public:
  // symmetric_products = false computes every product in full: slower, but then the forward is the
  // iteration itself for any square input, which lets a finite-difference check perturb Sigma freely.
  // spectral_min: the smallest n that the CPU evaluates spectrally (needs symmetric_products).
  NewtonSchulzSqrt(int iterations, double eps, bool symmetric_products = true, int64_t spectral_min = 128)
      : iterations_(iterations), eps_(eps), symmetric_products_(symmetric_products), spectral_min_(spectral_min) {}

  int iterations() const { return iterations_; }
  double eps() const { return eps_; }

  // sigma (B, n, n), symmetric. Keeps what the backward needs; sigma itself is not kept. training: a
  // backward will follow, so the spectral evaluation (whose backward is five products) is worth its
  // eigendecomposition; without one the iteration's products alone are cheaper (n = 256, batch 8:
  // 7.7 against 12 ms). A backward works after either.
  void forward(const Tensor& sigma, bool training = true);
  // Y_N (B, n, n), before post-compensation, and the post-compensation factor sqrt(t) (B).
  const Tensor& root() const { return root_; }
  const Tensor& scale() const { return scale_; }

  // p = sqrt(t) * G (B, n, n), symmetric (sign = +1) or skew (sign = -1), for the forward just run:
  // writes dSigma (=), or adds to it when accumulate.
  void backward(const Tensor& p, int sign, const Tensor& dsigma, bool accumulate = false);

  // Samples of the last forward that the trace guard caught (copies B values from the device).
  int64_t guarded() const;
  // Products of n x n matrices in one forward and in one backward with a symmetric G (for flop counts).
  int forward_products() const { return iterations_ < 2 ? 1 : 3 * iterations_ - 3; }
  int backward_products() const { return iterations_ < 2 ? 1 : 4 + 6 * (iterations_ - 2); }

 private:
  int iterations_;
  double eps_;
  bool symmetric_products_;
  int64_t spectral_min_;
  bool spectral_ = false;  // how the last forward ran
  // Saved by forward: per-sample trace used (t), 1/t, sqrt(t), keep (1, or 0 when guarded); A; and for
  // k < N - 1 the slots k of Y, Z, V (N - 1, B, n, n); the result Y_N.
  Tensor trace_, used_, inv_, scale_, keep_;
  Tensor a_, y_, z_, v_, root_;
  // Saved by a spectral forward: eigenvectors (rows) and eigenvalues of A.
  Tensor vec_, val_;
  // Scratch: T in the forward; the backward's gradients and products.
  Tensor t_, dy_, dz_, dy2_, dz2_, w_, w2_, d_, dots_, dots2_;
};

}  // namespace mpncov
