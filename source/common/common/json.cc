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
