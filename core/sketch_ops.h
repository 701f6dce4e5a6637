// The pieces of compact bilinear pooling by Tensor Sketch (Gao et al., CVPR 2016) that are not FFTs
// (core/fft.h): the count sketch, the frequency-domain product summed over positions, and the gather
// that turns the output gradient into the gradient of the Gram matrix. Hashes are stored as float
// tensors of integer values in [0, D) and signs as +-1, so they travel with the weights like any buffer.
// Same conventions as core/ops.h. Checks in core/sketch_ops.cpp; backends in core/cpu/sketch_ops.cpp and
// core/cuda/sketch_ops.cu.
#pragma once
#include "core/ops.h"

namespace mpncov::ops {

// x (B, C, M), hash and sign (C) -> out (B, M, D), D = out.dim(2):
//   out[b, m, hash[c]] = sum over c with that hash of sign[c] x[b, c, m]; every other element 0.
void count_sketch(const Tensor& x, const Tensor& hash, const Tensor& sign, const Tensor& out);

// Complex spectra a and b (B, M, F, 2) -> out (B, F, 2) = sum over m of a[b, m] * b[b, m] (complex product).
void spectrum_product_sum(const Tensor& a, const Tensor& b, const Tensor& out);

// g (B, D) -> out (B, C, C) with, for k(c, c') = (h1[c] + h2[c']) mod D,
//   out[b, c, c'] = s1[c] s2[c'] g[b, k(c, c')] + s1[c'] s2[c] g[b, k(c', c)].
// The Tensor Sketch of x is y = sum over (c, c') of s1[c] s2[c'] G[c, c'] e_{k(c, c')} with G = X X^T, so
// this is dL/dG symmetrised, and dL/dX = out X.
void sketch_gram_gather(const Tensor& g, const Tensor& h1, const Tensor& s1, const Tensor& h2, const Tensor& s2,
                        const Tensor& out);

}  // namespace mpncov::ops
