// The http_log filter's config side: its config message compiled into the sink's settings,
// every error named by field. Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/http_log/config.h"

#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "source/common/http/async_client.h"
#include "source/common/http/filter_config.h"
#include "source/common/http/headers.h"
#include "source/common/tls/context.h"

namespace sluice {
namespace Extensions {
namespace HttpLog {
namespace {

using Field = std::function<std::string(absl::string_view)>;

// Bounds far above any real use (Kong has none): a batch and a queue that fit in memory.
constexpr uint32_t kMaxQueuedEntries = 1000000;

// {http_endpoint, method, ...} on the listener, and per route / virtual host.
class HttpLogFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<ConfigProto>();
  }
  void validateConfig(const google::protobuf::Message& config, const std::string& path,
                      const Http::FilterValidationContext& ctx,
                      Config::ErrorList& errors) const override {
    compileConfig(
        static_cast<const ConfigProto&>(config),
        [&path](absl::string_view f) { return absl::StrCat(path, ".", f); }, ctx.read_files,
        errors);
  }
  std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const override {
    return std::make_unique<ConfigProto>();
  }
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& config, const Http::RouteConfigContext& ctx,
      Config::ErrorList& errors) const override {
    return compileConfig(static_cast<const ConfigProto&>(config), ctx.field_path, ctx.read_files,
                         errors);
  }
  std::string describeRouteConfig(const google::protobuf::Message& config) const override {
    const auto& c = static_cast<const ConfigProto&>(config);
    return c.disabled() ? "" : "an http_log config";
  }
};

REGISTER_HTTP_FILTER_TYPE(HttpLogFilterType);

// A duration field: its default when unset; errors when below `min`.
std::chrono::milliseconds duration(bool has, const google::protobuf::Duration& d,
                                   std::chrono::milliseconds def, std::chrono::milliseconds min,
                                   const std::string& where, Config::ErrorList& errors) {
  if (!has) return def;
  auto v = Config::durationMs(d, where);
  if (!v.ok()) {
    errors.add(v.status());
    return def;
  }
  if (*v < min) {
    errors.add(where,
               min.count() == 0 ? "must be >= 0" : absl::StrCat("must be >= ", min.count(), "ms"));
    return def;
  }
  return *v;
}

bool isFramingHeader(absl::string_view name) {
  return name == "host" || name == "content-length" || name == "content-type";
}

}  // namespace

LogConfigConstSharedPtr compileConfig(const ConfigProto& config, const Field& field,
                                      bool read_files, Config::ErrorList& errors) {
  auto out = std::make_shared<LogConfig>();
  Config::ErrorList mine;
  if (config.disabled()) {
    ConfigProto rest = config;
    rest.clear_disabled();
    if (rest.ByteSizeLong() > 0) {
      mine.add(field("disabled"), "a disabled http_log takes no other settings");
    }
    out->disabled = true;
    errors.add(mine.status());
    return mine.empty() ? out : nullptr;
  }
  Http::BatchSinkSettings& s = out->settings;
  if (config.http_endpoint().empty()) {
    mine.add(field("http_endpoint"), "is required");
  } else {
    auto uri = Http::parseHttpUri(config.http_endpoint());
    if (!uri.ok()) {
      mine.add(field("http_endpoint"), std::string(uri.status().message()));
    } else {
      s.endpoint = std::move(*uri);
    }
  }
  if (!config.method().empty()) {
    if (config.method() != "POST" && config.method() != "PUT" && config.method() != "PATCH") {
      mine.add(field("method"), absl::StrCat("\"", config.method(), "\": POST, PUT or PATCH"));
    }
    s.method = config.method();
  }
  if (!config.content_type().empty() && config.content_type() != "application/json") {
    mine.add(field("content_type"),
             absl::StrCat("\"", config.content_type(), "\": only application/json"));
  }
  s.timeout = duration(config.has_timeout(), config.timeout(), std::chrono::milliseconds(10000),
                       std::chrono::milliseconds(1), field("timeout"), mine);
  s.keepalive =
      duration(config.has_keepalive(), config.keepalive(), std::chrono::milliseconds(60000),
               std::chrono::milliseconds(0), field("keepalive"), mine);
  s.flush_timeout =
      duration(config.has_flush_timeout(), config.flush_timeout(), std::chrono::milliseconds(2000),
               std::chrono::milliseconds(0), field("flush_timeout"), mine);
  s.initial_retry_delay = duration(config.has_initial_retry_delay(), config.initial_retry_delay(),
                                   std::chrono::milliseconds(1000), std::chrono::milliseconds(1),
                                   field("initial_retry_delay"), mine);
  s.max_retry_delay = duration(config.has_max_retry_delay(), config.max_retry_delay(),
                               std::chrono::milliseconds(60000), std::chrono::milliseconds(1),
                               field("max_retry_delay"), mine);
  if (s.max_retry_delay < s.initial_retry_delay) {
    mine.add(field("max_retry_delay"), "must be >= initial_retry_delay");
  }
  s.retry_count = config.has_retry_count() ? config.retry_count() : 10;
  s.queue_size = config.has_queue_size() ? config.queue_size() : 1;
  s.max_queued_entries = config.has_max_queued_entries() ? config.max_queued_entries() : 10000;
  s.max_queued_bytes = config.has_max_queued_bytes() ? config.max_queued_bytes() : 64 * 1024 * 1024;
  if (s.queue_size == 0) mine.add(field("queue_size"), "must be >= 1");
  if (s.max_queued_entries > kMaxQueuedEntries) {
    mine.add(field("max_queued_entries"), absl::StrCat("must be <= ", kMaxQueuedEntries));
  } else if (s.max_queued_entries < s.queue_size) {
    mine.add(field("max_queued_entries"),
             absl::StrCat("must be >= queue_size (", s.queue_size, ")"));
  }

  s.headers.emplace_back("content-type", "application/json");
  bool has_authorization = false;
  for (const auto& [name, value] : config.headers()) {
    const std::string where = absl::StrCat(field("headers"), "[\"", name, "\"]");
    std::string lower = absl::AsciiStrToLower(name);
    if (!Http::isValidToken(lower)) {
      mine.add(where, "not a valid header name");
      continue;
    }
    if (isFramingHeader(lower)) {
      mine.add(where, absl::StrCat("cannot set ", name, " (the gateway sets it)"));
      continue;
    }
    if (Http::isHopByHop(lower)) {
      mine.add(where, "a hop-by-hop header cannot be set");
      continue;
    }
    if (!Http::isValidHeaderValue(value)) {
      mine.add(where, "the value has a character a header value may not contain");
      continue;
    }
    has_authorization = has_authorization || lower == "authorization";
    s.headers.emplace_back(std::move(lower), value);
  }
  if (s.endpoint.has_userinfo) {
    if (has_authorization) {
      mine.add(field("headers"),
               "an Authorization header and user info in http_endpoint are exclusive");
    }
    s.headers.emplace_back("authorization",
                           absl::StrCat("Basic ", absl::Base64Escape(s.endpoint.userinfo)));
  }

  std::string ca_pem;
  if (!config.ca_file().empty()) {
    if (!s.endpoint.https) {
      mine.add(field("ca_file"), "is for https:// endpoints only");
    } else if (read_files) {
      auto pem = Config::readConfigFile(config.ca_file());
      if (!pem.ok()) {
        mine.add(field("ca_file"), std::string(pem.status().message()));
      } else if (absl::Status st = Tls::checkCaBundle(*pem, field("ca_file")); !st.ok()) {
        mine.add(st);
      } else {
        ca_pem = std::move(*pem);
      }
    }
  }
  if (mine.empty() && s.endpoint.https && read_files) {
    auto tls = Http::createUriTlsContext(s.endpoint, ca_pem);
    if (!tls.ok()) {
      mine.add(field("http_endpoint"), std::string(tls.status().message()));
    } else {
      s.endpoint.tls = *tls;
    }
  }
  errors.add(mine.status());
  if (!mine.empty()) return nullptr;
  out->sink_key = absl::StrCat("http_log|", s.key(), "|ca:", config.ca_file(), ":",
                               std::hash<std::string>()(ca_pem));
  return out;
}

}  // namespace HttpLog
}  // namespace Extensions
}  // namespace sluice
