#include "core/json.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace mpncov {

Json Json::object() {
  Json j;
  j.type_ = Type::Object;
  return j;
}

const char* Json::type_name() const {
  switch (type_) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

bool Json::as_bool() const {
  MPNCOV_CHECK(is_bool(), "JSON: expected a boolean, found ", type_name());
  return bool_;
}

double Json::as_double() const {
  MPNCOV_CHECK(is_number(), "JSON: expected a number, found ", type_name());
  return number_;
}

int64_t Json::as_int64() const {
  MPNCOV_CHECK(is_integer(), "JSON: expected an integer, found ",
               is_number() ? "a non-integer or out-of-range number" : type_name());
  return int_;
}

const std::string& Json::as_string() const {
  MPNCOV_CHECK(is_string(), "JSON: expected a string, found ", type_name());
  return string_;
}

const Json::Array& Json::as_array() const {
  MPNCOV_CHECK(is_array(), "JSON: expected an array, found ", type_name());
  return array_;
}

Json::Array& Json::as_array() {
  MPNCOV_CHECK(is_array(), "JSON: expected an array, found ", type_name());
  return array_;
}

const Json::Object& Json::items() const {
  MPNCOV_CHECK(is_object(), "JSON: expected an object, found ", type_name());
  return object_;
}

const Json* Json::find(std::string_view key) const {
  for (const auto& kv : items())
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const Json& Json::at(std::string_view key) const {
  const Json* j = find(key);
  MPNCOV_CHECK(j != nullptr, "JSON: missing key '", key, "'");
  return *j;
}

Json& Json::set(std::string key, Json value) {
  MPNCOV_CHECK(is_object(), "JSON: set('", key, "') on a ", type_name());
  for (auto& kv : object_) {
    if (kv.first == key) return kv.second = std::move(value);
  }
  object_.emplace_back(std::move(key), std::move(value));
  return object_.back().second;
}

void Json::push_back(Json value) { as_array().push_back(std::move(value)); }

size_t Json::size() const {
  if (is_array()) return array_.size();
  return items().size();
}

bool Json::operator==(const Json& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case Type::Null: return true;
    case Type::Bool: return bool_ == o.bool_;
    case Type::Number: return is_int_ && o.is_int_ ? int_ == o.int_ : number_ == o.number_;
    case Type::String: return string_ == o.string_;
    case Type::Array: return array_ == o.array_;
    case Type::Object: return object_ == o.object_;
  }
  return false;
}

// ---- writer ----

std::string json_quote(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out += hex[u >> 4];
          out += hex[u & 15];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

namespace {

void newline(std::string& out, int indent, int level) {
  if (indent < 0) return;
  out += '\n';
  out.append(static_cast<size_t>(indent * level), ' ');
}

}  // namespace

void Json::dump_to(std::string& out, int indent, int level) const {
  switch (type_) {
    case Type::Null: out += "null"; return;
    case Type::Bool: out += bool_ ? "true" : "false"; return;
    case Type::Number: {
      char buf[32];
      std::to_chars_result r;
      if (is_int_) {
        r = std::to_chars(buf, buf + sizeof buf, int_);
      } else {
        MPNCOV_CHECK(std::isfinite(number_), "JSON: cannot write the non-finite number ", number_);
        r = std::to_chars(buf, buf + sizeof buf, number_);  // shortest form that reads back exactly
      }
      out.append(buf, r.ptr);
      return;
    }
    case Type::String: out += json_quote(string_); return;
    case Type::Array: {
      out += '[';
      for (size_t i = 0; i < array_.size(); ++i) {
        if (i) out += ',';
        newline(out, indent, level + 1);
        array_[i].dump_to(out, indent, level + 1);
      }
      if (!array_.empty()) newline(out, indent, level);
      out += ']';
      return;
    }
    case Type::Object: {
      out += '{';
      for (size_t i = 0; i < object_.size(); ++i) {
        if (i) out += ',';
        newline(out, indent, level + 1);
        out += json_quote(object_[i].first);
        out += indent < 0 ? ":" : ": ";
        object_[i].second.dump_to(out, indent, level + 1);
      }
      if (!object_.empty()) newline(out, indent, level);
      out += '}';
      return;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

// ---- reader: recursive descent over the grammar of RFC 8259 ----

class JsonParser {
 public:
  JsonParser(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

  Json parse_document() {
    skip_space();
    Json v = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }
  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') ++line, column = 1;
      else ++column;
    }
    MPNCOV_FAIL("JSON syntax error at byte ", at, " (line ", line, ", column ", column, "): ", what);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  static std::string show(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
    return str("byte 0x", "0123456789abcdef"[u >> 4], "0123456789abcdef"[u & 15]);
  }

  void skip_space() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  void expect(char c) {
    if (at_end()) fail(str("expected '", c, "' but the text ended"));
    if (s_[pos_] != c) fail(str("expected '", c, "', found ", show(s_[pos_])));
    ++pos_;
  }

  void literal(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) fail(str("invalid literal (expected '", word, "')"));
    pos_ += n;
  }

  Json parse_value(int depth) {
    if (at_end()) fail("expected a value but the text ended");
    switch (s_[pos_]) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return Json(parse_string());
      case 't': literal("true"); return Json(true);
      case 'f': literal("false"); return Json(false);
      case 'n': literal("null"); return Json();
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return parse_number();
        fail(str("expected a value, found ", show(s_[pos_])));
    }
  }

  void check_depth(int depth) const {
    if (depth > max_depth_) fail(str("nesting deeper than ", max_depth_, " levels"));
  }

  Json parse_object(int depth) {
    check_depth(depth);
    Json obj = Json::object();
    expect('{');
    skip_space();
    if (peek() == '}') {
      ++pos_;
      return obj;
    }
    while (true) {
      skip_space();
      if (peek() != '"') fail(at_end() ? "expected a key but the text ended" : str("expected a string key, found ", show(peek())));
      const size_t key_at = pos_;
      std::string key = parse_string();
      for (const auto& kv : obj.object_)
        if (kv.first == key) fail_at(key_at, str("duplicate key ", json_quote(key)));
      skip_space();
      expect(':');
      skip_space();
      Json value = parse_value(depth);
      obj.object_.emplace_back(std::move(key), std::move(value));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return obj;
      }
      fail(at_end() ? "unterminated object" : str("expected ',' or '}' in an object, found ", show(peek())));
    }
  }

  Json parse_array(int depth) {
    check_depth(depth);
    Json arr = Json::array();
    expect('[');
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return arr;
    }
    while (true) {
      skip_space();
      arr.array_.push_back(parse_value(depth));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return arr;
      }
      fail(at_end() ? "unterminated array" : str("expected ',' or ']' in an array, found ", show(peek())));
    }
  }

  Json parse_number() {
    const size_t start = pos_;
    bool integral = true;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9') fail("numbers may not have leading zeros");
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      fail("expected a digit in a number");
    }
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit after the decimal point");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit in the exponent");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    Json j;
    j.type_ = Json::Type::Number;
    // from_chars does not depend on the C locale, unlike strtod.
    const auto r = std::from_chars(first, last, j.number_);
    if (r.ec == std::errc::result_out_of_range) {
      // Magnitude beyond double (or below its smallest subnormal): keep the sign, as strtod would.
      const char* e = first;
      while (e < last && *e != 'e' && *e != 'E') ++e;
      const bool tiny = e + 1 < last && e[1] == '-';
      const bool negative = *first == '-';
      j.number_ = tiny ? (negative ? -0.0 : 0.0) : (negative ? -HUGE_VAL : HUGE_VAL);
    } else if (r.ec != std::errc() || r.ptr != last) {
      fail_at(start, "malformed number");
    }
    if (integral) {
      int64_t v = 0;
      const auto ri = std::from_chars(first, last, v);
      if (ri.ec == std::errc() && ri.ptr == last) j.is_int_ = true, j.int_ = v;
    }
    return j;
  }

  unsigned parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail("invalid hex digit in a \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // Copies one UTF-8 encoded character starting at pos_, rejecting overlong forms, surrogates and
  // code points beyond U+10FFFF.
  void copy_utf8(std::string& out) {
    const auto b0 = static_cast<unsigned char>(s_[pos_]);
    int n;
    unsigned cp, min;
    if (b0 >= 0xc2 && b0 <= 0xdf) n = 1, cp = b0 & 0x1fu, min = 0x80;
    else if (b0 >= 0xe0 && b0 <= 0xef) n = 2, cp = b0 & 0x0fu, min = 0x800;
    else if (b0 >= 0xf0 && b0 <= 0xf4) n = 3, cp = b0 & 0x07u, min = 0x10000;
    else fail("invalid UTF-8 in a string");
    if (pos_ + static_cast<size_t>(n) >= s_.size()) fail("truncated UTF-8 sequence in a string");
    for (int i = 1; i <= n; ++i) {
      const auto b = static_cast<unsigned char>(s_[pos_ + static_cast<size_t>(i)]);
      if ((b & 0xc0) != 0x80) fail("invalid UTF-8 in a string");
      cp = (cp << 6) | (b & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail("invalid UTF-8 in a string");
    out.append(s_.data() + pos_, static_cast<size_t>(n) + 1);
    pos_ += static_cast<size_t>(n) + 1;
  }

  std::string parse_string() {
    const size_t start = pos_;
    expect('"');
    std::string out;
    while (true) {
      if (at_end()) fail_at(start, "unterminated string");
      const char c = s_[pos_];
      const auto u = static_cast<unsigned char>(c);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (u < 0x20) fail("raw control character in a string (must be escaped)");
      if (u >= 0x80) {
        copy_utf8(out);
        continue;
      }
      ++pos_;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) fail_at(start, "unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xdc00 && cp <= 0xdfff) fail("unpaired low surrogate in a \\u escape");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (s_.compare(pos_, 2, "\\u") != 0) fail("high surrogate not followed by a low surrogate");
            pos_ += 2;
            const unsigned lo = parse_hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail("high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          append_utf8(out, cp);
          break;
        }
        default: --pos_; fail(str("invalid escape \\", show(e)));
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  int max_depth_;
};

Json parse_json(std::string_view text, int max_depth) { return JsonParser(text, max_depth).parse_document(); }

}  // namespace mpncov
