#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice {
namespace Json {

// A strict, bounded JSON value (RFC 8259), read with RapidJSON's SAX reader (json_value.cc fills
// it from the reader's events). It reads attacker-controlled text on the request path (JWTs,
// JWKS documents, request and response bodies a transformer rewrites), so it keeps what a
// generic DOM loses:
// - members stay in document order, and what to do with a duplicate member name is the caller's
//   choice (ParseOptions): an error (RFC 7515 4: a JOSE header or claim set with duplicates may
//   not be accepted ambiguously), or one member with the last value, where the first one stood
//   (what JavaScript's JSON.parse and Lua's cjson keep; a transformer that removes a key then
//   removes every copy of it, so no other reader can find one the gateway did not see);
// - numbers keep their text, so they are written back exactly as they came (no rounding of
//   12345678901234567890, no 1e400 turned into an error or infinity);
// - nesting is limited (ParseOptions::max_depth), strings must be valid UTF-8 and escapes may
//   not encode a lone surrogate; no comments, trailing commas, NaN or text after the value.
class Value {
 public:
  enum class Type : uint8_t { Null, Bool, Number, String, Array, Object };
  using Member = std::pair<std::string, Value>;

  Value() = default;
  static Value null() { return Value(); }
  static Value boolean(bool b) {
    Value v(Type::Bool);
    v.bool_ = b;
    return v;
  }
  // `text` must be a JSON number literal.
  static Value number(std::string text) {
    Value v(Type::Number);
    v.str_ = std::move(text);
    return v;
  }
  static Value string(std::string s) {
    Value v(Type::String);
    v.str_ = std::move(s);
    return v;
  }
  static Value object() { return Value(Type::Object); }
  static Value array() { return Value(Type::Array); }

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::Null; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isString() const { return type_ == Type::String; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isObject() const { return type_ == Type::Object; }
  bool isArray() const { return type_ == Type::Array; }
  bool boolValue() const { return bool_; }
  // String: the decoded value. Number: the literal text.
  const std::string& str() const { return str_; }
  const std::vector<Value>& items() const { return items_; }
  std::vector<Value>& items() { return items_; }
  const std::vector<Member>& members() const { return members_; }
  std::vector<Member>& members() { return members_; }
  // Object member by name, or nullptr.
  const Value* find(absl::string_view name) const;
  Value* find(absl::string_view name);
  // Object member that is a string, or nullptr.
  const std::string* findString(absl::string_view name) const;
  // Sets member `name` of an object: an existing one keeps its place, a new one goes last.
  Value& set(absl::string_view name, Value v);
  // Removes member `name` of an object; false when there was none.
  bool remove(absl::string_view name);

  // Compact JSON text (numbers as they were read, strings escaped as Json::appendString does).
  std::string toJson() const;
  void appendJson(std::string& out) const;
  // The value as text for a header: strings as they are, numbers and booleans as written,
  // arrays and objects as compact JSON.
  std::string toHeaderValue() const;

 private:
  friend class ValueBuilder;
  explicit Value(Type type) : type_(type) {}
  Type type_ = Type::Null;
  bool bool_ = false;
  std::string str_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

// Deepest nesting any caller may ask for.
constexpr int kMaxDepthLimit = 128;

struct ParseOptions {
  // Arrays and objects nested deeper than this are an error (at most kMaxDepthLimit).
  int max_depth = 32;
  // A second member of the same name in one object: an error, or its value replaces the first
  // member's (which keeps its place).
  bool reject_duplicate_names = true;
};

// Parses one JSON value that makes up the whole of `text` (whitespace around it allowed).
absl::StatusOr<Value> parse(absl::string_view text, const ParseOptions& options = {});

}  // namespace Json
}  // namespace sluice
