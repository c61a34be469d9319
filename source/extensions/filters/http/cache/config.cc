// The cache filter's config side: its config messages compiled into a CacheConfig, every error
// named by field. Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/cache/config.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "source/common/http/filter_config.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

using Field = std::function<std::string(absl::string_view)>;

bool isOws(char c) { return c == ' ' || c == '\t'; }

absl::string_view trim(absl::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

bool isTokenOrStar(absl::string_view s) { return s == "*" || Http::isValidToken(s); }

// The fields both messages have, compiled the same way (T is ConfigProto or PerRouteProto).
template <class T>
void compileCommon(const T& config, const Field& field, Config::ErrorList& errors,
                   CacheConfig& out) {
  if (config.response_code_size() == 0) {
    for (uint32_t c : {200u, 301u, 404u}) out.response_codes.set(c);
  }
  for (int i = 0; i < config.response_code_size(); ++i) {
    const uint32_t c = config.response_code(i);
    const std::string where = field(absl::StrCat("response_code[", i, "]"));
    if (c < 100 || c > 900) {
      errors.add(where, absl::StrCat(c, " is not between 100 and 900"));
    } else if (c == 206 || c == 304) {
      errors.add(where, absl::StrCat(c, " is no whole response: it can't be stored"));
    } else {
      out.response_codes.set(c);
    }
  }
  if (config.request_method_size() > 0) {
    out.get = false;
    out.head = false;
  }
  for (int i = 0; i < config.request_method_size(); ++i) {
    const std::string& m = config.request_method(i);
    if (m == "GET") {
      out.get = true;
    } else if (m == "HEAD") {
      out.head = true;
    } else if (m == "POST" || m == "PUT" || m == "PATCH") {
      errors.add(field(absl::StrCat("request_method[", i, "]")),
                 absl::StrCat("\"", m,
                              "\" is not cached: the request body is not part of the key "
                              "(GET and HEAD only)"));
    } else {
      errors.add(field(absl::StrCat("request_method[", i, "]")),
                 absl::StrCat("unknown method \"", m, "\" (GET or HEAD)"));
    }
  }
  if (config.content_type_size() == 0) {
    for (const char* t : {"text/plain", "application/json"}) {
      MediaRange r;
      parseMediaRange(t, r);
      out.content_types.push_back(std::move(r));
    }
  }
  for (int i = 0; i < config.content_type_size(); ++i) {
    MediaRange r;
    if (!parseMediaRange(config.content_type(i), r)) {
      errors.add(field(absl::StrCat("content_type[", i, "]")),
                 absl::StrCat("\"", config.content_type(i),
                              "\" is not a media type (type/subtype, `*` for either)"));
      continue;
    }
    out.content_types.push_back(std::move(r));
  }
  if (config.has_cache_ttl()) {
    auto ttl = Config::durationMs(config.cache_ttl(), field("cache_ttl"));
    if (!ttl.ok()) {
      errors.add(ttl.status());
    } else if (ttl->count() <= 0) {
      errors.add(field("cache_ttl"), "must be greater than 0");
    } else {
      out.cache_ttl = *ttl;
    }
  }
  out.cache_control = config.cache_control();
  for (int i = 0; i < config.vary_headers_size(); ++i) {
    std::string name = config.vary_headers(i);
    Http::toLowerInPlace(name);
    if (!Http::isValidToken(name)) {
      errors.add(field(absl::StrCat("vary_headers[", i, "]")),
                 absl::StrCat("\"", config.vary_headers(i), "\" is not a valid header name"));
      continue;
    }
    if (std::find(out.vary_headers.begin(), out.vary_headers.end(), name) ==
        out.vary_headers.end()) {
      out.vary_headers.push_back(std::move(name));
    }
  }
  for (int i = 0; i < config.vary_query_params_size(); ++i) {
    const std::string& name = config.vary_query_params(i);
    if (name.empty() || name.find_first_of("&=#") != std::string::npos) {
      errors.add(field(absl::StrCat("vary_query_params[", i, "]")),
                 absl::StrCat("\"", name, "\" is not a query parameter name"));
      continue;
    }
    if (std::find(out.vary_query_params.begin(), out.vary_query_params.end(), name) ==
        out.vary_query_params.end()) {
      out.vary_query_params.push_back(name);
    }
  }
  out.ignore_uri_case = config.ignore_uri_case();
  if (config.max_object_bytes() > kMaxMaxObjectBytes) {
    errors.add(field("max_object_bytes"), absl::StrCat("must be <= ", kMaxMaxObjectBytes));
  } else if (config.max_object_bytes() > 0) {
    out.max_object_bytes = config.max_object_bytes();
  }
  auto duration = [&](bool has, const google::protobuf::Duration& d, const char* name,
                      std::chrono::milliseconds& to) {
    if (!has) return;
    auto ms = Config::durationMs(d, field(name));
    if (!ms.ok()) {
      errors.add(ms.status());
    } else {
      to = *ms;
    }
  };
  duration(config.has_stale_while_revalidate(), config.stale_while_revalidate(),
           "stale_while_revalidate", out.stale_while_revalidate);
  duration(config.has_stale_if_error(), config.stale_if_error(), "stale_if_error",
           out.stale_if_error);
  duration(config.has_collapse_timeout(), config.collapse_timeout(), "collapse_timeout",
           out.collapse_timeout);
  out.expose_cache_key = config.expose_cache_key();
  if (config.collapse_max_waiters() > 0) out.collapse_max_waiters = config.collapse_max_waiters();
}

// http_filters[].config, and filter_config.cache (a whole config, or `disabled: true`).
class CacheFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<ConfigProto>();
  }
  void validateConfig(const google::protobuf::Message& config, const std::string& path,
                      const Http::FilterValidationContext&,
                      Config::ErrorList& errors) const override {
    compileConfig(
        static_cast<const ConfigProto&>(config),
        [&path](absl::string_view f) { return absl::StrCat(path, ".", f); }, errors);
  }
  std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const override {
    return std::make_unique<PerRouteProto>();
  }
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& config, const Http::RouteConfigContext& ctx,
      Config::ErrorList& errors) const override {
    return compileRouteConfig(static_cast<const PerRouteProto&>(config), ctx.field_path, errors);
  }
  std::string describeRouteConfig(const google::protobuf::Message& config) const override {
    // Switching the filter off asks nothing of the listener.
    return static_cast<const PerRouteProto&>(config).disabled() ? "" : "a cache config";
  }
};

REGISTER_HTTP_FILTER_TYPE(CacheFilterType);

}  // namespace

bool parseMediaRange(absl::string_view text, MediaRange& out) {
  out = MediaRange();
  absl::string_view rest = text;
  const size_t semi = rest.find(';');
  const absl::string_view type = trim(rest.substr(0, semi));
  rest = semi == absl::string_view::npos ? absl::string_view() : rest.substr(semi + 1);
  const size_t slash = type.find('/');
  if (slash == absl::string_view::npos) return false;
  out.type = absl::AsciiStrToLower(type.substr(0, slash));
  out.subtype = absl::AsciiStrToLower(type.substr(slash + 1));
  if (!isTokenOrStar(out.type) || !isTokenOrStar(out.subtype)) return false;
  while (!rest.empty()) {
    const size_t next = rest.find(';');
    const absl::string_view param = trim(rest.substr(0, next));
    rest = next == absl::string_view::npos ? absl::string_view() : rest.substr(next + 1);
    if (param.empty()) continue;
    const size_t eq = param.find('=');
    if (eq == absl::string_view::npos) return false;
    std::string name = absl::AsciiStrToLower(trim(param.substr(0, eq)));
    absl::string_view value = trim(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!Http::isValidToken(name)) return false;
    out.params.emplace_back(std::move(name), std::string(value));
  }
  return true;
}

bool contentTypeMatches(const std::vector<MediaRange>& ranges, absl::string_view content_type) {
  // The response's type and subtype (views, no copy), then its parameters only if a range
  // asks for some.
  const size_t semi = content_type.find(';');
  const absl::string_view type = trim(content_type.substr(0, semi));
  const size_t slash = type.find('/');
  if (slash == absl::string_view::npos) return false;
  const absl::string_view t = type.substr(0, slash);
  const absl::string_view sub = type.substr(slash + 1);
  if (!Http::isValidToken(t) || !Http::isValidToken(sub)) return false;
  MediaRange parsed;
  bool parsed_params = false;
  for (const MediaRange& r : ranges) {
    if (r.type != "*" && !absl::EqualsIgnoreCase(r.type, t)) continue;
    if (r.subtype != "*" && !absl::EqualsIgnoreCase(r.subtype, sub)) continue;
    if (r.params.empty()) return true;
    if (!parsed_params) {
      parsed_params = true;
      if (!parseMediaRange(content_type, parsed)) return false;
    }
    bool all = true;
    for (const auto& [name, value] : r.params) {
      bool found = false;
      for (const auto& [n, v] : parsed.params) {
        if (n == name && absl::EqualsIgnoreCase(v, value)) found = true;
      }
      all = all && found;
    }
    if (all) return true;
  }
  return false;
}

CacheConfigConstSharedPtr compileConfig(const ConfigProto& config, const Field& field,
                                        Config::ErrorList& errors) {
  Config::ErrorList mine;
  auto out = std::make_shared<CacheConfig>();
  compileCommon(config, field, mine, *out);
  if (config.max_bytes() > 0) out->max_bytes = config.max_bytes();
  if (out->max_object_bytes > out->max_bytes) {
    mine.add(field("max_object_bytes"),
             absl::StrCat(out->max_object_bytes, " is more than max_bytes (", out->max_bytes, ")"));
  }
  if (!mine.empty()) {
    errors.add(mine.status());
    return nullptr;
  }
  return out;
}

CacheConfigConstSharedPtr compileRouteConfig(const PerRouteProto& config, const Field& field,
                                             Config::ErrorList& errors) {
  if (config.disabled()) {
    PerRouteProto others = config;
    others.clear_disabled();
    if (others.ByteSizeLong() != 0) {
      errors.add(field("disabled"), "no other field may be set with disabled: true");
      return nullptr;
    }
    auto out = std::make_shared<CacheConfig>();
    out->disabled = true;
    return out;
  }
  Config::ErrorList mine;
  auto out = std::make_shared<CacheConfig>();
  compileCommon(config, field, mine, *out);
  if (!mine.empty()) {
    errors.add(mine.status());
    return nullptr;
  }
  return out;
}

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
