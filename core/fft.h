// Real fast Fourier transforms of the rows of a tensor: FFTW on the CPU (float and double), cuFFT on CUDA.
// Unnormalised in both directions: irfft(rfft(x)) = n x. Plans are made once per length (and row count on
// CUDA) and cached; FFTW plans with FFTW_ESTIMATE, so results do not depend on timing.
#pragma once
#include "core/ops.h"

namespace mpncov::ops {

// x (..., n) real -> y (..., n/2 + 1, 2): the non-negative frequencies, complex as (real, imaginary).
void rfft(const Tensor& x, const Tensor& y);
// y (..., n/2 + 1, 2) -> x (..., n) real, n taken from x: the inverse of rfft times n. The imaginary parts of
// the frequencies 0 and n/2 (n even) are ignored, as for any real inverse transform.
void irfft(const Tensor& y, const Tensor& x);

}  // namespace mpncov::ops
