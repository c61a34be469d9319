#include "source/common/http/headers.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sluice {
namespace Http {

namespace {
// Character classes, one table lookup per byte on the parsing hot path.
struct CharTables {
  bool token[256] = {};
  bool value[256] = {};
  bool reg_name[256] = {};  // RFC 3986 reg-name: unreserved / pct-encoded / sub-delims
  char lower[256] = {};
  constexpr CharTables() {
    for (int c = 0; c < 256; ++c) {
      lower[c] = static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c);
      value[c] = c == '\t' || (c >= 0x20 && c != 0x7f);
      token[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
    for (char c : {'!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~'}) {
      token[static_cast<unsigned char>(c)] = true;
    }
    for (int c = 0; c < 256; ++c) {
      reg_name[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
    for (char c :
         {'-', '.', '_', '~', '%', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '='}) {
      reg_name[static_cast<unsigned char>(c)] = true;
    }
  }
};
constexpr CharTables kTables;
}  // namespace

void HeaderMap::set(absl::string_view key, absl::string_view value) {
  bool found = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->key == key) {
      if (!found) {
        it->value.assign(value.data(), value.size());
        found = true;
        ++it;
      } else {
        it = entries_.erase(it);
      }
    } else {
      ++it;
    }
  }
  if (!found) {
    add(key, value);
  }
}

const HeaderEntry* HeaderMap::find(absl::string_view key) const {
  for (const HeaderEntry& e : entries_) {
    if (e.key == key) {
      return &e;
    }
  }
  return nullptr;
}

HeaderEntry* HeaderMap::find(absl::string_view key) {
  for (HeaderEntry& e : entries_) {
    if (e.key == key) {
      return &e;
    }
  }
  return nullptr;
}

size_t HeaderMap::count(absl::string_view key) const {
  size_t n = 0;
  for (const HeaderEntry& e : entries_) {
    n += e.key == key;
  }
  return n;
}

size_t HeaderMap::remove(absl::string_view key) {
  return removeIf([key](const HeaderEntry& e) { return e.key == key; });
}

size_t HeaderMap::byteSize() const {
  size_t n = 0;
  for (const HeaderEntry& e : entries_) {
    n += e.key.size() + e.value.size();
  }
  return n;
}

bool isHopByHop(absl::string_view k) {
  // By length first: most header names are rejected without comparing a byte.
  switch (k.size()) {
    case 2:
      return k == "te";
    case 7:
      return k == "upgrade" || k == "trailer";
    case 10:
      return k == "connection" || k == "keep-alive";
    case 16:
      return k == "proxy-connection";
    case 17:
      return k == "transfer-encoding";
    default:
      return false;
  }
}

bool isProtectedFromNomination(absl::string_view k) {
  return k == "host" || k == "content-length" || k == "x-request-id" ||
         absl::StartsWith(k, "x-forwarded-");
}

bool isForbiddenTrailer(absl::string_view k) {
  static constexpr absl::string_view kForbidden[] = {"content-length",
                                                     "transfer-encoding",
                                                     "host",
                                                     "te",
                                                     "trailer",
                                                     "connection",
                                                     "keep-alive",
                                                     "upgrade",
                                                     "proxy-connection",
                                                     "content-encoding",
                                                     "content-type",
                                                     "content-range",
                                                     "authorization",
                                                     "proxy-authorization",
                                                     "proxy-authenticate",
                                                     "www-authenticate",
                                                     "cookie",
                                                     "set-cookie",
                                                     "expect",
                                                     "max-forwards",
                                                     "cache-control",
                                                     "range",
                                                     "if-match",
                                                     "if-none-match",
                                                     "if-modified-since",
                                                     "if-unmodified-since",
                                                     "if-range",
                                                     "location",
                                                     "retry-after",
                                                     "age",
                                                     "expires",
                                                     "date",
                                                     "vary",
                                                     "x-request-id",
                                                     "x-forwarded-for",
                                                     "x-forwarded-host",
                                                     "x-forwarded-proto"};
  for (absl::string_view f : kForbidden) {
    if (k == f) return true;
  }
  return false;
}

namespace {
// "[" IPv6 / IPvFuture-ish hex, ':' and '.' "]" [":" port]
bool isValidIpLiteralAuthority(absl::string_view host) {
  const size_t close = host.find(']');
  if (close == absl::string_view::npos || close < 3) return false;
  for (char c : host.substr(1, close - 1)) {
    if (!absl::ascii_isxdigit(c) && c != ':' && c != '.') return false;
  }
  absl::string_view rest = host.substr(close + 1);
  if (rest.empty()) return true;
  if (rest[0] != ':' || rest.size() < 2 || rest.size() > 6) return false;
  for (char c : rest.substr(1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}
}  // namespace

bool isValidAuthority(absl::string_view host) {
  const size_t n = host.size();
  if (n == 0 || n > 255 + 6) {
    return false;
  }
  if (host[0] == '[') {
    return isValidIpLiteralAuthority(host);
  }
  // One pass: reg-name characters (no "..") up to an optional ':' and 1-5 port digits.
  size_t i = 0;
  char prev = 0;
  for (; i < n; ++i) {
    const char c = host[i];
    if (c == ':') break;
    if (!kTables.reg_name[static_cast<unsigned char>(c)] || (c == '.' && prev == '.')) {
      return false;
    }
    prev = c;
  }
  if (i == 0) return false;
  if (i == n) return true;
  const size_t digits = n - i - 1;
  if (digits == 0 || digits > 5) return false;
  for (++i; i < n; ++i) {
    if (host[i] < '0' || host[i] > '9') return false;
  }
  return true;
}

bool removeHopByHopHeaders(HeaderMap& headers) {
  bool close = false;
  // Connection options name further hop-by-hop headers.
  std::vector<std::string> named;
  for (const HeaderEntry& e : headers.entries()) {
    if (absl::string_view(e.key) != "connection") {
      continue;
    }
    for (absl::string_view opt : absl::StrSplit(e.value, ',')) {
      opt = absl::StripAsciiWhitespace(opt);
      if (opt.empty()) {
        continue;
      }
      if (absl::EqualsIgnoreCase(opt, "close")) {
        close = true;
      }
      std::string name = absl::AsciiStrToLower(opt);
      if (!isProtectedFromNomination(name)) {
        named.push_back(std::move(name));
      }
    }
  }
  headers.removeIf([&named](const HeaderEntry& e) {
    if (isHopByHop(e.key)) {
      return true;
    }
    return !named.empty() && std::find(named.begin(), named.end(), e.key) != named.end();
  });
  return close;
}

bool isTokenChar(unsigned char c) { return kTables.token[c]; }

bool isValidHeaderValue(absl::string_view v) {
  for (unsigned char c : v) {
    if (!kTables.value[c]) {
      return false;
    }
  }
  return true;
}

bool isValidToken(absl::string_view v) {
  for (unsigned char c : v) {
    if (!kTables.token[c]) {
      return false;
    }
  }
  return !v.empty();
}

bool isValidMediaType(absl::string_view v) {
  const size_t slash = v.find('/');
  if (slash == absl::string_view::npos) return false;
  const size_t semi = v.find(';');
  if (!isValidToken(v.substr(0, slash)) ||
      !isValidToken(v.substr(slash + 1, semi == absl::string_view::npos ? absl::string_view::npos
                                                                        : semi - slash - 1))) {
    return false;
  }
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool toLowerInPlace(std::string& s) {
  // Eight bytes at a time (SWAR): header names are short tokens, and this runs for every header
  // of every request. Bytes 'A'..'Z' get 0x20 added; non-ASCII bytes are left alone.
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  char* p = s.data();
  const size_t n = s.size();
  size_t i = 0;
  uint64_t underscore = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    const uint64_t low7 = x & ~kHigh;
    const uint64_t above_z = low7 + 0x25 * kOnes;  // high bit: byte > 'Z'
    const uint64_t from_a = low7 + 0x3f * kOnes;   // high bit: byte >= 'A'
    const uint64_t upper = ~x & (from_a ^ above_z) & kHigh;
    x |= upper >> 2;
    memcpy(p + i, &x, 8);
    const uint64_t y = x ^ ('_' * kOnes);  // a zero byte where there was '_'
    underscore |= (y - kOnes) & ~y & kHigh;
  }
  bool found = underscore != 0;
  for (; i < n; ++i) {
    found |= p[i] == '_';
    p[i] = kTables.lower[static_cast<unsigned char>(p[i])];
  }
  return found;
}

}  // namespace Http
}  // namespace sluice
