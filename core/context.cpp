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

bool cuda_built() { return cuda::built(); }
int cuda_device_count() { return cuda::device_count(); }
std::string cuda_device_name(int index) { return cuda::device_name(index); }

void require_device(Device device) {
  if (device.is_cpu()) return;
  MPNCOV_CHECK(cuda::built(), "device ", device.str(),
               " asked for, but this build of mpncov has no CUDA backend (configure with -DMPNCOV_CUDA=ON)");
  const int count = cuda::device_count();
  MPNCOV_CHECK(count > 0, "device ", device.str(), " asked for, but no CUDA device is present");
  MPNCOV_CHECK(device.index < count, "device ", device.str(), " asked for, but only ", count,
               " CUDA device(s) are present");
}

void synchronize(Device device) {
  if (device.is_cuda()) cuda::synchronize(device.index);
}

std::string backends_summary() {
  std::string s = str("cpu (float32, float64; OpenBLAS ", blas_core_name(), " kernels, ", cpu::onednn_summary(),
                      " convolution, OpenMP ", num_threads(), " threads)");
  if (!cuda::built()) return s + "; cuda: not built";
  const int count = cuda::device_count();
  s += "; cuda: built (float32; cuBLAS, cuDNN), ";
  if (count == 0) return s + "no device present";
  s += str(count, " device(s)");
  for (int i = 0; i < count; ++i) s += str(i ? ", " : ": ", i, " = ", cuda::device_name(i));
  return s;
}

}  // namespace mpncov
