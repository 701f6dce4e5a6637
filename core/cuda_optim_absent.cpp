// Linked instead of core/cuda/optim_ops.cu when mpncov is built without CUDA.
#include "core/cuda_optim_backend.h"
#include "core/error.h"

namespace mpncov::cuda {

void sgd_update(int, float*, const float*, float*, int64_t, float, float, float, bool, bool) {
  throw Error("this build of mpncov has no CUDA backend; reconfigure with -DMPNCOV_CUDA=ON on a machine with the "
              "CUDA toolkit, or use --device cpu");
}

}  // namespace mpncov::cuda
