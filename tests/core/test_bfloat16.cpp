// The bfloat16 dtype: conversions from float32 and float64 round to nearest even (ties, denormals, overflow
// to infinity) and keep NaN; bfloat16 -> float32 is exact; ops that compute refuse bfloat16 by name.
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

float from_bits(uint32_t u) { return half::bits_to_float(u); }

// Casts float32 values (given by their bits) to bfloat16 through ops::cast and returns the bfloat16 bits.
std::vector<uint16_t> cast_bits(const std::vector<float>& values, DType via = DType::F32) {
  Tensor f = Tensor::empty({static_cast<int64_t>(values.size())}, DType::F32);
  std::memcpy(f.raw(), values.data(), values.size() * 4);
  Tensor src = via == DType::F32 ? f : f.to(via);
  Tensor bf = Tensor::empty(src.shape(), DType::BF16);
  ops::cast(src, bf);
  std::vector<uint16_t> out(values.size());
  std::memcpy(out.data(), bf.raw(), values.size() * 2);
  return out;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("bfloat16: float32 and float64 round to nearest even, NaN kept, overflow to infinity") {
  struct Case { uint32_t f32; uint16_t bf16; const char* what; };
  const std::vector<Case> cases = {
      {0x3f800000u, 0x3f80, "1 exact"},
      {0x3f807fffu, 0x3f80, "just below a tie rounds down"},
      {0x3f808000u, 0x3f80, "tie rounds to the even 1.0"},
      {0x3f808001u, 0x3f81, "just above a tie rounds up"},
      {0x3f818000u, 0x3f82, "tie rounds up to even"},
      {0xbf818000u, 0xbf82, "negative tie rounds to even"},
      {0x00000000u, 0x0000, "+0"},
      {0x80000000u, 0x8000, "-0 keeps its sign"},
      {0x00000001u, 0x0000, "smallest denormal rounds to 0"},
      {0x00008000u, 0x0000, "denormal tie to even 0"},
      {0x00018000u, 0x0002, "denormal tie to even 2"},
      {0x00010000u, 0x0001, "smallest bfloat16 denormal exact"},
      {0x80008001u, 0x8001, "negative denormal above a tie"},
      {0x007fffffu, 0x0080, "largest denormal rounds to the smallest normal"},
      {0x7f7f0000u, 0x7f7f, "largest bfloat16 exact"},
      {0x7f7f7fffu, 0x7f7f, "below the overflow tie"},
      {0x7f7f8000u, 0x7f80, "overflow tie rounds to even: infinity"},
      {0x7f7fffffu, 0x7f80, "float32 max overflows to infinity"},
      {0xff7fffffu, 0xff80, "-float32 max to -infinity"},
      {0x7f800000u, 0x7f80, "+infinity"},
      {0xff800000u, 0xff80, "-infinity"},
  };
  std::vector<float> values;
  for (const Case& c : cases) values.push_back(from_bits(c.f32));
  for (DType via : {DType::F32, DType::F64}) {
    const std::vector<uint16_t> got = cast_bits(values, via);
    for (size_t i = 0; i < cases.size(); ++i) {
      INFO(cases[i].what, " via ", dtype_name(via));
      CHECK(got[i] == cases[i].bf16);
      CHECK(got[i] == half::float_to_bf16(values[i]));
    }
  }
  // NaN stays NaN (quiet, sign kept), also a signalling NaN whose payload lies in the dropped bits.
  const std::vector<float> nans = {from_bits(0x7fc00000u), from_bits(0xffc00000u), from_bits(0x7f800001u)};
  for (DType via : {DType::F32, DType::F64}) {
    const std::vector<uint16_t> got = cast_bits(nans, via);
    for (size_t i = 0; i < nans.size(); ++i) {
      CHECK(std::isnan(half::bf16_to_float(got[i])));
      CHECK((got[i] & 0x8000) == (i == 1 ? 0x8000 : 0));
    }
  }
}

TEST_CASE("bfloat16: float64 rounds once (no double rounding through float32)") {
  // 1 + 2^-8 + 2^-30 is above the tie between 1 and 1 + 2^-7; through float32 it would become the tie and
  // round down to 1.
  Tensor d = Tensor::from_vector({1 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30),
                                  -(1 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30)), 1 + std::ldexp(1.0, -8),
                                  1e300, -1e300, 1e-300, -1e-300},
                                 {7}, DType::F64);
  const std::vector<double> bf = d.to(DType::BF16).to_vector();
  CHECK(bf[0] == 1 + std::ldexp(1.0, -7));
  CHECK(bf[1] == -(1 + std::ldexp(1.0, -7)));
  CHECK(bf[2] == 1.0);
  CHECK(std::isinf(bf[3]));
  CHECK(bf[3] > 0);
  CHECK(std::isinf(bf[4]));
  CHECK(bf[4] < 0);
  CHECK(bf[5] == 0.0);
  CHECK(bf[6] == 0.0);
  CHECK(std::signbit(bf[6]));
  // The same for float16: 1 + 2^-11 + 2^-40 rounds up to 1 + 2^-10.
  Tensor h = Tensor::from_vector({1 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)}, {1}, DType::F64);
  CHECK(h.to(DType::F16).to_vector()[0] == 1 + std::ldexp(1.0, -10));
}

TEST_CASE("bfloat16: every bfloat16 value converts to float32 exactly and back to itself") {
  const int64_t n = 1 << 16;
  Tensor bf = Tensor::empty({n}, DType::BF16);
  auto* bits = static_cast<uint16_t*>(bf.raw());
  for (int64_t i = 0; i < n; ++i) bits[i] = static_cast<uint16_t>(i);
  Tensor f = bf.to(DType::F32);
  Tensor back = f.to(DType::BF16);
  const auto* fb = f.data<float>();
  const auto* bb = static_cast<const uint16_t*>(back.raw());
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(i) << 16;
    const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    if (nan) {
      wrong += !std::isnan(fb[i]) || !std::isnan(half::bf16_to_float(bb[i]));
    } else {
      wrong += half::float_to_bits(fb[i]) != u || bb[i] != bits[i];
    }
  }
  CHECK(wrong == 0);
}

TEST_CASE("bfloat16: ops that compute refuse it, naming the dtype") {
  // The ops that take bfloat16 storage (relu, copy, add, ...) are tests/core/test_bf16_storage.cpp's.
  Tensor a = Tensor::zeros({2, 2}, DType::BF16);
  Tensor out = Tensor::zeros({2, 2}, DType::BF16);
  CHECK_THROWS_WITH_AS(ops::binary(ops::Binary::Mul, a, a, out), doctest::Contains("bfloat16"), Error);
  CHECK_THROWS_WITH_AS(ops::matmul(a, a, out), doctest::Contains("bfloat16"), Error);
  CHECK_THROWS_WITH_AS(ops::unary(ops::Unary::Exp, a, out), doctest::Contains("bfloat16"), Error);
  Tensor x = Tensor::zeros({1, 1, 3, 3}, DType::BF16), w = Tensor::zeros({1, 1, 1, 1}, DType::BF16);
  Tensor y = Tensor::zeros({1, 1, 3, 3}, DType::BF16);
  CHECK_THROWS_WITH_AS(ops::conv2d_forward(x, w, Tensor(), y, {}), doctest::Contains("bfloat16"), Error);
}

}  // TEST_SUITE
