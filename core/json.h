// JSON values: a small, strict reader and a writer, for file headers (safetensors), checkpoint metadata
// and run folders. Objects keep their keys in file order; duplicate keys are an error on read.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mpncov {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;  // insertion order, unique keys

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::Bool), bool_(b) {}
  // Any integer: kept exactly when it fits int64 (as every size and offset does).
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Json(T v) : type_(Type::Number), number_(static_cast<double>(v)) {
    if constexpr (std::is_signed_v<T>) {
      is_int_ = true, int_ = static_cast<int64_t>(v);
    } else if (static_cast<uint64_t>(v) <= static_cast<uint64_t>(INT64_MAX)) {
      is_int_ = true, int_ = static_cast<int64_t>(v);
    }
  }
  Json(double v) : type_(Type::Number), number_(v) {}
  Json(float v) : Json(static_cast<double>(v)) {}
  Json(std::string s) : type_(Type::String), string_(std::move(s)) {}
  Json(const char* s) : Json(std::string(s)) {}
  Json(std::string_view s) : Json(std::string(s)) {}
  Json(Array a) : type_(Type::Array), array_(std::move(a)) {}
  static Json array() { return Json(Array{}); }
  static Json object();

  Type type() const { return type_; }
  const char* type_name() const;  // "null", "boolean", "number", "string", "array", "object"
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  // A number written without fraction or exponent that fits int64.
  bool is_integer() const { return type_ == Type::Number && is_int_; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Typed access; each throws mpncov::Error naming the actual type on a mismatch.
  bool as_bool() const;
  double as_double() const;
  int64_t as_int64() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& items() const;

  // Objects.
  const Json* find(std::string_view key) const;  // nullptr when absent
  const Json& at(std::string_view key) const;    // throws naming the missing key
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  Json& set(std::string key, Json value);        // replaces an existing key, else appends
  // Arrays.
  void push_back(Json value);
  size_t size() const;  // elements of an array or members of an object

  // Writes compact JSON when indent < 0, else pretty-printed with that many spaces per level.
  // Non-finite numbers have no JSON form and throw.
  std::string dump(int indent = -1) const;

  bool operator==(const Json& o) const;
  bool operator!=(const Json& o) const { return !(*this == o); }

 private:
  friend class JsonParser;
  void dump_to(std::string& out, int indent, int level) const;

  Type type_ = Type::Null;
  bool bool_ = false;
  bool is_int_ = false;
  int64_t int_ = 0;
  double number_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

// Parses one JSON document (surrounding whitespace allowed). Strict: no comments, trailing commas,
// NaN, leading zeros, raw control characters, invalid UTF-8 or duplicate keys. Nesting deeper than
// max_depth is an error. Errors are mpncov::Error with the byte offset, line and column.
Json parse_json(std::string_view text, int max_depth = 64);

// The JSON string literal for s, quotes included: escapes ", \ and control characters; UTF-8 passes.
std::string json_quote(std::string_view s);

}  // namespace mpncov
