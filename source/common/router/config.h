#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "re2/re2.h"
#include "sluice/config/v1/route.pb.h"
#include "source/common/config/utility.h"
#include "source/common/http/gateway_response_config.h"
#include "source/common/http/headers.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Router {

struct HeaderMatch {
  enum class Kind { Exact, Prefix, Regex, Present };
  std::string name;
  Kind kind = Kind::Present;
  std::string value;
  std::unique_ptr<RE2> regex;
  bool invert = false;
  bool matches(const Http::HeaderMap& headers) const;
};

struct QueryMatch {
  enum class Kind { Exact, Regex, Present };
  std::string name;
  Kind kind = Kind::Present;
  std::string value;
  std::unique_ptr<RE2> regex;
  bool matches(absl::string_view query) const;
};

enum class ActionType { Cluster, WeightedClusters, DirectResponse, Redirect };

// A route's retry policy, compiled from `retry_policy`.
struct RetryPolicy {
  enum On : uint32_t {
    kConnectFailure = 0x1,
    kReset = 0x2,
    k5xx = 0x4,
    kGatewayError = 0x8,
    kRetriableStatusCodes = 0x10,
    // gRPC: a response whose headers carry this grpc-status (a trailers-only response).
    kGrpcCancelled = 0x20,          // 1 CANCELLED
    kGrpcDeadlineExceeded = 0x40,   // 4 DEADLINE_EXCEEDED
    kGrpcResourceExhausted = 0x80,  // 8 RESOURCE_EXHAUSTED
    kGrpcUnavailable = 0x100,       // 14 UNAVAILABLE
    kGrpcAny = kGrpcCancelled | kGrpcDeadlineExceeded | kGrpcResourceExhausted | kGrpcUnavailable,
  };
  uint32_t retry_on = kConnectFailure | kReset | kGatewayError;
  uint32_t num_retries = 1;
  std::chrono::milliseconds per_try_timeout{0};  // 0 = none
  std::vector<uint32_t> retriable_status_codes;
  std::chrono::milliseconds base_interval{25};
  std::chrono::milliseconds max_interval{250};

  // Is a response with this status retried?
  bool retriableStatus(uint32_t status) const;
  // Does any gRPC condition apply, and is a response with this grpc-status (in its headers)
  // retried?
  bool retriesGrpc() const { return (retry_on & kGrpcAny) != 0; }
  bool retriableGrpcStatus(uint32_t grpc_status) const;
  // Is a connect failure / a reset or timeout before the response retried?
  bool retriesConnectFailure() const {
    return (retry_on & (kConnectFailure | k5xx | kGatewayError)) != 0;
  }
  bool retriesReset() const { return (retry_on & (kReset | k5xx | kGatewayError)) != 0; }
};

// How a weighted-clusters route keeps a client on one side of the split.
enum class CanaryHashOn { Random, Header, Cookie, Ip, Consumer };

struct RouteStats {
  Stats::Counter* rq_total = nullptr;
  Stats::Counter* rq_class[6] = {};  // index by status / 100 (1..5)
  Stats::Counter* bytes_received = nullptr;
  Stats::Counter* bytes_sent = nullptr;
  Stats::Histogram* rq_time = nullptr;
  Stats::Histogram* upstream_rq_time = nullptr;
  Stats::Histogram* gateway_time = nullptr;
};

// A filter's compiled per-route config (`filter_config.<filter>` of a route or virtual host),
// made by the filter's type (Http::FilterType) and read back by the filter with
// RouteEntry::perFilterConfig<T>(name). Immutable, shared by all workers.
class RouteSpecificFilterConfig {
 public:
  virtual ~RouteSpecificFilterConfig() = default;
};
using RouteSpecificFilterConfigConstSharedPtr = std::shared_ptr<const RouteSpecificFilterConfig>;
// By filter name; a route has a handful at most, so a vector beats a map.
using PerFilterConfigs =
    std::vector<std::pair<std::string, RouteSpecificFilterConfigConstSharedPtr>>;

// Compiles a route's or a virtual host's `filter_config` (and a route's shorthands such as
// `auth: NAME`); given to RouteTableImpl::create by whoever knows the filters.
class PerFilterConfigCompiler {
 public:
  virtual ~PerFilterConfigCompiler() = default;
  // `route` is null for a virtual host. Errors name fields under `path`.
  virtual PerFilterConfigs compile(
      const google::protobuf::Map<std::string, google::protobuf::Struct>& filter_config,
      const sluice::config::v1::Route* route, const std::string& path,
      Config::ErrorList& errors) const = 0;
};

// One compiled route. Immutable once built; shared by all workers through the snapshot.
class RouteEntry {
 public:
  enum class PathKind { Prefix, Exact, Regex };

  const std::string& name() const { return name_; }
  ActionType type() const { return type_; }
  // Methods, headers and query parameters (the path is checked by the index).
  bool matchesRest(const Http::RequestHeaderMap& headers) const;
  bool matchesPath(absl::string_view path) const;
  // The named groups of a regex route's path (`(?P<name>...)`) as `path` (without the query)
  // fills them, in group order; empty for other routes or when the path doesn't match.
  std::vector<std::pair<std::string, std::string>> namedCaptures(absl::string_view path) const;

  // Cluster actions.
  const std::string& cluster() const { return cluster_; }
  // Picks a weighted cluster from a uniform random number.
  const std::string& pickCluster(uint64_t random) const;
  // Picks the cluster of a weighted-clusters route for this request: the canary header's
  // override, else by the sticky hash (`hash_on`), else from a per-thread low-discrepancy
  // sequence that follows the weights exactly over many requests.
  const std::string& selectCluster(const Http::RequestHeaderMap& headers,
                                   absl::string_view client_ip) const;
  // The point of this request in the split: the sticky key's hash, or the next value of the
  // per-thread sequence.
  uint64_t splitPoint(const Http::RequestHeaderMap& headers, absl::string_view client_ip) const;
  // Retry policy, or null when the route has none.
  const RetryPolicy* retryPolicy() const { return retry_policy_.get(); }
  const std::vector<std::pair<std::string, uint32_t>>& weightedClusters() const {
    return weighted_;
  }
  // The path to send upstream (prefix_rewrite applied), or empty for "unchanged".
  std::string rewrittenPath(const Http::RequestHeaderMap& headers) const;
  const std::string& hostRewrite() const { return host_rewrite_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // gRPC requests: the cap on the client's grpc-timeout (0 = none); unset: the route timeout.
  const absl::optional<std::chrono::milliseconds>& maxGrpcTimeout() const {
    return max_grpc_timeout_;
  }

  // Direct response.
  uint32_t directStatus() const { return direct_status_; }
  const std::string& directBody() const { return direct_body_; }
  const std::string& directContentType() const { return direct_content_type_; }

  // Redirect.
  uint32_t redirectCode() const { return redirect_code_; }
  std::string redirectLocation(const Http::RequestHeaderMap& headers,
                               absl::string_view scheme) const;

  const RouteStats& stats() const { return stats_; }

  // The most specific config of `filter` for this route: the route's own `filter_config` entry,
  // else its virtual host's; null when neither sets one (the filter then uses its listener
  // config). T is the filter's own RouteSpecificFilterConfig type.
  const RouteSpecificFilterConfig* perFilterConfig(absl::string_view filter) const {
    for (const auto& [name, config] : filter_configs_) {
      if (name == filter) return config.get();
    }
    if (vhost_filter_configs_ != nullptr) {
      for (const auto& [name, config] : *vhost_filter_configs_) {
        if (name == filter) return config.get();
      }
    }
    return nullptr;
  }
  template <class T>
  const T* perFilterConfig(absl::string_view filter) const {
    return static_cast<const T*>(perFilterConfig(filter));
  }

 private:
  friend class RouteTableImpl;
  friend class VirtualHostImpl;
  std::string name_;
  PathKind path_kind_ = PathKind::Prefix;
  std::string path_value_;
  std::unique_ptr<RE2> path_regex_;
  bool case_sensitive_ = true;
  std::vector<std::string> methods_;
  std::vector<HeaderMatch> headers_;
  std::vector<QueryMatch> query_;

  ActionType type_ = ActionType::Cluster;
  std::string cluster_;
  std::vector<std::pair<std::string, uint32_t>> weighted_;
  uint64_t total_weight_ = 0;
  CanaryHashOn hash_on_ = CanaryHashOn::Random;
  std::string hash_key_;       // header (lower case) or cookie name
  std::string canary_header_;  // lower case; empty = no override
  std::unique_ptr<const RetryPolicy> retry_policy_;
  std::string prefix_rewrite_;
  std::string host_rewrite_;
  std::chrono::milliseconds timeout_{15000};
  absl::optional<std::chrono::milliseconds> max_grpc_timeout_;
  PerFilterConfigs filter_configs_;
  const PerFilterConfigs* vhost_filter_configs_ = nullptr;  // owned by the virtual host
  uint32_t direct_status_ = 0;
  std::string direct_body_;
  std::string direct_content_type_;
  sluice::config::v1::Redirect redirect_;
  uint32_t redirect_code_ = 301;
  RouteStats stats_;
};

class VirtualHostImpl {
 public:
  const std::string& name() const { return name_; }
  const RouteEntry* match(const Http::RequestHeaderMap& headers) const;
  size_t routeCount() const { return routes_.size(); }
  // This virtual host's `gateway_responses`; null when it has none.
  const Http::GatewayResponses* gatewayResponses() const { return gateway_responses_.get(); }

 private:
  friend class RouteTableImpl;
  void buildIndex();

  std::string name_;
  PerFilterConfigs filter_configs_;
  Http::GatewayResponsesConstSharedPtr gateway_responses_;
  std::vector<std::unique_ptr<RouteEntry>> routes_;
  // Path index: exact paths and prefixes -> route indices (ascending). Routes that can't be
  // indexed (regex, case-insensitive) are always candidates. Matching looks up the path's
  // prefixes of each distinct prefix length, merges candidates and checks them in route order,
  // so 10,000 routes cost a handful of hash lookups instead of 10,000 comparisons.
  absl::flat_hash_map<std::string, std::vector<uint32_t>> exact_;
  absl::flat_hash_map<std::string, std::vector<uint32_t>> prefixes_;
  std::vector<uint32_t> prefix_lengths_;  // ascending, distinct
  std::vector<uint32_t> always_;
};

class RouteTableImpl;
using RouteTableConstSharedPtr = std::shared_ptr<const RouteTableImpl>;

class RouteTableImpl {
 public:
  // Compiles `config`. Errors name the field under `path` (e.g. "route_tables[0]").
  // `stats` may be null (tests, benchmarks). With `cluster_exists`, a route naming an unknown
  // cluster is an error at its field. `filters` compiles `filter_config` entries and route
  // shorthands (`auth: NAME`); without one (tests and benchmarks of routing alone) a table with a
  // `filter_config` is refused and shorthands are not compiled.
  static absl::StatusOr<RouteTableConstSharedPtr> create(
      const sluice::config::v1::RouteTable& config, const std::string& path, Stats::Store* stats,
      const std::function<bool(const std::string&)>& cluster_exists = nullptr,
      const PerFilterConfigCompiler* filters = nullptr);

  const std::string& name() const { return name_; }
  const VirtualHostImpl* virtualHost(absl::string_view host) const;
  const RouteEntry* route(const Http::RequestHeaderMap& headers) const;
  // The same lookup, also giving the virtual host the request's host selected (null when none
  // did), which a request that matches no route of it still has.
  const RouteEntry* route(const Http::RequestHeaderMap& headers,
                          const VirtualHostImpl*& vhost) const;
  // Some virtual host has `gateway_responses`.
  bool hasGatewayResponses() const { return has_gateway_responses_; }

 private:
  using ClusterCheck =
      std::function<void(const std::string& name, const std::string& field, Config::ErrorList&)>;
  struct CompileContext {
    Stats::Store* stats = nullptr;
    const PerFilterConfigCompiler* filters = nullptr;
    ClusterCheck check_cluster;
  };
  static std::unique_ptr<RouteEntry> compileRoute(const sluice::config::v1::Route& rc,
                                                  const std::string& rpath,
                                                  const std::string& default_name,
                                                  const CompileContext& c,
                                                  Config::ErrorList& errors);
  static void compileMatch(const sluice::config::v1::RouteMatch& m, const std::string& rpath,
                           RouteEntry& entry, Config::ErrorList& errors);
  static void compileClusterAction(const sluice::config::v1::RouteAction& a,
                                   const std::string& rpath, const ClusterCheck& check_cluster,
                                   RouteEntry& entry, Config::ErrorList& errors);
  static void compileDirectResponse(const sluice::config::v1::DirectResponse& d,
                                    const std::string& rpath, RouteEntry& entry,
                                    Config::ErrorList& errors);
  static void compileRedirect(const sluice::config::v1::Redirect& rd, const std::string& rpath,
                              RouteEntry& entry, Config::ErrorList& errors);
  void addDomains(const sluice::config::v1::VirtualHost& vh_config, const std::string& vpath,
                  const VirtualHostImpl* vh, Config::ErrorList& errors);
  static void compileSplit(const sluice::config::v1::WeightedClusters& wc, const std::string& path,
                           RouteEntry& entry, Config::ErrorList& errors);
  static std::unique_ptr<const RetryPolicy> compileRetryPolicy(
      const sluice::config::v1::RetryPolicy& rp, const std::string& path,
      Config::ErrorList& errors);

  std::string name_;
  std::vector<std::unique_ptr<VirtualHostImpl>> vhosts_;
  absl::flat_hash_map<std::string, const VirtualHostImpl*> exact_hosts_;
  // "*.example.com" stored as ".example.com", longest first.
  std::vector<std::pair<std::string, const VirtualHostImpl*>> suffix_hosts_;
  const VirtualHostImpl* default_host_ = nullptr;
  bool has_gateway_responses_ = false;
};

}  // namespace Router
}  // namespace sluice
