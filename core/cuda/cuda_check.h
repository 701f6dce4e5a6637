// Error checks for CUDA runtime, cuBLAS, cuDNN and cuFFT calls: a failure throws mpncov::Error naming the
// call, the library's error text, file and line. For CUDA code only (includes the CUDA headers).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cufft.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace mpncov::cuda::detail {

// cuFFT has no error-string function; the values common to CUDA 12 and 13.
inline const char* cufft_error_string(cufftResult r) {
  switch (r) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED (out of memory)";
    case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    case CUFFT_UNALIGNED_DATA: return "CUFFT_UNALIGNED_DATA";
    case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
    case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
    case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
    case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
    default: return "unknown cuFFT error";
  }
}

[[noreturn]] inline void throw_failed(const char* call, int code, const char* text, const char* file, int line) {
  ::mpncov::fail_at(file, line, ::mpncov::str(call, " failed: ", text, " (", code, ")"));
}

// The debug switch MPNCOV_CUDA_SYNC=1 (or CUDA_LAUNCH_BLOCKING=1): every op waits for the device and
// checks for a fault before returning, so a kernel fault names the op that caused it. Read once.
inline bool sync_after_ops() {
  static const bool on = [] {
    for (const char* name : {"MPNCOV_CUDA_SYNC", "CUDA_LAUNCH_BLOCKING"}) {
      const char* v = std::getenv(name);
      if (v && *v && std::strcmp(v, "0") != 0) return true;
    }
    return false;
  }();
  return on;
}

// After an op has queued its work (kernels, library calls): a bad launch configuration is reported at
// once; under the debug switch, so is any fault of the work itself.
inline void after_op(const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && sync_after_ops()) {
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
      ::mpncov::fail_at(file, line, ::mpncov::str("CUDA fault in the op queued here (MPNCOV_CUDA_SYNC): ",
                                                  cudaGetErrorString(e), " (", static_cast<int>(e), ")"));
  }
  if (e != cudaSuccess) throw_failed("kernel launch", static_cast<int>(e), cudaGetErrorString(e), file, line);
}

}  // namespace mpncov::cuda::detail

#define CUDA_CHECK(call)                                                                               \
  do {                                                                                                 \
    const cudaError_t mpncov_status_ = (call);                                                         \
    if (mpncov_status_ != cudaSuccess)                                                                 \
      ::mpncov::cuda::detail::throw_failed(#call, static_cast<int>(mpncov_status_),                    \
                                           cudaGetErrorString(mpncov_status_), __FILE__, __LINE__);    \
  } while (0)

#define CUBLAS_CHECK(call)                                                                             \
  do {                                                                                                 \
    const cublasStatus_t mpncov_status_ = (call);                                                      \
    if (mpncov_status_ != CUBLAS_STATUS_SUCCESS)                                                       \
      ::mpncov::cuda::detail::throw_failed(#call, static_cast<int>(mpncov_status_),                    \
                                           cublasGetStatusString(mpncov_status_), __FILE__, __LINE__); \
  } while (0)

#define CUDNN_CHECK(call)                                                                              \
  do {                                                                                                 \
    const cudnnStatus_t mpncov_status_ = (call);                                                       \
    if (mpncov_status_ != CUDNN_STATUS_SUCCESS)                                                        \
      ::mpncov::cuda::detail::throw_failed(#call, static_cast<int>(mpncov_status_),                    \
                                           cudnnGetErrorString(mpncov_status_), __FILE__, __LINE__);   \
  } while (0)

#define CUFFT_CHECK(call)                                                                              \
  do {                                                                                                 \
    const cufftResult mpncov_status_ = (call);                                                         \
    if (mpncov_status_ != CUFFT_SUCCESS)                                                               \
      ::mpncov::cuda::detail::throw_failed(#call, static_cast<int>(mpncov_status_),                    \
                                           ::mpncov::cuda::detail::cufft_error_string(mpncov_status_), \
                                           __FILE__, __LINE__);                                        \
  } while (0)

// After an op's kernel launches and library calls: a bad configuration is reported at once; execution
// errors surface at the next synchronizing call, or here under MPNCOV_CUDA_SYNC=1.
#define CUDA_CHECK_LAUNCH() ::mpncov::cuda::detail::after_op(__FILE__, __LINE__)
