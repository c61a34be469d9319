#include "source/extensions/filters/http/cors/policy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace sluice {
namespace Extensions {
namespace Cors {
namespace {

// Kong's `methods` values (its schema's one_of), in its default order.
constexpr absl::string_view kMethods[] = {"GET",    "HEAD",    "PUT",   "PATCH",  "POST",
                                          "DELETE", "OPTIONS", "TRACE", "CONNECT"};

bool isKnownMethod(absl::string_view m) {
  for (absl::string_view k : kMethods) {
    if (k == m) return true;
  }
  return false;
}

// Kong's test for a plain origin: only these characters; anything else makes a regex.
bool isPlainOriginChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '/' ||
         c == '-';
}

bool isPlainOrigin(absl::string_view entry) {
  for (char c : entry) {
    if (!isPlainOriginChar(c)) return false;
  }
  return true;
}

// A URI scheme at the start of `s` ([A-Za-z0-9][A-Za-z0-9+.-]* then ':', as Lua's url.parse
// reads it); its length without the ':', or 0.
size_t schemeLength(absl::string_view s) {
  if (s.empty() || !absl::ascii_isalnum(static_cast<unsigned char>(s[0]))) return 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == ':') return i;
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') return 0;
  }
  return 0;
}

void addTokenList(const std::vector<std::string>& values, const std::string& path,
                  absl::string_view field, std::string& out, Config::ErrorList& errors) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!Http::isValidToken(values[i])) {
      errors.add(absl::StrCat(path, ".", field, "[", i, "]"),
                 absl::StrCat("\"", absl::CEscape(values[i]), "\" is not a header name"));
    }
  }
  out = absl::StrJoin(values, ",");
}

}  // namespace

NormalizedOrigin normalizeOrigin(absl::string_view origin) {
  NormalizedOrigin out;
  absl::string_view rest = origin;
  const size_t fragment = rest.find('#');
  if (fragment != absl::string_view::npos) rest = rest.substr(0, fragment);
  absl::string_view scheme;
  const size_t scheme_len = schemeLength(rest);
  if (scheme_len > 0) {
    scheme = rest.substr(0, scheme_len);
    rest.remove_prefix(scheme_len + 1);
  }
  if (!absl::StartsWith(rest, "//")) {
    // No authority ("null", "example.com"): compared as it is.
    out.domain = std::string(origin);
    out.host = out.domain;
    return out;
  }
  rest.remove_prefix(2);
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  const size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) authority.remove_prefix(at + 1);
  // The port follows the last ':' unless that ':' is inside an IPv6 literal.
  absl::optional<absl::string_view> port;
  const size_t colon = authority.rfind(':');
  if (colon != absl::string_view::npos && authority.find(']', colon) == absl::string_view::npos) {
    port = authority.substr(colon + 1);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) {
    out.domain = std::string(origin);
    out.host = out.domain;
    return out;
  }
  const std::string lower_scheme = absl::AsciiStrToLower(scheme);
  std::string host = absl::AsciiStrToLower(authority);
  if (port.has_value() &&
      ((lower_scheme == "http" && *port == "80") || (lower_scheme == "https" && *port == "443"))) {
    port.reset();
  }
  out.domain = absl::StrCat(lower_scheme, scheme.empty() ? "" : "://", host,
                            port.has_value() ? ":" : "", port.value_or(""));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  out.host = std::move(host);
  return out;
}

std::shared_ptr<const CorsPolicy> CorsPolicy::create(const CorsSettings& s, const std::string& path,
                                                     Config::ErrorList& errors) {
  // No make_shared: the constructor is private.
  std::shared_ptr<CorsPolicy> p(new CorsPolicy());
  bool ok = true;
  p->allow_all_ = s.origins.empty();
  for (size_t i = 0; i < s.origins.size(); ++i) {
    const std::string& entry = s.origins[i];
    const std::string field = absl::StrCat(path, ".origins[", i, "]");
    if (entry.empty()) {
      errors.add(field, "must not be empty");
      ok = false;
    } else if (entry == "*") {
      p->allow_all_ = true;
    } else if (isPlainOrigin(entry)) {
      p->exact_.insert(normalizeOrigin(entry).domain);
    } else {
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_unique<RE2>(entry, options);
      if (!re->ok()) {
        errors.add(field, absl::StrCat("invalid regex: ", re->error()));
        ok = false;
        continue;
      }
      p->regexes_.push_back(OriginRegex{std::move(re), entry.find(':') == std::string::npos});
    }
  }
  if (s.methods.empty()) {
    p->allow_methods_ = absl::StrJoin(kMethods, ",");
  } else {
    for (size_t i = 0; i < s.methods.size(); ++i) {
      if (!isKnownMethod(s.methods[i])) {
        errors.add(absl::StrCat(path, ".methods[", i, "]"),
                   absl::StrCat("\"", absl::CEscape(s.methods[i]), "\" is not one of ",
                                absl::StrJoin(kMethods, ", ")));
        ok = false;
      }
    }
    p->allow_methods_ = absl::StrJoin(s.methods, ",");
  }
  Config::ErrorList header_errors;
  addTokenList(s.headers, path, "headers", p->allow_headers_, header_errors);
  addTokenList(s.exposed_headers, path, "exposed_headers", p->expose_headers_, header_errors);
  if (!header_errors.empty()) {
    errors.add(header_errors.status());
    ok = false;
  }
  p->credentials_ = s.credentials;
  p->preflight_continue_ = s.preflight_continue;
  p->private_network_ = s.private_network;
  if (s.max_age.has_value()) p->max_age_ = absl::StrCat(*s.max_age);
  if (!ok) return nullptr;
  return p;
}

OriginDecision CorsPolicy::decide(absl::string_view origin) const {
  OriginDecision d;
  if (allow_all_) {
    d.allowed = true;
    if (credentials_) {
      // Never "*" with credentials: the origin itself, which then varies.
      d.vary = true;
      d.allow_origin = std::string(origin);
    } else {
      d.allow_origin = "*";
    }
    return d;
  }
  d.vary = true;
  if (exact_.contains(origin)) {
    // What browsers send (lower case, no default port) is its own normal form: no parsing.
    d.allowed = true;
    d.allow_origin = std::string(origin);
    return d;
  }
  NormalizedOrigin n = normalizeOrigin(origin);
  bool found = exact_.contains(n.domain);
  for (size_t i = 0; !found && i < regexes_.size(); ++i) {
    const std::string& subject = regexes_[i].by_host ? n.host : n.domain;
    found = RE2::FullMatch(subject, *regexes_[i].re);
  }
  if (found) {
    d.allowed = true;
    d.allow_origin = std::move(n.domain);
  }
  return d;
}

void addVaryOrigin(Http::HeaderMap& headers) {
  Http::HeaderEntry* last = nullptr;
  for (Http::HeaderEntry& e : headers.entries()) {
    if (e.key != "vary") continue;
    for (absl::string_view token : absl::StrSplit(e.value, ',')) {
      token = absl::StripAsciiWhitespace(token);
      if (token == "*" || absl::EqualsIgnoreCase(token, "origin")) return;
    }
    last = &e;
  }
  if (last == nullptr) {
    headers.add("vary", "Origin");
  } else if (absl::StripAsciiWhitespace(last->value).empty()) {
    last->value = "Origin";
  } else {
    absl::StrAppend(&last->value, ", Origin");
  }
}

}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
