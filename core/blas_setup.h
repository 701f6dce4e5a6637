// OpenBLAS 0.3.21 (Debian 12) does not recognise some newer CPUs (e.g. AMD Zen 4 in a VM) and falls back
// to its SSE3 "Prescott" kernels, 3-4x slower than the AVX2/AVX-512 ones the CPU supports. It reads its
// core type once, when the library loads, from OPENBLAS_CORETYPE; so a program whose OpenBLAS picked a weak
// core re-executes itself once with the right OPENBLAS_CORETYPE set. A value the user set is respected.
#pragma once

namespace mpncov {

// Call first thing in main(). Returns only if no re-execution was needed (or it failed, silently).
void select_blas_kernels(char** argv);
// The core type OpenBLAS uses, e.g. "SkylakeX".
const char* blas_core_name();

}  // namespace mpncov
