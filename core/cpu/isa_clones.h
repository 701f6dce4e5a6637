// MPNCOV_AVX2_CLONES before a CPU kernel compiles it twice, for the x86-64 baseline (SSE2: the project
// builds without -march, so its programs run on any x86-64) and for AVX2, and runs the AVX2 one where the
// CPU has it (GCC's target_clones: chosen once, when the program loads). For the loops over bfloat16
// storage: widening and rounding are a few integer operations per element, which SSE2 does at half the
// width and without AVX2's packing, so that there a bfloat16 ReLU or sum was slower than the float32 one.
// AVX2 alone, without FMA: no multiply and add are contracted, so both versions give the same bits; only
// for kernels whose sums stay in their lanes (none across a vector), which the width does not change.
// Put it on the function that holds the OpenMP region (the outlined body is cloned with it) or on one
// called inside the region; code inlined into either is compiled for its version.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MPNCOV_AVX2_CLONES __attribute__((target_clones("default", "avx2")))
#else
#define MPNCOV_AVX2_CLONES
#endif

// MPNCOV_CLONE_INLINE on a helper (or after a lambda's parameters) that a cloned kernel calls in its hot
// loop: forced inline, so it is compiled for each clone's ISA. A helper the compiler chose not to inline
// (a lambda handed to a template, say) runs the baseline SSE2 code in the AVX2 clone too.
#if defined(__GNUC__)
#define MPNCOV_CLONE_INLINE __attribute__((always_inline))
#else
#define MPNCOV_CLONE_INLINE
#endif
