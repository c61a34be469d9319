#include "source/extensions/filters/http/auth/json.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "source/common/common/json.h"

namespace sluice {
namespace Extensions {
namespace Auth {

const JsonValue* JsonValue::find(absl::string_view name) const {
  for (const auto& [k, v] : members_) {
    if (k == name) return &v;
  }
  return nullptr;
}

const std::string* JsonValue::findString(absl::string_view name) const {
  const JsonValue* v = find(name);
  return v != nullptr && v->isString() ? &v->str_ : nullptr;
}

namespace {

void appendCompact(const JsonValue& v, std::string& out) {
  switch (v.type()) {
    case JsonValue::Type::Null:
      out += "null";
      break;
    case JsonValue::Type::Bool:
      out += v.boolValue() ? "true" : "false";
      break;
    case JsonValue::Type::Number:
      out += v.str();
      break;
    case JsonValue::Type::String:
      out += Json::quote(v.str());
      break;
    case JsonValue::Type::Array: {
      out += '[';
      bool first = true;
      for (const JsonValue& i : v.items()) {
        if (!first) out += ',';
        first = false;
        appendCompact(i, out);
      }
      out += ']';
      break;
    }
    case JsonValue::Type::Object: {
      out += '{';
      bool first = true;
      for (const auto& [k, m] : v.members()) {
        if (!first) out += ',';
        first = false;
        out += Json::quote(k);
        out += ':';
        appendCompact(m, out);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string JsonValue::toHeaderValue() const {
  if (type_ == Type::String) return str_;
  std::string out;
  appendCompact(*this, out);
  return out;
}

class JsonParser {
 public:
  explicit JsonParser(absl::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  absl::StatusOr<JsonValue> parseDocument() {
    JsonValue v;
    skipWs();
    if (!parseValue(v, 0)) return absl::InvalidArgumentError(error_);
    skipWs();
    if (p_ != end_) return absl::InvalidArgumentError("trailing characters after the JSON value");
    return v;
  }

 private:
  bool fail(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  void skipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool literal(absl::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        absl::string_view(p_, word.size()) != word) {
      return fail("invalid literal");
    }
    p_ += word.size();
    return true;
  }

  bool parseValue(JsonValue& v, int depth) {
    if (p_ >= end_) return fail("unexpected end of JSON");
    switch (*p_) {
      case '{':
        return parseObject(v, depth + 1);
      case '[':
        return parseArray(v, depth + 1);
      case '"':
        v.type_ = JsonValue::Type::String;
        return parseString(v.str_);
      case 't':
        v.type_ = JsonValue::Type::Bool;
        v.bool_ = true;
        return literal("true");
      case 'f':
        v.type_ = JsonValue::Type::Bool;
        return literal("false");
      case 'n':
        return literal("null");
      default:
        v.type_ = JsonValue::Type::Number;
        return parseNumber(v.str_);
    }
  }

  bool parseObject(JsonValue& v, int depth) {
    if (depth > kMaxJsonDepth) return fail("JSON nested too deeply");
    v.type_ = JsonValue::Type::Object;
    ++p_;  // {
    skipWs();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    while (true) {
      skipWs();
      if (p_ >= end_ || *p_ != '"') return fail("expected a member name");
      std::string key;
      if (!parseString(key)) return false;
      for (const auto& m : v.members_) {
        if (m.first == key) return fail("duplicate member name");
      }
      skipWs();
      if (p_ >= end_ || *p_ != ':') return fail("expected ':'");
      ++p_;
      skipWs();
      v.members_.emplace_back(std::move(key), JsonValue());
      if (!parseValue(v.members_.back().second, depth)) return false;
      skipWs();
      if (p_ >= end_) return fail("unexpected end of JSON");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool parseArray(JsonValue& v, int depth) {
    if (depth > kMaxJsonDepth) return fail("JSON nested too deeply");
    v.type_ = JsonValue::Type::Array;
    ++p_;  // [
    skipWs();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      skipWs();
      v.items_.emplace_back();
      if (!parseValue(v.items_.back(), depth)) return false;
      skipWs();
      if (p_ >= end_) return fail("unexpected end of JSON");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  bool parseNumber(std::string& out) {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ >= end_) return fail("invalid number");
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      return fail("invalid value");
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') return fail("invalid number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') return fail("invalid number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    out.assign(start, p_ - start);
    return true;
  }

  static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex4(uint32_t& out) {
    if (end_ - p_ < 4) return fail("bad \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      int h = hexValue(p_[i]);
      if (h < 0) return fail("bad \\u escape");
      out = out * 16 + h;
    }
    p_ += 4;
    return true;
  }
  static void appendUtf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  // Validates one UTF-8 sequence starting at p_ (a byte >= 0x80) and copies it.
  bool utf8Sequence(std::string& out) {
    const unsigned char c = static_cast<unsigned char>(*p_);
    int n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return fail("invalid UTF-8 in string");
    }
    if (end_ - p_ <= n) return fail("invalid UTF-8 in string");
    for (int i = 1; i <= n; ++i) {
      const unsigned char cc = static_cast<unsigned char>(p_[i]);
      if ((cc & 0xC0) != 0x80) return fail("invalid UTF-8 in string");
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return fail("invalid UTF-8 in string");
    }
    out.append(p_, n + 1);
    p_ += n + 1;
    return true;
  }

  bool parseString(std::string& out) {
    ++p_;  // opening quote
    while (true) {
      if (p_ >= end_) return fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return fail("control character in string");
      if (c >= 0x80) {
        if (!utf8Sequence(out)) return false;
        continue;
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        ++p_;
        continue;
      }
      ++p_;
      if (p_ >= end_) return fail("unterminated string");
      const char e = *p_++;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return fail("lone surrogate");
            p_ += 2;
            if (!hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("lone surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail("lone surrogate");
          }
          appendUtf8(cp, out);
          break;
        }
        default:
          return fail("bad escape in string");
      }
    }
  }

  const char* p_;
  const char* end_;
  std::string error_;
};

absl::StatusOr<JsonValue> parseJson(absl::string_view text) {
  JsonParser parser(text);
  return parser.parseDocument();
}

absl::StatusOr<int64_t> jsonNumericDate(const JsonValue& v) {
  if (!v.isNumber()) return absl::InvalidArgumentError("not a number");
  double d;
  if (!absl::SimpleAtod(v.str(), &d) || !std::isfinite(d) || std::fabs(d) >= 1e13) {
    return absl::InvalidArgumentError("number out of range");
  }
  return static_cast<int64_t>(std::floor(d));
}

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
