// The one oneDNN CPU engine that every oneDNN call of the CPU backend shares (convolution, matmul).
#pragma once
#include <dnnl.hpp>

namespace mpncov::cpu {

inline dnnl::engine& onednn_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

}  // namespace mpncov::cpu
