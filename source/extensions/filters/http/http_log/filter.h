#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "source/common/http/batch_sink.h"
#include "source/common/http/filter.h"
#include "source/common/http/redaction.h"
#include "source/common/network/dns_resolver.h"
#include "source/common/stats/stats.h"
#include "source/extensions/filters/http/http_log/config.h"

namespace sluice {
namespace Extensions {
namespace HttpLog {

// What one entry is made of: the stream at its end.
struct EntryInput {
  const Http::StreamInfo* info = nullptr;
  const Http::RequestHeaderMap* request = nullptr;    // null: the stream had none
  const Http::ResponseHeaderMap* response = nullptr;  // null: no response started
  const Router::RouteEntry* route = nullptr;
  absl::string_view client_ip;
  std::chrono::steady_clock::time_point now;
};

// One JSON log entry with the fields of Kong's log serializer (docs/configuration.md,
// "http_log"): request {method, uri, url, size, querystring, headers}, upstream_uri, response
// {status, size, headers}, latencies {request, kong, proxy} in ms, route, service, consumer,
// authenticated_entity, client_ip, started_at, request_id and trace_id. The values of `secrets`
// (headers and query parameters) are "REDACTED"; text from the client or upstream that is not
// UTF-8 has U+FFFD in place of the bad bytes.
std::string serializeEntry(const EntryInput& in, const Http::CredentialNames& secrets);

// Shared by the streams of one listener's config (immutable; the sinks are process-wide).
class FilterConfig {
 public:
  FilterConfig(LogConfigConstSharedPtr listener, Http::CredentialNames secrets,
               Http::SingletonManager* singletons, Stats::Store* stats,
               Network::DnsResolverOptionsConstSharedPtr dns)
      : listener_(std::move(listener)),
        secrets_(std::move(secrets)),
        singletons_(singletons),
        stats_(stats),
        dns_(std::move(dns)) {}

  const LogConfig& listener() const { return *listener_; }
  const Http::CredentialNames& secrets() const { return secrets_; }
  // The sink of `config`, made on first use (null when it cannot be: only validating, or the
  // sink failed to start, which is logged).
  Http::BatchSink* sinkFor(const LogConfig& config) const;

 private:
  LogConfigConstSharedPtr listener_;
  const Http::CredentialNames secrets_;
  Http::SingletonManager* const singletons_;
  Stats::Store* const stats_;
  const Network::DnsResolverOptionsConstSharedPtr dns_;
};
using FilterConfigConstSharedPtr = std::shared_ptr<const FilterConfig>;

// Kong's http-log: one entry per request, built when the stream ends (onDestroy(): the status,
// sizes and latencies are final; local replies and resets included) and handed to the sink of
// the route's config (else the listener's). Never stops, delays or fails the request.
// Worker-local, one per stream.
class HttpLogFilter : public Http::StreamDecoderFilter {
 public:
  explicit HttpLogFilter(FilterConfigConstSharedPtr config) : config_(std::move(config)) {}

  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap&, bool) override {
    return Http::FilterHeadersStatus::Continue;
  }
  Http::FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;
  }
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& callbacks) override {
    callbacks_ = &callbacks;
  }
  void onDestroy() override;

 private:
  FilterConfigConstSharedPtr config_;
  Http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
};

}  // namespace HttpLog
}  // namespace Extensions
}  // namespace sluice
