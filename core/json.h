// JSON values through nlohmann/json (Debian's nlohmann-json3-dev), for file headers (safetensors) and
// checkpoint metadata. Objects keep their keys in file order.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mpncov {

using Json = nlohmann::ordered_json;

// Parses one JSON document strictly: besides what JSON forbids (comments, trailing commas, NaN, leading
// zeros, raw control characters, invalid UTF-8), duplicate keys and nesting deeper than max_depth are
// errors. Errors are mpncov::Error; syntax errors name the byte offset, line and column.
Json parse_json(std::string_view text, int max_depth = 64);

// Compact JSON text, or pretty-printed with `indent` spaces per level; a string that is not valid UTF-8
// is an mpncov::Error. Non-finite numbers are written as null (JSON has no NaN).
std::string dump_json(const Json& j, int indent = -1);

// The text of a nlohmann error without its "[json.exception.type_error.302] " tag.
std::string json_error_text(const nlohmann::json::exception& e);

}  // namespace mpncov
