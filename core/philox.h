// Philox-4x32-10, a counter-based generator (Salmon et al., SC'11): the numbers depend only on
// (seed, stream, index), so CPU and GPU, and any thread count, draw the same values.
// Element i of a fill uses counter (i, stream) and key seed; uniforms use the top 24 bits (float) or
// 53 bits (double) so both backends compute them exactly; normals use Box-Muller in double.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MPNCOV_HD __host__ __device__ __forceinline__
#else
#define MPNCOV_HD inline
#endif

namespace mpncov::philox {

struct Bits {
  uint32_t v[4];
};

MPNCOV_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

MPNCOV_HD Bits draw(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t c0 = static_cast<uint32_t>(index), c1 = static_cast<uint32_t>(index >> 32);
  uint32_t c2 = static_cast<uint32_t>(stream), c3 = static_cast<uint32_t>(stream >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Bits{{c0, c1, c2, c3}};
}

// Uniform in (0, 1): never exactly 0 or 1.
MPNCOV_HD float uniform_float(uint32_t x) { return (static_cast<float>(x >> 8) + 0.5f) * (1.0f / 16777216.0f); }
MPNCOV_HD double uniform_double(uint32_t a, uint32_t b) {
  uint64_t m = (static_cast<uint64_t>(a >> 5) << 26) | (b >> 6);  // 53 bits
  return (static_cast<double>(m) + 0.5) * (1.0 / 9007199254740992.0);
}

MPNCOV_HD double uniform(uint64_t seed, uint64_t stream, uint64_t index, bool wide) {
  Bits b = draw(seed, stream, index);
  return wide ? uniform_double(b.v[0], b.v[1]) : static_cast<double>(uniform_float(b.v[0]));
}

MPNCOV_HD double normal(uint64_t seed, uint64_t stream, uint64_t index) {
  Bits b = draw(seed, stream, index);
  double u1 = uniform_double(b.v[0], b.v[1]);
  double u2 = uniform_double(b.v[2], b.v[3]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

}  // namespace mpncov::philox
