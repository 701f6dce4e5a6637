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

void* allocate(Device device, size_t nbytes) {
  if (device.is_cpu()) return cpu_allocate(nbytes);
  return cuda::allocate(device.index, nbytes);
}

void deallocate(Device device, void* ptr, size_t nbytes) {
  if (!ptr) return;
  if (device.is_cpu()) return cpu_deallocate(ptr, nbytes);
  cuda::deallocate(device.index, ptr, nbytes);
}

AllocatorStats allocator_stats(Device device) {
  if (device.is_cuda()) return cuda::allocator_stats(device.index);
  auto& c = cpu_counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void reset_peak(Device device) {
  if (device.is_cuda()) return cuda::reset_peak(device.index);
  auto& c = cpu_counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.peak_bytes = c.stats.in_use_bytes;
}

void empty_cache(Device device) {
  if (device.is_cuda()) cuda::empty_cache(device.index);
}

}  // namespace mpncov
