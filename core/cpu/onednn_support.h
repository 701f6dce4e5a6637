// What the CPU backend's oneDNN calls (convolution, matmul) share: one engine, and growable aligned
// buffers for their scratch memory.
#pragma once
#include <dnnl.hpp>

#include <cstddef>
#include <cstdlib>

#include "core/error.h"

namespace mpncov::cpu {

inline dnnl::engine& onednn_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// A 64-byte aligned buffer that only grows, so steady-state steps allocate nothing.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }

  // At least `bytes`; the old contents are lost when it grows. `user` names the caller in the error.
  void* reserve(size_t bytes, const char* user) {
    if (size_ >= bytes) return data_;
    std::free(data_);
    size_ = 0;
    const size_t rounded = (bytes + 63) / 64 * 64;
    data_ = std::aligned_alloc(64, rounded);
    MPNCOV_CHECK(data_, user, ": cannot allocate ", rounded, " bytes of scratch memory");
    size_ = rounded;
    return data_;
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mpncov::cpu
