// io/json.h — a small strict JSON value, reader and writer (RFC 8259), enough for safetensors headers, metadata,
//   stereo_calib.json and configs.
//   Reader: rejects comments, trailing commas, leading zeros, unescaped control characters, invalid UTF-8, lone
//     surrogates, duplicate object keys, and nesting deeper than 128; allows surrounding whitespace. Errors throw
//     stereort::Error "<context>: <problem> at byte <k>", where context names the source (e.g. the file).
//   Numbers keep their integer value exactly when the literal has no fraction/exponent and fits in int64 or uint64
//     (safetensors offsets); otherwise they are doubles.
//   Objects keep insertion (file) order. Writer: compact (no spaces), integers printed exactly, doubles with 17
//     significant digits, strings escaped minimally (", \, control characters; UTF-8 passes through).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stereort {
namespace io {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;                         // null
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::Bool), bool_(b) {}
  Json(int v) : Json(int64_t(v)) {}
  Json(int64_t v);
  Json(uint64_t v);
  Json(double v);
  Json(const char* s) : type_(Type::String), str_(s) {}
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}
  static Json array(Array a = {});
  static Json object(Object o = {});

  static Json parse(std::string_view text, const std::string& context = "JSON");
  std::string dump() const;

  Type type() const { return type_; }
  const char* type_name() const;
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }
  // Integer literal that fits uint64 (>= 0) / int64.
  bool is_uint() const { return type_ == Type::Number && int_kind_ != IntKind::None && !neg_; }
  bool is_int() const;

  // Accessors throw stereort::Error naming `what` (e.g. "tensor 'x' dtype") when the type does not match.
  bool as_bool(const std::string& what = "value") const;
  double as_double(const std::string& what = "value") const;
  int64_t as_int(const std::string& what = "value") const;
  uint64_t as_uint(const std::string& what = "value") const;
  const std::string& as_string(const std::string& what = "value") const;
  const Array& as_array(const std::string& what = "value") const;
  const Object& as_object(const std::string& what = "value") const;

  // Object access: nullptr / throws when missing.
  const Json* find(const std::string& key) const;
  const Json& at(const std::string& key) const;
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  // Building.
  Json& set(const std::string& key, Json v);  // object: replace or append
  Json& push(Json v);                         // array: append
  size_t size() const;                        // array/object element count, 0 otherwise

 private:
  enum class IntKind : uint8_t { None, Exact };
  Type type_ = Type::Null;
  bool bool_ = false;
  bool neg_ = false;
  IntKind int_kind_ = IntKind::None;
  uint64_t mag_ = 0;   // |integer| when int_kind_ == Exact
  double num_ = 0;
  std::string str_;
  Array arr_;
  Object obj_;

  friend class JsonParser;
  void dump_to(std::string& out) const;
};

// Quote and escape a string as a JSON string literal.
std::string json_quote(std::string_view s);
// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool utf8_valid(std::string_view s);

}  // namespace io
}  // namespace stereort
