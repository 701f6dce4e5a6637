// NCCL transport for the CUDA tensors of one GPU per process. Collectives run on their own stream: each
// waits (by an event) for the work already queued on the device's compute stream, and wait() makes the
// compute stream wait for the collective, so neither the host nor the compute stream blocks in between.
#include <cuda_runtime.h>
#include <nccl.h>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/dist/backends.h"

#define NCCL_CHECK(call)                                                                         \
  do {                                                                                           \
    const ncclResult_t nccl_rc_ = (call);                                                        \
    if (nccl_rc_ != ncclSuccess)                                                                 \
      ::mpncov::fail_at(__FILE__, __LINE__, ::mpncov::str(#call, " failed: ", ncclGetErrorString(nccl_rc_))); \
  } while (0)

namespace mpncov::dist::detail {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::I64: return ncclInt64;
    default: MPNCOV_FAIL("NCCL collectives take float32, float64 or int64 tensors, got ", dtype_name(t));
  }
}

// A collective queued on the NCCL stream; wait() orders the compute stream after it.
class NcclWork : public Work {
 public:
  NcclWork(cudaEvent_t done, int device, Tensor keep) : done_(done), device_(device), keep_(std::move(keep)) {}
  ~NcclWork() override {
    cuda::DeviceGuard guard(device_);
    cudaEventDestroy(done_);
  }
  void wait() override {
    cuda::DeviceGuard guard(device_);
    CUDA_CHECK(cudaStreamWaitEvent(cuda::context(device_).stream(), done_, 0));
  }

 private:
  cudaEvent_t done_;
  int device_;
  Tensor keep_;  // alive until the compute stream is ordered after the collective
};

class Nccl : public DeviceCollectives {
 public:
  Nccl(int rank, int size, int device, const std::function<void(void*, size_t)>& share_id) : device_(device) {
    ncclUniqueId id;
    if (rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    share_id(&id, sizeof id);
    cuda::DeviceGuard guard(device_);
    NCCL_CHECK(ncclCommInitRank(&comm_, size, id, rank));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~Nccl() override {
    cuda::DeviceGuard guard(device_);
    cudaStreamSynchronize(stream_);
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  WorkHandle all_reduce(const Tensor& t) override {
    return launch(t, [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllReduce(t.raw(), t.raw(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), ncclSum, comm_, s));
    });
  }
  WorkHandle broadcast(const Tensor& t, int root) override {
    return launch(t, [&](cudaStream_t s) {
      NCCL_CHECK(ncclBroadcast(t.raw(), t.raw(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root, comm_, s));
    });
  }

 private:
  template <typename F>
  WorkHandle launch(const Tensor& t, F call) {
    MPNCOV_CHECK(t.device().index == device_, "NCCL collective on ", t.device().str(), " in a process on cuda:", device_);
    cuda::DeviceGuard guard(device_);
    cudaEvent_t ready, done;
    CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(ready, cuda::context(device_).stream()));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    CUDA_CHECK(cudaEventDestroy(ready));  // destroyed once the wait has been queued
    if (t.numel() > 0) call(stream_);
    CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_shared<NcclWork>(done, device_, t);
  }

  int device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

bool nccl_built() { return true; }

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "(unknown version)";
  // NCCL 2.9 and later encode major * 10000 + minor * 100 + patch.
  return str(v / 10000, ".", v / 100 % 100, ".", v % 100);
}

std::unique_ptr<DeviceCollectives> make_nccl(int rank, int size, int device,
                                             const std::function<void(void*, size_t)>& share_id) {
  return std::make_unique<Nccl>(rank, size, device, share_id);
}

}  // namespace mpncov::dist::detail
