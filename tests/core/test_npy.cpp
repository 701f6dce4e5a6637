#include "core/json.h"
#include "core/npy.h"
#include "tests/core/io_test_util.h"

using namespace mpncov;
using namespace mpncov::test;
namespace fs = std::filesystem;

namespace {

// A .npy file from a header dict and data, with the length field of the version.
std::string npy_file(const std::string& dict, const std::string& data = "", int major = 1) {
  std::string s = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  s += major == 1 ? le_bytes<uint16_t>(static_cast<uint16_t>(dict.size())) : le_bytes<uint32_t>(static_cast<uint32_t>(dict.size()));
  return s + dict + data;
}

std::string dict(const std::string& descr, const std::string& shape, const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}

Tensor sample(const Shape& shape, DType dtype, uint64_t seed) {
  if (dtype == DType::I64) {
    Tensor t = Tensor::empty(shape, DType::I64);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data<int64_t>()[i] = static_cast<int64_t>((static_cast<uint64_t>(i) + seed) * 0x9E3779B97F4A7C15ull);
    return t;
  }
  return random_tensor(shape, DType::F64, seed, -100, 100).to(dtype);
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("npy: round trip of every dtype and shape - the header is version 1.0, 64-byte aligned") {
  const fs::path dir = temp_dir("npy_round_trip");
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64, DType::F16, DType::I64}) {
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{0}, Shape{2, 0, 3}, Shape{3, 4, 5}, Shape{1, 1, 1, 1, 1, 1, 1, 2}}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape.str());
      const std::string path = (dir / "a.npy").string();
      const Tensor t = sample(shape, dt, seed++);
      save_npy(path, t);
      CHECK(same_bits(load_npy(path), t));
      const std::string bytes = read_bytes(path);
      REQUIRE(bytes.size() >= 10);
      CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
      const size_t data_start = 10 + static_cast<unsigned char>(bytes[8]) + 256 * static_cast<unsigned char>(bytes[9]);
      CHECK(data_start % 64 == 0);
      CHECK(bytes[data_start - 1] == '\n');
      CHECK(bytes.size() == data_start + t.nbytes());
    }
  }
  const Tensor big = sample({500, 513}, DType::F64, 77);
  save_npy((dir / "big.npy").string(), big);
  CHECK(same_bits(load_npy((dir / "big.npy").string()), big));
  CHECK(read_bytes(dir / "big.npy").find("'shape': (500, 513), }") != std::string::npos);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  CHECK(names.size() == 2);  // no temporaries left
}

TEST_CASE("npy: bfloat16 is refused before any file is made") {
  const fs::path dir = temp_dir("npy_bf16");
  CHECK_THROWS_WITH_AS(save_npy((dir / "x.npy").string(), Tensor::zeros({2}, DType::BF16)),
                       doctest::Contains("bfloat16 has no NumPy type"), Error);
  CHECK(fs::is_empty(dir));
  CHECK_THROWS_WITH_AS(save_npy((dir / "x.npy").string(), Tensor()), doctest::Contains("undefined tensor"), Error);
}

TEST_CASE("npy: NpyWriter streams pieces and commits only a complete array") {
  const fs::path dir = temp_dir("npy_writer");
  const Tensor all = sample({10, 3}, DType::F32, 5);
  {
    NpyWriter w((dir / "rows.npy").string(), all.shape(), DType::F32);
    w.write(all.slice(0, 4));
    w.write(all.slice(4, 10).reshape({-1}));  // any shape: only the element order counts
    w.commit();
    CHECK_THROWS_WITH_AS(w.write(all), doctest::Contains("write after commit"), Error);
  }
  CHECK(same_bits(load_npy((dir / "rows.npy").string()), all));
  {
    NpyWriter w((dir / "short.npy").string(), all.shape(), DType::F32);
    w.write(all.slice(0, 4));
    CHECK_THROWS_WITH_AS(w.commit(), doctest::Contains("12 of 30 elements written"), Error);
    CHECK_THROWS_WITH_AS(w.write(all), doctest::Contains("more than the shape's 30"), Error);
    CHECK_THROWS_WITH_AS(w.write(all.to(DType::F64)), doctest::Contains("piece is float64"), Error);
  }
  CHECK_FALSE(fs::exists(dir / "short.npy"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"rows.npy"});
}

TEST_CASE("npy: narrow integer and bool types load widened to int64 - versions 2.0 and 3.0 read") {
  const fs::path dir = temp_dir("npy_widen");
  struct Case {
    std::string descr, bytes;
    std::vector<int64_t> values;
  };
  const std::vector<Case> cases = {
      {"<i4", le_bytes<int32_t>(INT32_MIN) + le_bytes<int32_t>(-1) + le_bytes<int32_t>(7), {INT32_MIN, -1, 7}},
      {"<u4", le_bytes<uint32_t>(UINT32_MAX) + le_bytes<uint32_t>(0) + le_bytes<uint32_t>(9), {UINT32_MAX, 0, 9}},
      {"<i2", le_bytes<int16_t>(-32768) + le_bytes<int16_t>(5) + le_bytes<int16_t>(32767), {-32768, 5, 32767}},
      {"<u2", le_bytes<uint16_t>(65535) + le_bytes<uint16_t>(1) + le_bytes<uint16_t>(2), {65535, 1, 2}},
      {"|i1", "\x80\x7f\x01", {-128, 127, 1}},
      {"|u1", std::string("\xff\x00\x01", 3), {255, 0, 1}},
      {"|b1", std::string("\x01\x00\x01", 3), {1, 0, 1}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.descr);
    write_bytes(dir / "w.npy", npy_file(dict(c.descr, "(3,)"), c.bytes));
    const Tensor t = load_npy((dir / "w.npy").string());
    CHECK(t.dtype() == DType::I64);
    CHECK(std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + 3) == c.values);
  }
  write_bytes(dir / "b.npy", npy_file(dict("|b1", "(1,)"), "\x02"));
  CHECK_THROWS_WITH_AS(load_npy((dir / "b.npy").string()), doctest::Contains("bool element 0 has byte value 2"), Error);

  const std::string f = le_bytes<float>(1.5f) + le_bytes<float>(-2.0f);
  for (int major : {2, 3}) {
    write_bytes(dir / "v.npy", npy_file(dict("<f4", "(2,)"), f, major));
    CHECK(load_npy((dir / "v.npy").string()).to_vector() == std::vector<double>{1.5, -2.0});
  }
  // Equivalent spellings NumPy accepts: double quotes, no trailing comma, Python 2 longs, 1-d Fortran order.
  write_bytes(dir / "s.npy", npy_file("{\"descr\": \"<f4\", \"shape\": (2L,), \"fortran_order\": True}", f));
  CHECK(load_npy((dir / "s.npy").string()).to_vector() == std::vector<double>{1.5, -2.0});
}

TEST_CASE("npy: a file cut short at any byte is rejected") {
  const fs::path dir = temp_dir("npy_truncated");
  save_npy((dir / "full.npy").string(), sample({4, 5}, DType::F64, 3));
  const std::string full = read_bytes(dir / "full.npy");
  const size_t data_start = 10 + static_cast<unsigned char>(full[8]) + 256 * static_cast<unsigned char>(full[9]);
  for (size_t cut = 0; cut < full.size(); ++cut) {
    CAPTURE(cut);
    write_bytes(dir / "cut.npy", full.substr(0, cut));
    const char* expected = cut < 10 ? "too short for a .npy header"
                           : cut < data_start ? "runs past the end of the file"
                                       : "(file truncated?)";
    CHECK_THROWS_WITH_AS(load_npy((dir / "cut.npy").string()), doctest::Contains(expected), Error);
  }
  CHECK(load_npy((dir / "full.npy").string()).numel() == 20);
}

TEST_CASE("npy: corrupted copies: data edits load, cut data is refused, header edits load or throw Error") {
  const fs::path dir = temp_dir("npy_mutations");
  save_npy((dir / "ok.npy").string(), sample({3, 2}, DType::F32, 1));
  const std::string valid = read_bytes(dir / "ok.npy");
  uint16_t dict_bytes = 0;
  std::memcpy(&dict_bytes, valid.data() + 8, 2);
  static const char pool[] = "{}()',:0123456789-TrueFalse<>|if \x00\xff";
  const auto load = [](const std::string& p) { return load_npy(p).str(); };
  const std::string expected = load((dir / "ok.npy").string());
  const std::vector<Mutant> mutants =
      load_mutants(dir / "m.npy", valid, 10 + dict_bytes, 80, {pool, sizeof pool - 1}, 6789, 600, load);
  const int rejected = check_mutants(mutants, expected, "(file truncated?)");
  CHECK(rejected > 400);  // a corrupt header is refused, not read as some other array
}

TEST_CASE("npy: corrupt and hostile files are rejected, each naming the file and the problem") {
  const fs::path dir = temp_dir("npy_corrupt");
  const std::string data8(8, '\0');
  struct Case {
    std::string what, bytes, message;
  };
  std::string v2_absurd = std::string("\x93NUMPY\x02\x00", 8) + le_bytes<uint32_t>(0xffffffffu) + "{}";
  std::vector<Case> cases = {
      {"empty", "", "is 0 bytes, too short"},
      {"bad magic", std::string("\x93NUMPX\x01\x00\x02\x00{}", 12), "bad magic"},
      {"text file", "hello world, this is text", "bad magic"},
      {"version 4.0", npy_file(dict("<f4", "(2,)"), data8, 4), "unsupported format version 4.0"},
      {"version 1.1", std::string("\x93NUMPY\x01\x01\x02\x00{}", 12), "unsupported format version 1.1"},
      {"v2 too short", std::string("\x93NUMPY\x02\x00\x01\x00", 10) + "x", "too short for a version 2.0 header"},
      {"absurd header length", v2_absurd, "header length 4294967295 is absurd"},
      {"header length past the end", std::string("\x93NUMPY\x01\x00\xff\x00{}", 12), "header length 255 runs past the end"},
      {"unclosed dict", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", data8), "expected a quoted string"},
      {"missing brace", npy_file("'descr': '<f4'", data8), "header dict syntax error at character 0: expected '{'"},
      {"text after dict", npy_file(dict("<f4", "(2,)") + "x", data8), "unexpected text after the dict"},
      {"missing shape", npy_file("{'descr': '<f4', 'fortran_order': False}", data8), "header has no 'shape'"},
      {"missing descr", npy_file("{'fortran_order': False, 'shape': (2,)}", data8), "header has no 'descr'"},
      {"extra key", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'foo': True}", data8), "unexpected key 'foo'"},
      {"duplicate key", npy_file("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", data8), "duplicate key 'descr'"},
      {"descr not a string", npy_file("{'descr': (4,), 'fortran_order': False, 'shape': (2,)}", data8), "descr must be a string"},
      {"fortran_order a string", npy_file(dict("<f4", "(2,)", "'no'"), data8), "fortran_order must be True or False"},
      {"fortran_order a number", npy_file(dict("<f4", "(2,)", "0"), data8), "expected a string, True, False or a tuple"},
      {"shape a string", npy_file(dict("<f4", "'2'"), data8), "shape must be a tuple"},
      {"shape (n) without comma", npy_file(dict("<f4", "(2)"), data8), "a 1-d shape is written (n,)"},
      {"negative shape", npy_file(dict("<f4", "(-2,)"), data8), "negative dimension"},
      {"fractional shape", npy_file(dict("<f4", "(1.5,)"), data8), "expected ',' or ')'"},
      {"shape a list", npy_file(dict("<f4", "[2]"), data8), "structured"},
      {"huge dimension", npy_file(dict("<f4", "(99999999999999999999,)"), data8), "shape dimension too large"},
      {"element count overflow", npy_file(dict("<f4", "(4294967296, 4294967296, 4)"), data8), "element count overflows"},
      {"byte count overflow", npy_file(dict("<f8", "(4611686018427387904,)"), data8), "element count overflows"},
      {"9 dimensions", npy_file(dict("<f4", "(1, 1, 1, 1, 1, 1, 1, 1, 2)"), data8), "has 9 dimensions, more than 8"},
      {"big-endian", npy_file(dict(">f4", "(2,)"), data8), "big-endian dtype '>f4' is not supported"},
      {"object array", npy_file(dict("|O", "(1,)"), data8), "object arrays"},
      {"complex", npy_file(dict("<c8", "(1,)"), data8), "unsupported dtype '<c8'"},
      {"structured", npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", data8),
       "structured (record) dtypes are not supported"},
      {"escape in string", npy_file("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", data8), "unsupported character"},
      {"unterminated string", npy_file("{'descr': '<f4", data8), "unterminated string"},
      {"fortran order", npy_file(dict("<f8", "(2, 3)", "True"), std::string(48, '\0')), "Fortran-order arrays are not supported"},
      {"data too short", npy_file(dict("<f4", "(3,)"), data8), "data holds 8 bytes but shape (3,) of <f4 needs 12"},
      {"absurd shape", npy_file(dict("<f4", "(100000, 100000)"), data8), "needs 40000000000"},
      {"trailing bytes", npy_file(dict("<f4", "(1,)"), data8), "4 unexpected bytes after the array data"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const fs::path p = dir / "bad.npy";
    write_bytes(p, c.bytes);
    const std::string named = "npy file '" + p.string() + "'";
    CHECK_THROWS_WITH_AS(load_npy(p.string()), doctest::Contains(c.message.c_str()), Error);
    CHECK_THROWS_WITH_AS(load_npy(p.string()), doctest::Contains(named.c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(load_npy((dir / "missing.npy").string()), doctest::Contains("cannot open"), Error);
}

}  // TEST_SUITE("unit")

TEST_SUITE("oracle") {

TEST_CASE("npy: files written by numpy.save load exactly - the ones we do not support are refused clearly") {
  const fs::path dir = temp_dir("npy_oracle_read");
  run_oracle("write_io_samples.py", {dir.string()});
  const Json manifest = parse_json(read_bytes(dir / "manifest.json")).at("npy");
  CHECK(manifest.size() >= 11);
  for (const auto& [name, want] : manifest.items()) {
    CAPTURE(name);
    const Tensor t = load_npy((dir / name).string());
    const DType expected = name.rfind("f4", 0) == 0 ? DType::F32 : name.rfind("f8", 0) == 0 ? DType::F64
                         : name.rfind("f2", 0) == 0 ? DType::F16 : DType::I64;
    CHECK(t.dtype() == expected);
    check_against(name, t, want);
  }
  CHECK_THROWS_WITH_AS(load_npy((dir / "fortran.npy").string()), doctest::Contains("Fortran-order"), Error);
  CHECK_THROWS_WITH_AS(load_npy((dir / "bigendian.npy").string()), doctest::Contains("big-endian"), Error);
  CHECK_THROWS_WITH_AS(load_npy((dir / "object.npy").string()), doctest::Contains("object arrays"), Error);
}

TEST_CASE("npy: files we write load in numpy with the same dtype, shape and values") {
  const fs::path dir = temp_dir("npy_oracle_write");
  const std::vector<std::pair<std::string, Tensor>> arrays = {
      {"f4.npy", sample({3, 4}, DType::F32, 1)},  {"f8.npy", sample({2, 3, 2}, DType::F64, 2)},
      {"i8.npy", sample({5}, DType::I64, 3)},     {"f2.npy", sample({4}, DType::F16, 4)},
      {"scalar.npy", sample({}, DType::F64, 5)},  {"empty.npy", sample({0, 7}, DType::F32, 6)},
      {"eight_d.npy", sample({1, 2, 1, 2, 1, 2, 1, 2}, DType::F32, 7)},
  };
  Json listed = Json::object();
  for (const auto& [name, t] : arrays) {
    save_npy((dir / name).string(), t);
    const char* descr = t.dtype() == DType::F32   ? "<f4"
                        : t.dtype() == DType::F64 ? "<f8"
                        : t.dtype() == DType::F16 ? "<f2"
                                                  : "<i8";
    listed[name] = {{"descr", descr}, {"shape", t.shape().dims()}, {"values", values_json(t)}};
  }
  const Json manifest = {{"npy", listed}};
  write_bytes(dir / "cpp_manifest.json", manifest.dump());
  const std::string out = run_oracle("write_io_samples.py", {"--check", dir.string()});
  CHECK(out.find("checked 7 arrays") != std::string::npos);
}

}  // TEST_SUITE("oracle")
