#include "source/common/common/json.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sluice {
namespace Json {

void appendString(std::string& out, absl::string_view s) {
  out += '"';
  appendEscaped(out, s);
  out += '"';
}

void appendEscaped(std::string& out, absl::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  // Runs of characters that need no escape are copied whole.
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(s.data() + run, s.size() - run);
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80), or 0 (RFC 3629 table:
// no overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8SequenceLength(absl::string_view s, size_t i) {
  const auto byte = [&s](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return n;
}

}  // namespace

void appendStringUtf8Safe(std::string& out, absl::string_view s) {
  out += '"';
  size_t run = 0;  // start of the text not written yet
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8SequenceLength(s, i);
    if (n > 0) {
      i += n;
      continue;
    }
    appendEscaped(out, s.substr(run, i - run));
    out += "\\ufffd";
    ++i;
    run = i;
  }
  appendEscaped(out, s.substr(run));
  out += '"';
}

void Writer::value(uint64_t v) {
  sep();
  absl::StrAppend(&out_, v);
}

void Writer::value(int64_t v) {
  sep();
  absl::StrAppend(&out_, v);
}

void Writer::value(double v) {
  sep();
  absl::StrAppend(&out_, absl::StrFormat("%.10g", v));
}

}  // namespace Json
}  // namespace sluice
