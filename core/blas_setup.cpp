#include "core/blas_setup.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern "C" char* openblas_get_corename(void);

namespace mpncov {

const char* blas_core_name() { return openblas_get_corename(); }

void select_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice, or we already re-executed
  const char* core = openblas_get_corename();
  const bool weak = core && (!std::strcmp(core, "Prescott") || !std::strcmp(core, "Core2") ||
                             !std::strcmp(core, "Nehalem") || !std::strcmp(core, "Penryn") ||
                             !std::strcmp(core, "Dunnington") || !std::strcmp(core, "Atom"));
  if (!weak) return;
  const char* better = nullptr;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    better = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    better = "Haswell";
#endif
  if (!better) return;
  setenv("OPENBLAS_CORETYPE", better, 1);
  execv("/proc/self/exe", argv);  // returns only on failure: carry on with the slow kernels
}

}  // namespace mpncov
