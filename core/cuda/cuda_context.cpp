// Device discovery, the per-device contexts and the runtime entry points of cuda_backend.h.
#include "core/cuda/cuda_context.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda_backend.h"

namespace mpncov::cuda {
namespace {

struct Devices {
  int count = 0;
  std::string why_none;  // the driver's answer when count is 0
};

const Devices& devices() {
  static const Devices d = [] {
    Devices r;
    const cudaError_t e = cudaGetDeviceCount(&r.count);
    if (e != cudaSuccess) {
      cudaGetLastError();  // a missing driver is an answer here, not an error to leave pending
      r.count = 0;
      r.why_none = str(cudaGetErrorString(e), " (cudaGetDeviceCount returned ", static_cast<int>(e), ")");
    } else if (r.count == 0) {
      r.why_none = "the driver reports no device";
    }
    return r;
  }();
  return d;
}

// Contexts live for the whole process and are never destroyed: at exit the CUDA runtime may already be
// unloaded, and destroying handles then would fail.
struct Registry {
  explicit Registry(int n) : once(static_cast<size_t>(n)), contexts(static_cast<size_t>(n), nullptr) {}
  std::vector<std::once_flag> once;
  std::vector<Context*> contexts;
};

bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

// cuBLAS's recommended work area on Hopper (4 MiB suffices before it).
constexpr size_t kCublasWorkspace = size_t(32) << 20;

}  // namespace

int device_count() { return devices().count; }

void check_device(int device) {
  const Devices& d = devices();
  MPNCOV_CHECK(d.count > 0, "device cuda:", device, " asked for, but no CUDA device is present: ", d.why_none);
  MPNCOV_CHECK(device >= 0 && device < d.count, "device cuda:", device, " asked for, but only ", d.count,
               " CUDA device(s) are present (cuda:0", d.count > 1 ? str(" to cuda:", d.count - 1) : "", ")");
}

DeviceGuard::DeviceGuard(int device) {
  int current = 0;
  CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) {
    CUDA_CHECK(cudaSetDevice(device));
    previous_ = current;
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);  // no throwing from a destructor; this cannot fail here
}

Context& context(int device) {
  check_device(device);
  static Registry* registry = new Registry(device_count());
  std::call_once(registry->once[static_cast<size_t>(device)],
                 [&] { registry->contexts[static_cast<size_t>(device)] = new Context(device); });
  Context& ctx = *registry->contexts[static_cast<size_t>(device)];
#ifndef NDEBUG
  ctx.check_thread();
#endif
  return ctx;
}

Context::Context(int device)
    : device_(device), allow_tf32_(env_on("MPNCOV_CUDA_TF32")), deterministic_(env_on("MPNCOV_CUDA_DETERMINISTIC")) {}

void Context::check_thread() {
  const std::thread::id me = std::this_thread::get_id();
  std::thread::id none{};
  if (owner_.compare_exchange_strong(none, me) || none == me) return;
  MPNCOV_FAIL("cuda:", device_, " is used from a second host thread; one host thread drives each GPU (its ",
              "stream, handles, workspace and plan caches assume it; see docs/gpu.md)");
}

cudaStream_t Context::stream() {
  std::call_once(stream_once_, [this] {
    DeviceGuard guard(device_);
    // A blocking stream: should any code use the legacy default stream, it still orders with ours.
    CUDA_CHECK(cudaStreamCreate(&stream_));
  });
  return stream_;
}

cublasHandle_t Context::cublas() {
  std::call_once(cublas_once_, [this] {
    DeviceGuard guard(device_);
    cublasHandle_t h = nullptr;
    CUBLAS_CHECK(cublasCreate(&h));
    CUBLAS_CHECK(cublasSetStream(h, stream()));
    // cuBLAS's work area comes from the caching allocator (not cuBLAS's own cudaMalloc), held for the
    // context's life. After cublasSetStream, which resets it.
    cublas_workspace_ = cuda::allocate(device_, kCublasWorkspace);
    CUBLAS_CHECK(cublasSetWorkspace(h, cublas_workspace_, kCublasWorkspace));
    cublas_ = h;
  });
  return cublas_;
}

cudnnHandle_t Context::cudnn() {
  std::call_once(cudnn_once_, [this] {
    DeviceGuard guard(device_);
    cudnnHandle_t h = nullptr;
    CUDNN_CHECK(cudnnCreate(&h));
    CUDNN_CHECK(cudnnSetStream(h, stream()));
    cudnn_ = h;
  });
  return cudnn_;
}

void* Context::workspace(size_t bytes) {
  std::lock_guard<std::mutex> lock(workspace_mutex_);
  if (bytes > workspace_bytes_) {
    // Every user of the old block queued its work on this stream, so handing it back now is safe.
    if (workspace_) cuda::deallocate(device_, workspace_, workspace_bytes_);
    workspace_ = nullptr;
    workspace_bytes_ = 0;
    workspace_ = cuda::allocate(device_, bytes);
    workspace_bytes_ = bytes;
  }
  return workspace_;
}

int Context::multiprocessors() {
  std::call_once(sm_once_, [this] {
    CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, device_));
  });
  return multiprocessors_;
}

void Context::synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream())); }

// ---- runtime entry points (cuda_backend.h) ----

std::string device_name(int device) {
  check_device(device);
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GiB", static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  return str(prop.name, " (sm_", prop.major, prop.minor, ", ", memory, ")");
}

void synchronize(int device) { context(device).synchronize(); }

void set_math(int device, bool allow_tf32, bool deterministic) {
  MathOptions m;
  m.allow_tf32 = allow_tf32;
  m.deterministic = deterministic;
  context(device).set_math(m);
}

}  // namespace mpncov::cuda
