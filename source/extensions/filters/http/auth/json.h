#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// A strict, bounded JSON reader for what JWTs and JWKS documents carry (RFC 8259), built on
// RapidJSON's SAX reader (json.cc fills this small value type from its events). It reads
// attacker-controlled text on the request path, so it keeps what a generic DOM loses:
// - duplicate object members are an error (RFC 7515 4: a JOSE header or claim set with
//   duplicates may not be accepted ambiguously);
// - numbers keep their text, so `exp` is checked as written (no silent rounding of 1e400), and
//   a number too big for a double is still a number (the claim check refuses it, not the parser);
// - nesting is limited (kMaxJsonDepth), strings must be valid UTF-8 and escapes may not encode
//   a lone surrogate; no comments, trailing commas, NaN or text after the value.
class JsonValue {
 public:
  enum class Type : uint8_t { Null, Bool, Number, String, Array, Object };

  Type type() const { return type_; }
  bool isString() const { return type_ == Type::String; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isObject() const { return type_ == Type::Object; }
  bool isArray() const { return type_ == Type::Array; }
  bool boolValue() const { return bool_; }
  // String: the decoded value. Number: the literal text.
  const std::string& str() const { return str_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }
  // Object member by name, or nullptr.
  const JsonValue* find(absl::string_view name) const;
  // Object member that is a string, or nullptr.
  const std::string* findString(absl::string_view name) const;

  // The value as text for a header: strings as they are, numbers and booleans as written,
  // arrays and objects as compact JSON.
  std::string toHeaderValue() const;

 private:
  friend class JsonBuilder;
  Type type_ = Type::Null;
  bool bool_ = false;
  std::string str_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

constexpr int kMaxJsonDepth = 32;

// Parses one JSON value that makes up the whole of `text` (whitespace around it allowed).
absl::StatusOr<JsonValue> parseJson(absl::string_view text);

// A JSON number as seconds since the epoch (exp, nbf): an integer or decimal whose magnitude is
// below 1e13 (year ~318857), else an error. Fractions are truncated toward negative infinity.
absl::StatusOr<int64_t> jsonNumericDate(const JsonValue& v);

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
