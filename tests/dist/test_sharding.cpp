// The sampler's shards for data-parallel runs: padded (training: equal shares) and exact (validation:
// every sample once over all ranks).
#include <doctest/doctest.h>

#include <algorithm>

#include "data/sampler.h"

using namespace mpncov;

TEST_SUITE("unit") {

TEST_CASE("sharding: without padding every sample is visited exactly once over the ranks") {
  for (int64_t n : {1, 2, 7, 10, 33}) {
    for (int world : {1, 2, 3, 4}) {
      for (bool shuffle : {false, true}) {
        INFO("n ", n, " world ", world, " shuffle ", shuffle);
        std::vector<int64_t> all;
        for (int rank = 0; rank < world; ++rank) {
          const data::SamplerOptions o{shuffle, 9, rank, world, false};
          const std::vector<int64_t> mine = data::epoch_order(n, 3, o);
          CHECK(static_cast<int64_t>(mine.size()) == data::shard_size(n, o));
          all.insert(all.end(), mine.begin(), mine.end());
        }
        std::sort(all.begin(), all.end());
        std::vector<int64_t> want(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) want[static_cast<size_t>(i)] = i;
        CHECK(all == want);
      }
    }
  }
}

TEST_CASE("sharding: with padding the shares are equal and wrap around to the first samples") {
  const data::SamplerOptions r0{false, 0, 0, 2, true}, r1{false, 0, 1, 2, true};
  CHECK(data::epoch_order(7, 0, r0) == std::vector<int64_t>{0, 2, 4, 6});
  CHECK(data::epoch_order(7, 0, r1) == std::vector<int64_t>{1, 3, 5, 0});  // 0 again: padding
  CHECK(data::shard_size(7, r1) == 4);
  const data::SamplerOptions exact{false, 0, 1, 2, false};
  CHECK(data::epoch_order(7, 0, exact) == std::vector<int64_t>{1, 3, 5});
}

}  // TEST_SUITE
