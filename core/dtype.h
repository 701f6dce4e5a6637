// Element types. Float32 and float64 compute on CPU, float32 on CUDA; int64 holds labels and indices;
// float16/bfloat16 are storage types (safetensors I/O) with room to compute later.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mpncov {

enum class DType : uint8_t { F32, F64, F16, BF16, I64 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);   // "float32", ...
DType dtype_from_name(const std::string& name);  // accepts "float32"/"f32"/"float", ...

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };

}  // namespace mpncov
