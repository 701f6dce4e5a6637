// The random draws of one sample's augmentation: a Philox stream keyed by (run seed, epoch, dataset index),
// so a sample's crop and flip are the same whichever worker thread makes it, and whatever the number of
// workers. Draws are counted, never shared between samples.
#pragma once
#include <cstdint>

#include "core/philox.h"

namespace mpncov::data {

// A 64-bit mix (splitmix64's finaliser): distinct purposes get unrelated Philox keys from one seed.
inline uint64_t mix_seed(uint64_t seed, uint64_t purpose) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (purpose + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum class RngPurpose : uint64_t { Shuffle = 1, Augment = 2 };

class SampleRng {
 public:
  SampleRng(uint64_t seed, uint64_t epoch, uint64_t index)
      : key_(mix_seed(seed, static_cast<uint64_t>(RngPurpose::Augment))), stream_((epoch << 40) ^ index) {}

  // Uniform in (0, 1), 53 bits.
  double uniform() { return philox::uniform(key_, stream_, counter_++, true); }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // Uniform integer in [low, high).
  int64_t randint(int64_t low, int64_t high) {
    const int64_t n = high - low;
    int64_t v = static_cast<int64_t>(uniform() * static_cast<double>(n));
    return low + (v < n ? v : n - 1);
  }
  uint64_t draws() const { return counter_; }

 private:
  uint64_t key_, stream_, counter_ = 0;
};

}  // namespace mpncov::data
