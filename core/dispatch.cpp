#include "core/dispatch.h"

#include <string>
#include <vector>

namespace mpncov::ops {
namespace {

bool admits(DTypeSet types, DType t) {
  switch (t) {
    case DType::F32: return (types & kFloat32) != 0;
    case DType::F64: return (types & kFloat64) != 0;
    case DType::BF16: return (types & kBfloat16) != 0;
    default: return false;
  }
}

// "float32 or float64", "float32, float64 or bfloat16", ...
std::string names(DTypeSet types) {
  std::vector<const char*> n;
  if (types & kFloat32) n.push_back("float32");
  if (types & kFloat64) n.push_back("float64");
  if (types & kBfloat16) n.push_back("bfloat16");
  std::string s;
  for (size_t i = 0; i < n.size(); ++i) s += std::string(i == 0 ? "" : i + 1 == n.size() ? " or " : ", ") + n[i];
  return s;
}

}  // namespace

void check_float(const char* op, const Tensor& t, DTypeSet types) {
  MPNCOV_CHECK(t.defined(), op, ": undefined tensor");
  MPNCOV_CHECK(admits(types, t.dtype()), op, ": needs ", names(types), ", got ", t.str());
  MPNCOV_CHECK(t.device().is_cpu() || t.dtype() != DType::BF16, op,
               ": bfloat16 storage is for CPU tensors (the CUDA backend computes float32 only), got ", t.str());
  MPNCOV_CHECK(t.device().is_cpu() || t.dtype() == DType::F32, op, ": the CUDA backend computes float32 only, got ",
               t.str());
}

void check_same(const char* op, std::initializer_list<const Tensor*> tensors, DTypeSet types) {
  const Tensor& first = **tensors.begin();
  check_float(op, first, types);
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    MPNCOV_CHECK(t->device() == first.device(), op, ": tensors on different devices (", first.str(), ", ", t->str(),
                 ")");
    MPNCOV_CHECK(t->dtype() == first.dtype(), op, ": tensors of different dtypes (", first.str(), ", ", t->str(),
                 ")");
  }
}

}  // namespace mpncov::ops
