#include "data/sampler.h"

#include <numeric>

#include "core/error.h"
#include "core/philox.h"
#include "data/sample_rng.h"

namespace mpncov::data {

int64_t shard_size(int64_t n, const SamplerOptions& o) {
  const int64_t w = o.world_size;
  return o.pad ? (n + w - 1) / w : (n - o.rank + w - 1) / w;
}

std::vector<int64_t> epoch_order(int64_t n, int64_t epoch, const SamplerOptions& o) {
  MPNCOV_CHECK(n > 0, "sampler over an empty dataset");
  MPNCOV_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "sampler rank ", o.rank,
               " is not in [0, world size ", o.world_size, ")");
  MPNCOV_CHECK(epoch >= 0, "negative epoch ", epoch);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (o.shuffle) {
    const uint64_t key = mix_seed(o.seed, static_cast<uint64_t>(RngPurpose::Shuffle));
    for (int64_t i = n - 1; i > 0; --i) {
      const double u = philox::uniform(key, static_cast<uint64_t>(epoch), static_cast<uint64_t>(i), true);
      int64_t j = static_cast<int64_t>(u * static_cast<double>(i + 1));
      if (j > i) j = i;
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
  }
  if (o.world_size == 1) return order;
  const int64_t per_rank = shard_size(n, o);
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank));
  for (int64_t k = 0; k < per_rank; ++k) {
    const int64_t pos = k * o.world_size + o.rank;  // in the order padded by wrapping around
    mine.push_back(order[static_cast<size_t>(pos % n)]);
  }
  return mine;
}

}  // namespace mpncov::data
