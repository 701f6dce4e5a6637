#include "core/context.h"

#include <omp.h>

#include "core/blas_setup.h"
#include "core/cpu/nn_cpu.h"
#include "core/cuda_backend.h"
#include "core/error.h"

extern "C" void openblas_set_num_threads(int);

namespace mpncov {

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  MPNCOV_CHECK(n >= 1, "thread count must be at least 1, got ", n);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

namespace cuda {
void absent(Device device) {
  throw Error(str("device ", device.str(), " asked for, but this build of mpncov has no CUDA backend; reconfigure "
                  "with -DMPNCOV_CUDA=ON on a machine with the CUDA toolkit, or use --device cpu"));
}
}  // namespace cuda

bool cuda_built() { return cuda::kBuilt; }

int cuda_device_count() {
  if constexpr (cuda::kBuilt) return cuda::device_count();
  else return 0;
}

std::string cuda_device_name(int index) {
  if constexpr (cuda::kBuilt) return cuda::device_name(index);
  else cuda::absent(Device::cuda(index));
}

void require_device(Device device) {
  if (device.is_cpu()) return;
  if constexpr (!cuda::kBuilt) cuda::absent(device);
  const int count = cuda_device_count();
  MPNCOV_CHECK(count > 0, "device ", device.str(), " asked for, but no CUDA device is present");
  MPNCOV_CHECK(device.index < count, "device ", device.str(), " asked for, but only ", count,
               " CUDA device(s) are present");
}

void synchronize(Device device) {
  if (device.is_cpu()) return;
  if constexpr (cuda::kBuilt) cuda::synchronize(device.index);
  else cuda::absent(device);
}

std::string backends_summary() {
  std::string s = str("cpu (float32, float64; OpenBLAS ", blas_core_name(), " kernels, ", cpu::onednn_summary(),
                      " convolution, OpenMP ", num_threads(), " threads)");
  if (!cuda_built()) return s + "; cuda: not built";
  const int count = cuda_device_count();
  s += "; cuda: built (float32; cuBLAS, cuDNN), ";
  if (count == 0) return s + "no device present";
  s += str(count, " device(s)");
  for (int i = 0; i < count; ++i) s += str(i ? ", " : ": ", i, " = ", cuda_device_name(i));
  return s;
}

}  // namespace mpncov
