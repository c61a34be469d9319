#include "source/common/common/json_value.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>

#include "absl/strings/numbers.h"
#include "rapidjson/error/error.h"
#include "rapidjson/reader.h"
#include "source/common/common/json.h"

namespace sluice {
namespace Json {

const Value* Value::find(absl::string_view name) const {
  for (const auto& [k, v] : members_) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value* Value::find(absl::string_view name) {
  for (auto& [k, v] : members_) {
    if (k == name) return &v;
  }
  return nullptr;
}

const std::string* Value::findString(absl::string_view name) const {
  const Value* v = find(name);
  return v != nullptr && v->isString() ? &v->str_ : nullptr;
}

Value& Value::set(absl::string_view name, Value v) {
  Value* existing = find(name);
  if (existing != nullptr) {
    *existing = std::move(v);
    return *existing;
  }
  return members_.emplace_back(std::string(name), std::move(v)).second;
}

bool Value::remove(absl::string_view name) {
  for (auto it = members_.begin(); it != members_.end(); ++it) {
    if (it->first == name) {
      members_.erase(it);
      return true;
    }
  }
  return false;
}

namespace {

void appendCompact(const Value& v, std::string& out) {
  switch (v.type()) {
    case Value::Type::Null:
      out += "null";
      break;
    case Value::Type::Bool:
      out += v.boolValue() ? "true" : "false";
      break;
    case Value::Type::Number:
      out += v.str();
      break;
    case Value::Type::String:
      appendString(out, v.str());
      break;
    case Value::Type::Array: {
      out += '[';
      bool first = true;
      for (const Value& i : v.items()) {
        if (!first) out += ',';
        first = false;
        appendCompact(i, out);
      }
      out += ']';
      break;
    }
    case Value::Type::Object: {
      out += '{';
      bool first = true;
      for (const auto& [k, m] : v.members()) {
        if (!first) out += ',';
        first = false;
        appendString(out, k);
        out += ':';
        appendCompact(m, out);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

void Value::appendJson(std::string& out) const { appendCompact(*this, out); }

std::string Value::toJson() const {
  std::string out;
  appendCompact(*this, out);
  return out;
}

std::string Value::toHeaderValue() const {
  if (type_ == Type::String) return str_;
  return toJson();
}

// Fills a Value from RapidJSON's SAX events, enforcing what the reader does not: the depth
// limit, the duplicate member rule and no lone surrogate from a `\uDC00` escape (RapidJSON refuses
// unpaired high surrogates and, with kParseValidateEncodingFlag, invalid UTF-8 in the text).
class ValueBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ValueBuilder> {
 public:
  // `numbers`: the literal text of each number, in document order, when the reader sees
  // placeholders instead (see parseWithNumberPlaceholders); nullptr otherwise.
  // `escapes`: whether the text has a backslash (else no string needs the surrogate check).
  ValueBuilder(Value& root, const std::vector<absl::string_view>* numbers, bool escapes,
               const ParseOptions& options)
      : root_(root),
        numbers_(numbers),
        escapes_(escapes),
        max_depth_(std::min(options.max_depth, kMaxDepthLimit)),
        reject_duplicates_(options.reject_duplicate_names) {}

  const char* error() const { return error_; }

  bool Null() {
    value(Value::Type::Null);
    return true;
  }
  bool Bool(bool b) {
    value(Value::Type::Bool)->bool_ = b;
    return true;
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    Value* v = value(Value::Type::Number);
    if (numbers_ == nullptr) {
      v->str_.assign(s, n);
      return true;
    }
    if (next_number_ >= numbers_->size()) return fail("invalid number");
    const absl::string_view text = (*numbers_)[next_number_++];
    v->str_.assign(text.data(), text.size());
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (escapes_ && hasEncodedSurrogate(s, n)) return fail("lone surrogate");
    value(Value::Type::String)->str_.assign(s, n);
    return true;
  }
  bool StartObject() { return open(Value::Type::Object); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (escapes_ && hasEncodedSurrogate(s, n)) return fail("lone surrogate");
    auto& members = stack_[depth_ - 1]->members_;
    // Members are big (a name and a value): start with room for a few rather than growing
    // through 1, 2 and 4, moving them each time.
    if (members.capacity() == 0) members.reserve(4);
    const absl::string_view key(s, n);
    for (auto& m : members) {
      if (m.first == key) {
        if (reject_duplicates_) return fail("duplicate member name");
        // The last value wins, where the first member stood. The slot stays put while the
        // value is read: its object only grows at the next Key().
        m.second = Value();
        member_slot_[depth_ - 1] = &m.second;
        return true;
      }
    }
    member_slot_[depth_ - 1] =
        &members
             .emplace_back(std::piecewise_construct, std::forward_as_tuple(s, n),
                           std::forward_as_tuple())
             .second;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    return true;
  }
  bool StartArray() { return open(Value::Type::Array); }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    return true;
  }

 private:
  // A `\uDC00`-`\uDFFF` escape is the only way a surrogate reaches a decoded string: UTF-8
  // ED A0..BF. (Text bytes are validated, and RapidJSON pairs or refuses high surrogates.)
  static bool hasEncodedSurrogate(const char* s, size_t n) {
    const char* end = s + n;
    for (const char* p = s;
         (p = static_cast<const char*>(std::memchr(p, '\xED', end - p))) != nullptr; ++p) {
      if (end - p > 1 && static_cast<unsigned char>(p[1]) >= 0xA0) return true;
    }
    return false;
  }

  bool fail(const char* what) {
    error_ = what;
    return false;
  }

  // The slot for the next value: the root, a new array item, or the member Key() just named.
  Value* value(Value::Type type) {
    Value* v;
    if (depth_ == 0) {
      v = &root_;
    } else if (stack_[depth_ - 1]->type_ == Value::Type::Array) {
      auto& items = stack_[depth_ - 1]->items_;
      if (items.capacity() == 0) items.reserve(4);
      v = &items.emplace_back();
    } else {
      v = member_slot_[depth_ - 1];
    }
    v->type_ = type;
    return v;
  }

  // Pointers into parents stay valid: only the innermost open container grows.
  bool open(Value::Type type) {
    if (depth_ >= max_depth_) return fail("JSON nested too deeply");
    Value* v = value(type);
    stack_[depth_++] = v;
    return true;
  }

  Value& root_;
  const std::vector<absl::string_view>* numbers_;
  const bool escapes_;
  const int max_depth_;
  const bool reject_duplicates_;
  size_t next_number_ = 0;
  Value* stack_[kMaxDepthLimit];
  Value* member_slot_[kMaxDepthLimit];
  int depth_ = 0;
  const char* error_ = nullptr;
};

namespace {

// RapidJSON's in-situ stream over a mutable, NUL-terminated copy of the text: strings are
// decoded in place (no second buffer) and numbers read where they stand. The reader takes '\0'
// as the end of the input, so parseOnce() first turns embedded NULs (never valid JSON) into 0x01
// (never valid either), keeping "text after the value" and "control character" refused.
class Input {
 public:
  using Ch = char;
  explicit Input(char* text) : begin_(text), src_(text), dst_(nullptr) {}
  char Peek() const { return *src_; }
  char Take() { return *src_++; }
  size_t Tell() const { return static_cast<size_t>(src_ - begin_); }
  char* PutBegin() { return dst_ = src_; }
  void Put(char c) { *dst_++ = c; }
  void Flush() {}
  size_t PutEnd(char* begin) { return static_cast<size_t>(dst_ - begin); }

 private:
  char* begin_;
  char* src_;
  char* dst_;
};

}  // namespace
}  // namespace Json
}  // namespace sluice

// Input is a few pointers: the reader keeps a local copy while it parses (as for RapidJSON's own
// InsituStringStream, whose in-situ number handling relies on it).
template <>
struct rapidjson::StreamTraits<sluice::Json::Input> {
  enum { copyOptimization = 1 };
};

namespace sluice {
namespace Json {
namespace {

constexpr unsigned kParseFlags = rapidjson::kParseInsituFlag |
                                 rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseNumbersAsStringsFlag;
// ASCII text is valid UTF-8: the reader's per-character validation is skipped for it.
constexpr unsigned kParseAsciiFlags = kParseFlags & ~rapidjson::kParseValidateEncodingFlag;

bool isAscii(absl::string_view text) {
  unsigned char any = 0;
  for (unsigned char c : text) any |= c;  // vectorises
  return (any & 0x80) == 0;
}

// The message the reader's error gets (the same words for the same faults as the parser this
// replaced; config errors for a local JWKS show them).
const char* errorMessage(rapidjson::ParseErrorCode code, size_t offset, absl::string_view text) {
  const bool at_end = offset >= text.size();
  const char here = at_end ? '\0' : text[offset];
  const char before = offset > 0 && offset <= text.size() ? text[offset - 1] : '\0';
  switch (code) {
    case rapidjson::kParseErrorDocumentEmpty:
      return "unexpected end of JSON";
    case rapidjson::kParseErrorDocumentRootNotSingular:
      return "trailing characters after the JSON value";
    case rapidjson::kParseErrorValueInvalid:
      // Reported inside a bad literal (`tru`), after a `-` without digits, or where a value
      // should start.
      if (before >= 'a' && before <= 'z') return "invalid literal";
      if (at_end) return before == '-' ? "invalid number" : "unexpected end of JSON";
      return "invalid value";
    case rapidjson::kParseErrorObjectMissName:
      return "expected a member name";
    case rapidjson::kParseErrorObjectMissColon:
      return "expected ':'";
    case rapidjson::kParseErrorObjectMissCommaOrCurlyBracket:
      return at_end ? "unexpected end of JSON" : "expected ',' or '}'";
    case rapidjson::kParseErrorArrayMissCommaOrSquareBracket:
      return at_end ? "unexpected end of JSON" : "expected ',' or ']'";
    case rapidjson::kParseErrorStringUnicodeEscapeInvalidHex:
      return "bad \\u escape";
    case rapidjson::kParseErrorStringUnicodeSurrogateInvalid:
      return "lone surrogate";
    case rapidjson::kParseErrorStringEscapeInvalid:
      // Reported at the backslash of a bad escape, or at an unescaped control character.
      if (here != '\\') return "control character in string";
      return offset + 1 >= text.size() ? "unterminated string" : "bad escape in string";
    case rapidjson::kParseErrorStringMissQuotationMark:
      return "unterminated string";
    case rapidjson::kParseErrorStringInvalidEncoding:
      return "invalid UTF-8 in string";
    case rapidjson::kParseErrorNumberTooBig:
    case rapidjson::kParseErrorNumberMissFraction:
    case rapidjson::kParseErrorNumberMissExponent:
      return "invalid number";
    default:
      return "invalid JSON";
  }
}

struct Attempt {
  rapidjson::ParseResult result;
  const char* handler_error = nullptr;
};

Attempt parseOnce(absl::string_view text, Value& out, const std::vector<absl::string_view>* numbers,
                  const ParseOptions& options) {
  // Reused per thread: no allocation per token once it has grown (a big JWKS gives it back).
  thread_local std::string buffer;
  buffer.assign(text.data(), text.size());
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) {
    std::replace(buffer.begin(), buffer.end(), '\0', '\x01');
  }
  // Without a backslash no string has an escape, so none can hold a surrogate.
  const bool escapes = std::memchr(text.data(), '\\', text.size()) != nullptr;
  ValueBuilder builder(out, numbers, escapes, options);
  Input in(buffer.data());
  rapidjson::Reader reader;
  Attempt a;
  a.result = isAscii(text) ? reader.Parse<kParseAsciiFlags>(in, builder)
                           : reader.Parse<kParseFlags>(in, builder);
  a.handler_error = builder.error();
  if (buffer.capacity() > (64 << 10)) std::string().swap(buffer);
  return a;
}

// The length of the JSON number -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at the start of
// `s`, read greedily as a JSON reader does, or 0 when `s` does not start with a whole one.
size_t jsonNumberLength(absl::string_view s) {
  size_t i = 0;
  auto digits = [&]() {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (i >= s.size() || s[i] < '1' || !digits()) {
    return 0;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return 0;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return 0;
  }
  return i;
}

bool isAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isAsciiDigit(char c) { return c >= '0' && c <= '9'; }
bool isNumberChar(char c) {
  return isAsciiDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// RapidJSON refuses a number a double cannot hold (1e400, 400 digits) even when it reports
// numbers as text; JSON does not, and neither does this reader (the claim check refuses such an
// `exp`). So after kParseErrorNumberTooBig the text is parsed again with every well-formed
// number outside strings replaced by a placeholder of the same length ("0" and spaces), and the
// builder is given the original texts in order. What follows a number is left as it is, for the
// reader to refuse where it did before.
Attempt parseWithNumberPlaceholders(absl::string_view text, Value& out,
                                    const ParseOptions& options) {
  std::string copy(text);
  std::vector<absl::string_view> numbers;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      ++i;
    } else if (isAsciiLetter(c)) {
      while (i < text.size() && (isAsciiLetter(text[i]) || isAsciiDigit(text[i]))) ++i;
    } else if (c == '-' || isAsciiDigit(c)) {
      // Only a whole number where a token starts is replaced: the placeholder must not join
      // what is around it into a different token (`0.-3` is not `0.0 `).
      const size_t n = i > 0 && isNumberChar(text[i - 1]) ? 0 : jsonNumberLength(text.substr(i));
      if (n == 0) {
        while (i < text.size() && isNumberChar(text[i])) ++i;
        continue;
      }
      numbers.push_back(text.substr(i, n));
      copy[i] = '0';
      std::fill(copy.begin() + i + 1, copy.begin() + i + n, ' ');
      i += n;
    } else {
      ++i;
    }
  }
  out = Value();
  return parseOnce(copy, out, &numbers, options);
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of a `\uXXXX` escape at `s[i]`, or -1.
int32_t unicodeEscape(absl::string_view s, size_t i) {
  if (s.size() - i < 6 || s[i] != '\\' || s[i + 1] != 'u') return -1;
  int32_t cp = 0;
  for (size_t k = i + 2; k < i + 6; ++k) {
    const int h = hexDigit(s[k]);
    if (h < 0) return -1;
    cp = cp * 16 + h;
  }
  return cp;
}

// Whether a string escape before `limit` is a lone low surrogate (`\uDC00`). The builder sees a
// string only once it is complete, so when the reader stops later in the same string this finds
// the fault that comes first.
bool loneLowSurrogateBefore(absl::string_view text, size_t limit) {
  bool in_string = false;
  for (size_t i = 0; i < limit && i < text.size(); ++i) {
    const char c = text[i];
    if (!in_string) {
      in_string = c == '"';
    } else if (c == '"') {
      in_string = false;
    } else if (c == '\\') {
      const int32_t cp = unicodeEscape(text, i);
      if (cp >= 0xDC00 && cp <= 0xDFFF) return true;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        const int32_t lo = unicodeEscape(text, i + 6);
        if (lo >= 0xDC00 && lo <= 0xDFFF) i += 6;
      }
      ++i;  // the escaped character ('u' and its digits are skipped as plain text)
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<Value> parse(absl::string_view text, const ParseOptions& options) {
  Value v;
  Attempt a = parseOnce(text, v, nullptr, options);
  if (a.result.Code() == rapidjson::kParseErrorNumberTooBig) {
    a = parseWithNumberPlaceholders(text, v, options);
  }
  if (a.result.IsError()) {
    if (a.handler_error != nullptr) return absl::InvalidArgumentError(a.handler_error);
    if (loneLowSurrogateBefore(text, a.result.Offset())) {
      return absl::InvalidArgumentError("lone surrogate");
    }
    return absl::InvalidArgumentError(errorMessage(a.result.Code(), a.result.Offset(), text));
  }
  return v;
}

}  // namespace Json
}  // namespace sluice
