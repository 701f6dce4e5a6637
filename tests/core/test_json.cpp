#include <cmath>

#include "core/json.h"
#include "tests/helpers.h"

using namespace mpncov;

TEST_SUITE("unit") {

TEST_CASE("json: parses every kind of value") {
  const Json j = parse_json(R"( {"a": [1, -2.5, 1e3, true, false, null, "x"], "b": {}, "c": [], "d": -0} )");
  REQUIRE(j.is_object());
  CHECK(j.size() == 4);
  CHECK(j.items()[0].first == "a");  // file order kept
  CHECK(j.items()[3].first == "d");
  const Json::Array& a = j.at("a").as_array();
  CHECK(a[0].is_integer());
  CHECK(a[0].as_int64() == 1);
  CHECK(a[1].as_double() == -2.5);
  CHECK_FALSE(a[1].is_integer());
  CHECK(a[2].as_double() == 1000.0);
  CHECK_FALSE(a[2].is_integer());  // an exponent makes it a non-integer literal
  CHECK(a[3].as_bool());
  CHECK_FALSE(a[4].as_bool());
  CHECK(a[5].is_null());
  CHECK(a[6].as_string() == "x");
  CHECK(j.at("b").is_object());
  CHECK(j.at("c").as_array().empty());
  CHECK(j.find("zz") == nullptr);
  CHECK_THROWS_WITH_AS(j.at("zz"), doctest::Contains("missing key 'zz'"), Error);
  CHECK_THROWS_WITH_AS(j.at("a").as_string(), doctest::Contains("expected a string, found array"), Error);
}

TEST_CASE("json: integers are exact over the whole int64 range") {
  CHECK(parse_json("9223372036854775807").as_int64() == INT64_MAX);
  CHECK(parse_json("-9223372036854775808").as_int64() == INT64_MIN);
  const Json big = parse_json("9223372036854775808");  // one past: still a number, not an integer
  CHECK(big.is_number());
  CHECK_FALSE(big.is_integer());
  CHECK_THROWS_WITH_AS(big.as_int64(), doctest::Contains("out-of-range"), Error);
  CHECK(parse_json("1e400").as_double() == HUGE_VAL);
  CHECK(parse_json("-1e-400").as_double() == 0.0);
  CHECK(parse_json("0.1").as_double() == 0.1);
}

TEST_CASE("json: string escapes, \\u and surrogate pairs, UTF-8") {
  CHECK(parse_json(R"("a\"b\\c\/d\b\f\n\r\t")").as_string() == "a\"b\\c/d\b\f\n\r\t");
  CHECK(parse_json(R"("\u00fc\u20AC")").as_string() == "\xc3\xbc\xe2\x82\xac");
  CHECK(parse_json(R"("\ud83d\ude00")").as_string() == "\xf0\x9f\x98\x80");
  CHECK(parse_json("\"\xc3\xbc\"").as_string() == "\xc3\xbc");
  CHECK(parse_json(R"("\u0000")").as_string() == std::string(1, '\0'));
}

TEST_CASE("json: writer round-trips and escapes") {
  Json j = Json::object();
  j.set("name", "quote\" back\\ nl\n ctl\x01 \xc3\xbc");
  j.set("int", int64_t{-9007199254740993});
  j.set("u", uint64_t{18446744073709551615ull});  // beyond int64: written as a double
  j.set("pi", 3.141592653589793);
  j.set("tiny", 5e-324);
  j.set("list", Json(Json::Array{Json(1), Json(nullptr), Json(true), Json("s")}));
  j.set("empty", Json::object());
  j.set("int", 7);  // replaces, keeps its place
  CHECK(j.items()[1].first == "int");
  const std::string compact = j.dump();
  CHECK(compact.find("\\u0001") != std::string::npos);
  CHECK(compact.find("\\n") != std::string::npos);
  CHECK(parse_json(compact) == j);
  CHECK(parse_json(j.dump(2)) == j);
  CHECK(j.dump(2).find("\n  \"name\": ") != std::string::npos);
  CHECK(parse_json(compact).at("pi").as_double() == 3.141592653589793);
  CHECK(parse_json(compact).at("tiny").as_double() == 5e-324);
  CHECK(json_quote("a\tb") == "\"a\\tb\"");
  CHECK_THROWS_WITH_AS(Json(NAN).dump(), doctest::Contains("non-finite"), Error);
}

TEST_CASE("json: strict syntax errors name the position") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "expected a value but the text ended"},
      {"{\"a\": 1,}", "expected a string key"},
      {"[1, 2,]", "expected a value"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\": 1 \"b\": 2}", "expected ',' or '}'"},
      {"[1 2]", "expected ',' or ']'"},
      {"{\"a\": 1", "unterminated object"},
      {"[1", "unterminated array"},
      {"\"abc", "unterminated string"},
      {"01", "leading zeros"},
      {"1.", "digit after the decimal point"},
      {"1e", "digit in the exponent"},
      {"-", "expected a digit"},
      {"+1", "expected a value"},
      {"NaN", "expected a value"},
      {"tru", "invalid literal"},
      {"nul", "invalid literal"},
      {"\"a\nb\"", "raw control character"},
      {"\"\\x\"", "invalid escape"},
      {"\"\\u12g4\"", "invalid hex digit"},
      {"\"\\u12\"", "truncated \\u escape"},
      {"\"\\ud800\"", "high surrogate not followed"},
      {"\"\\udc00\"", "unpaired low surrogate"},
      {"\"\xff\"", "invalid UTF-8"},
      {"\"\xc0\x80\"", "invalid UTF-8"},          // overlong
      {"\"\xed\xa0\x80\"", "invalid UTF-8"},      // encoded surrogate
      {"\"\xe2\x82\"", "UTF-8"},                  // truncated
      {"{\"a\": 1, \"a\": 2}", "duplicate key \"a\""},
      {"{} x", "unexpected text after the JSON value"},
      {"// comment\n{}", "expected a value"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    CHECK_THROWS_WITH_AS(parse_json(c.text), doctest::Contains(c.message), Error);
  }
  CHECK_THROWS_WITH_AS(parse_json("{\n  \"a\": [1,\n   x]}"), doctest::Contains("at byte 16 (line 3, column 4)"), Error);
}

TEST_CASE("json: nesting deeper than the limit is refused, not a stack overflow") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_THROWS_WITH_AS(parse_json(deep), doctest::Contains("nesting deeper than 64"), Error);
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  CHECK(parse_json(ok).is_array());
  CHECK_THROWS_AS(parse_json(std::string(65, '[') + std::string(65, ']')), Error);
  CHECK(parse_json(std::string(10, '[') + std::string(10, ']'), 10).is_array());
}

}  // TEST_SUITE
