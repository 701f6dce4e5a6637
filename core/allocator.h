// Memory for tensors. CPU: 64-byte aligned blocks. CUDA: a caching allocator (core/cuda/) so a warmed-up
// training step never calls cudaMalloc; its counters say how much is in use, at peak and cached.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace mpncov {

void* allocate(Device device, size_t nbytes);
void deallocate(Device device, void* ptr, size_t nbytes);

struct AllocatorStats {
  size_t in_use_bytes = 0;    // handed out to tensors now
  size_t peak_bytes = 0;      // highest in_use_bytes since the last reset
  size_t cached_bytes = 0;    // held from the device, in use or free (CUDA)
  uint64_t device_mallocs = 0;  // calls to cudaMalloc (CUDA) or aligned_alloc (CPU)
  uint64_t allocations = 0;     // requests served
};

AllocatorStats allocator_stats(Device device);
void reset_peak(Device device);
// Returns cached, unused device blocks to the driver (CUDA); nothing to do on CPU.
void empty_cache(Device device);

}  // namespace mpncov
