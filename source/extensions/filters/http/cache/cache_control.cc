#include "source/extensions/filters/http/cache/cache_control.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

bool isOws(char c) { return c == ' ' || c == '\t'; }

// Calls fn(name, value, has_value) for each directive of a Cache-Control list: `name`
// [ "=" ( token / quoted-string ) ], separated by commas. A quoted value has its quotes and
// escapes removed into `unquoted` (only then is the value a view of it). What follows a value
// up to the next comma is skipped. One pass; never reads past the end.
template <class F>
void forEachDirective(absl::string_view v, F&& fn) {
  std::string unquoted;
  size_t i = 0;
  const size_t n = v.size();
  while (i < n) {
    while (i < n && (isOws(v[i]) || v[i] == ',')) ++i;
    const size_t name_start = i;
    while (i < n && v[i] != '=' && v[i] != ',' && !isOws(v[i])) ++i;
    const absl::string_view name = v.substr(name_start, i - name_start);
    while (i < n && isOws(v[i])) ++i;
    absl::string_view value;
    bool has_value = false;
    if (i < n && v[i] == '=') {
      has_value = true;
      ++i;
      while (i < n && isOws(v[i])) ++i;
      if (i < n && v[i] == '"') {
        ++i;
        unquoted.clear();
        while (i < n && v[i] != '"') {
          if (v[i] == '\\' && i + 1 < n) ++i;
          unquoted.push_back(v[i]);
          ++i;
        }
        if (i < n) ++i;  // the closing quote
        value = unquoted;
      } else {
        const size_t value_start = i;
        while (i < n && v[i] != ',' && !isOws(v[i])) ++i;
        value = v.substr(value_start, i - value_start);
      }
    }
    // Anything else up to the next comma is not part of this directive.
    while (i < n && v[i] != ',') ++i;
    if (!name.empty()) fn(name, value, has_value);
  }
}

// delta-seconds (1*DIGIT), clamped to kMaxDeltaSeconds; a missing or malformed value counts as
// 0, the most restrictive reading.
int64_t deltaSeconds(absl::string_view value, bool has_value) {
  if (!has_value || value.empty()) return 0;
  int64_t out = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return 0;
    out = out * 10 + (c - '0');
    if (out >= kMaxDeltaSeconds) return kMaxDeltaSeconds;
  }
  return out;
}

void setMin(absl::optional<int64_t>& field, int64_t v) {
  field = field.has_value() ? std::min(*field, v) : v;
}

bool is(absl::string_view name, absl::string_view directive) {
  return absl::EqualsIgnoreCase(name, directive);
}

// Digits of a fixed width at s[pos..pos+width); -1 if any is not a digit.
int digits(absl::string_view s, size_t pos, size_t width) {
  if (pos + width > s.size()) return -1;
  int v = 0;
  for (size_t k = 0; k < width; ++k) {
    const char c = s[pos + k];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

int monthIndex(absl::string_view m) {
  static constexpr absl::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int k = 0; k < 12; ++k) {
    if (m == kMonths[k]) return k;
  }
  return -1;
}

// "HH:MM:SS" at s[pos..pos+8) into seconds of the day; -1 when malformed.
int64_t clock(absl::string_view s, size_t pos) {
  if (pos + 8 > s.size() || s[pos + 2] != ':' || s[pos + 5] != ':') return -1;
  const int h = digits(s, pos, 2), m = digits(s, pos + 3, 2), sec = digits(s, pos + 6, 2);
  if (h < 0 || m < 0 || sec < 0 || h > 23 || m > 59 || sec > 60) return -1;
  return h * 3600 + m * 60 + sec;
}

// Days since 1970-01-01 of a civil date (proleptic Gregorian), Howard Hinnant's algorithm.
int64_t daysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

absl::optional<int64_t> toEpoch(int64_t year, int month, int day, int64_t secs_of_day) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 0 || month > 11 || secs_of_day < 0 || year < 1900 || year > 9999 || day < 1 ||
      day > kDays[month] + (month == 1 && leap ? 1 : 0)) {
    return absl::nullopt;
  }
  return daysFromCivil(year, month + 1, day) * 86400 + secs_of_day;
}

}  // namespace

RequestCacheControl parseRequestCacheControl(absl::string_view value) {
  RequestCacheControl cc;
  forEachDirective(value, [&cc](absl::string_view name, absl::string_view v, bool has_value) {
    if (is(name, "no-cache")) {
      cc.no_cache = true;
    } else if (is(name, "no-store")) {
      cc.no_store = true;
    } else if (is(name, "max-age")) {
      setMin(cc.max_age, deltaSeconds(v, has_value));
    } else if (is(name, "min-fresh")) {
      // The larger freshness demand is the more restrictive one.
      const int64_t d = deltaSeconds(v, has_value);
      cc.min_fresh = cc.min_fresh.has_value() ? std::max(*cc.min_fresh, d) : d;
    } else if (is(name, "max-stale")) {
      if (!has_value) {
        cc.max_stale_any = true;
      } else {
        setMin(cc.max_stale, deltaSeconds(v, has_value));
      }
    } else if (is(name, "only-if-cached")) {
      cc.only_if_cached = true;
    }
  });
  if (cc.max_stale.has_value()) cc.max_stale_any = false;  // a bound wins over "any"
  return cc;
}

ResponseCacheControl parseResponseCacheControl(absl::string_view value) {
  ResponseCacheControl cc;
  forEachDirective(value, [&cc](absl::string_view name, absl::string_view v, bool has_value) {
    if (is(name, "no-cache")) {
      cc.no_cache = true;
    } else if (is(name, "no-store")) {
      cc.no_store = true;
    } else if (is(name, "private")) {
      cc.is_private = true;
    } else if (is(name, "public")) {
      cc.is_public = true;
    } else if (is(name, "must-revalidate")) {
      cc.must_revalidate = true;
    } else if (is(name, "proxy-revalidate")) {
      cc.proxy_revalidate = true;
    } else if (is(name, "max-age")) {
      setMin(cc.max_age, deltaSeconds(v, has_value));
    } else if (is(name, "s-maxage")) {
      setMin(cc.s_maxage, deltaSeconds(v, has_value));
    } else if (is(name, "stale-while-revalidate")) {
      setMin(cc.stale_while_revalidate, deltaSeconds(v, has_value));
    } else if (is(name, "stale-if-error")) {
      setMin(cc.stale_if_error, deltaSeconds(v, has_value));
    }
  });
  return cc;
}

absl::string_view joinedHeader(const Http::HeaderMap& headers, absl::string_view name,
                               std::string& scratch) {
  const Http::HeaderEntry* first = nullptr;
  bool several = false;
  for (const Http::HeaderEntry& e : headers.entries()) {
    if (e.key != name) continue;
    if (first == nullptr) {
      first = &e;
      continue;
    }
    if (!several) {
      several = true;
      scratch = first->value;
    }
    scratch.append(", ");
    scratch.append(e.value);
  }
  if (first == nullptr) return {};
  return several ? absl::string_view(scratch) : absl::string_view(first->value);
}

absl::optional<int64_t> parseHttpDate(absl::string_view s) {
  s = absl::StripAsciiWhitespace(s);
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes).
  if (s.size() == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' && s[16] == ' ' &&
      s.substr(25) == " GMT") {
    const int day = digits(s, 5, 2), year = digits(s, 12, 4);
    const int month = monthIndex(s.substr(8, 3));
    if (day < 0 || year < 0) return absl::nullopt;
    return toEpoch(year, month, day, clock(s, 17));
  }
  // asctime: "Sun Nov  6 08:49:37 1994" (24 bytes).
  if (s.size() == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {
    const int month = monthIndex(s.substr(4, 3));
    const int day = s[8] == ' ' ? digits(s, 9, 1) : digits(s, 8, 2);
    const int year = digits(s, 20, 4);
    if (day < 0 || year < 0) return absl::nullopt;
    return toEpoch(year, month, day, clock(s, 11));
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" (two-digit year: RFC 9110 5.6.7's 50-year rule,
  // read as 19xx/20xx around 1970 as most implementations do).
  const size_t comma = s.find(", ");
  if (comma != absl::string_view::npos && comma >= 6 && comma <= 9) {
    const absl::string_view rest = s.substr(comma + 2);
    if (rest.size() == 22 && rest[2] == '-' && rest[6] == '-' && rest[9] == ' ' &&
        rest.substr(18) == " GMT") {
      const int day = digits(rest, 0, 2), yy = digits(rest, 7, 2);
      const int month = monthIndex(rest.substr(3, 3));
      if (day < 0 || yy < 0) return absl::nullopt;
      return toEpoch(yy < 70 ? 2000 + yy : 1900 + yy, month, day, clock(rest, 10));
    }
  }
  return absl::nullopt;
}

std::string formatHttpDate(int64_t seconds) {
  const time_t t = static_cast<time_t>(seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  const size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

bool ifNoneMatchMatches(absl::string_view list, absl::string_view etag) {
  // The stored tag's opaque part (without W/).
  etag = absl::StripAsciiWhitespace(etag);
  if (absl::StartsWith(etag, "W/")) etag.remove_prefix(2);
  if (etag.size() < 2 || etag.front() != '"' || etag.back() != '"') {
    etag = absl::string_view();  // no usable validator: only `*` matches
  }
  size_t i = 0;
  const size_t n = list.size();
  while (i < n) {
    while (i < n && (isOws(list[i]) || list[i] == ',')) ++i;
    if (i >= n) break;
    if (list[i] == '*') return true;
    if (list.substr(i, 2) == "W/") i += 2;
    if (i >= n || list[i] != '"') return false;  // not an entity-tag: the list is unreadable
    const size_t close = list.find('"', i + 1);
    if (close == absl::string_view::npos) return false;
    const absl::string_view tag = list.substr(i, close - i + 1);
    if (!etag.empty() && tag == etag) return true;
    i = close + 1;
  }
  return false;
}

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
