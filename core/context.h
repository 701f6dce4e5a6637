// Per-process execution settings: CPU threads and the CUDA devices. Nothing here touches a GPU until a
// CUDA device is asked for, so a machine without one runs every CPU path with no error.
#pragma once
#include <string>

#include "core/device.h"

namespace mpncov {

int num_threads();
void set_num_threads(int n);  // OpenMP loops and OpenBLAS together

bool cuda_built();        // this binary has the CUDA backend
int cuda_device_count();  // 0 when none is present or the backend is absent
std::string cuda_device_name(int index);
// Throws a clear error if device is CUDA and not usable.
void require_device(Device device);
// Waits for the device's queued work.
void synchronize(Device device);
// One line naming the backends of this build ("cpu (float32, float64, OpenBLAS, 2 threads); cuda ...").
std::string backends_summary();

}  // namespace mpncov
