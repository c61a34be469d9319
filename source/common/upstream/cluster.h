#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sluice/config/v1/cluster.pb.h"
#include "source/common/common/hash.h"
#include "source/common/network/connection.h"
#include "source/common/stats/stats.h"
#include "source/common/tls/context.h"
#include "source/common/upstream/cluster_state.h"

namespace sluice {
namespace Upstream {

#define ALL_CLUSTER_COUNTERS(COUNTER)         \
  COUNTER(upstream_rq_total)                  \
  COUNTER(upstream_cx_total)                  \
  COUNTER(upstream_cx_connect_fail)           \
  COUNTER(upstream_cx_connect_timeout)        \
  COUNTER(upstream_cx_tls_fail)               \
  COUNTER(upstream_cx_reused)                 \
  COUNTER(upstream_rq_timeout)                \
  COUNTER(upstream_rq_reset)                  \
  COUNTER(upstream_rq_retry_stale_connection) \
  COUNTER(upstream_rq_retry_refused_stream)   \
  COUNTER(upstream_rq_retry)                  \
  COUNTER(upstream_rq_retry_success)          \
  COUNTER(upstream_rq_retry_overflow)         \
  COUNTER(upstream_rq_per_try_timeout)        \
  COUNTER(upstream_cx_overflow)               \
  COUNTER(upstream_rq_pending_overflow)       \
  COUNTER(upstream_rq_overflow)               \
  COUNTER(upstream_rq_queued)                 \
  COUNTER(upstream_rq_queue_overflow)         \
  COUNTER(upstream_rq_queue_timeout)          \
  COUNTER(lb_healthy_panic)

#define ALL_CLUSTER_GAUGES(GAUGE) \
  GAUGE(upstream_cx_active)       \
  GAUGE(upstream_rq_active)

#define SLUICE_DECLARE_COUNTER(name) Stats::Counter* name;
#define SLUICE_DECLARE_GAUGE(name) Stats::Gauge* name;

struct ClusterStats {
  ALL_CLUSTER_COUNTERS(SLUICE_DECLARE_COUNTER)
  ALL_CLUSTER_GAUGES(SLUICE_DECLARE_GAUGE)
  Stats::Counter* upstream_rq_class[6];  // index by status / 100 (1..5)
  Stats::Histogram* upstream_rq_time;
  // Requests routed to the cluster, from their parsed headers to the end of their response,
  // and the part of that which was the gateway's own (everything but the final upstream try).
  Stats::Histogram* rq_time = nullptr;
  Stats::Histogram* gateway_time = nullptr;
};

struct EndpointStats {
  Stats::Counter* rq_total;
  Stats::Counter* connect_fail;
  Stats::Gauge* rq_active;
};

struct Endpoint {
  Network::Address address;
  std::string name;  // "127.0.0.1:9001"
  uint32_t weight = 1;
  EndpointStats stats;
  // Health and outlier state, shared with every config version that has this endpoint.
  EndpointStateSharedPtr state;
};

// Active health checking, compiled from the cluster's `health_check`.
struct HealthCheckConfig {
  bool enabled = false;
  bool tcp = false;
  std::string path;
  std::string host;
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{1000};
  std::chrono::milliseconds interval_jitter{0};
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 3;
  std::vector<uint32_t> expected_statuses;  // empty = 200-299
  // The cluster's TLS: checks connect the way requests do.
  std::shared_ptr<const Tls::ClientContext> tls;
  // The cluster speaks HTTP/2: checks use it too.
  bool http2 = false;
  bool expected(uint32_t status) const;
};

// Circuit breakers, compiled from `circuit_breakers` (Envoy's defaults).
struct CircuitBreakerConfig {
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
  uint32_t max_retries = 3;
  // Requests over max_requests wait for a slot (all workers together) for up to queue_timeout.
  uint32_t max_queued_requests = 16384;
  std::chrono::milliseconds queue_timeout{5000};
  bool retry_budget = false;
  uint32_t budget_percent = 20;
  uint32_t min_retry_concurrency = 3;
};

// Addresses DNS gave for the host names of one STRICT_DNS or LOGICAL_DNS cluster: host name ->
// IP addresses, in the answer's order. A name missing here has not resolved yet.
using ResolvedHosts = absl::flat_hash_map<std::string, std::vector<std::string>>;
// The same for every DNS cluster, by cluster name (kept on the main thread by DnsDiscovery).
using ResolvedClusters = absl::flat_hash_map<std::string, ResolvedHosts>;

// STRICT_DNS and LOGICAL_DNS settings, compiled from the cluster's config.
struct DnsConfig {
  std::chrono::milliseconds refresh_rate{5000};
  bool respect_ttl = true;
  sluice::config::v1::Cluster::DnsLookupFamily lookup_family = sluice::config::v1::Cluster::V4_ONLY;
};

class ClusterInfo;
using ClusterInfoConstSharedPtr = std::shared_ptr<const ClusterInfo>;

// A cluster as configured: immutable, shared by every worker through the config snapshot.
// Mutable per-worker state (load balancer position, connection pools) lives in
// ThreadLocalCluster.
class ClusterInfo {
 public:
  // `registry` (main thread) provides the state objects shared across config versions; null
  // gives this cluster state of its own (validation, tests). For a STRICT_DNS or LOGICAL_DNS
  // cluster, `resolved` holds what its host names resolved to: each address is an endpoint with
  // the port and weight of the endpoint that named it (LOGICAL_DNS: the first address only);
  // names not resolved yet give no endpoint (requests get 503 until they resolve). `tls`: the
  // compiled `tls` of the config (null = cleartext), made from `tls_key` (see
  // Server::buildClusterTls).
  static absl::StatusOr<ClusterInfoConstSharedPtr> create(
      const sluice::config::v1::Cluster& config, const std::string& path, Stats::Store* stats,
      ClusterStateRegistry* registry = nullptr, const ResolvedHosts* resolved = nullptr,
      Tls::ClientContextConstSharedPtr tls = nullptr, std::string tls_key = "");

  const std::string& name() const { return name_; }
  // The config this cluster was built from (to tell whether a new config changes it).
  const sluice::config::v1::Cluster& config() const { return config_; }
  sluice::config::v1::Cluster::LbPolicy lbPolicy() const { return lb_policy_; }
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  // STRICT_DNS or LOGICAL_DNS.
  bool usesDns() const { return config_.type() != sluice::config::v1::Cluster::STATIC; }
  const DnsConfig& dns() const { return dns_; }
  // The host names the endpoints were built from (DNS clusters; see create()).
  const ResolvedHosts& resolvedHosts() const { return resolved_; }
  std::chrono::milliseconds connectTimeout() const { return connect_timeout_; }
  std::chrono::milliseconds idleTimeout() const { return idle_timeout_; }
  uint32_t maxIdlePerEndpoint() const { return max_idle_; }
  const ClusterStats& stats() const { return stats_; }
  const sluice::config::v1::RingHash& ringHash() const { return ring_hash_config_; }
  // Sorted (hash, endpoint index) points of the consistent-hash ring (RING_HASH only).
  const std::vector<std::pair<uint64_t, uint32_t>>& ring() const { return ring_; }
  const HealthCheckConfig& healthCheck() const { return health_check_; }
  const OutlierConfig& outlier() const { return outlier_; }
  const CircuitBreakerConfig& circuitBreakers() const { return breakers_; }
  // Process-wide state (health generation, breaker counters); mutable through atomics only.
  ClusterState& state() const { return *state_; }
  // TLS to the endpoints; null = cleartext.
  const Tls::ClientContextConstSharedPtr& tls() const { return tls_; }
  const std::string& tlsKey() const { return tls_key_; }
  // `protocol: HTTP2`: streams multiplexed over h2c (or h2 with `tls`).
  bool http2() const { return config_.protocol() == sluice::config::v1::Cluster::HTTP2; }

 private:
  std::string name_;
  sluice::config::v1::Cluster config_;
  sluice::config::v1::Cluster::LbPolicy lb_policy_;
  std::vector<Endpoint> endpoints_;
  std::chrono::milliseconds connect_timeout_{5000};
  std::chrono::milliseconds idle_timeout_{60000};
  uint32_t max_idle_ = 64;
  sluice::config::v1::RingHash ring_hash_config_;
  std::vector<std::pair<uint64_t, uint32_t>> ring_;
  ClusterStats stats_{};
  HealthCheckConfig health_check_;
  OutlierConfig outlier_;
  CircuitBreakerConfig breakers_;
  DnsConfig dns_;
  ResolvedHosts resolved_;
  ClusterStateSharedPtr state_;
  Tls::ClientContextConstSharedPtr tls_;
  std::string tls_key_;
};

}  // namespace Upstream
}  // namespace sluice
