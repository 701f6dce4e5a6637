// bfloat16 as a storage type: the element of a DType::BF16 tensor (data<bfloat16>()), and the two
// helpers through which a CPU kernel templated on its storage type S computes in float32 whatever it
// stores. A kernel loads with widen(x[i]) (exact: a 16-bit shift), runs its float arithmetic unchanged
// and stores with narrow<S>(value) (round to nearest even, NaN kept: core/half.h). For float and double
// storage both are the identity, so one template body serves all three with no cost to the float path.
// Both are branch-free integer operations on each element: GCC vectorises the loops around them.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/half.h"

namespace mpncov {

struct bfloat16 {
  uint16_t bits;
};
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::BF16; };

// The type a kernel computes in for storage type S: float for bfloat16, S itself otherwise.
template <typename S> struct compute_type { using type = S; };
template <> struct compute_type<bfloat16> { using type = float; };
template <typename S> using compute_t = typename compute_type<S>::type;

inline float widen(float v) { return v; }
inline double widen(double v) { return v; }
inline float widen(bfloat16 v) { return half::bf16_to_float(v.bits); }

template <typename S> inline S narrow(compute_t<S> v) { return v; }
template <> inline bfloat16 narrow<bfloat16>(float v) { return bfloat16{half::float_to_bf16(v)}; }

}  // namespace mpncov
