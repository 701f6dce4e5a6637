// Helpers shared by the file-format tests: raw bytes in and out of files, exact tensor comparison, and
// the expected values that the oracle script and the C++ tests exchange as JSON.
#pragma once
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/json.h"
#include "core/tensor.h"
#include "tests/helpers.h"

namespace mpncov::test {

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", p.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// Little-endian bytes of a value.
template <typename T>
std::string le_bytes(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

// Same dtype, shape and bytes (NaNs included).
inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ha = a.to(Device::cpu()), hb = b.to(Device::cpu());
  return a.nbytes() == 0 || std::memcmp(ha.raw(), hb.raw(), a.nbytes()) == 0;
}

// The flat values of t as JSON: exact integers for int64, exact doubles otherwise.
inline Json values_json(const Tensor& t) {
  Json out = Json::array();
  if (t.dtype() == DType::I64) {
    for (int64_t i = 0; i < t.numel(); ++i) out.push_back(t.data<int64_t>()[i]);
  } else {
    const Tensor d = t.to(DType::F64);
    for (int64_t i = 0; i < t.numel(); ++i) out.push_back(d.data<double>()[i]);
  }
  return out;
}

// Checks t against {"shape": [...], "values": [...]} exactly.
inline void check_against(const std::string& what, const Tensor& t, const Json& want) {
  CAPTURE(what);
  CHECK(want.at("shape").get<std::vector<int64_t>>() == t.shape().dims());
  const Json& values = want.at("values");
  REQUIRE(static_cast<int64_t>(values.size()) == t.numel());
  if (t.dtype() == DType::I64) {
    for (size_t i = 0; i < values.size(); ++i) CHECK(t.data<int64_t>()[i] == values[i].get<int64_t>());
  } else {
    const Tensor d = t.to(DType::F64);
    size_t bad = 0;
    for (size_t i = 0; i < values.size(); ++i) bad += d.data<double>()[i] != values[i].get<double>();
    CHECK(bad == 0);
  }
}

}  // namespace mpncov::test
