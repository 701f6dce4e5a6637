// The order in which one rank visits a dataset in one epoch. Shuffled orders are a Fisher-Yates shuffle
// drawn from Philox keyed by (seed, epoch), so they are the same on every machine and every thread count.
// With world_size > 1 the order is padded by wrapping around to a multiple of world_size and rank takes
// every world_size-th element from position rank, as PyTorch's DistributedSampler does. Without padding
// (pad = false, for validation) rank takes the same positions up to the end only: every sample is visited
// exactly once over all ranks, and the shares differ by at most one.
#pragma once
#include <cstdint>
#include <vector>

namespace mpncov::data {

struct SamplerOptions {
  bool shuffle = true;
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  bool pad = true;
};

// The samples rank visits per epoch: the padded share, or its exact share without padding.
int64_t shard_size(int64_t dataset_size, const SamplerOptions& options);

std::vector<int64_t> epoch_order(int64_t dataset_size, int64_t epoch, const SamplerOptions& options);

}  // namespace mpncov::data
