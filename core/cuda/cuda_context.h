// One execution context per CUDA device: a stream, cuBLAS and cuDNN handles bound to it, and a scratch
// workspace. Everything is created on first use, so a program that never asks for a CUDA device never
// touches the driver. Every op of the backend runs on its device's one stream: work, and the reuse of
// cached memory, is ordered by that stream without events.
//
// One host thread drives each GPU: the workspace, the handles and the plan caches (convolution, FFT)
// are not made for two threads queueing work on one device at once. Debug builds (no NDEBUG) check it:
// context(device) from a second thread throws. Other threads may free memory (the caching allocator
// locks) and wait on events.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

namespace mpncov::cuda {

// The number of usable devices, 0 (never an error) when there is no driver or no device. Cached.
int device_count();
// Throws a clear error naming cuda:N unless that device exists (with the driver's reason when none does).
void check_device(int device);

// Makes `device` current for the calling thread while in scope, then restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// How the device's convolutions may compute (docs/gpu.md). Both off by default; the environment
// variables MPNCOV_CUDA_TF32=1 and MPNCOV_CUDA_DETERMINISTIC=1 turn them on when the context is made, and
// set_math (cuda_backend.h) changes them for the convolutions that follow.
struct MathOptions {
  bool allow_tf32 = false;     // TF32 tensor cores in cuDNN convolutions (cuBLAS stays FP32)
  bool deterministic = false;  // only algorithms cuDNN marks deterministic (bitwise reproducible)
};

class Context {
 public:
  int device() const { return device_; }
  cudaStream_t stream();
  cublasHandle_t cublas();
  cudnnHandle_t cudnn();
  MathOptions math() const { return {allow_tf32_.load(), deterministic_.load()}; }
  void set_math(const MathOptions& m) {
    allow_tf32_ = m.allow_tf32;
    deterministic_ = m.deterministic;
  }
  // Scratch memory of at least `bytes` (cuDNN algorithms, temporaries), valid until the next call on this
  // context. It grows through the caching allocator; the old block is released in stream order.
  void* workspace(size_t bytes);
  int multiprocessors();  // for sizing grids
  // Waits for the work queued on the stream; raises any asynchronous error of that work.
  void synchronize();

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  explicit Context(int device);
  friend Context& context(int device);
  void check_thread();  // debug builds: the one host thread rule

  const int device_;
  std::once_flag stream_once_, cublas_once_, cudnn_once_, sm_once_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  int multiprocessors_ = 0;
  void* cublas_workspace_ = nullptr;  // cuBLAS's work area, from the caching allocator
  std::atomic<bool> allow_tf32_{false}, deterministic_{false};
  std::atomic<std::thread::id> owner_{};
  std::mutex workspace_mutex_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

// The context of cuda:device (checked: a clear error when it does not exist), created on first use and
// kept for the life of the process.
Context& context(int device);

}  // namespace mpncov::cuda
