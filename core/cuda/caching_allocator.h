// The CUDA caching allocator. Requests are rounded up to a size class; a released block goes on its
// device's free list for that class and serves the next request of the class without cudaMalloc, so a
// training step, once warmed up, allocates nothing from the driver. Blocks are reused in stream order
// (all work of a device runs on its one stream), so no event is needed. When cudaMalloc fails, the free
// blocks are returned to the driver and the allocation retried before reporting out of memory.
// Counters: in_use and peak count whole blocks (requests rounded up to their class).
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/allocator.h"

namespace mpncov::cuda {

class CachingAllocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}
  void* allocate(size_t nbytes);  // nullptr for 0 bytes
  void deallocate(void* ptr);     // never throws (called from destructors)
  AllocatorStats stats();
  void reset_peak();
  void empty_cache();  // returns every free block to the driver

  // Sizes are rounded to 512 bytes up to 1 MiB, then to 1/16 of their power of two (under 6.25% waste).
  static size_t size_class(size_t nbytes);

 private:
  void release_free_blocks();  // with mutex_ held

  const int device_;
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> free blocks
  std::unordered_map<void*, size_t> used_;               // block -> size class
  AllocatorStats stats_;
};

// The allocator of cuda:device (checked), created on first use and kept for the life of the process.
CachingAllocator& caching_allocator(int device);

// A temporary device buffer from the caching allocator, released (in stream order) when it goes.
class DeviceBuffer {
 public:
  DeviceBuffer(int device, size_t nbytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  int device_;
  size_t nbytes_;
  void* ptr_;
};

}  // namespace mpncov::cuda
