#include "core/npy.h"

#include <charconv>
#include <cstring>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/file_reader.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, ".npy I/O assumes a little-endian host");

namespace mpncov {

namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes
constexpr uint64_t kMaxHeaderBytes = 1 << 20;  // NumPy itself refuses more than 10 kB by default

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(str("npy file '", path, "': ", what));
}

// The element types we read: descr -> (bytes per element, resulting dtype).
enum class Widen { None, I32, U32, I16, U16, I8, U8, Bool };
struct Descr {
  const char* name;
  size_t size;
  DType dtype;
  Widen widen;  // how a small integer type becomes int64
};
constexpr Descr kDescrs[] = {
    {"<f4", 4, DType::F32, Widen::None}, {"<f8", 8, DType::F64, Widen::None}, {"<f2", 2, DType::F16, Widen::None},
    {"<i8", 8, DType::I64, Widen::None}, {"<i4", 4, DType::I64, Widen::I32},  {"<i2", 2, DType::I64, Widen::I16},
    {"|i1", 1, DType::I64, Widen::I8},   {"|u1", 1, DType::I64, Widen::U8},   {"<u2", 2, DType::I64, Widen::U16},
    {"<u4", 4, DType::I64, Widen::U32},  {"|b1", 1, DType::I64, Widen::Bool},
};

template <typename T>
int64_t load_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return static_cast<int64_t>(v);
}

const char* descr_of(DType dtype) {
  switch (dtype) {
    case DType::F32: return "<f4";
    case DType::F64: return "<f8";
    case DType::F16: return "<f2";
    case DType::I64: return "<i8";
    case DType::BF16: break;
  }
  MPNCOV_FAIL(".npy: ", dtype_name(dtype), " has no NumPy type (convert with to(DType::F32) first)");
}

// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
// This reads exactly that subset: string keys, and string, boolean or integer-tuple values.
struct HeaderValue {
  enum class Type { String, Bool, Tuple } type;
  std::string text;
  bool flag = false;
  std::vector<int64_t> tuple;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& path, std::string_view s) : path_(path), s_(s) {}

  std::vector<std::pair<std::string, HeaderValue>> parse() {
    std::vector<std::pair<std::string, HeaderValue>> out;
    skip();
    expect('{');
    while (true) {
      skip();
      if (peek() == '}') break;
      const size_t key_at = pos_;
      std::string key = parse_string();
      for (const auto& kv : out)
        if (kv.first == key) fail_at(key_at, "duplicate key '" + key + "'");
      skip();
      expect(':');
      skip();
      out.emplace_back(std::move(key), parse_value());
      skip();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    skip();
    if (pos_ != s_.size()) fail("unexpected text after the dict");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }
  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    bad(path_, str("header dict syntax error at character ", at, ": ", what));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(str("expected '", c, "'"));
    ++pos_;
  }

  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    ++pos_;
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' || s_[pos_] == '\n') fail("unsupported character in a string");
      ++pos_;
    }
    if (pos_ >= s_.size()) fail("unterminated string");
    return std::string(s_.substr(start, pos_++ - start));
  }

  HeaderValue parse_value() {
    HeaderValue v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      v.type = HeaderValue::Type::String;
      v.text = parse_string();
    } else if (s_.compare(pos_, 4, "True") == 0) {
      v.type = HeaderValue::Type::Bool, v.flag = true, pos_ += 4;
    } else if (s_.compare(pos_, 5, "False") == 0) {
      v.type = HeaderValue::Type::Bool, v.flag = false, pos_ += 5;
    } else if (c == '(') {
      v.type = HeaderValue::Type::Tuple;
      parse_tuple(v.tuple);
    } else if (c == '[') {
      fail("unexpected list (structured (record) dtypes are not supported)");
    } else {
      fail("expected a string, True, False or a tuple");
    }
    return v;
  }

  void parse_tuple(std::vector<int64_t>& dims) {
    expect('(');
    bool trailing_comma = false;
    while (true) {
      skip();
      if (peek() == ')') break;
      if (peek() == '-') fail("negative dimension in shape");
      if (!(peek() >= '0' && peek() <= '9')) fail("shape entries must be non-negative integers");
      const size_t start = pos_;
      while (peek() >= '0' && peek() <= '9') ++pos_;
      int64_t d = 0;
      const auto r = std::from_chars(s_.data() + start, s_.data() + pos_, d);
      if (r.ec != std::errc()) fail_at(start, "shape dimension too large");
      dims.push_back(d);
      if (peek() == 'L') ++pos_;  // Python 2 long literal, as old NumPy wrote
      skip();
      trailing_comma = false;
      if (peek() == ',') {
        ++pos_;
        trailing_comma = true;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape tuple");
    }
    if (dims.size() == 1 && !trailing_comma) fail("(n) is not a tuple; a 1-d shape is written (n,)");
    ++pos_;
  }

  const std::string& path_;
  std::string_view s_;
  size_t pos_ = 0;
};

std::string shape_literal(const Shape& shape) {
  std::string s = "(";
  for (int i = 0; i < shape.ndim(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.ndim() == 1) s += ",";
  return s + ")";
}

// The complete preamble (magic, version, length, padded dict ending in '\n'), a multiple of 64 bytes.
std::string make_header(const Shape& shape, DType dtype) {
  std::string dict = str("{'descr': '", descr_of(dtype), "', 'fortran_order': False, 'shape': ", shape_literal(shape), ", }");
  size_t prefix = 10;  // magic 6 + version 2 + length 2
  if (((dict.size() + 1 + prefix + 63) / 64) * 64 - prefix > 65535) prefix = 12;  // version 2.0: 4-byte length
  const size_t total = ((prefix + dict.size() + 1 + 63) / 64) * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(kMagic, 6);
  out += static_cast<char>(prefix == 10 ? 1 : 2);
  out += '\0';
  const uint32_t len = static_cast<uint32_t>(dict.size());
  out.append(reinterpret_cast<const char*>(&len), prefix == 10 ? 2 : 4);
  return out + dict;
}

}  // namespace

Tensor load_npy(const std::string& path) {
  FileReader file(path);
  const uint64_t size = file.size();
  if (size < 10) bad(path, str("file is ", size, " bytes, too short for a .npy header"));
  unsigned char pre[12] = {};
  file.read_at(0, pre, size >= 12 ? 12 : 10);
  if (std::memcmp(pre, kMagic, 6) != 0) bad(path, "bad magic: not a .npy file");
  const int major = pre[6], minor = pre[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    bad(path, str("unsupported format version ", major, ".", minor, " (known: 1.0, 2.0, 3.0)"));
  uint64_t header_len = 0, prefix = 10;
  if (major == 1) {
    header_len = static_cast<uint64_t>(pre[8]) | static_cast<uint64_t>(pre[9]) << 8;
  } else {
    if (size < 12) bad(path, str("file is ", size, " bytes, too short for a version ", major, ".0 header"));
    prefix = 12;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<uint64_t>(pre[8 + i]) << (8 * i);
  }
  if (header_len > kMaxHeaderBytes) bad(path, str("header length ", header_len, " is absurd (limit ", kMaxHeaderBytes, ")"));
  if (header_len > size - prefix)
    bad(path, str("header length ", header_len, " runs past the end of the file (", size, " bytes)"));
  std::string text(static_cast<size_t>(header_len), '\0');
  file.read_at(prefix, text.data(), text.size());

  const auto dict = HeaderParser(path, text).parse();
  const HeaderValue *descr = nullptr, *fortran = nullptr, *shape_v = nullptr;
  for (const auto& [key, value] : dict) {
    if (key == "descr") descr = &value;
    else if (key == "fortran_order") fortran = &value;
    else if (key == "shape") shape_v = &value;
    else bad(path, "unexpected key '" + key + "' in the header (expected descr, fortran_order, shape)");
  }
  for (auto [ptr, key] : {std::pair{descr, "descr"}, {fortran, "fortran_order"}, {shape_v, "shape"}})
    if (!ptr) bad(path, str("header has no '", key, "'"));
  if (descr->type != HeaderValue::Type::String) bad(path, "descr must be a string");
  if (fortran->type != HeaderValue::Type::Bool) bad(path, "fortran_order must be True or False");
  if (shape_v->type != HeaderValue::Type::Tuple) bad(path, "shape must be a tuple");

  const Descr* d = nullptr;
  for (const Descr& k : kDescrs)
    if (descr->text == k.name) d = &k;
  if (!d) {
    const std::string& t = descr->text;
    if (!t.empty() && t[0] == '>') bad(path, "big-endian dtype '" + t + "' is not supported (save it little-endian)");
    if (t.find('O') != std::string::npos) bad(path, "object arrays (pickled Python objects) are not supported");
    bad(path, "unsupported dtype '" + t + "' (known: <f2 <f4 <f8 <i8 <i4 <i2 |i1 |u1 <u2 <u4 |b1)");
  }
  const std::vector<int64_t>& dims = shape_v->tuple;
  if (dims.size() > static_cast<size_t>(Shape::kMaxDims))
    bad(path, str("shape has ", dims.size(), " dimensions, more than ", Shape::kMaxDims));
  if (fortran->flag && dims.size() >= 2)
    bad(path, "Fortran-order arrays are not supported (save with numpy.ascontiguousarray)");
  uint64_t numel = 1, nbytes = 0;
  bool overflow = false;
  for (int64_t x : dims) overflow = overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(x), &numel);
  if (overflow || numel > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, d->size, &nbytes))
    bad(path, "shape is absurd: its element count overflows");
  const Shape shape(dims);

  const uint64_t data_start = prefix + header_len;
  const uint64_t have = size - data_start;
  if (have < nbytes)
    bad(path, str("data holds ", have, " bytes but shape ", shape.str(), " of ", d->name, " needs ", nbytes,
                  " (file truncated?)"));
  if (have > nbytes) bad(path, str(have - nbytes, " unexpected bytes after the array data"));

  Tensor t = Tensor::empty(shape, d->dtype);
  if (nbytes == 0) return t;
  if (d->widen == Widen::None) {
    file.read_at(data_start, t.raw(), static_cast<size_t>(nbytes));
    return t;
  }
  std::vector<unsigned char> bytes(static_cast<size_t>(nbytes));
  file.read_at(data_start, bytes.data(), bytes.size());
  int64_t* out = t.data<int64_t>();
  const unsigned char* p = bytes.data();
  for (size_t i = 0; i < static_cast<size_t>(numel); ++i) {
    switch (d->widen) {
      case Widen::I32: out[i] = load_le<int32_t>(p + 4 * i); break;
      case Widen::U32: out[i] = load_le<uint32_t>(p + 4 * i); break;
      case Widen::I16: out[i] = load_le<int16_t>(p + 2 * i); break;
      case Widen::U16: out[i] = load_le<uint16_t>(p + 2 * i); break;
      case Widen::I8: out[i] = load_le<int8_t>(p + i); break;
      case Widen::U8: out[i] = p[i]; break;
      case Widen::Bool:
        if (p[i] > 1) bad(path, str("bool element ", i, " has byte value ", int{p[i]}, " (must be 0 or 1)"));
        out[i] = p[i];
        break;
      case Widen::None: break;
    }
  }
  return t;
}

NpyWriter::NpyWriter(const std::string& path, const Shape& shape, DType dtype)
    : dtype_(dtype), expected_(shape.numel()) {
  const std::string header = make_header(shape, dtype);  // refuses bfloat16 before creating a file
  file_ = std::make_unique<AtomicFile>(path);
  file_->write(header);
}

NpyWriter::~NpyWriter() = default;

void NpyWriter::write(const Tensor& piece) {
  MPNCOV_CHECK(file_, "NpyWriter: write after commit");
  MPNCOV_CHECK(piece.dtype() == dtype_, "NpyWriter '", file_->path(), "': piece is ", dtype_name(piece.dtype()),
               ", the array is ", dtype_name(dtype_));
  MPNCOV_CHECK(written_ + piece.numel() <= expected_, "NpyWriter '", file_->path(), "': ",
               written_ + piece.numel(), " elements written, more than the shape's ", expected_);
  if (piece.numel() == 0) return;
  const Tensor host = piece.to(Device::cpu());
  file_->write(host.raw(), host.nbytes());
  written_ += piece.numel();
}

void NpyWriter::commit() {
  MPNCOV_CHECK(file_, "NpyWriter: committed twice");
  MPNCOV_CHECK(written_ == expected_, "NpyWriter '", file_->path(), "': ", written_, " of ", expected_,
               " elements written");
  file_->commit();
  file_.reset();
}

void save_npy(const std::string& path, const Tensor& t) {
  MPNCOV_CHECK(t.defined(), "save_npy '", path, "': undefined tensor");
  NpyWriter w(path, t.shape(), t.dtype());
  w.write(t);
  w.commit();
}

}  // namespace mpncov
