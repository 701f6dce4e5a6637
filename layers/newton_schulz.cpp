#include "layers/newton_schulz.h"

#include <utility>

#include "core/matrix_ops.h"
#include "core/ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

using ops::Structure;

// Slot k of a (K, B, n, n) tensor as (B, n, n).
Tensor slot(const Tensor& t, int64_t k) { return t.slice(k, k + 1).reshape({t.dim(1), t.dim(2), t.dim(3)}); }

void product(const Tensor& a, const Tensor& b, const Tensor& c) { ops::square_matmul(a, b, c); }

}  // namespace

void NewtonSchulzSqrt::forward(const Tensor& sigma) {
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

  if (iterations_ < 2) {  // D = 3P/2 - (P A + A P)/2
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
