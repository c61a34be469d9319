#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "source/common/http/filter.h"
#include "source/common/http/filter_config.h"
#include "source/common/http/redaction.h"
#include "source/common/tracing/otlp_exporter.h"
#include "source/server/config/builder.h"

namespace sluice {
namespace Server {
namespace {

using ListenerProto = sluice::config::v1::Listener;

// One filter of the chain: its config decoded into the filter's own message and validated by
// its type, then (unless only validating) its per-stream factory. False after an error.
bool buildFilter(BuildState& s, const sluice::config::v1::HttpFilter& fc, const std::string& fpath,
                 bool last, Http::FactoryContext& fctx, Http::ConnectionManagerConfig& http) {
  const Http::FilterType* type = Http::FilterTypeRegistry::get(fc.name());
  if (type == nullptr) {
    s.errors.add(fpath + ".name",
                 absl::StrCat("unknown filter \"", fc.name(), "\" (known: ",
                              absl::StrJoin(Http::FilterTypeRegistry::names(), ", "), ")"));
    return false;
  }
  if (type->isTerminal() != last) {
    s.errors.add(fpath, type->isTerminal() ? "a terminal filter must be last"
                                           : "the last filter must be terminal (router)");
  }
  std::unique_ptr<google::protobuf::Message> config = type->createEmptyConfigProto();
  const std::string cpath = fpath + ".config";
  if (config->GetDescriptor()->field_count() == 0 && !fc.config().fields().empty()) {
    s.errors.add(cpath, absl::StrCat("the ", fc.name(), " filter takes no settings"));
    return false;
  }
  absl::Status decoded = Http::decodeFilterConfig(fc.config(), *config, cpath);
  if (!decoded.ok()) {
    s.errors.add(decoded);
    return false;
  }
  Config::ErrorList errors;
  Http::FilterValidationContext vctx;
  vctx.policies = s.policies.get();
  vctx.read_files = s.o.check_files;
  vctx.lenient = s.o.static_may_reference_dynamic;
  type->validateConfig(*config, cpath, vctx, errors);
  if (!errors.empty()) {
    s.errors.add(errors.status());
    return false;
  }
  if (!s.o.create_filters) return true;
  Http::NamedHttpFilterConfigFactory* factory = Http::FilterRegistry::get(fc.name());
  if (factory == nullptr) {
    s.errors.add(fpath + ".name",
                 absl::StrCat("filter \"", fc.name(), "\" is not linked into this program"));
    return false;
  }
  auto cb = factory->createFilterFactory(*config, fpath, fctx);
  if (!cb.ok()) {
    s.errors.add(cb.status());
    return false;
  }
  http.filter_factories.push_back(std::move(*cb));
  return true;
}

void buildFilterChain(BuildState& s, const ListenerProto& lc, const std::string& path,
                      Http::ConnectionManagerConfig& http) {
  Http::FactoryContext fctx;
  fctx.stats = s.stats;
  fctx.listener_name = lc.name();
  fctx.policies = s.policies;
  fctx.main_dispatcher = s.o.main_dispatcher;
  fctx.singletons = s.o.singletons;
  fctx.concurrency = s.o.concurrency;
  fctx.main_dns_resolver = s.o.main_dns_resolver;
  fctx.dns_options = s.o.dns_options;
  fctx.admin_handlers = s.o.admin_handlers;
  if (lc.http_filters_size() == 0) {
    // No chain configured: the router alone.
    sluice::config::v1::HttpFilter router;
    router.set_name("router");
    buildFilter(s, router, path + ".http_filters", true, fctx, http);
    return;
  }
  for (int f = 0; f < lc.http_filters_size(); ++f) {
    buildFilter(s, lc.http_filters(f), absl::StrCat(path, ".http_filters[", f, "]"),
                f == lc.http_filters_size() - 1, fctx, http);
  }
  http.keep_original_path = http.keep_original_path || fctx.keep_original_path;
}

// A route that configures a filter (names a policy, say) must never be served by a listener
// without that filter (unauthenticated, or unlimited).
void checkRouteFilters(BuildState& s, const ListenerProto& lc, const std::string& path) {
  absl::flat_hash_set<std::string> chain;
  for (const auto& fc : lc.http_filters()) chain.insert(fc.name());
  if (lc.http_filters_size() == 0) chain.insert("router");
  PathNamer table_path(s.o.static_prefix, "route_tables", "RouteTable",
                       s.o.first_dynamic_route_table);
  for (int t = 0; t < s.sr.route_tables_size(); ++t) {
    const auto& tc = s.sr.route_tables(t);
    if (tc.name() != lc.route_table()) continue;
    Http::forEachRouteFilter(
        tc, table_path(t, tc.name()),
        [&](const std::string& filter, const std::string& what, const std::string& where) {
          if (what.empty() || chain.contains(filter)) return;
          s.errors.add(path + ".http_filters",
                       absl::StrCat(where, " requires ", what, " but listener \"", lc.name(),
                                    "\" has no ", filter, " filter"));
        });
  }
}

void checkDuration(BuildState& s, bool has, const google::protobuf::Duration& d,
                   const std::string& field) {
  if (has) s.errors.add(Config::durationMs(d, field).status());
}

// The listener's `http2` settings, each checked against RFC 9113's bounds.
void buildHttp2(BuildState& s, const ListenerProto& lc, const std::string& path,
                Http::ConnectionManagerConfig& http) {
  const auto& h2 = lc.http2();
  const std::string hpath = path + ".http2";
  Http::Http2Settings& out = http.codec.http2;
  out.enabled = !h2.has_enabled() || h2.enabled();
  constexpr uint32_t kMaxWindow = 2147483647u;
  if (h2.has_max_concurrent_streams()) {
    if (h2.max_concurrent_streams() == 0 || h2.max_concurrent_streams() > kMaxWindow) {
      s.errors.add(hpath + ".max_concurrent_streams", "must be in 1..2147483647");
    }
    out.max_concurrent_streams = h2.max_concurrent_streams();
  }
  if (h2.has_initial_stream_window_size()) {
    if (h2.initial_stream_window_size() < 65535 || h2.initial_stream_window_size() > kMaxWindow) {
      s.errors.add(hpath + ".initial_stream_window_size", "must be in 65535..2147483647");
    }
    out.initial_stream_window_size = h2.initial_stream_window_size();
  }
  if (h2.has_initial_connection_window_size()) {
    if (h2.initial_connection_window_size() < 65535 ||
        h2.initial_connection_window_size() > kMaxWindow) {
      s.errors.add(hpath + ".initial_connection_window_size", "must be in 65535..2147483647");
    }
    out.initial_connection_window_size = h2.initial_connection_window_size();
  }
  if (h2.has_max_header_list_size()) {
    if (h2.max_header_list_size() < 1024) {
      s.errors.add(hpath + ".max_header_list_size", "must be >= 1024");
    }
    out.max_header_list_size = h2.max_header_list_size();
  }
  out.max_requests_per_connection = h2.max_requests_per_connection();
  http.codec.stream_buffer_limit = http.buffer_limit;
}

void buildLimits(BuildState& s, const ListenerProto& lc, const std::string& path,
                 Http::ConnectionManagerConfig& http) {
  const auto& lim = lc.limits();
  const std::string lpath = path + ".limits";
  if (lim.max_request_headers_kb() > 8192) {
    s.errors.add(lpath + ".max_request_headers_kb", "must be <= 8192");
  }
  http.codec.max_request_headers_bytes =
      (lim.max_request_headers_kb() ? lim.max_request_headers_kb() : 60) * 1024;
  http.codec.max_headers_count = lim.max_headers_count() ? lim.max_headers_count() : 100;
  http.codec.max_request_body_bytes = lim.max_request_body_bytes();
  checkDuration(s, lim.has_request_headers_timeout(), lim.request_headers_timeout(),
                lpath + ".request_headers_timeout");
  checkDuration(s, lim.has_idle_timeout(), lim.idle_timeout(), lpath + ".idle_timeout");
  checkDuration(s, lim.has_request_timeout(), lim.request_timeout(), lpath + ".request_timeout");
  checkDuration(s, lim.has_stream_idle_timeout(), lim.stream_idle_timeout(),
                lpath + ".stream_idle_timeout");
  http.request_headers_timeout =
      Config::durationOr(lim.has_request_headers_timeout(), lim.request_headers_timeout(),
                         std::chrono::milliseconds(30000));
  if (http.request_headers_timeout.count() == 0) {
    s.errors.add(lpath + ".request_headers_timeout", "must be > 0 (slow clients must be cut off)");
  }
  http.idle_timeout = Config::durationOr(lim.has_idle_timeout(), lim.idle_timeout(),
                                         std::chrono::milliseconds(60000));
  http.request_timeout = Config::durationOr(lim.has_request_timeout(), lim.request_timeout(),
                                            std::chrono::milliseconds(0));
  http.stream_idle_timeout = Config::durationOr(
      lim.has_stream_idle_timeout(), lim.stream_idle_timeout(), std::chrono::milliseconds(300000));
  http.buffer_limit = lim.buffer_limit_bytes() ? lim.buffer_limit_bytes() : 32 * 1024;
  if (http.buffer_limit < 16384) {
    s.errors.add(lpath + ".buffer_limit_bytes", "must be >= 16384");
  }
  http.request_buffering = !lc.has_request_buffering() || lc.request_buffering();
  http.request_buffer_bytes = lim.request_buffer_bytes() ? lim.request_buffer_bytes() : 64 * 1024;
  if (lim.request_buffer_bytes() > 16 * 1024 * 1024) {
    s.errors.add(lpath + ".request_buffer_bytes", "must be <= 16777216");
  }
  checkDuration(s, lim.has_request_body_timeout(), lim.request_body_timeout(),
                lpath + ".request_body_timeout");
  http.request_body_timeout = Config::durationOr(
      lim.has_request_body_timeout(), lim.request_body_timeout(), std::chrono::milliseconds(60000));
}

// Request path and header hygiene.
void buildHygiene(BuildState& s, const ListenerProto& lc, const std::string& path,
                  Http::ConnectionManagerConfig& http) {
  http.path.normalize = !lc.has_normalize_path() || lc.normalize_path();
  http.path.merge_slashes = !lc.has_merge_slashes() || lc.merge_slashes();
  using Escaped = sluice::config::v1::EscapedSlashes;
  switch (lc.path_with_escaped_slashes_action()) {
    case Escaped::REJECT_REQUEST:
      http.path.escaped_slashes = Http::Path::EscapedSlashesAction::RejectRequest;
      break;
    case Escaped::KEEP_UNCHANGED:
      http.path.escaped_slashes = Http::Path::EscapedSlashesAction::KeepUnchanged;
      break;
    case Escaped::UNESCAPE_AND_FORWARD:
      http.path.escaped_slashes = Http::Path::EscapedSlashesAction::UnescapeAndForward;
      break;
    case Escaped::UNESCAPE_AND_REDIRECT:
      http.path.escaped_slashes = Http::Path::EscapedSlashesAction::UnescapeAndRedirect;
      break;
    default:
      s.errors.add(path + ".path_with_escaped_slashes_action", "unknown value");
  }
  using Underscores = sluice::config::v1::UnderscoreHeaders;
  switch (lc.headers_with_underscores_action()) {
    case Underscores::DROP_HEADER:
      http.underscores = Http::UnderscoreHeadersAction::Drop;
      break;
    case Underscores::REJECT_REQUEST:
      http.underscores = Http::UnderscoreHeadersAction::Reject;
      break;
    case Underscores::ALLOW:
      http.underscores = Http::UnderscoreHeadersAction::Allow;
      break;
    default:
      s.errors.add(path + ".headers_with_underscores_action", "unknown value");
  }
  http.allow_trace = lc.allow_trace();
  http.scheme = lc.scheme().empty() ? "http" : lc.scheme();
  if (http.scheme != "http" && http.scheme != "https") {
    s.errors.add(path + ".scheme", "must be http or https");
  }
}

void buildAccessLog(BuildState& s, const ListenerProto& lc, const std::string& path,
                    Http::ConnectionManagerConfig& http) {
  if (!lc.has_access_log()) return;
  const std::string& file = lc.access_log().path();
  if (file.empty()) {
    s.errors.add(path + ".access_log.path", "is required");
  } else if (!s.o.check_files) {
    // The control plane validates for data planes on other machines.
  } else if (s.o.access_logs == nullptr) {
    // Validation only: check the file could be opened, without creating it.
    absl::Status st = AccessLog::FileSink::checkWritable(file);
    if (!st.ok()) s.errors.add(path + ".access_log.path", std::string(st.message()));
  } else {
    auto sink = s.o.access_logs->get(file);
    if (!sink.ok()) {
      s.errors.add(path + ".access_log.path", std::string(sink.status().message()));
    } else {
      http.access_log = *sink;
    }
  }
  // Credentials never reach the log: OAuth's access_token, the configured names and the query
  // parameters any policy takes credentials from (key-auth's key names, JWT query parameters)
  // have their values replaced.
  Http::CredentialNames names;
  for (const std::string& name : lc.access_log().redact_query_params()) names.addQueryParam(name);
  names.addPolicies(*s.policies);
  http.redact_query_params = names.queryParams();
}

// The listener's OTLP exporter (a process-wide sink per endpoint and settings); null while
// only validating.
Tracing::SpanExporterSharedPtr buildSpanExporter(BuildState& s,
                                                 const sluice::config::v1::Tracing& t,
                                                 const std::string& path) {
  auto uri = Http::parseHttpUri(t.otlp_endpoint());
  if (!uri.ok()) {
    s.errors.add(path + ".otlp_endpoint", std::string(uri.status().message()));
    return nullptr;
  }
  Tracing::OtlpSettings o;
  o.endpoint = std::move(*uri);
  if (!t.service_name().empty()) o.service_name = t.service_name();
  if (t.has_max_batch_size() && t.max_batch_size() > 0) o.max_batch_size = t.max_batch_size();
  if (t.has_max_queued_spans() && t.max_queued_spans() > 0) {
    o.max_queued_spans = t.max_queued_spans();
  }
  o.flush_timeout =
      Config::durationOr(t.has_flush_timeout(), t.flush_timeout(), std::chrono::milliseconds(2000));
  if (o.endpoint.https && s.o.check_files) {
    auto tls = Http::createUriTlsContext(o.endpoint, "");
    if (!tls.ok()) {
      s.errors.add(path + ".otlp_endpoint", std::string(tls.status().message()));
      return nullptr;
    }
    o.endpoint.tls = *tls;
  }
  if (s.o.singletons == nullptr || s.o.main_dispatcher == nullptr) return nullptr;
  auto exporter = Tracing::createOtlpExporter(o, *s.o.singletons, s.stats, s.o.dns_options);
  if (!exporter.ok()) {
    s.errors.add(path + ".otlp_endpoint", std::string(exporter.status().message()));
    return nullptr;
  }
  return *exporter;
}

// The listener's `tracing` and `metrics`.
void buildObservability(BuildState& s, const ListenerProto& lc, const std::string& path,
                        Http::ConnectionManagerConfig& http) {
  if (lc.has_tracing()) {
    const auto& t = lc.tracing();
    const std::string tpath = path + ".tracing";
    auto tracing = std::make_shared<Http::TracingConfig>();
    tracing->sample_rate = t.has_sample_rate() ? t.sample_rate() : 1.0;
    if (!(tracing->sample_rate >= 0.0 && tracing->sample_rate <= 1.0)) {
      s.errors.add(tpath + ".sample_rate", "must be between 0 and 1");
    }
    if (t.has_max_batch_size() && t.max_batch_size() == 0) {
      s.errors.add(tpath + ".max_batch_size", "must be at least 1");
    }
    if (t.has_max_queued_spans() && t.max_queued_spans() == 0) {
      s.errors.add(tpath + ".max_queued_spans", "must be at least 1");
    }
    if (t.has_flush_timeout()) {
      auto ms = Config::durationMs(t.flush_timeout(), tpath + ".flush_timeout");
      if (!ms.ok()) {
        s.errors.add(ms.status());
      } else if (ms->count() <= 0) {
        s.errors.add(tpath + ".flush_timeout", "must be positive");
      }
    }
    if (!t.otlp_endpoint().empty()) {
      tracing->exporter = buildSpanExporter(s, t, tpath);
    } else if (!t.service_name().empty() || t.has_max_batch_size() || t.has_flush_timeout() ||
               t.has_max_queued_spans()) {
      s.errors.add(tpath + ".otlp_endpoint", "is required by the export settings");
    }
    http.tracing = std::move(tracing);
  }
  if (lc.metrics().per_consumer()) {
    const auto& m = lc.metrics();
    http.max_consumers = m.has_max_consumers() ? m.max_consumers() : 100;
    if (http.max_consumers == 0)
      s.errors.add(path + ".metrics.max_consumers", "must be at least 1");
    if (s.o.singletons != nullptr && s.stats != nullptr) {
      Stats::Store* store = s.stats;
      http.consumer_stats = s.o.singletons->getOrCreate<Stats::ConsumerStats>(
          "sluice.consumer_stats",
          [store]() { return std::make_shared<Stats::ConsumerStats>(*store); });
    }
  } else if (lc.metrics().has_max_consumers()) {
    s.errors.add(path + ".metrics.max_consumers", "only applies with per_consumer: true");
  }
}

void buildListener(BuildState& s, const ListenerProto& lc, const std::string& path, bool dynamic,
                   absl::flat_hash_set<std::string>& listener_names) {
  ListenerInfo li;
  li.name = lc.name();
  li.config = lc.SerializeAsString();
  if (lc.name().empty()) {
    s.errors.add(path + ".name", "is required");
  } else if (!listener_names.insert(lc.name()).second) {
    s.errors.add(path + ".name", absl::StrCat("duplicate listener \"", lc.name(), "\""));
  }
  if (!Network::Address::parse(lc.address().host(), lc.address().port(), li.address)) {
    s.errors.add(path + ".address", absl::StrCat("invalid address \"", lc.address().host(), ":",
                                                 lc.address().port(), "\""));
  }
  for (const ListenerInfo& other : s.snap.listeners) {
    if (other.address.toString() == li.address.toString() && li.address.port() != 0) {
      s.errors.add(path + ".address", absl::StrCat("same address as listener \"", other.name,
                                                   "\" (", li.address.toString(), ")"));
    }
  }
  li.backlog = lc.backlog() ? lc.backlog() : 1024;
  auto http = std::make_shared<Http::ConnectionManagerConfig>();
  http->listener_name = lc.name();
  if (lc.route_table().empty()) {
    s.errors.add(path + ".route_table", "is required");
  } else {
    auto it = s.snap.route_tables.find(lc.route_table());
    if (it != s.snap.route_tables.end()) {
      http->route_table = it->second;
    } else if (!s.table_names.contains(lc.route_table()) &&
               !(s.o.static_may_reference_dynamic && !dynamic)) {
      s.errors.add(path + ".route_table",
                   absl::StrCat("unknown route table \"", lc.route_table(), "\""));
    }
  }
  buildFilterChain(s, lc, path, *http);
  checkRouteFilters(s, lc, path);
  buildLimits(s, lc, path, *http);
  buildHttp2(s, lc, path, *http);
  buildHygiene(s, lc, path, *http);
  buildAccessLog(s, lc, path, *http);
  buildObservability(s, lc, path, *http);
  http->gateway_responses =
      Http::GatewayResponses::create(lc.gateway_responses(), path + ".gateway_responses", s.errors);
  buildListenerTls(s, lc, path, li, *http);
  li.http = std::move(http);
  s.snap.listeners.push_back(std::move(li));
}

}  // namespace

void buildListeners(BuildState& s) {
  PathNamer listener_path(s.o.static_prefix, "listeners", "Listener", s.o.first_dynamic_listener);
  absl::flat_hash_set<std::string> listener_names;
  for (int i = 0; i < s.sr.listeners_size(); ++i) {
    const auto& lc = s.sr.listeners(i);
    buildListener(s, lc, listener_path(i, lc.name()), listener_path.dynamic(i), listener_names);
  }
}

}  // namespace Server
}  // namespace sluice
