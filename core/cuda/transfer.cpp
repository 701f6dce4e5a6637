// Page-locked host memory and copies between host and devices. Copies are synchronous for the host: each
// is queued on a device's stream (after the work that produced its source) and waited for, so the caller
// may read, overwrite or free either side as soon as it returns.
#include <cstring>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda_backend.h"

namespace mpncov::cuda {

void* allocate_pinned(size_t nbytes) {
  MPNCOV_CHECK(device_count() > 0, "page-locked host memory asked for, but no CUDA device is present");
  if (nbytes == 0) return nullptr;
  void* p = nullptr;
  const cudaError_t e = cudaHostAlloc(&p, nbytes, cudaHostAllocPortable);  // pinned for every device
  if (e != cudaSuccess) {
    cudaGetLastError();
    MPNCOV_FAIL("cannot allocate ", nbytes, " bytes of page-locked host memory: ", cudaGetErrorString(e));
  }
  return p;
}

void deallocate_pinned(void* ptr) {
  if (!ptr) return;
  // Called from destructors, possibly at exit after the runtime has gone: errors are dropped, not thrown.
  if (cudaFreeHost(ptr) != cudaSuccess) cudaGetLastError();
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0 || dst == src) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memmove(dst, src, nbytes);
    return;
  }
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index) {
    Context& from = context(src_device.index);
    Context& to = context(dst_device.index);
    from.synchronize();  // the source's producers, queued on its own stream, finish first
    DeviceGuard guard(dst_device.index);
    CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes, to.stream()));
    to.synchronize();
    return;
  }
  const int device = dst_device.is_cuda() ? dst_device.index : src_device.index;
  const cudaMemcpyKind kind = src_device.is_cpu()   ? cudaMemcpyHostToDevice
                              : dst_device.is_cpu() ? cudaMemcpyDeviceToHost
                                                    : cudaMemcpyDeviceToDevice;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, ctx.stream()));
  ctx.synchronize();
}

void copy_to_device_async(void* dst, int device, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  // Ordered on the device's one stream: kernels queued after it see the data, and nothing waits here.
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, ctx.stream()));
  CUDA_CHECK_LAUNCH();
}

void* record_event(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  cudaEvent_t e = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  const cudaError_t recorded = cudaEventRecord(e, ctx.stream());
  if (recorded != cudaSuccess) {
    cudaEventDestroy(e);
    CUDA_CHECK(recorded);
  }
  return e;
}

void finish_event(void* event) {
  if (!event) return;
  const auto e = static_cast<cudaEvent_t>(event);
  if (cudaEventSynchronize(e) != cudaSuccess) cudaGetLastError();  // a fault: reported by the next sync
  cudaEventDestroy(e);
}

}  // namespace mpncov::cuda
