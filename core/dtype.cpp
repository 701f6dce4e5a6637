#include "core/dtype.h"

#include "core/error.h"

namespace mpncov {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I64: return 8;
  }
  MPNCOV_FAIL("unknown dtype ", static_cast<int>(t));
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::I64: return "int64";
  }
  MPNCOV_FAIL("unknown dtype ", static_cast<int>(t));
}

DType dtype_from_name(const std::string& n) {
  if (n == "float32" || n == "f32" || n == "float") return DType::F32;
  if (n == "float64" || n == "f64" || n == "double") return DType::F64;
  if (n == "float16" || n == "f16" || n == "half") return DType::F16;
  if (n == "bfloat16" || n == "bf16") return DType::BF16;
  if (n == "int64" || n == "i64") return DType::I64;
  MPNCOV_FAIL("unknown dtype '", n, "' (expected float32, float64, float16, bfloat16 or int64)");
}

}  // namespace mpncov
