#include "source/common/common/json.h"

#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sluice {
namespace Json {

void appendString(std::string& out, absl::string_view s) {
  out += '"';
  appendEscaped(out, s);
  out += '"';
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

// Whether any byte of the 8 in `w` needs a look: a control character, '"', '\\', DEL or a
// byte >= 0x80 (SWAR: each test sets the high bit of the bytes it matches).
inline bool wordNeedsCare(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (w - 0x20 * kOnes) & ~w & kHigh;
  return ((w & kHigh) | below_space | zero_byte(w ^ (0x22 * kOnes)) |
          zero_byte(w ^ (0x5c * kOnes)) | zero_byte(w ^ (0x7f * kOnes))) != 0;
}

// Bytes written as they are inside a JSON string: printable ASCII but '"' and '\\'.
struct PlainBytes {
  constexpr PlainBytes() : is() {
    for (int c = 0x20; c < 0x7f; ++c) is[c] = c != '"' && c != '\\';
  }
  bool is[256];
};
constexpr PlainBytes kPlain;

}  // namespace

void appendEscaped(std::string& out, absl::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  // Runs of characters that need no escape are copied whole; 8 bytes are looked at a time while
  // none needs a look (bytes >= 0x80 do, then pass one by one).
  const char* in = s.data();
  const size_t n = s.size();
  size_t run = 0;
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, in + i, 8);
      if (!wordNeedsCare(w)) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
      ++i;
      continue;
    }
    out.append(in + run, i - run);
    run = ++i;
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
  out.append(in + run, n - run);
}

char* escapeUtf8Safe(char* p, absl::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  const char* in = s.data();
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
#ifdef __SSE2__
    if (i + 16 <= n) {
      // 16 bytes at a time: signed "< 0x20" also catches the bytes >= 0x80.
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
      const __m128i care = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                                     _mm_cmpeq_epi8(v, _mm_set1_epi8(0x22))),
                                        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x5c)),
                                                     _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));
      if (_mm_movemask_epi8(care) == 0) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v);
        p += 16;
        i += 16;
        continue;
      }
    }
#endif
    if (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, in + i, 8);
      if (!wordNeedsCare(w)) {
        memcpy(p, in + i, 8);
        p += 8;
        i += 8;
        continue;
      }
    }
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (kPlain.is[c]) {
      *p++ = static_cast<char>(c);
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const size_t len = utf8SequenceLength(s, i);
      if (len > 0) {
        memcpy(p, in + i, len);
        p += len;
        i += len;
      } else {
        memcpy(p, "\\ufffd", 6);
        p += 6;
        ++i;
      }
      continue;
    }
    *p++ = '\\';
    switch (c) {
      case '"':
        *p++ = '"';
        break;
      case '\\':
        *p++ = '\\';
        break;
      case '\n':
        *p++ = 'n';
        break;
      case '\r':
        *p++ = 'r';
        break;
      case '\t':
        *p++ = 't';
        break;
      default:
        memcpy(p, "u00", 3);
        p[3] = kHex[c >> 4];
        p[4] = kHex[c & 0xf];
        p += 5;
    }
    ++i;
  }
  return p;
}

void appendEscapedUtf8Safe(std::string& out, absl::string_view s) {
  // The common case first: a prefix of bytes that need no look (printable ASCII but '"' and
  // '\\'), 8 at a time, appended as it is; often the whole string.
  size_t plain = 0;
  uint64_t w;
  while (plain + 8 <= s.size() && (memcpy(&w, s.data() + plain, 8), !wordNeedsCare(w))) {
    plain += 8;
  }
  while (plain < s.size() && kPlain.is[static_cast<unsigned char>(s[plain])]) ++plain;
  out.append(s.data(), plain);
  if (plain == s.size()) return;
  s.remove_prefix(plain);
  // The rest in one pass, written in place: at most 6 bytes out per byte in.
  const size_t start = out.size();
  out.resize(start + s.size() * kMaxEscapedBytesPerByte);
  char* end = escapeUtf8Safe(out.data() + start, s);
  out.resize(end - out.data());
}

void appendStringUtf8Safe(std::string& out, absl::string_view s) {
  out += '"';
  appendEscapedUtf8Safe(out, s);
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
