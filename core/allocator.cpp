#include "core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "core/cuda_backend.h"
#include "core/error.h"

namespace mpncov {
namespace {

constexpr size_t kAlignment = 64;

struct CpuCounters {
  std::mutex mutex;
  AllocatorStats stats;
};

CpuCounters& cpu_counters() {
  static CpuCounters counters;
  return counters;
}

void* cpu_allocate(size_t nbytes) {
  // aligned_alloc needs a size that is a multiple of the alignment.
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) MPNCOV_FAIL("out of host memory allocating ", nbytes, " bytes");
  auto& c = cpu_counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.in_use_bytes += nbytes;
  c.stats.cached_bytes += nbytes;
  if (c.stats.in_use_bytes > c.stats.peak_bytes) c.stats.peak_bytes = c.stats.in_use_bytes;
  ++c.stats.device_mallocs;
  ++c.stats.allocations;
  return p;
}

void cpu_deallocate(void* p, size_t nbytes) {
  std::free(p);
  auto& c = cpu_counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.in_use_bytes -= nbytes;
  c.stats.cached_bytes -= nbytes;
}

}  // namespace

// The CUDA branches refuse the device in a build without CUDA (core/cuda_backend.h).

void* allocate(Device device, size_t nbytes) {
  if (device.is_cpu()) return cpu_allocate(nbytes);
  if constexpr (cuda::kBuilt) return cuda::allocate(device.index, nbytes);
  else cuda::absent(device);
}

void deallocate(Device device, void* ptr, size_t nbytes) {
  if (!ptr) return;
  if (device.is_cpu()) return cpu_deallocate(ptr, nbytes);
  if constexpr (cuda::kBuilt) cuda::deallocate(device.index, ptr, nbytes);
  else cuda::absent(device);
}

AllocatorStats allocator_stats(Device device) {
  if (device.is_cpu()) {
    auto& c = cpu_counters();
    std::lock_guard<std::mutex> lock(c.mutex);
    return c.stats;
  }
  if constexpr (cuda::kBuilt) return cuda::allocator_stats(device.index);
  else cuda::absent(device);
}

void reset_peak(Device device) {
  if (device.is_cpu()) {
    auto& c = cpu_counters();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.peak_bytes = c.stats.in_use_bytes;
    return;
  }
  if constexpr (cuda::kBuilt) cuda::reset_peak(device.index);
  else cuda::absent(device);
}

void empty_cache(Device device) {
  if (device.is_cpu()) return;
  if constexpr (cuda::kBuilt) cuda::empty_cache(device.index);
  else cuda::absent(device);
}

}  // namespace mpncov
