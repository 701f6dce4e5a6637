#include "core/cuda/caching_allocator.h"

#include <cstdio>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda_backend.h"

namespace mpncov::cuda {
namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kSmallGranularity = 512;

std::string format_bytes(size_t n) {
  char buf[32];
  if (n >= (size_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(n) / (1 << 30));
  else if (n >= kSmallLimit) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1 << 20));
  else std::snprintf(buf, sizeof buf, "%zu bytes", n);
  return buf;
}

// One allocator per device, never destroyed: tensors held in static objects may release their memory
// after other statics are gone.
struct Registry {
  explicit Registry(int n) : once(static_cast<size_t>(n)), allocators(static_cast<size_t>(n), nullptr) {}
  std::vector<std::once_flag> once;
  std::vector<CachingAllocator*> allocators;
};

}  // namespace

size_t CachingAllocator::size_class(size_t nbytes) {
  if (nbytes <= kSmallLimit) {
    const size_t n = nbytes == 0 ? 1 : nbytes;
    return (n + kSmallGranularity - 1) / kSmallGranularity * kSmallGranularity;
  }
  size_t power = kSmallLimit;
  while (power <= nbytes / 2) power *= 2;  // the largest power of two <= nbytes
  const size_t step = power / 16;
  return (nbytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t size = size_class(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* ptr = nullptr;
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
  } else {
    DeviceGuard guard(device_);
    cudaError_t e = cudaMalloc(&ptr, size);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the error, then try again without our cache
      release_free_blocks();
      e = cudaMalloc(&ptr, size);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t device_free = 0, device_total = 0;
      if (cudaMemGetInfo(&device_free, &device_total) != cudaSuccess) cudaGetLastError();
      MPNCOV_FAIL("CUDA out of memory on cuda:", device_, " allocating ", format_bytes(nbytes), ": ",
                  format_bytes(stats_.in_use_bytes), " in use by tensors, ", format_bytes(stats_.cached_bytes),
                  " held by mpncov's cache, ", format_bytes(device_free), " free of ", format_bytes(device_total),
                  " on the device (reduce the batch size, or free tensors)");
    }
    CUDA_CHECK(e);
    ++stats_.device_mallocs;
    stats_.cached_bytes += size;
  }
  used_.emplace(ptr, size);
  ++stats_.allocations;
  stats_.in_use_bytes += size;
  if (stats_.in_use_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.in_use_bytes;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = used_.find(ptr);
  if (it == used_.end()) {
    // A bug elsewhere; throwing from the destructor that called us would abort the program.
    std::fprintf(stderr, "mpncov: cuda:%d allocator asked to free %p, which it did not hand out\n", device_, ptr);
    return;
  }
  const size_t size = it->second;
  used_.erase(it);
  stats_.in_use_bytes -= size;
  free_[size].push_back(ptr);
}

void CachingAllocator::release_free_blocks() {
  DeviceGuard guard(device_);
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) {
      CUDA_CHECK(cudaFree(p));  // synchronizes the device: no queued work still uses p
      stats_.cached_bytes -= size;
    }
    blocks.clear();
  }
  free_.clear();
}

AllocatorStats CachingAllocator::stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.in_use_bytes;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_free_blocks();
}

CachingAllocator& caching_allocator(int device) {
  check_device(device);
  static Registry* registry = new Registry(device_count());
  std::call_once(registry->once[static_cast<size_t>(device)],
                 [&] { registry->allocators[static_cast<size_t>(device)] = new CachingAllocator(device); });
  return *registry->allocators[static_cast<size_t>(device)];
}

DeviceBuffer::DeviceBuffer(int device, size_t nbytes)
    : device_(device), nbytes_(nbytes), ptr_(cuda::allocate(device, nbytes)) {}
DeviceBuffer::~DeviceBuffer() { cuda::deallocate(device_, ptr_, nbytes_); }

// ---- entry points (cuda_backend.h) ----

void* allocate(int device, size_t nbytes) { return caching_allocator(device).allocate(nbytes); }
void deallocate(int device, void* ptr, size_t) {
  if (ptr) caching_allocator(device).deallocate(ptr);
}
AllocatorStats allocator_stats(int device) { return caching_allocator(device).stats(); }
void reset_peak(int device) { caching_allocator(device).reset_peak(); }
void empty_cache(int device) { caching_allocator(device).empty_cache(); }

}  // namespace mpncov::cuda
