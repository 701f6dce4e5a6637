// Helpers shared by the file-format tests: raw bytes in and out of files, exact tensor comparison, and
// the expected values that the oracle script and the C++ tests exchange as JSON.
#pragma once
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

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

// One randomly corrupted copy of a valid file, and what loading it did.
struct Mutant {
  bool header_intact = false;  // the header's bytes are all there, unchanged: only data differs, or is cut
  bool cut = false;            // shorter than the valid file
  bool loaded = false;
  std::string summary;  // what `load` said of the file when it loaded
  std::string error;    // the mpncov::Error otherwise
};

// Writes `trials` corrupted copies of `valid` (whose first header_bytes bytes are its header) to `path` and
// loads each with `load`, which returns a summary of what it read (names, dtypes, shapes). A copy has 0 to 4
// bytes in its first `span` bytes replaced, by a random byte or one from `pool` (the format's own
// characters), and one in four is also cut short. Loading must succeed or throw mpncov::Error; anything
// else (another exception, a crash) fails the test. The caller asserts what each kind of copy must do.
inline std::vector<Mutant> load_mutants(const std::filesystem::path& path, const std::string& valid,
                                        size_t header_bytes, size_t span, std::string_view pool, uint64_t seed,
                                        int trials, const std::function<std::string(const std::string&)>& load) {
  uint64_t state = seed;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull, state >> 33; };
  std::vector<Mutant> out;
  for (int trial = 0; trial < trials; ++trial) {
    std::string bytes = valid;
    const int edits = static_cast<int>(next() % 5);
    for (int e = 0; e < edits; ++e) {
      const size_t at = next() % std::min(bytes.size(), span);
      bytes[at] = (next() % 2) ? static_cast<char>(next()) : pool[next() % pool.size()];
    }
    if (next() % 4 == 0) bytes.resize(next() % bytes.size());
    Mutant m;
    m.cut = bytes.size() < valid.size();
    m.header_intact = bytes.size() >= header_bytes && bytes.compare(0, header_bytes, valid, 0, header_bytes) == 0;
    write_bytes(path, bytes);
    try {
      m.summary = load(path.string());
      m.loaded = true;
    } catch (const Error& e) {
      m.error = e.what();
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Asserts what each kind of mutant must do: with only data bytes changed (or none) it loads as `expected`;
// with its data cut short it is refused with a message holding `cut_message`. Returns how many were refused.
inline int check_mutants(const std::vector<Mutant>& mutants, const std::string& expected,
                         const std::string& cut_message) {
  int data_edits = 0, data_cuts = 0, rejected = 0;
  for (const Mutant& m : mutants) {
    rejected += !m.loaded;
    if (!m.header_intact) continue;
    CAPTURE(m.error);
    if (m.cut) {
      ++data_cuts;
      CHECK(m.error.find(cut_message) != std::string::npos);
    } else {
      ++data_edits;
      CHECK(m.summary == expected);
    }
  }
  CHECK(data_edits > 0);  // both kinds occurred
  CHECK(data_cuts > 0);
  return rejected;
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
