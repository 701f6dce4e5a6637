// Winograd's minimal filtering F(m, r) by Toom-Cook interpolation (Lavin and Gray 2016): the matrices of
// the one-axis convolutions (conv_winograd_1d.cpp) and of the 3x3 one nested over both axes
// (conv_winograd_2d.cpp), built at compile time, so that the transforms' unrolled loops multiply by
// literals and skip the zeros; and the channel vectors and epilogue both kernels' transforms work with.
//
// With alpha = m + r - 1 and alpha - 1 finite points p_i plus infinity: AT[j][i] = p_i^j and G[i][k] =
// p_i^k / f_i with f_i = prod_{l != i} (p_i - p_l); BT's row i holds the coefficients of
// prod_{l != i} (x - p_l), its last row those of prod_l (x - p_l).
#pragma once
#include <cstring>

#include "core/cpu/isa_clones.h"

namespace mpncov::cpu::winograd {

constexpr int kMaxOutputs = 8;  // m: outputs per tile along the axis, F(8, 3)'s
constexpr int kMaxAlpha = 12;   // m + r - 1 for F(6, 7)

struct Transform {
  int m = 0, r = 0, alpha = 0;
  double bt[kMaxAlpha][kMaxAlpha] = {};  // input: alpha x alpha
  double g[kMaxAlpha][kMaxAlpha] = {};   // weights: alpha x r
  double at[kMaxOutputs][kMaxAlpha] = {};  // output: m x alpha
};

// Coefficients (ascending, alpha of them) of prod_{l != skip} (x - p_l) over the alpha - 1 points.
constexpr void product(const double* points, int finite, int skip, double* c) {
  for (int k = 0; k <= finite; ++k) c[k] = k == 0 ? 1 : 0;
  int degree = 0;
  for (int l = 0; l < finite; ++l) {
    if (l == skip) continue;
    for (int k = degree + 1; k > 0; --k) c[k] = c[k - 1] - points[l] * c[k];
    c[0] = -points[l] * c[0];
    ++degree;
  }
}

// F(m, r) at the points (alpha - 1 of them).
constexpr Transform make_transform(int m, int r, const double* points) {
  Transform t;
  t.m = m;
  t.r = r;
  t.alpha = m + r - 1;
  const int finite = t.alpha - 1;
  for (int i = 0; i < finite; ++i) {
    const double p = points[i];
    double f = 1;
    for (int l = 0; l < finite; ++l)
      if (l != i) f *= p - points[l];
    double power = 1;
    for (int j = 0; j < m; ++j, power *= p) t.at[j][i] = power;
    power = 1;
    for (int k = 0; k < r; ++k, power *= p) t.g[i][k] = power / f;
    product(points, finite, i, t.bt[i]);
  }
  t.at[m - 1][finite] = 1;
  t.g[finite][r - 1] = 1;
  product(points, finite, -1, t.bt[finite]);
  return t;
}

// F(7, 3)'s points: 0, +-1, +-2, +-3/4, -1/4 (the smallest float32 error among the sets tried; also over
// both axes, docs/layers.md).
constexpr double kPoints73[] = {0, 1, -1, 2, -2, 0.75, -0.75, -0.25};

// Half an nChw16c block of channels as a vector: one AVX2 register, so that a tile's alpha pixels and
// the sum stay in registers (a whole block in two would spill them to the stack).
constexpr int kWidth = 8;
using Lanes = float __attribute__((vector_size(kWidth * sizeof(float))));
// (By reference: a vector passed by value would change the ABI between the clones.)
inline MPNCOV_CLONE_INLINE void load(Lanes& v, const float* p) { std::memcpy(&v, p, sizeof v); }
inline MPNCOV_CLONE_INLINE void store(float* p, const Lanes& v) { std::memcpy(p, &v, sizeof v); }

// What the output transform adds: the bias, a residual (y's layout; may be y itself), then the ReLU.
struct Epilogue {
  const float* bias = nullptr;
  const float* residual = nullptr;
  bool relu = false;
};

}  // namespace mpncov::cpu::winograd
