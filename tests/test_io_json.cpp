// tests/test_io_json.cpp — the strict JSON reader/writer: values, exact integers, escapes, UTF-8, error messages.
#include <cmath>

#include "io/json.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;
using io::Json;

TEST_CASE("json: parses every value type and keeps object order") {
  Json j = Json::parse(R"( {"b": [1, -2, 3.5, 1e3, true, false, null], "a": {"x": "y"}, "z": ""} )");
  REQUIRE(j.is_object());
  const auto& o = j.as_object();
  REQUIRE(o.size() == 3);
  CHECK(o[0].first == "b");
  CHECK(o[1].first == "a");
  CHECK(o[2].first == "z");
  const auto& b = j.at("b").as_array();
  REQUIRE(b.size() == 7);
  CHECK(b[0].as_int() == 1);
  CHECK(b[0].as_uint() == 1);
  CHECK(b[1].as_int() == -2);
  CHECK_FALSE(b[1].is_uint());
  CHECK(b[2].as_double() == 3.5);
  CHECK_FALSE(b[2].is_int());
  CHECK(b[3].as_double() == 1000.0);
  CHECK_FALSE(b[3].is_int());  // exponent form is not an integer literal
  CHECK(b[4].as_bool());
  CHECK_FALSE(b[5].as_bool());
  CHECK(b[6].is_null());
  CHECK(j.at("a").at("x").as_string() == "y");
  CHECK(j.at("z").as_string().empty());
  CHECK(j.find("missing") == nullptr);
}

TEST_CASE("json: 64-bit integers are exact") {
  Json j = Json::parse("[18446744073709551615, 9223372036854775807, -9223372036854775808, 9007199254740993]");
  const auto& a = j.as_array();
  CHECK(a[0].as_uint() == UINT64_MAX);
  CHECK_FALSE(a[0].is_int());
  CHECK(a[1].as_int() == INT64_MAX);
  CHECK(a[2].as_int() == INT64_MIN);
  CHECK(a[3].as_uint() == 9007199254740993ull);  // 2^53 + 1: not representable as a double
  CHECK(j.dump() == "[18446744073709551615,9223372036854775807,-9223372036854775808,9007199254740993]");
  // Beyond uint64: a double, not an integer.
  Json big = Json::parse("18446744073709551616");
  CHECK_FALSE(big.is_uint());
  CHECK(big.as_double() == doctest::Approx(1.8446744073709552e19));
}

TEST_CASE("json: string escapes and UTF-8") {
  Json j = Json::parse(R"(["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u20ac\ud83d\ude00", "é€😀"])");
  const auto& a = j.as_array();
  CHECK(a[0].as_string() == "a\"b\\c/d\b\f\n\r\t");
  CHECK(a[1].as_string() == "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  CHECK(a[2].as_string() == a[1].as_string());
  // Writer escapes minimally and round-trips.
  Json w = Json::array({Json("q\"\\\n\x01"), Json(a[1].as_string())});
  CHECK(w.dump() == "[\"q\\\"\\\\\\n\\u0001\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]");
  CHECK(Json::parse(w.dump()).dump() == w.dump());
}

TEST_CASE("json: writer is compact and exact") {
  Json o = Json::object();
  o.set("k", 1);
  o.set("f", 0.1);
  o.set("n", nullptr);
  o.set("arr", Json::array({Json(true), Json(int64_t(-5)), Json("s")}));
  CHECK(o.dump() == R"({"k":1,"f":0.10000000000000001,"n":null,"arr":[true,-5,"s"]})");
  CHECK(Json::parse(o.dump()).at("f").as_double() == 0.1);
  o.set("k", 2);  // replace keeps position
  CHECK(o.dump().rfind(R"({"k":2,)", 0) == 0);
  expect_error([] { Json(std::nan("")).dump(); }, {"NaN"});
}

TEST_CASE("json: malformed input gives a message with the context and byte position") {
  struct Case {
    const char* text;
    const char* needle;
  };
  const Case cases[] = {
      {"", "unexpected end of text"},
      {"{", "unexpected end of text inside an object"},
      {"{\"a\":1,}", "expected a string key"},
      {"[1,]", "unexpected character"},
      {"[1 2]", "expected ',' or ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\":1,\"a\":2}", "duplicate key 'a'"},
      {"01", "leading zero"},
      {"-", "a digit must follow '-'"},
      {"1.", "a digit must follow '.'"},
      {"1e", "a digit must follow the exponent"},
      {"\"abc", "unterminated string"},
      {"\"a\x01\"", "unescaped control character"},
      {"\"\\x\"", "invalid escape"},
      {"\"\\u12zz\"", "invalid hex digit"},
      {"\"\\ud800\"", "lone high surrogate"},
      {"\"\\udc00\"", "lone low surrogate"},
      {"\"\xc3\x28\"", "invalid UTF-8"},
      {"\"\xed\xa0\x80\"", "invalid UTF-8"},  // encoded surrogate
      {"\"\xc0\xaf\"", "invalid UTF-8"},      // overlong
      {"tru", "invalid literal"},
      {"1 2", "trailing characters"},
      {"// c\n1", "unexpected character"},
  };
  for (const auto& c : cases) {
    std::string text = c.text;
    CAPTURE(text);
    expect_error([&] { Json::parse(c.text, "ctx.json"); }, {"ctx.json", c.needle, "at byte"});
  }
  // Depth limit instead of a stack overflow.
  std::string deep(100000, '[');
  expect_error([&] { Json::parse(deep, "deep"); }, {"nesting deeper than 128"});
  std::string ok(100, '[');
  ok += std::string(100, ']');
  CHECK(Json::parse(ok).is_array());
}

TEST_CASE("json: accessors name what was expected") {
  Json j = Json::parse(R"({"s":"x","n":-1,"f":1.5})");
  expect_error([&] { j.at("s").as_int("calib baseline"); }, {"calib baseline", "integer", "a string"});
  expect_error([&] { j.at("n").as_uint("shape"); }, {"shape", "non-negative"});
  expect_error([&] { j.at("f").as_int("x"); }, {"x", "integer"});
  expect_error([&] { j.at("nope"); }, {"no key 'nope'"});
  expect_error([&] { j.as_array("root"); }, {"root", "array", "an object"});
}
