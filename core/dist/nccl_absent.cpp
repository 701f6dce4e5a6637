// Stands in for core/dist/nccl.cpp in builds without CUDA or NCCL: CUDA tensors then go through MPI by
// way of host copies.
#include "core/dist/backends.h"

namespace mpncov::dist::detail {

bool nccl_built() { return false; }
std::string nccl_version() { return ""; }
std::unique_ptr<DeviceCollectives> make_nccl(int, int, int, const std::function<void(void*, size_t)>&) {
  throw Error("this build of mpncov has no NCCL");
}

}  // namespace mpncov::dist::detail
