#include "layers/newton_schulz.h"

#include <utility>
#include <vector>

#include "core/cpu/spectral.h"
#include "core/matrix_ops.h"
#include "core/ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

using ops::Structure;

// Slot k of a (K, B, n, n) tensor as (B, n, n).
Tensor slot(const Tensor& t, int64_t k) { return t.slice(k, k + 1).reshape({t.dim(1), t.dim(2), t.dim(3)}); }

void product(const Tensor& a, const Tensor& b, const Tensor& c) { ops::square_matmul(a, b, c); }

// The scalar iteration on every eigenvalue, in double: for k = 1..N, t_k = (3 - z_{k-1} y_{k-1}) / 2,
// y_k = y_{k-1} t_k, z_k = z_{k-1} t_k from y_0 = lambda, z_0 = 1. s holds, per sample, y_0..y_N, then
// z_0..z_N, then t_0..t_N (t_0 unused), each block n values.
template <typename T>
std::vector<double> scalar_iterates(const T* values, int64_t batch, int64_t n, int iterations) {
  const int64_t block = (iterations + 1) * n, per = 3 * block;
  std::vector<double> s(static_cast<size_t>(batch * per));
  for (int64_t b = 0; b < batch; ++b) {
    double* y = s.data() + b * per;
    double* z = y + block;
    double* t = z + block;
    for (int64_t i = 0; i < n; ++i) {
      y[i] = values[b * n + i];
      z[i] = 1.0;
      t[i] = 0.0;
      for (int k = 1; k <= iterations; ++k) {
        t[k * n + i] = 0.5 * (3.0 - z[(k - 1) * n + i] * y[(k - 1) * n + i]);
        y[k * n + i] = y[(k - 1) * n + i] * t[k * n + i];
        z[k * n + i] = z[(k - 1) * n + i] * t[k * n + i];
      }
    }
  }
  return s;
}

// w_b = diag(p(lambda_b)) E_b: row i of the eigenvectors times y_N(lambda_i).
template <typename T>
void scale_rows(const std::vector<double>& s, const T* vectors, T* w, int64_t batch, int64_t n, int iterations) {
  const int64_t block = (iterations + 1) * n, per = 3 * block;
#pragma omp parallel for if (batch * n * n > (1 << 15))
  for (int64_t r = 0; r < batch * n; ++r) {
    const int64_t b = r / n, i = r % n;
    const T p = static_cast<T>(s[b * per + iterations * n + i]);
    for (int64_t j = 0; j < n; ++j) w[r * n + j] = p * vectors[r * n + j];
  }
}

// q_b(i, j) *= p[lambda_i, lambda_j], the divided difference of y_N, by the product rule along the
// iteration: y[a,b] starts at 1 and z[a,b] at 0, then t_k[a,b] = -(z[a,b] y(b) + z(a) y[a,b]) / 2,
// y_k[a,b] = y[a,b] t_k(b) + y(a) t_k[a,b], z_k[a,b] = z[a,b] t_k(b) + z(a) t_k[a,b]. At a = b this is
// the derivative.
template <typename T>
void divided_difference_mul(const std::vector<double>& s, T* q, int64_t batch, int64_t n, int iterations) {
  const int64_t block = (iterations + 1) * n, per = 3 * block;
#pragma omp parallel if (batch * n * n > (1 << 15))
  {
    std::vector<double> dy(static_cast<size_t>(n)), dz(static_cast<size_t>(n));
#pragma omp for
    for (int64_t r = 0; r < batch * n; ++r) {
      const int64_t b = r / n, i = r % n;
      const double* y = s.data() + b * per;
      const double* z = y + block;
      const double* t = z + block;
      for (int64_t j = 0; j < n; ++j) dy[j] = 1.0, dz[j] = 0.0;
      for (int k = 1; k <= iterations; ++k) {
        const double ya = y[(k - 1) * n + i], za = z[(k - 1) * n + i];
        const double* yb = y + (k - 1) * n;
        const double* tb = t + k * n;
        for (int64_t j = 0; j < n; ++j) {
          const double dt = -0.5 * (dz[j] * yb[j] + za * dy[j]);
          const double ny = dy[j] * tb[j] + ya * dt;
          dz[j] = dz[j] * tb[j] + za * dt;
          dy[j] = ny;
        }
      }
      for (int64_t j = 0; j < n; ++j) q[r * n + j] = static_cast<T>(q[r * n + j] * dy[j]);
    }
  }
}

}  // namespace

void NewtonSchulzSqrt::forward(const Tensor& sigma, bool training) {
  // c = a b for the commuting symmetric factors of the iteration.
  const Structure structure = symmetric_products_ ? Structure::Symmetric : Structure::General;
  auto sym_product = [structure](const Tensor& a, const Tensor& b, const Tensor& c) {
    ops::square_matmul(a, b, c, structure);
  };
  MPNCOV_CHECK(iterations_ >= 1, "Newton-Schulz square root: iterations must be at least 1, got ", iterations_);
  MPNCOV_CHECK(sigma.ndim() == 3 && sigma.dim(1) == sigma.dim(2),
               "Newton-Schulz square root: needs a batch of square matrices (B, n, n), got ", sigma.str());
  const int64_t b = sigma.dim(0), n = sigma.dim(1), slots = iterations_ - 1;
  const DType dt = sigma.dtype();
  const Device dev = sigma.device();
  for (Tensor* t : {&trace_, &used_, &inv_, &scale_, &keep_}) ensure_tensor(*t, {b}, dt, dev);
  for (Tensor* t : {&a_, &root_, &t_}) ensure_tensor(*t, {b, n, n}, dt, dev);
  if (slots > 0)
    for (Tensor* t : {&y_, &z_, &v_}) ensure_tensor(*t, {slots, b, n, n}, dt, dev);

  // Pre-normalisation, guarded.
  ops::trace(sigma, trace_);
  ops::trace_guard(trace_, eps_, used_, keep_);
  ops::unary(ops::Unary::Reciprocal, used_, inv_);
  ops::unary(ops::Unary::Sqrt, used_, scale_);
  ops::add_identity(sigma, 1.0, 0.0, a_, inv_);

  spectral_ = training && symmetric_products_ && !dev.is_cuda() && n >= spectral_min_;
  if (spectral_) {  // Y_N = E^T diag(p(lambda)) E
    for (Tensor* t : {&vec_}) ensure_tensor(*t, {b, n, n}, dt, dev);
    ensure_tensor(val_, {b, n}, dt, dev);
    cpu::sym_eig(a_, vec_, val_);
    if (dt == DType::F32) {
      scale_rows(scalar_iterates(val_.data<float>(), b, n, iterations_), vec_.data<float>(), t_.data<float>(), b, n,
                 iterations_);
    } else {
      scale_rows(scalar_iterates(val_.data<double>(), b, n, iterations_), vec_.data<double>(), t_.data<double>(), b,
                 n, iterations_);
    }
    ops::square_matmul(vec_, t_, root_, Structure::Symmetric, true, false);
    return;
  }
  if (iterations_ < 2) {  // Y_1 = A (3I - A) / 2
    ops::add_identity(a_, -0.5, 1.5, t_);
    sym_product(a_, t_, root_);
    return;
  }
  // First step: Z_0 Y_0 = A, so T_1 = (3I - A) / 2 = Z_1 and Y_1 = A T_1.
  ops::add_identity(a_, -0.5, 1.5, slot(z_, 0));
  sym_product(a_, slot(z_, 0), slot(y_, 0));
  for (int64_t k = 1; k < slots; ++k) {
    const Tensor y = slot(y_, k - 1), z = slot(z_, k - 1), v = slot(v_, k - 1);
    sym_product(z, y, v);
    ops::add_identity(v, -0.5, 1.5, t_);
    sym_product(y, t_, slot(y_, k));
    sym_product(t_, z, slot(z_, k));
  }
  // Last step: Y only.
  const Tensor y = slot(y_, slots - 1), z = slot(z_, slots - 1), v = slot(v_, slots - 1);
  sym_product(z, y, v);
  ops::add_identity(v, -0.5, 1.5, t_);
  sym_product(y, t_, root_);
}

void NewtonSchulzSqrt::backward(const Tensor& p, int sign, const Tensor& dsigma, bool accumulate) {
  MPNCOV_CHECK(root_.defined() && p.shape() == root_.shape() && dsigma.shape() == root_.shape(),
               "Newton-Schulz square root: backward needs gradients of the forward's shape ",
               root_.defined() ? root_.str() : std::string("(no forward yet)"), ", got ", p.str(), ", ",
               dsigma.str());
  MPNCOV_CHECK(sign == 1 || sign == -1, "Newton-Schulz square root: sign must be +1 or -1");
  const int64_t b = p.dim(0), n = p.dim(1), slots = iterations_ - 1;
  const DType dt = p.dtype();
  const Device dev = p.device();
  for (Tensor* t : {&dy_, &dz_, &dy2_, &dz2_, &w_, &w2_, &d_}) ensure_tensor(*t, {b, n, n}, dt, dev);
  for (Tensor* t : {&dots_, &dots2_}) ensure_tensor(*t, {b}, dt, dev);
  // A product of two iterates around a (skew-)symmetric gradient keeps the gradient's symmetry.
  const Structure like_p =
      !symmetric_products_ ? Structure::General : sign > 0 ? Structure::Symmetric : Structure::Skew;

  if (spectral_) {  // D = E^T (L o (E P E^T)) E
    product(vec_, p, w_);
    ops::square_matmul(w_, vec_, w2_, like_p, false, true);
    if (dt == DType::F32)
      divided_difference_mul(scalar_iterates(val_.data<float>(), b, n, iterations_), w2_.data<float>(), b, n,
                             iterations_);
    else
      divided_difference_mul(scalar_iterates(val_.data<double>(), b, n, iterations_), w2_.data<double>(), b, n,
                             iterations_);
    ops::square_matmul(vec_, w2_, w_, Structure::General, true, false);
    ops::square_matmul(w_, vec_, d_, like_p);
  } else if (iterations_ < 2) {  // D = 3P/2 - (P A + A P)/2
    product(p, a_, w_);
    ops::symmetric_combine(1.5, p, -0.5, w_, sign, 0.0, Tensor(), d_);
  } else {
    {
      const Tensor y = slot(y_, slots - 1), v = slot(v_, slots - 1);
      product(p, v, w_);  // dY = 3P/2 - (P V + V P)/2
      ops::symmetric_combine(1.5, p, -0.5, w_, sign, 0.0, Tensor(), dy_);
      product(y, p, w_);  // dZ = -Y P Y / 2
      ops::square_matmul(w_, y, dz_, like_p, false, false, -0.5);
    }
    for (int64_t k = slots - 2; k >= 0; --k) {
      const Tensor y = slot(y_, k), z = slot(z_, k), v = slot(v_, k);
      // dY' = 3dY/2 - (dY V + V dY)/2 - Z dZ Z/2
      product(z, dz_, w_);
      ops::square_matmul(w_, z, w2_, like_p);
      product(dy_, v, w_);
      ops::symmetric_combine(1.5, dy_, -0.5, w_, sign, -0.5, w2_, dy2_);
      // dZ' = 3dZ/2 - (dZ V + V dZ)/2 - Y dY Y/2, from the old dY
      product(y, dy_, w_);
      ops::square_matmul(w_, y, w2_, like_p);
      product(dz_, v, w_);
      ops::symmetric_combine(1.5, dz_, -0.5, w_, sign, -0.5, w2_, dz2_);
      std::swap(dy_, dy2_);
      std::swap(dz_, dz2_);
    }
    // First step, Y_1 = A (3I - A)/2 and Z_1 = (3I - A)/2: D = 3dY/2 - (dY A + A dY)/2 - dZ/2
    product(dy_, a_, w_);
    ops::symmetric_combine(1.5, dy_, -0.5, w_, sign, -0.5, dz_, d_);
  }

  // dSigma = D / t + c I with c = keep (<P, Y_N> / 2 - <D, A>) / t; a skew D has no trace terms.
  const Tensor target = accumulate ? d_ : dsigma;
  if (sign > 0) {
    ops::batched_dot(p, root_, dots_);
    ops::batched_dot(d_, a_, dots2_);
    ops::axpby(0.5, dots_, -1.0, dots2_);
    ops::binary(ops::Binary::Mul, dots2_, keep_, dots2_);
    ops::binary(ops::Binary::Mul, dots2_, inv_, dots2_);
    ops::add_identity(d_, 1.0, 1.0, target, inv_, dots2_);
  } else {
    ops::add_identity(d_, 1.0, 0.0, target, inv_);
  }
  if (accumulate) ops::axpby(1.0, d_, 1.0, dsigma);
}

int64_t NewtonSchulzSqrt::guarded() const {
  if (!keep_.defined()) return 0;
  int64_t count = 0;
  for (double k : keep_.to_vector()) count += k == 0.0;
  return count;
}

}  // namespace mpncov
