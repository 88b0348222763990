// io/json.cpp — recursive-descent JSON reader (strict, depth-limited) and compact writer. See io/json.h.
#include "io/json.h"

#include <cmath>
#include <cstring>
#include <unordered_set>

#include "core/check.h"

namespace stereort {
namespace io {

Json::Json(int64_t v) : type_(Type::Number), neg_(v < 0), int_kind_(IntKind::Exact), num_(double(v)) {
  mag_ = v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v);
}
Json::Json(uint64_t v) : type_(Type::Number), int_kind_(IntKind::Exact), mag_(v), num_(double(v)) {}
Json::Json(double v) : type_(Type::Number), num_(v) {}

Json Json::array(Array a) {
  Json j;
  j.type_ = Type::Array;
  j.arr_ = std::move(a);
  return j;
}
Json Json::object(Object o) {
  Json j;
  j.type_ = Type::Object;
  j.obj_ = std::move(o);
  return j;
}

const char* Json::type_name() const {
  switch (type_) {
    case Type::Null: return "null";
    case Type::Bool: return "a boolean";
    case Type::Number: return "a number";
    case Type::String: return "a string";
    case Type::Array: return "an array";
    case Type::Object: return "an object";
  }
  return "?";
}

bool Json::is_int() const {
  if (type_ != Type::Number || int_kind_ == IntKind::None) return false;
  return neg_ ? mag_ <= uint64_t(INT64_MAX) + 1 : mag_ <= uint64_t(INT64_MAX);
}

bool Json::as_bool(const std::string& what) const {
  STEREORT_CHECK(is_bool(), "{} must be a boolean, got {}", what, type_name());
  return bool_;
}
double Json::as_double(const std::string& what) const {
  STEREORT_CHECK(is_number(), "{} must be a number, got {}", what, type_name());
  return num_;
}
int64_t Json::as_int(const std::string& what) const {
  STEREORT_CHECK(is_int(), "{} must be an integer, got {}", what, is_number() ? "a non-integer or out-of-range number"
                                                                              : type_name());
  return neg_ ? int64_t(uint64_t(0) - mag_) : int64_t(mag_);
}
uint64_t Json::as_uint(const std::string& what) const {
  STEREORT_CHECK(is_uint(), "{} must be a non-negative integer, got {}", what,
                 is_number() ? "a negative, fractional or out-of-range number" : type_name());
  return mag_;
}
const std::string& Json::as_string(const std::string& what) const {
  STEREORT_CHECK(is_string(), "{} must be a string, got {}", what, type_name());
  return str_;
}
const Json::Array& Json::as_array(const std::string& what) const {
  STEREORT_CHECK(is_array(), "{} must be an array, got {}", what, type_name());
  return arr_;
}
const Json::Object& Json::as_object(const std::string& what) const {
  STEREORT_CHECK(is_object(), "{} must be an object, got {}", what, type_name());
  return obj_;
}

const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& kv : obj_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}
const Json& Json::at(const std::string& key) const {
  const Json* j = find(key);
  STEREORT_CHECK(j, "JSON object has no key '{}'", key);
  return *j;
}
Json& Json::set(const std::string& key, Json v) {
  STEREORT_CHECK(type_ == Type::Object || type_ == Type::Null, "Json::set: not an object ({})", type_name());
  type_ = Type::Object;
  for (auto& kv : obj_)
    if (kv.first == key) return kv.second = std::move(v);
  obj_.emplace_back(key, std::move(v));
  return obj_.back().second;
}
Json& Json::push(Json v) {
  STEREORT_CHECK(type_ == Type::Array || type_ == Type::Null, "Json::push: not an array ({})", type_name());
  type_ = Type::Array;
  arr_.push_back(std::move(v));
  return arr_.back();
}
size_t Json::size() const { return is_array() ? arr_.size() : is_object() ? obj_.size() : 0; }

// ---- UTF-8 ---------------------------------------------------------------------------------------------------------

// Length of the valid UTF-8 sequence starting at s[i], or 0 when invalid.
static size_t utf8_seq(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return uint8_t(s[k]); };
  uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  uint8_t c1 = b(i + 1);
  if (c == 0xE0 && c1 < 0xA0) return 0;   // overlong
  if (c == 0xED && c1 >= 0xA0) return 0;  // surrogate
  if (c == 0xF0 && c1 < 0x90) return 0;   // overlong
  if (c == 0xF4 && c1 >= 0x90) return 0;  // > U+10FFFF
  return n;
}

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_seq(s, i);
    if (!n) return false;
    i += n;
  }
  return true;
}

static void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// ---- reader --------------------------------------------------------------------------------------------------------

class JsonParser {
 public:
  JsonParser(std::string_view t, const std::string& ctx) : t_(t), ctx_(ctx) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (i_ != t_.size()) fail("unexpected trailing characters after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 128;
  std::string_view t_;
  const std::string& ctx_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    STEREORT_FAIL("{}: {} at byte {}", ctx_, what, i_);
  }
  bool eof() const { return i_ >= t_.size(); }
  char peek() const { return eof() ? '\0' : t_[i_]; }
  void skip_ws() {
    while (!eof() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  void expect(char c, const char* what) {
    if (eof()) fail(std::string("unexpected end of text, expected ") + what);
    if (t_[i_] != c) fail(std::string("expected ") + what);
    ++i_;
  }
  void literal(const char* word) {
    size_t n = std::strlen(word);
    if (t_.substr(i_, n) != word) fail("invalid literal (expected a value)");
    i_ += n;
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 128 levels");
    if (eof()) fail("unexpected end of text, expected a value");
    char c = t_[i_];
    switch (c) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return Json(parse_string());
      case 't': literal("true"); return Json(true);
      case 'f': literal("false"); return Json(false);
      case 'n': literal("null"); return Json();
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        fail(fmt::format("unexpected character 0x{:02x} (expected a value)", uint8_t(c)));
    }
  }

  Json parse_object(int depth) {
    expect('{', "'{'");
    Json obj = Json::object();
    std::unordered_set<std::string> seen;
    skip_ws();
    if (peek() == '}') {
      ++i_;
      return obj;
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') fail(eof() ? "unexpected end of text inside an object" : "expected a string key");
      size_t key_at = i_;
      std::string key = parse_string();
      if (!seen.insert(key).second) {
        i_ = key_at;
        fail("duplicate key '" + key + "'");
      }
      skip_ws();
      expect(':', "':' after an object key");
      skip_ws();
      Json v = parse_value(depth + 1);
      obj.obj_.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == '}') {
        ++i_;
        return obj;
      }
      fail(eof() ? "unexpected end of text inside an object" : "expected ',' or '}' in an object");
    }
  }

  Json parse_array(int depth) {
    expect('[', "'['");
    Json arr = Json::array();
    skip_ws();
    if (peek() == ']') {
      ++i_;
      return arr;
    }
    for (;;) {
      skip_ws();
      arr.arr_.push_back(parse_value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == ']') {
        ++i_;
        return arr;
      }
      fail(eof() ? "unexpected end of text inside an array" : "expected ',' or ']' in an array");
    }
  }

  uint32_t hex4() {
    if (i_ + 4 > t_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else fail("invalid hex digit in a \\u escape");
    }
    return v;
  }

  std::string parse_string() {
    expect('"', "'\"'");
    std::string out;
    for (;;) {
      if (eof()) fail("unterminated string");
      uint8_t c = uint8_t(t_[i_]);
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) fail("unescaped control character in a string");
      if (c == '\\') {
        ++i_;
        if (eof()) fail("unterminated escape");
        char e = t_[i_++];
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
            uint32_t cp = hex4();
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (t_.substr(i_, 2) != "\\u") fail("lone high surrogate in a \\u escape");
              i_ += 2;
              uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid low surrogate in a \\u escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              fail("lone low surrogate in a \\u escape");
            }
            append_utf8(out, cp);
            break;
          }
          default: --i_; fail("invalid escape character");
        }
        continue;
      }
      size_t n = utf8_seq(t_, i_);
      if (!n) fail("invalid UTF-8 in a string");
      out.append(t_.data() + i_, n);
      i_ += n;
    }
  }

  Json parse_number() {
    size_t start = i_;
    bool neg = false;
    if (peek() == '-') {
      neg = true;
      ++i_;
    }
    if (eof() || !(peek() >= '0' && peek() <= '9')) fail("invalid number (a digit must follow '-')");
    if (peek() == '0' && i_ + 1 < t_.size() && t_[i_ + 1] >= '0' && t_[i_ + 1] <= '9') fail("leading zero in a number");
    bool integral = true, overflow = false;
    uint64_t mag = 0;
    while (!eof() && peek() >= '0' && peek() <= '9') {
      uint64_t d = uint64_t(peek() - '0');
      if (mag > (UINT64_MAX - d) / 10) overflow = true;
      else mag = mag * 10 + d;
      ++i_;
    }
    if (peek() == '.') {
      integral = false;
      ++i_;
      if (eof() || !(peek() >= '0' && peek() <= '9')) fail("invalid number (a digit must follow '.')");
      while (!eof() && peek() >= '0' && peek() <= '9') ++i_;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (eof() || !(peek() >= '0' && peek() <= '9')) fail("invalid number (a digit must follow the exponent)");
      while (!eof() && peek() >= '0' && peek() <= '9') ++i_;
    }
    std::string lit(t_.substr(start, i_ - start));
    Json j;
    j.type_ = Json::Type::Number;
    j.num_ = std::strtod(lit.c_str(), nullptr);
    if (integral && !overflow && !(neg && mag == 0)) {
      j.int_kind_ = Json::IntKind::Exact;
      j.neg_ = neg;
      j.mag_ = mag;
    } else if (integral && !overflow) {  // "-0"
      j.int_kind_ = Json::IntKind::Exact;
      j.mag_ = 0;
    }
    return j;
  }
};

Json Json::parse(std::string_view text, const std::string& context) { return JsonParser(text, context).parse_document(); }

// ---- writer --------------------------------------------------------------------------------------------------------

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char ch : s) {
    uint8_t c = uint8_t(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += ch;
    }
  }
  out += '"';
  return out;
}

void Json::dump_to(std::string& out) const {
  switch (type_) {
    case Type::Null: out += "null"; break;
    case Type::Bool: out += bool_ ? "true" : "false"; break;
    case Type::Number:
      if (int_kind_ == IntKind::Exact) {
        if (neg_ && mag_ != 0) out += '-';
        out += std::to_string(mag_);
      } else {
        STEREORT_CHECK(std::isfinite(num_), "JSON cannot represent the number {} (NaN/inf)", num_);
        out += fmt::format("{:.17g}", num_);
      }
      break;
    case Type::String:
      STEREORT_CHECK(utf8_valid(str_), "JSON writer: string is not valid UTF-8");
      out += json_quote(str_);
      break;
    case Type::Array:
      out += '[';
      for (size_t k = 0; k < arr_.size(); ++k) {
        if (k) out += ',';
        arr_[k].dump_to(out);
      }
      out += ']';
      break;
    case Type::Object:
      out += '{';
      for (size_t k = 0; k < obj_.size(); ++k) {
        if (k) out += ',';
        STEREORT_CHECK(utf8_valid(obj_[k].first), "JSON writer: key is not valid UTF-8");
        out += json_quote(obj_[k].first);
        out += ':';
        obj_[k].second.dump_to(out);
      }
      out += '}';
      break;
  }
}

std::string Json::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

}  // namespace io
}  // namespace stereort
