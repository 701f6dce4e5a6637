// core/json.h: the strict reading mpncov adds to nlohmann/json, and its errors as mpncov::Error.
#include <doctest/doctest.h>

#include "core/error.h"
#include "core/json.h"

using namespace mpncov;

TEST_SUITE("unit") {

TEST_CASE("json: objects keep their keys in file order and integers stay exact") {
  const Json j = parse_json(R"({"z": 1, "a": [9223372036854775807, -9223372036854775808, 2.5], "m": null})");
  std::string order;
  for (const auto& [key, value] : j.items()) order += key;
  CHECK(order == "zam");
  CHECK(j.at("a")[0].get<int64_t>() == INT64_MAX);
  CHECK(j.at("a")[1].get<int64_t>() == INT64_MIN);
  CHECK(j.at("a")[2].is_number_float());
  CHECK(dump_json(j) == R"({"z":1,"a":[9223372036854775807,-9223372036854775808,2.5],"m":null})");
}

TEST_CASE("json: syntax errors are mpncov::Error naming the byte, line and column") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "unexpected end of input"},
      {"{\"a\": 1,}", "expected string literal"},
      {"[1, 2,]", "syntax error"},
      {"01", "expected end of input"},  // leading zeros
      {"NaN", "invalid literal"},
      {"\"a\nb\"", "control character U+000A"},
      {"\"\xff\"", "ill-formed UTF-8"},
      {"{} x", "expected end of input"},
      {"// comment\n{}", "invalid literal"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    CHECK_THROWS_WITH_AS(parse_json(c.text), doctest::Contains(c.message), Error);
    CHECK_THROWS_WITH_AS(parse_json(c.text), doctest::Contains("JSON syntax error at byte"), Error);
  }
  CHECK_THROWS_WITH_AS(parse_json("{\n  \"a\": [1,\n   x]}"), doctest::Contains("(line 3, column 4)"), Error);
  // A number beyond double's range escaped as nlohmann's out_of_range (fuzz_safetensors).
  CHECK_THROWS_WITH_AS(parse_json("[1, 22e8108]"), doctest::Contains("number overflow parsing '22e8108'"), Error);
  CHECK_THROWS_WITH_AS(parse_json("{\"a\": -1e400}"), doctest::Contains("JSON number out of range"), Error);
  CHECK(parse_json("1e308").get<double>() == 1e308);
}

TEST_CASE("json: a key twice in one object is an error at any depth, in two objects it is not") {
  CHECK_THROWS_WITH_AS(parse_json(R"({"a": 1, "a": 2})"), doctest::Contains("duplicate key \"a\""), Error);
  CHECK_THROWS_WITH_AS(parse_json(R"({"x": {"b": 1, "c": {}, "b": 2}})"), doctest::Contains("duplicate key \"b\""),
                       Error);
  CHECK_THROWS_WITH_AS(parse_json(R"([{"k": [], "k": 0}])"), doctest::Contains("duplicate key \"k\""), Error);
  const Json ok = parse_json(R"({"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}], "c": {"a": {"a": 4}}})");
  CHECK(ok.at("c").at("a").at("a").get<int>() == 4);
}

TEST_CASE("json: nesting deeper than the limit is refused") {
  CHECK_THROWS_WITH_AS(parse_json(std::string(100000, '[') + std::string(100000, ']')),
                       doctest::Contains("nesting deeper than 64"), Error);
  CHECK(parse_json(std::string(64, '[') + std::string(64, ']')).is_array());
  CHECK_THROWS_AS(parse_json(std::string(65, '[') + std::string(65, ']')), Error);
  CHECK(parse_json(R"([{"a": []}])", 3).is_array());
  CHECK_THROWS_WITH_AS(parse_json(R"([{"a": [[]]}])", 3), doctest::Contains("nesting deeper than 3"), Error);
}

TEST_CASE("json: writing refuses text that is not UTF-8 and writes non-finite numbers as null") {
  CHECK_THROWS_WITH_AS(dump_json(Json{{"name", "a\xff"}}), doctest::Contains("invalid UTF-8"), Error);
  CHECK(dump_json(Json::array({1.5, NAN, INFINITY})) == "[1.5,null,null]");
  CHECK(dump_json(Json{{"k", "\xc3\xbc \"q\"\n"}}) == "{\"k\":\"\xc3\xbc \\\"q\\\"\\n\"}");
}

}  // TEST_SUITE
