#include "source/extensions/filters/http/rate_limit/policy.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/http/headers.h"
#include "source/common/network/connection.h"
#include "source/common/network/host_name.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

struct WindowDef {
  const char* name;
  int64_t seconds;  // the longest period for calendar windows
  uint64_t (PolicyProto::*get)() const;
  int64_t calendar_unit;  // 0, or -1 (month) / -2 (year): WindowSpec::bucket_ms
};

constexpr WindowDef kWindows[] = {
    {"second", 1, &PolicyProto::second, 0},         {"minute", 60, &PolicyProto::minute, 0},
    {"hour", 3600, &PolicyProto::hour, 0},          {"day", 86400, &PolicyProto::day, 0},
    {"month", 31 * 86400, &PolicyProto::month, -1}, {"year", 366 * 86400, &PolicyProto::year, -2},
};
constexpr int64_t kDayMs = 86400000;

constexpr std::chrono::milliseconds kMaxRedisTimeout{10000};

// An RFC 9651 sf-string: quotes around, `"` and `\` escaped, anything outside visible ASCII and
// space replaced (policy names are free text).
std::string sfString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c < 0x20 || c > 0x7e) {
      out += '_';
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civilFromDays(int64_t days, int64_t& y, unsigned& m) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
}

int64_t WindowSpec::calendarBucket(int64_t unit, int64_t now_ms) {
  int64_t y;
  unsigned m;
  civilFromDays(now_ms >= 0 ? now_ms / kDayMs : (now_ms - kDayMs + 1) / kDayMs, y, m);
  return unit == -1 ? (y - 1970) * 12 + (m - 1) : y - 1970;
}

int64_t WindowSpec::calendarBucketEnd(int64_t unit, int64_t k) {
  if (unit == -1) {
    const int64_t next = k + 1;  // months since 1970-01
    const int64_t y = 1970 + (next >= 0 ? next / 12 : (next - 11) / 12);
    const unsigned m = static_cast<unsigned>(next - (y - 1970) * 12) + 1;
    return daysFromCivil(y, m, 1) * kDayMs;
  }
  return daysFromCivil(1970 + k + 1, 1, 1) * kDayMs;
}

std::string RedisSettings::address() const {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

void validatePolicy(const PolicyProto& p, const std::string& path, Config::ErrorList& errors) {
  bool any = false;
  const WindowDef* shorter = nullptr;
  uint64_t shorter_limit = 0;
  for (const WindowDef& w : kWindows) {
    const uint64_t limit = (p.*w.get)();
    if (limit == 0) continue;
    any = true;
    if (limit > kMaxLimit) {
      errors.add(absl::StrCat(path, ".", w.name), absl::StrCat("must be <= ", kMaxLimit));
    }
    if (shorter != nullptr && limit < shorter_limit) {
      errors.add(absl::StrCat(path, ".", w.name),
                 absl::StrCat("must be >= ", shorter->name, " (", shorter_limit,
                              "): a longer window cannot allow fewer requests"));
    }
    shorter = &w;
    shorter_limit = limit;
  }
  if (!any) {
    errors.add(path, "needs at least one of second, minute, hour, day, month, year");
  }
  if (!PolicyProto::LimitBy_IsValid(p.limit_by())) {
    errors.add(path + ".limit_by", absl::StrCat("unknown value ", p.limit_by()));
  }
  if (p.limit_by() == PolicyProto::HEADER) {
    if (p.header_name().empty()) {
      errors.add(path + ".header_name", "is required when limit_by is HEADER");
    } else if (!Http::isValidToken(p.header_name())) {
      errors.add(path + ".header_name",
                 absl::StrCat("\"", absl::CEscape(p.header_name()), "\" is not a header name"));
    }
  } else if (!p.header_name().empty()) {
    errors.add(path + ".header_name", "is only used with limit_by HEADER");
  }
  if (!PolicyProto::Algorithm_IsValid(p.algorithm())) {
    errors.add(path + ".algorithm", absl::StrCat("unknown value ", p.algorithm()));
  }
  if (!PolicyProto::Policy_IsValid(p.policy())) {
    errors.add(path + ".policy", absl::StrCat("unknown value ", p.policy()));
  }
  if (!PolicyProto::HeaderStyle_IsValid(p.headers())) {
    errors.add(path + ".headers", absl::StrCat("unknown value ", p.headers()));
  }
  const auto& r = p.redis();
  Network::Address probe;
  if (!r.host().empty() && !Network::Address::parse(r.host(), 1, probe) &&
      !Network::isValidHostName(r.host())) {
    errors.add(path + ".redis.host",
               absl::StrCat("\"", r.host(), "\" is not an IP address or a host name"));
  }
  if (r.port() > 65535) {
    errors.add(path + ".redis.port", "must be <= 65535");
  }
  if (r.has_timeout()) {
    auto ms = Config::durationMs(r.timeout(), path + ".redis.timeout");
    if (!ms.ok()) {
      errors.add(ms.status());
    } else if (ms->count() == 0) {
      errors.add(path + ".redis.timeout", "must be > 0");
    } else if (*ms > kMaxRedisTimeout) {
      errors.add(path + ".redis.timeout", "must be <= 10s");
    }
  }
}

absl::StatusOr<CompiledPolicyConstSharedPtr> compilePolicy(const PolicyProto& p,
                                                           const std::string& path) {
  Config::ErrorList errors;
  if (p.name().empty()) {
    errors.add(path + ".name", "is required");
  }
  validatePolicy(p, path, errors);
  RETURN_IF_ERRORS(errors);

  auto c = std::make_shared<CompiledPolicy>();
  c->name = p.name();
  c->limit_by = p.limit_by();
  c->header_name = p.header_name();
  Http::toLowerInPlace(c->header_name);
  c->algorithm = p.algorithm();
  const bool sliding = p.algorithm() == PolicyProto::SLIDING_WINDOW;
  size_t configured = 0;
  for (const WindowDef& w : kWindows) configured += (p.*w.get)() != 0;
  uint32_t kind = 0;
  std::vector<std::string> policy_items;
  for (const WindowDef& w : kWindows) {
    const uint64_t limit = (p.*w.get)();
    if (limit != 0) {
      WindowSpec s;
      s.kind = kind;
      s.name = w.name;
      s.length_ms = w.seconds * 1000;
      // Calendar windows are fixed whatever the algorithm: a "sliding month" of tenths of
      // varying length would be calendar-aligned in name only.
      const bool slide = sliding && w.calendar_unit == 0;
      s.older_buckets = slide ? kSlidingBuckets : 0;
      s.bucket_ms = w.calendar_unit != 0 ? w.calendar_unit
                    : slide              ? s.length_ms / kSlidingBuckets
                                         : s.length_ms;
      s.limit = limit;
      s.limit_text = absl::StrCat(limit);
      s.kong_limit_header = absl::StrCat("x-ratelimit-limit-", w.name);
      s.kong_remaining_header = absl::StrCat("x-ratelimit-remaining-", w.name);
      s.ietf_name = sfString(configured == 1 ? p.name() : absl::StrCat(p.name(), "-", w.name));
      s.bucket_ms_text = absl::StrCat(s.bucket_ms);
      // A calendar window's `w` is its usual length (30 and 365 days): the header has no
      // calendar unit, and the reset header says when it really ends.
      const int64_t ietf_w = w.calendar_unit == -1   ? 30 * 86400
                             : w.calendar_unit == -2 ? 365 * 86400
                                                     : w.seconds;
      policy_items.push_back(absl::StrCat(s.ietf_name, ";q=", limit, ";w=", ietf_w));
      c->windows.push_back(std::move(s));
    }
    ++kind;
  }
  c->ietf_policy_value = absl::StrJoin(policy_items, ", ");
  c->redis = p.policy() == PolicyProto::REDIS;
  const auto& r = p.redis();
  c->redis_settings.host = r.host().empty() || r.host() == "localhost" ? "127.0.0.1" : r.host();
  c->redis_settings.port = r.port() ? r.port() : 6379;
  c->redis_settings.password = r.password();
  c->redis_settings.database = r.database();
  c->redis_settings.timeout =
      Config::durationOr(r.has_timeout(), r.timeout(), std::chrono::milliseconds(50));
  c->redis_settings.connection_key =
      absl::StrCat(c->redis_settings.address(), "/", c->redis_settings.database, "/",
                   c->redis_settings.password);
  c->fault_tolerant = !p.has_fault_tolerant() || p.fault_tolerant();
  c->hide_client_headers = p.hide_client_headers();
  c->headers = p.headers();
  c->key_prefix = absl::StrCat(p.name(), "/", sliding ? "S" : "F", "/");
  return CompiledPolicyConstSharedPtr(std::move(c));
}

void boundIdentity(std::string& identity) {
  if (identity.size() <= kMaxIdentityBytes) {
    return;
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(identity.data()), identity.size(), digest);
  identity =
      absl::StrCat("sha256:", absl::BytesToHexString(absl::string_view(
                                  reinterpret_cast<const char*>(digest), SHA256_DIGEST_LENGTH)));
}

int64_t headerSeconds(int64_t ms) {
  const int64_t s = (ms + 999) / 1000;
  return s < 1 ? 1 : s;
}

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
