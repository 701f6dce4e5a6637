#include <algorithm>
#include <cmath>

#include "core/json.h"
#include "core/npy.h"
#include "core/safetensors.h"
#include "tests/core/io_test_util.h"

using namespace mpncov;
using namespace mpncov::test;
namespace fs = std::filesystem;

namespace {

// A file from a header text and a data section; the length field says header.size() unless told.
constexpr uint64_t kTrueLength = ~uint64_t{0};
std::string st_file(const std::string& header, const std::string& data = "", uint64_t length = kTrueLength) {
  return le_bytes<uint64_t>(length == kTrueLength ? header.size() : length) + header + data;
}

std::string entry(const std::string& dtype, const std::string& shape, uint64_t begin, uint64_t end) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(begin) + "," +
         std::to_string(end) + "]}";
}

// A tensor of the dtype with varied values (int64 spans the whole range).
Tensor sample(const Shape& shape, DType dtype, uint64_t seed) {
  if (dtype == DType::I64) {
    Tensor t = Tensor::empty(shape, DType::I64);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data<int64_t>()[i] = static_cast<int64_t>((static_cast<uint64_t>(i) + seed) * 0x9E3779B97F4A7C15ull);
    return t;
  }
  return random_tensor(shape, DType::F64, seed, -100, 100).to(dtype);
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("safetensors: round trip of every dtype and shape, with metadata, in the given order") {
  const fs::path dir = temp_dir("safetensors_round_trip");
  const std::string path = (dir / "w.safetensors").string();
  std::vector<std::pair<std::string, Tensor>> tensors;
  const std::vector<Shape> shapes = {Shape{}, Shape{0}, Shape{3, 0, 2}, Shape{7}, Shape{2, 3, 4, 5},
                                     Shape{1, 1, 1, 1, 1, 1, 1, 2}};
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64})
    for (size_t s = 0; s < shapes.size(); ++s)
      tensors.emplace_back(str("z", 9 - s, ".", dtype_name(dt)), sample(shapes[s], dt, seed++));
  tensors.emplace_back("a.big", sample({1000, 1000}, DType::F32, 99));  // 4 MB
  const std::map<std::string, std::string> metadata = {
      {"epoch", "12"},
      {"unicode", "\xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80"},
      {"escapes", "q\" b\\ nl\n tab\t ctl\x01 end"},
      {"", "empty key"},
      {"json", R"({"history": [1, 2.5]})"}};
  save_safetensors(path, tensors, metadata);

  const SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.names.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(tensors[i].first);
    CHECK(f.names[i] == tensors[i].first);
    CHECK(same_bits(f.tensors.at(tensors[i].first), tensors[i].second));
  }
  CHECK(f.metadata == metadata);

  // The header is padded with spaces so the data section starts 8-byte aligned.
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes[8] == '{');
  CHECK(parse_json(bytes.substr(8, n)).is_object());

  // The lazy reader reads one tensor without the others.
  SafetensorsReader reader(path);
  CHECK(reader.entries().size() == tensors.size());
  CHECK(reader.contains("a.big"));
  CHECK(reader.entry("a.big").file_dtype == "F32");
  CHECK(reader.entry("a.big").shape == Shape({1000, 1000}));
  CHECK(same_bits(reader.read(tensors[7].first), tensors[7].second));
  CHECK_THROWS_WITH_AS(reader.read("nope"), doctest::Contains("has no tensor named 'nope'"), Error);
  SafetensorsReader moved = std::move(reader);
  CHECK(moved.metadata().at("epoch") == "12");
}

TEST_CASE("safetensors: an empty file set and a file without metadata") {
  const fs::path dir = temp_dir("safetensors_empty");
  save_safetensors((dir / "none.safetensors").string(), {});
  const SafetensorsFile f = load_safetensors((dir / "none.safetensors").string());
  CHECK(f.names.empty());
  CHECK(f.metadata.empty());
  CHECK(read_bytes(dir / "none.safetensors").size() == 16);  // length + "{}" padded to 8
}

TEST_CASE("safetensors: save replaces the file atomically and checks its input first") {
  const fs::path dir = temp_dir("safetensors_atomic");
  const std::string path = (dir / "ckpt.safetensors").string();
  save_safetensors(path, {{"w", Tensor::full({3}, 1.0)}});
  save_safetensors(path, {{"w", Tensor::full({4}, 2.0)}}, {{"epoch", "2"}});
  const SafetensorsFile f = load_safetensors(path);
  CHECK(f.tensors.at("w").to_vector() == std::vector<double>{2, 2, 2, 2});
  CHECK(files_in(dir) == std::vector<std::string>{"ckpt.safetensors"});  // no temporary left

  const std::string before = read_bytes(path);
  const Tensor ok = Tensor::zeros({2});
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"a", ok}, {"b", Tensor()}}), doctest::Contains("'b' is undefined"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"a", ok}, {"a", ok}}), doctest::Contains("duplicate tensor name 'a'"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"", ok}}), doctest::Contains("empty tensor name"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"__metadata__", ok}}), doctest::Contains("reserved"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"bad\xff", ok}}), doctest::Contains("valid UTF-8"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"a", ok}}, {{"k", "\xc3"}}), doctest::Contains("valid UTF-8"), Error);
  CHECK(read_bytes(path) == before);
  CHECK(files_in(dir) == std::vector<std::string>{"ckpt.safetensors"});
  CHECK_THROWS_WITH_AS(save_safetensors((dir / "no" / "such" / "x.safetensors").string(), {{"a", ok}}),
                       doctest::Contains("cannot create"), Error);
}

TEST_CASE("safetensors: narrow integers, bool and float8 load widened - complex is refused by name") {
  const fs::path dir = temp_dir("safetensors_widen");
  std::string data, header = "{";
  auto add = [&](const std::string& name, const std::string& dtype, const std::string& shape, const std::string& bytes) {
    header += (header.size() > 1 ? "," : "") + ("\"" + name + "\":") + entry(dtype, shape, data.size(), data.size() + bytes.size());
    data += bytes;
  };
  add("i32", "I32", "[3]", le_bytes<int32_t>(-5) + le_bytes<int32_t>(INT32_MAX) + le_bytes<int32_t>(INT32_MIN));
  add("u32", "U32", "[1]", le_bytes<uint32_t>(UINT32_MAX));
  add("i16", "I16", "[2]", le_bytes<int16_t>(-300) + le_bytes<int16_t>(300));
  add("u16", "U16", "[1]", le_bytes<uint16_t>(65535));
  add("i8", "I8", "[2]", "\x80\x7f");
  add("u8", "U8", "[2]", "\xff\x01");
  add("bool", "BOOL", "[2,1]", std::string("\x01\x00", 2));
  add("u64", "U64", "[1]", le_bytes<uint64_t>(uint64_t{1} << 62));
  add("e4m3", "F8_E4M3", "[6]", "\x38\x7e\x01\xb8\x7f" + std::string(1, '\0'));
  add("e5m2", "F8_E5M2", "[3]", "\x3c\x7b\x7c");
  add("e8m0", "F8_E8M0", "[4]", std::string("\x7f\x00\x82\xff", 4));
  add("c64", "C64", "[1]", std::string(8, '\0'));
  add("bad_bool", "BOOL", "[1]", "\x02");
  add("bad_u64", "U64", "[1]", le_bytes<uint64_t>(~uint64_t{0}));
  header += "}";
  const std::string path = (dir / "widen.safetensors").string();
  write_bytes(path, st_file(header, data));

  SafetensorsReader r(path);
  auto ints = [&](const std::string& name) {
    Tensor t = r.read(name);
    CHECK(t.dtype() == DType::I64);
    return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
  };
  CHECK(ints("i32") == std::vector<int64_t>{-5, INT32_MAX, INT32_MIN});
  CHECK(ints("u32") == std::vector<int64_t>{UINT32_MAX});
  CHECK(ints("i16") == std::vector<int64_t>{-300, 300});
  CHECK(ints("u16") == std::vector<int64_t>{65535});
  CHECK(ints("i8") == std::vector<int64_t>{-128, 127});
  CHECK(ints("u8") == std::vector<int64_t>{255, 1});
  CHECK(ints("bool") == std::vector<int64_t>{1, 0});
  CHECK(r.read("bool").shape() == Shape({2, 1}));
  CHECK(ints("u64") == std::vector<int64_t>{int64_t{1} << 62});

  const Tensor e4 = r.read("e4m3");
  CHECK(e4.dtype() == DType::F16);
  const std::vector<double> v4 = e4.to_vector();
  CHECK(v4[0] == 1.0);
  CHECK(v4[1] == 448.0);
  CHECK(v4[2] == std::ldexp(1.0, -9));
  CHECK(v4[3] == -1.0);
  CHECK(std::isnan(v4[4]));
  CHECK(v4[5] == 0.0);
  const std::vector<double> v5 = r.read("e5m2").to_vector();
  CHECK(v5 == std::vector<double>{1.0, 57344.0, INFINITY});
  const Tensor e8 = r.read("e8m0");
  CHECK(e8.dtype() == DType::F32);
  const std::vector<double> v8 = e8.to_vector();
  CHECK(v8[0] == 1.0);
  CHECK(v8[1] == std::ldexp(1.0, -127));
  CHECK(v8[2] == 8.0);
  CHECK(std::isnan(v8[3]));

  CHECK_THROWS_WITH_AS(r.read("c64"), doctest::Contains("tensor 'c64' is C64 (complex)"), Error);
  CHECK_THROWS_WITH_AS(r.read("bad_bool"), doctest::Contains("'bad_bool': BOOL element 0 has byte value 2"), Error);
  CHECK_THROWS_WITH_AS(r.read("bad_u64"), doctest::Contains("'bad_u64': U64 element 0"), Error);
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains("C64"), Error);
}

TEST_CASE("safetensors: holes and trailing bytes are tolerated, overlaps are not") {
  const fs::path dir = temp_dir("safetensors_holes");
  const std::string data = le_bytes<float>(1) + le_bytes<float>(2) + le_bytes<float>(3) + le_bytes<float>(4);
  // a = bytes [0, 4), b = bytes [8, 12): a 4-byte hole between, 4 unused bytes at the end.
  write_bytes(dir / "holes", st_file("{\"a\":" + entry("F32", "[1]", 0, 4) + ",\"b\":" + entry("F32", "[1]", 8, 12) + "}", data));
  const SafetensorsFile f = load_safetensors((dir / "holes").string());
  CHECK(f.tensors.at("a").item() == 1.0);
  CHECK(f.tensors.at("b").item() == 3.0);
  // Empty tensors may sit anywhere, even inside another's range.
  write_bytes(dir / "empty", st_file("{\"a\":" + entry("F32", "[4]", 0, 16) + ",\"e\":" + entry("F32", "[0,3]", 8, 8) + "}", data));
  CHECK(load_safetensors((dir / "empty").string()).tensors.at("e").shape() == Shape({0, 3}));
}

TEST_CASE("safetensors: a file cut short at any byte is rejected") {
  const fs::path dir = temp_dir("safetensors_truncated");
  const std::string path = (dir / "full.safetensors").string();
  save_safetensors(path, {{"a", sample({3, 5}, DType::F32, 1)}, {"b", sample({4}, DType::F64, 2)}}, {{"k", "v"}});
  const std::string full = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, full.data(), 8);
  for (size_t cut = 0; cut < full.size(); ++cut) {
    CAPTURE(cut);
    write_bytes(dir / "cut", full.substr(0, cut));
    const char* expected = cut < 8 ? "too short for the 8-byte header length"
                           : cut < 8 + n ? "runs past the end of the file"
                                         : "is past the end of the data section";
    CHECK_THROWS_WITH_AS(load_safetensors((dir / "cut").string()), doctest::Contains(expected), Error);
  }
  CHECK(load_safetensors(path).names.size() == 2);
}

TEST_CASE("safetensors: corrupted copies: data edits load, cut data is refused, header edits load or throw Error") {
  const fs::path dir = temp_dir("safetensors_mutations");
  const std::string path = (dir / "ok.safetensors").string();
  save_safetensors(path, {{"a", sample({2, 3}, DType::F32, 1)}, {"b", sample({3}, DType::I64, 2)},
                          {"c", sample({}, DType::BF16, 3)}}, {{"k", "v"}});
  const std::string valid = read_bytes(path);
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, valid.data(), 8);
  static const char pool[] = "{}[]\":,0123456789-.e \x00\xff\"";
  const auto load = [](const std::string& p) {
    const SafetensorsFile f = load_safetensors(p);
    std::string summary;
    for (const std::string& name : f.names) summary += name + ": " + f.tensors.at(name).str() + "; ";
    for (const auto& [key, value] : f.metadata) summary += key + "=" + value + "; ";
    return summary;
  };
  const std::string expected = load(path);
  // Edits fall mostly on the length and the header, some on the data after it.
  const std::vector<Mutant> mutants = load_mutants(dir / "m.safetensors", valid, 8 + header_bytes,
                                                  8 + header_bytes + 40, {pool, sizeof pool - 1}, 12345, 600, load);
  const int rejected = check_mutants(mutants, expected, "file truncated?");
  CHECK(rejected > 400);  // a corrupt header is refused, not read as other tensors
}

TEST_CASE("safetensors: corrupt and hostile headers are rejected, each naming the file and the problem") {
  const fs::path dir = temp_dir("safetensors_corrupt");
  const std::string data(64, '\0');
  const std::string ok = entry("F32", "[2]", 0, 8);
  struct Case {
    std::string what, bytes, message;
  };
  std::vector<Case> cases = {
      {"empty file", "", "is 0 bytes, too short"},
      {"7 bytes", "\x01\x02\x03\x04\x05\x06\x07", "is 7 bytes, too short"},
      {"absurd header length", st_file("{}", data, uint64_t{1} << 40), "header length 1099511627776 is absurd"},
      {"header length near 2^64", st_file("{}", data, kTrueLength - 1), "is absurd"},
      {"header length past the end", st_file("{}", "", 200), "header length 200 runs past the end of the file (10 bytes"},
      {"header length 0", st_file(""), "unexpected end of input"},
      {"header length too short", st_file("{\"a\":" + ok + "}", data, 10), "not valid JSON"},
      {"bad JSON", st_file("{\"a\": {\"dtype\": \"F32\", ", data), "not valid JSON: JSON syntax error at byte"},
      {"trailing comma", st_file("{\"a\":" + ok + ",}", data), "expected string literal"},
      {"single quotes", st_file("{'a': 1}", data), "expected string literal"},
      {"binary garbage", st_file(std::string("\x89PNG\r\n\x1a\n", 8), data), "not valid JSON"},
      {"not an object", st_file("[1, 2]", data), "header is a JSON array, expected an object"},
      {"entry not an object", st_file("{\"a\": 5}", data), "tensor 'a': entry is a JSON number, expected an object"},
      {"missing dtype", st_file(R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", data), "tensor 'a': missing key 'dtype'"},
      {"missing shape", st_file(R"({"a": {"dtype": "F32", "data_offsets": [0, 8]}})", data), "tensor 'a': missing key 'shape'"},
      {"missing offsets", st_file(R"({"a": {"dtype": "F32", "shape": [2]}})", data), "missing key 'data_offsets'"},
      {"extra key", st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "stride": [1]}})", data),
       "tensor 'a': unexpected key \"stride\""},
      {"unknown dtype", st_file("{\"a\":" + entry("F33", "[2]", 0, 8) + "}", data), "tensor 'a': unknown or unsupported dtype \"F33\""},
      {"lower-case dtype", st_file("{\"a\":" + entry("f32", "[2]", 0, 8) + "}", data), "unknown or unsupported dtype \"f32\""},
      {"sub-byte dtype", st_file("{\"a\":" + entry("F4", "[2]", 0, 1) + "}", data), "unknown or unsupported dtype \"F4\""},
      {"dtype not a string", st_file(R"({"a": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}})", data),
       "dtype is a JSON number, expected a string"},
      {"negative shape", st_file("{\"a\":" + entry("F32", "[-2]", 0, 8) + "}", data), "shape [-2] must hold non-negative integers"},
      {"fractional shape", st_file("{\"a\":" + entry("F32", "[2.0]", 0, 8) + "}", data), "must hold non-negative integers"},
      {"string shape", st_file("{\"a\":" + entry("F32", "[\"2\"]", 0, 8) + "}", data), "must hold non-negative integers"},
      {"shape not an array", st_file("{\"a\":" + entry("F32", "2", 0, 8) + "}", data), "shape is a JSON number, expected an array"},
      {"shape beyond int64", st_file("{\"a\":" + entry("F32", "[18446744073709551616]", 0, 8) + "}", data), "must hold non-negative integers"},
      {"9 dimensions", st_file("{\"a\":" + entry("F32", "[1,1,1,1,1,1,1,1,2]", 0, 8) + "}", data), "has 9 dimensions, more than 8"},
      {"element count overflow", st_file("{\"a\":" + entry("F32", "[4294967296,4294967296,4]", 0, 0) + "}", data),
       "is absurd: its element count overflows"},
      {"byte count overflow", st_file("{\"a\":" + entry("F64", "[4611686018427387904]", 0, 0) + "}", data), "overflows"},
      {"absurd shape, small range", st_file("{\"a\":" + entry("F32", "[100000,100000]", 0, 8) + "}", data),
       "size mismatch: data_offsets span 8 bytes but shape (100000, 100000) of F32 needs 40000000000"},
      {"size mismatch", st_file("{\"a\":" + entry("F32", "[3]", 0, 8) + "}", data), "size mismatch"},
      {"one offset", st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8]}})", data), "must be two non-negative integers"},
      {"three offsets", st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 16]}})", data), "two non-negative integers"},
      {"string offset", st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, "8"]}})", data), "two non-negative integers"},
      {"negative offset", st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 8]}})", data),
       "two non-negative integers"},
      {"offsets not an array", st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": 8}})", data), "two non-negative integers"},
      {"begin > end", st_file("{\"a\":" + entry("F32", "[0]", 16, 8) + "}", data), "data_offsets begin 16 > end 8"},
      {"end past data", st_file("{\"a\":" + entry("F32", "[20]", 0, 80) + "}", data),
       "tensor 'a': data_offsets end 80 is past the end of the data section (64 bytes"},
      {"end near 2^63", st_file("{\"a\":" + entry("U8", "[9223372036854775807]", 0, 9223372036854775807ull) + "}", data), "past the end of the data"},
      {"overlap", st_file("{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" + entry("F32", "[2]", 4, 12) + "}", data),
       "tensors 'a' [0, 8) and 'b' [4, 12) overlap"},
      {"same range twice", st_file("{\"b\":" + entry("F32", "[2]", 8, 16) + ",\"a\":" + entry("I64", "[1]", 8, 16) + "}", data), "overlap"},
      {"range inside another", st_file("{\"a\":" + entry("F32", "[8]", 0, 32) + ",\"b\":" + entry("F32", "[1]", 12, 16) + "}", data), "overlap"},
      {"duplicate name", st_file("{\"a\":" + ok + ",\"a\":" + ok + "}", data), "duplicate key \"a\""},
      {"empty name", st_file("{\"\":" + ok + "}", data), "a tensor has an empty name"},
      {"metadata not an object", st_file(R"({"__metadata__": ["x"]})", data), "__metadata__ is a JSON array, expected an object"},
      {"metadata value not a string", st_file(R"({"__metadata__": {"epoch": 3}})", data),
       "__metadata__ value for key \"epoch\" is a JSON number, expected a string"},
      {"duplicate metadata", st_file(R"({"__metadata__": {}, "__metadata__": {}})", data), "duplicate key \"__metadata__\""},
      {"deep nesting", st_file("{\"__metadata__\": " + std::string(5000, '[') + std::string(5000, ']') + "}", data), "nesting deeper"},
      {"invalid UTF-8 name", st_file("{\"a\xff\":" + ok + "}", data), "ill-formed UTF-8"},
      {"NaN", st_file(R"({"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 8]}})", data), "invalid literal"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const fs::path p = dir / "bad.safetensors";
    write_bytes(p, c.bytes);
    const std::string named = "safetensors file '" + p.string() + "'";
    CHECK_THROWS_WITH_AS(load_safetensors(p.string()), doctest::Contains(c.message.c_str()), Error);
    CHECK_THROWS_WITH_AS(load_safetensors(p.string()), doctest::Contains(named.c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(load_safetensors((dir / "missing.safetensors").string()), doctest::Contains("cannot open"), Error);
  CHECK_THROWS_WITH_AS(load_safetensors(dir.string()), doctest::Contains("it is a folder"), Error);
}

}  // TEST_SUITE("unit")

TEST_SUITE("oracle") {

TEST_CASE("safetensors: a file written from PyTorch tensors loads exactly") {
  const fs::path dir = temp_dir("safetensors_oracle_read");
  run_oracle("write_io_samples.py", {dir.string()});
  const Json manifest = parse_json(read_bytes(dir / "manifest.json")).at("safetensors");
  const SafetensorsFile f = load_safetensors((dir / manifest.at("file").get<std::string>()).string());
  for (const auto& [key, value] : manifest.at("metadata").items()) CHECK(f.metadata.at(key) == value.get<std::string>());
  CHECK(f.metadata.size() == manifest.at("metadata").size());
  CHECK(f.tensors.size() == manifest.at("tensors").size());
  for (const auto& [name, want] : manifest.at("tensors").items()) {
    CAPTURE(name);
    REQUIRE(f.tensors.count(name) == 1);
    const Tensor& t = f.tensors.at(name);
    const std::string dt = want.at("dtype").get<std::string>();
    const DType expected = dt == "F32" ? DType::F32 : dt == "F64" ? DType::F64 : dt == "F16" ? DType::F16
                         : dt == "BF16" ? DType::BF16 : DType::I64;
    CHECK(t.dtype() == expected);
    check_against(name, t, want);
  }
}

TEST_CASE("safetensors: a file we write reads in Python (strict format checks) with the same values") {
  const fs::path dir = temp_dir("safetensors_oracle_write");
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"conv.weight", sample({4, 3, 3, 3}, DType::F32, 1)},
      {"bn.running_var", sample({4}, DType::F64, 2)},
      {"half", sample({2, 3}, DType::F16, 3)},
      {"brain", sample({5}, DType::BF16, 4)},
      {"step", sample({3}, DType::I64, 5)},
      {"scalar", sample({}, DType::F32, 6)},
      {"empty", sample({0, 2}, DType::F64, 7)},
      {"odd", sample({3}, DType::F16, 8)},  // 6 bytes: later tensors start unaligned, as the format allows
      {"after_odd", sample({2, 2}, DType::F32, 9)},
  };
  const std::map<std::string, std::string> metadata = {{"epoch", "3"}, {"note", "\xc3\xbc \"quoted\"\n"}};
  save_safetensors((dir / "cpp.safetensors").string(), tensors, metadata);
  Json listed = Json::object();
  for (const auto& [name, t] : tensors)
    listed[name] = {
        {"dtype", safetensors_dtype_name(t.dtype())}, {"shape", t.shape().dims()}, {"values", values_json(t)}};
  const Json manifest = {{"safetensors", {{"file", "cpp.safetensors"}, {"metadata", metadata}, {"tensors", listed}}}};
  write_bytes(dir / "cpp_manifest.json", manifest.dump(1));
  const std::string out = run_oracle("write_io_samples.py", {"--check", dir.string()});
  CHECK(out.find("checked 9 arrays") != std::string::npos);
}

}  // TEST_SUITE("oracle")

TEST_SUITE("gpu") {

TEST_CASE("safetensors and npy: tensors on a CUDA device are saved through the host" *
          doctest::skip(!gpu_present()) * doctest::description("needs a CUDA device")) {
  const fs::path dir = temp_dir("io_gpu");
  const Tensor host = sample({3, 5}, DType::F32, 11);
  const Tensor dev = host.to(Device::cuda(0));
  save_safetensors((dir / "g.safetensors").string(), {{"w", dev}, {"b", sample({4}, DType::F32, 12).to(Device::cuda(0))}});
  CHECK(same_bits(load_safetensors((dir / "g.safetensors").string()).tensors.at("w"), host));
  save_npy((dir / "g.npy").string(), dev);
  CHECK(same_bits(load_npy((dir / "g.npy").string()), host));
}

}  // TEST_SUITE("gpu")
