// Error checks for CUDA runtime, cuBLAS, cuDNN and cuFFT calls: a failure throws mpncov::Error naming the
// call, the library's error text, file and line. For CUDA code only (includes the CUDA headers).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cufft.h>

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

// After a kernel launch: reports a bad configuration at once (execution errors surface at the next
// synchronizing call).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
