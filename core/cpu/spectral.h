// Batched symmetric eigendecomposition on the CPU (LAPACK's divide-and-conquer syevd, from OpenBLAS). Used
// to evaluate the Newton-Schulz polynomial of iSQRT-COV and its exact derivative spectrally on the CPU
// (layers/newton_schulz.h), where one 256 x 256 eigendecomposition costs about ten matrix products.
#pragma once

#include "core/tensor.h"

namespace mpncov::cpu {

// a (B, n, n) symmetric, float or double, on the CPU. Writes vectors (B, n, n), whose row i is the unit
// eigenvector e_i, and values (B, n) ascending: a = sum_i values_i e_i e_i^T. A sample with a non-finite
// entry gets NaN throughout (as the product iteration would give).
void sym_eig(const Tensor& a, const Tensor& vectors, const Tensor& values);

}  // namespace mpncov::cpu
