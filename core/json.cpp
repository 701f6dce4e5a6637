#include "core/json.h"

#include <set>
#include <vector>

#include "core/error.h"

namespace mpncov {

std::string json_error_text(const nlohmann::json::exception& e) {
  const std::string what = e.what();
  const size_t tag_end = what.rfind("] ", what.find(' '));
  return tag_end == std::string::npos ? what : what.substr(tag_end + 2);
}

Json parse_json(std::string_view text, int max_depth) {
  // The keys of each object being read, innermost last: a key seen twice in one object is an error.
  std::vector<std::set<std::string>> keys;
  const auto check = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= max_depth) throw Error(str("JSON nesting deeper than ", max_depth, " levels"));
        if (event == Json::parse_event_t::object_start) keys.emplace_back();
        break;
      case Json::parse_event_t::object_end: keys.pop_back(); break;
      case Json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second)
          throw Error(str("duplicate key ", parsed.dump(), " in a JSON object"));
        break;
      default: break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), check);
  } catch (const Json::parse_error& e) {
    // "parse error at line 1, column 8: syntax error while parsing ..." -> position first, then the reason.
    std::string reason = json_error_text(e);
    const size_t at = reason.find("at line "), colon = reason.find(": ", at);
    std::string where;
    if (at != std::string::npos && colon != std::string::npos) {
      where = " (" + reason.substr(at + 3, colon - at - 3) + ")";
      reason = reason.substr(colon + 2);
    }
    throw Error(str("JSON syntax error at byte ", e.byte, where, ": ", reason));
  } catch (const Json::out_of_range& e) {  // a number beyond double's range, such as 1e400 (fuzz_safetensors)
    throw Error(str("JSON number out of range: ", json_error_text(e)));
  }
}

std::string dump_json(const Json& j, int indent) {
  try {
    return j.dump(indent);
  } catch (const Json::type_error& e) {
    throw Error(str("cannot write JSON: ", json_error_text(e)));
  }
}

}  // namespace mpncov
