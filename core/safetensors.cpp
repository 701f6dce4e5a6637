#include "core/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/file_reader.h"
#include "core/half.h"
#include "core/json.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace mpncov {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // as the reference implementation: larger is hostile

// How the bytes of each header dtype become a tensor.
enum class Kind { Native, Bool, U8, I8, I16, U16, I32, U32, U64, E4M3, E5M2, E8M0, Complex };

struct FileDType {
  const char* name;
  size_t size;
  DType dtype;  // what reading gives
  Kind kind;
};

constexpr FileDType kDTypes[] = {
    {"F32", 4, DType::F32, Kind::Native},      {"F64", 8, DType::F64, Kind::Native},
    {"F16", 2, DType::F16, Kind::Native},      {"BF16", 2, DType::BF16, Kind::Native},
    {"I64", 8, DType::I64, Kind::Native},      {"BOOL", 1, DType::I64, Kind::Bool},
    {"U8", 1, DType::I64, Kind::U8},           {"I8", 1, DType::I64, Kind::I8},
    {"I16", 2, DType::I64, Kind::I16},         {"U16", 2, DType::I64, Kind::U16},
    {"I32", 4, DType::I64, Kind::I32},         {"U32", 4, DType::I64, Kind::U32},
    {"U64", 8, DType::I64, Kind::U64},         {"F8_E4M3", 1, DType::F16, Kind::E4M3},
    {"F8_E5M2", 1, DType::F16, Kind::E5M2},    {"F8_E8M0", 1, DType::F32, Kind::E8M0},
    {"C64", 8, DType::F32, Kind::Complex},
};

const FileDType* find_dtype(const std::string& name) {
  for (const FileDType& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::string known_dtypes() {
  std::string s;
  for (const FileDType& d : kDTypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(str("safetensors file '", path, "': ", what));
}

template <typename T>
T load_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // the host is little-endian (asserted above)
  return v;
}

// float8 e4m3 "fn" (bias 7, no infinities, S.1111.111 is NaN, max 448): every value is exact in float16.
float e4m3_to_float(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int exp = (b >> 3) & 0xf, mant = b & 0x7;
  if (exp == 0xf && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);  // subnormal: m/8 * 2^-6
  return sign * std::ldexp(static_cast<float>(8 + mant), exp - 10);       // (1 + m/8) * 2^(e-7)
}

// Converts the n elements of a non-native file dtype into dst (int64, float16 or float32).
void convert(const std::string& path, const SafetensorsEntry& e, Kind kind, const unsigned char* src,
             size_t n, Tensor& dst) {
  if (kind == Kind::E4M3 || kind == Kind::E5M2) {
    auto* out = static_cast<uint16_t*>(dst.raw());
    for (size_t i = 0; i < n; ++i)  // e5m2 is the top byte of a float16
      out[i] = kind == Kind::E5M2 ? static_cast<uint16_t>(src[i] << 8) : half::float_to_f16(e4m3_to_float(src[i]));
    return;
  }
  if (kind == Kind::E8M0) {
    float* out = dst.data<float>();
    for (size_t i = 0; i < n; ++i)  // a power of two 2^(e-127); 0xff is NaN
      out[i] = src[i] == 0xff ? std::numeric_limits<float>::quiet_NaN() : std::ldexp(1.0f, src[i] - 127);
    return;
  }
  int64_t* out = dst.data<int64_t>();
  for (size_t i = 0; i < n; ++i) {
    switch (kind) {
      case Kind::Bool:
        if (src[i] > 1)
          bad(path, str("tensor '", e.name, "': BOOL element ", i, " has byte value ", int{src[i]},
                        " (must be 0 or 1)"));
        out[i] = src[i];
        break;
      case Kind::U8: out[i] = src[i]; break;
      case Kind::I8: out[i] = static_cast<int8_t>(src[i]); break;
      case Kind::I16: out[i] = load_le<int16_t>(src + 2 * i); break;
      case Kind::U16: out[i] = load_le<uint16_t>(src + 2 * i); break;
      case Kind::I32: out[i] = load_le<int32_t>(src + 4 * i); break;
      case Kind::U32: out[i] = load_le<uint32_t>(src + 4 * i); break;
      case Kind::U64: {
        const auto v = load_le<uint64_t>(src + 8 * i);
        if (v > static_cast<uint64_t>(INT64_MAX))
          bad(path, str("tensor '", e.name, "': U64 element ", i, " = ", v, " does not fit int64"));
        out[i] = static_cast<int64_t>(v);
        break;
      }
      default: MPNCOV_FAIL("safetensors: unexpected conversion kind");
    }
  }
}

// An integer in [0, 2^63): JSON text without fraction or exponent, as every size and offset is.
bool non_negative_int64(const Json& v) {
  return v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
}

// Validates one header entry (everything but overlaps, which need all entries).
SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const Json& v, uint64_t data_size) {
  const std::string where = "tensor '" + name + "': ";
  if (name.empty()) bad(path, "a tensor has an empty name");
  if (!v.is_object()) bad(path, str(where, "entry is a JSON ", v.type_name(), ", expected an object"));
  for (const auto& kv : v.items()) {
    if (kv.key() != "dtype" && kv.key() != "shape" && kv.key() != "data_offsets")
      bad(path, str(where, "unexpected key ", Json(kv.key()).dump(), " (expected dtype, shape, data_offsets)"));
  }
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) bad(path, str(where, "missing key '", key, "'"));

  SafetensorsEntry e;
  e.name = name;
  const Json& dt = v.at("dtype");
  if (!dt.is_string()) bad(path, str(where, "dtype is a JSON ", dt.type_name(), ", expected a string"));
  const FileDType* fd = find_dtype(dt.get<std::string>());
  if (!fd) bad(path, str(where, "unknown or unsupported dtype ", dt.dump(), " (known: ", known_dtypes(), ")"));
  e.file_dtype = fd->name;
  e.dtype = fd->dtype;

  const Json& sh = v.at("shape");
  if (!sh.is_array()) bad(path, str(where, "shape is a JSON ", sh.type_name(), ", expected an array"));
  std::vector<int64_t> dims;
  uint64_t numel = 1;
  bool overflow = false;
  for (const Json& d : sh) {
    if (!non_negative_int64(d)) bad(path, str(where, "shape ", sh.dump(), " must hold non-negative integers"));
    dims.push_back(d.get<int64_t>());
    overflow = overflow || __builtin_mul_overflow(numel, d.get<uint64_t>(), &numel);
  }
  if (dims.size() > static_cast<size_t>(Shape::kMaxDims))
    bad(path, str(where, "shape ", sh.dump(), " has ", dims.size(), " dimensions, more than ", Shape::kMaxDims));
  uint64_t nbytes = 0;
  if (overflow || numel > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, fd->size, &nbytes))
    bad(path, str(where, "shape ", sh.dump(), " is absurd: its element count overflows"));
  e.shape = Shape(dims);

  const Json& off = v.at("data_offsets");
  if (!off.is_array() || off.size() != 2 || !non_negative_int64(off[0]) || !non_negative_int64(off[1]))
    bad(path, str(where, "data_offsets ", off.dump(), " must be two non-negative integers [begin, end]"));
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end) bad(path, str(where, "data_offsets begin ", e.begin, " > end ", e.end));
  if (e.end > data_size)
    bad(path, str(where, "data_offsets end ", e.end, " is past the end of the data section (", data_size,
                  " bytes; file truncated?)"));
  if (e.end - e.begin != nbytes)
    bad(path, str(where, "size mismatch: data_offsets span ", e.end - e.begin, " bytes but shape ",
                  e.shape.str(), " of ", fd->name, " needs ", nbytes));
  return e;
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
  }
  MPNCOV_FAIL("safetensors: unknown dtype ", static_cast<int>(dtype));
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  file_ = std::make_unique<FileReader>(path);
  const uint64_t size = file_->size();
  if (size < 8) bad(path, str("file is ", size, " bytes, too short for the 8-byte header length"));
  unsigned char len_bytes[8];
  file_->read_at(0, len_bytes, 8);
  const auto header_len = load_le<uint64_t>(len_bytes);
  if (header_len > kMaxHeaderBytes)
    bad(path, str("header length ", header_len, " is absurd (limit ", kMaxHeaderBytes, " bytes)"));
  if (header_len > size - 8)
    bad(path, str("header length ", header_len, " runs past the end of the file (", size,
                  " bytes; truncated or not a safetensors file?)"));
  std::string text(static_cast<size_t>(header_len), '\0');
  file_->read_at(8, text.data(), text.size());
  data_start_ = 8 + header_len;
  const uint64_t data_size = size - data_start_;

  Json header;
  try {
    header = parse_json(text, 16);
  } catch (const Error& e) {
    bad(path, str("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) bad(path, str("header is a JSON ", header.type_name(), ", expected an object"));

  for (const auto& [name, value] : header.items()) {  // the parser has rejected duplicate names
    if (name == "__metadata__") {
      if (!value.is_object()) bad(path, str("__metadata__ is a JSON ", value.type_name(), ", expected an object"));
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string())
          bad(path, str("__metadata__ value for key ", Json(key).dump(), " is a JSON ", v.type_name(),
                        ", expected a string"));
        metadata_[key] = v.get<std::string>();
      }
      continue;
    }
    index_[name] = entries_.size();
    entries_.push_back(parse_entry(path, name, value, data_size));
  }

  // No two non-empty byte ranges may share a byte. Holes between ranges are tolerated (see the header).
  std::vector<const SafetensorsEntry*> by_begin;
  for (const SafetensorsEntry& e : entries_)
    if (e.end > e.begin) by_begin.push_back(&e);
  std::sort(by_begin.begin(), by_begin.end(),
            [](const SafetensorsEntry* a, const SafetensorsEntry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_begin.size(); ++i) {
    const SafetensorsEntry& a = *by_begin[i - 1];
    const SafetensorsEntry& b = *by_begin[i];
    if (b.begin < a.end)
      bad(path, str("tensors '", a.name, "' [", a.begin, ", ", a.end, ") and '", b.name, "' [", b.begin, ", ",
                    b.end, ") overlap"));
  }
}

SafetensorsReader::~SafetensorsReader() = default;
SafetensorsReader::SafetensorsReader(SafetensorsReader&&) noexcept = default;
SafetensorsReader& SafetensorsReader::operator=(SafetensorsReader&&) noexcept = default;

const SafetensorsEntry& SafetensorsReader::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) bad(path_, str("has no tensor named '", name, "'"));
  return entries_[it->second];
}

Tensor SafetensorsReader::read(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  const FileDType* fd = find_dtype(e.file_dtype);
  if (fd->kind == Kind::Complex)
    bad(path_, str("tensor '", name, "' is ", e.file_dtype, " (complex), which mpncov cannot load"));
  Tensor t = Tensor::empty(e.shape, e.dtype);
  const size_t nbytes = static_cast<size_t>(e.end - e.begin);
  if (nbytes == 0) return t;
  if (fd->kind == Kind::Native) {
    file_->read_at(data_start_ + e.begin, t.raw(), nbytes);  // straight into the tensor
    return t;
  }
  std::vector<unsigned char> bytes(nbytes);
  file_->read_at(data_start_ + e.begin, bytes.data(), nbytes);
  convert(path_, e, fd->kind, bytes.data(), static_cast<size_t>(e.shape.numel()), t);
  return t;
}

SafetensorsFile load_safetensors(const std::string& path) {
  SafetensorsReader reader(path);
  SafetensorsFile out;
  out.metadata = reader.metadata();
  for (const SafetensorsEntry& e : reader.entries()) {
    out.names.push_back(e.name);
    out.tensors.emplace(e.name, reader.read(e.name));
  }
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Check everything before touching the disk.
  std::set<std::string> seen;
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    MPNCOV_CHECK(!name.empty(), "save_safetensors '", path, "': empty tensor name");
    MPNCOV_CHECK(name != "__metadata__", "save_safetensors '", path, "': '__metadata__' is reserved");
    MPNCOV_CHECK(seen.insert(name).second, "save_safetensors '", path, "': duplicate tensor name '", name, "'");
    MPNCOV_CHECK(t.defined(), "save_safetensors '", path, "': tensor '", name, "' is undefined");
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())},
                    {"shape", t.shape().dims()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text;
  try {
    text = dump_json(header);
  } catch (const Error& e) {
    MPNCOV_FAIL("save_safetensors '", path, "': tensor names and metadata must be valid UTF-8 (", e.what(), ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  const uint64_t header_len = text.size();
  unsigned char len_bytes[8];
  std::memcpy(len_bytes, &header_len, 8);

  AtomicFile file(path);
  file.write(len_bytes, 8);
  file.write(text);
  for (const auto& kv : tensors) {
    const Tensor& t = kv.second;
    if (t.nbytes() == 0) continue;
    const Tensor host = t.to(Device::cpu());  // one tensor at a time: never the whole set on the host
    file.write(host.raw(), host.nbytes());
  }
  file.commit();
}

}  // namespace mpncov
