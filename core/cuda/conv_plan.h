// What cuDNN runs for a convolution (core/cuda/nn_conv.cu), for logs and the GPU check's sweep.
#pragma once
#include <cstdint>
#include <string>

#include "core/ops.h"

namespace mpncov::cuda {

// The algorithm, math type and workspace bytes each pass of this convolution runs with under the
// device's current math options (making the plan if there is none yet), e.g.
// "forward IMPLICIT_PRECOMP_GEMM math=fma workspace=0 (entry 1 of 5); backward-data ...".
std::string conv_plan_description(int device, int64_t n, const ops::ConvGeometry& g, int64_t out_channels,
                                  int64_t groups);

}  // namespace mpncov::cuda
