#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/http/filter.h"
#include "source/common/stats/stats.h"
#include "source/extensions/filters/http/rate_limit/local_store.h"
#include "source/extensions/filters/http/rate_limit/policy.h"
#include "source/extensions/filters/http/rate_limit/redis_client.h"

namespace sluice {
namespace Router {
class RouteEntry;
}
namespace Extensions {
namespace RateLimit {

// Per policy: `rate_limit.<policy>.<name>` / `sluice_rate_limit_<name>_total{policy="..."}`.
#define ALL_RATE_LIMIT_STATS(COUNTER) \
  COUNTER(allowed)                    \
  COUNTER(limited)                    \
  COUNTER(redis_error)                \
  COUNTER(redis_timeout)              \
  COUNTER(fail_open)                  \
  COUNTER(fail_closed)

#define RATE_LIMIT_DECLARE_COUNTER(name) Stats::Counter* name = nullptr;

struct RateLimitStats {
  ALL_RATE_LIMIT_STATS(RATE_LIMIT_DECLARE_COUNTER)
  static RateLimitStats create(Stats::Store& store, const std::string& policy);
  // Every counter pointing at one process-wide sink: for configs that are only validated
  // (sluice --validate, sluice-cp), which never count anything.
  static RateLimitStats discarded();
};

struct PolicyRuntime {
  CompiledPolicyConstSharedPtr policy;
  RateLimitStats stats;
};

// The filter's view of one config snapshot: every rate-limit policy compiled, their stats, and
// the process-wide LOCAL counters. Immutable once built; shared by the streams of every worker.
class FilterConfig {
 public:
  using Clock = std::function<int64_t()>;  // wall time, ms since the epoch

  // `stats` null: validation only (no request ever runs), the counters go to a sink.
  FilterConfig(LocalStoreSharedPtr local, Stats::Store* stats, Clock clock = nullptr);

  // Compiles `policy` and adds it; false (nothing added) when it does not validate.
  bool addPolicy(const PolicyProto& policy, const std::string& path);
  const PolicyRuntime* find(const std::string& name) const;
  // The listener's policy for routes that configure none (empty: they are not limited).
  void setDefaultPolicy(std::string name) { default_policy_ = std::move(name); }
  const std::string& defaultPolicy() const { return default_policy_; }
  LocalStore& local() const { return *local_; }
  int64_t nowMs() const;
  // How a worker resolves a Redis host name (the bootstrap's dns_resolvers; null: the system's).
  void setDnsOptions(Network::DnsResolverOptionsConstSharedPtr options) {
    dns_options_ = std::move(options);
  }
  const Network::DnsResolverOptions* dnsOptions() const { return dns_options_.get(); }

 private:
  LocalStoreSharedPtr local_;
  Network::DnsResolverOptionsConstSharedPtr dns_options_;
  Stats::Store* stats_;
  Clock clock_;
  absl::flat_hash_map<std::string, PolicyRuntime> policies_;
  std::string default_policy_;
};
using FilterConfigConstSharedPtr = std::shared_ptr<const FilterConfig>;

// `rate_limit`: looks up the route's policy (`rate_limit: <name>`, filter_config.rate_limit, or
// the listener's default), decides the request with
// the LOCAL store or one Redis round trip, answers 429 (Retry-After, JSON body) or 503 (Redis
// down and fault_tolerant false), and adds the rate-limit headers to the response.
// Per stream; runs on its worker only.
class RateLimitFilter : public Http::StreamFilter, public RedisCallbacks {
 public:
  explicit RateLimitFilter(FilterConfigConstSharedPtr config) : config_(std::move(config)) {}

  // Http::StreamDecoderFilter
  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;
  }
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& callbacks) override {
    decoder_callbacks_ = &callbacks;
  }
  // Http::StreamEncoderFilter
  Http::FilterHeadersStatus encodeHeaders(Http::ResponseHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus encodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;
  }
  Http::FilterTrailersStatus encodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setEncoderFilterCallbacks(Http::StreamEncoderFilterCallbacks&) override {}
  void onDestroy() override;

  // RedisCallbacks
  void onRedisReply(const redisReply* reply, absl::string_view error) override;

  // What a budget is kept per for this request ("consumer:alice", "ip:10.0.0.1", ...), into
  // `out` (its buffer is reused: no allocation per request).
  static void identity(const CompiledPolicy& policy, const Http::RequestHeaderMap& headers,
                       const Router::RouteEntry& route, const Http::StreamInfo& info,
                       absl::string_view client_ip, std::string& out);
  // Adds the policy's headers for `decision` (in the policy's header style).
  static void addHeaders(const CompiledPolicy& policy, const Decision& decision,
                         Http::ResponseHeaderMap& headers);
  // The gateway response type of a refusal: QUOTA_EXCEEDED when a window of a day or longer
  // refused the request, else THROTTLED.
  static Http::GatewayResponseType refusalType(const CompiledPolicy& policy,
                                               const Decision& decision);

 private:
  // Acts on decision_ (kept for the response headers): answers 429 when it rejects. True when
  // the request goes on.
  bool apply();
  // Redis failed or timed out: fault_tolerant lets the request go on (true) or answers 503.
  bool failed(bool timeout);
  void onTimeout();

  FilterConfigConstSharedPtr config_;
  Http::StreamDecoderFilterCallbacks* decoder_callbacks_ = nullptr;
  const PolicyRuntime* policy_ = nullptr;
  Decision decision_;
  bool decided_ = false;
  RedisClient* client_ = nullptr;
  RedisRequestSharedPtr request_;
  Event::TimerPtr timer_;
};

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
