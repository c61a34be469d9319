#include "source/common/upstream/cluster.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "source/common/config/utility.h"
#include "source/common/http/headers.h"
#include "source/common/network/host_name.h"

namespace sluice {
namespace Upstream {

bool HealthCheckConfig::expected(uint32_t status) const {
  if (expected_statuses.empty()) {
    return status >= 200 && status <= 299;
  }
  return std::find(expected_statuses.begin(), expected_statuses.end(), status) !=
         expected_statuses.end();
}

namespace {

// A duration field that must be > 0 when set; `out` keeps its default when unset.
void positiveDuration(bool has, const google::protobuf::Duration& d, const std::string& field,
                      std::chrono::milliseconds& out, Config::ErrorList& errors,
                      bool allow_zero = false) {
  if (!has) {
    return;
  }
  auto ms = Config::durationMs(d, field);
  if (!ms.ok()) {
    errors.add(ms.status());
  } else if (ms->count() == 0 && !allow_zero) {
    errors.add(field, "must be > 0");
  } else {
    out = *ms;
  }
}

void compileHealthCheck(const sluice::config::v1::Cluster& config, const std::string& path,
                        HealthCheckConfig& hc, Config::ErrorList& errors) {
  if (!config.has_health_check()) {
    return;
  }
  const auto& c = config.health_check();
  const std::string p = path + ".health_check";
  hc.enabled = true;
  hc.tcp = c.type() == sluice::config::v1::HealthCheck::TCP;
  hc.path = c.http_path();
  hc.host = c.host().empty() ? config.name() : c.host();
  if (!hc.tcp) {
    if (c.http_path().empty() || c.http_path()[0] != '/') {
      errors.add(p + ".http_path", "is required for HTTP health checks and must start with '/'");
    } else if (!Http::isValidHeaderValue(c.http_path()) ||
               c.http_path().find(' ') != std::string::npos) {
      errors.add(p + ".http_path", "invalid path");
    }
    if (!Http::isValidHeaderValue(hc.host)) {
      errors.add(p + ".host", "invalid host");
    }
  } else if (!c.http_path().empty()) {
    errors.add(p + ".http_path", "only for type HTTP");
  }
  positiveDuration(c.has_interval(), c.interval(), p + ".interval", hc.interval, errors);
  positiveDuration(c.has_timeout(), c.timeout(), p + ".timeout", hc.timeout, errors);
  positiveDuration(c.has_interval_jitter(), c.interval_jitter(), p + ".interval_jitter",
                   hc.interval_jitter, errors, true);
  if (c.healthy_threshold() > 0) hc.healthy_threshold = c.healthy_threshold();
  if (c.unhealthy_threshold() > 0) hc.unhealthy_threshold = c.unhealthy_threshold();
  if (c.healthy_threshold() > 1000) errors.add(p + ".healthy_threshold", "must be <= 1000");
  if (c.unhealthy_threshold() > 1000) errors.add(p + ".unhealthy_threshold", "must be <= 1000");
  for (int i = 0; i < c.expected_statuses_size(); ++i) {
    const uint32_t st = c.expected_statuses(i);
    if (st < 100 || st > 599) {
      errors.add(absl::StrCat(p, ".expected_statuses[", i, "]"), "must be 100-599");
    }
    hc.expected_statuses.push_back(st);
  }
}

void compileOutlier(const sluice::config::v1::Cluster& config, const std::string& path,
                    OutlierConfig& od, Config::ErrorList& errors) {
  if (!config.has_outlier_detection()) {
    return;
  }
  const auto& c = config.outlier_detection();
  const std::string p = path + ".outlier_detection";
  od.enabled = true;
  if (c.has_consecutive_5xx()) od.consecutive_5xx = c.consecutive_5xx();
  if (c.has_consecutive_gateway_failure()) {
    od.consecutive_gateway_failure = c.consecutive_gateway_failure();
  }
  if (c.has_max_ejection_percent()) {
    od.max_ejection_percent = c.max_ejection_percent();
    if (c.max_ejection_percent() > 100) errors.add(p + ".max_ejection_percent", "must be <= 100");
  }
  positiveDuration(c.has_interval(), c.interval(), p + ".interval", od.interval, errors);
  positiveDuration(c.has_base_ejection_time(), c.base_ejection_time(), p + ".base_ejection_time",
                   od.base_ejection_time, errors);
  positiveDuration(c.has_max_ejection_time(), c.max_ejection_time(), p + ".max_ejection_time",
                   od.max_ejection_time, errors);
  if (od.max_ejection_time < od.base_ejection_time) {
    errors.add(p + ".max_ejection_time", "must be >= base_ejection_time");
  }
}

void compileBreakers(const sluice::config::v1::Cluster& config, const std::string& path,
                     CircuitBreakerConfig& cb, Config::ErrorList& errors) {
  const auto& c = config.circuit_breakers();
  const std::string p = path + ".circuit_breakers";
  if (c.has_max_connections()) cb.max_connections = c.max_connections();
  if (c.has_max_pending_requests()) cb.max_pending_requests = c.max_pending_requests();
  if (c.has_max_requests()) cb.max_requests = c.max_requests();
  if (c.has_max_retries()) cb.max_retries = c.max_retries();
  if (c.has_max_queued_requests()) cb.max_queued_requests = c.max_queued_requests();
  if (c.has_queue_timeout()) {
    auto d = Config::durationMs(c.queue_timeout(), p + ".queue_timeout");
    if (!d.ok()) {
      errors.add(d.status());
    } else {
      cb.queue_timeout = *d;
    }
  }
  if (c.has_max_connections() && c.max_connections() == 0) {
    errors.add(p + ".max_connections", "must be > 0");
  }
  if (c.has_max_requests() && c.max_requests() == 0) {
    errors.add(p + ".max_requests", "must be > 0");
  }
  if (c.has_retry_budget()) {
    cb.retry_budget = true;
    const auto& b = c.retry_budget();
    if (b.has_budget_percent()) cb.budget_percent = b.budget_percent();
    if (b.has_min_retry_concurrency()) cb.min_retry_concurrency = b.min_retry_concurrency();
    if (cb.budget_percent > 100) {
      errors.add(p + ".retry_budget.budget_percent", "must be <= 100");
    }
  }
}

// STRICT_DNS / LOGICAL_DNS: settings, and what such a cluster can't be.
void compileDns(const sluice::config::v1::Cluster& config, const std::string& path, DnsConfig& dns,
                Config::ErrorList& errors) {
  using sluice::config::v1::Cluster;
  if (config.type() == Cluster::STATIC) {
    return;
  }
  const std::string type = Cluster::DiscoveryType_Name(config.type());
  if (config.eds()) {
    errors.add(path + ".eds", absl::StrCat("must not be set in a ", type,
                                           " cluster (its endpoints come from DNS)"));
  }
  if (config.type() == Cluster::LOGICAL_DNS && config.endpoints_size() > 1) {
    errors.add(path + ".endpoints", "a LOGICAL_DNS cluster takes exactly one endpoint");
  }
  positiveDuration(config.has_dns_refresh_rate(), config.dns_refresh_rate(),
                   path + ".dns_refresh_rate", dns.refresh_rate, errors);
  dns.respect_ttl = config.has_respect_dns_ttl() ? config.respect_dns_ttl() : true;
  dns.lookup_family = config.dns_lookup_family();
}

// What is wrong with `address` as an endpoint of `config` when it is not an IP literal; empty
// when it is a host name the cluster resolves.
std::string hostError(const sluice::config::v1::Cluster& config, const std::string& address) {
  using sluice::config::v1::Cluster;
  if (config.type() != Cluster::STATIC) {
    return Network::isValidHostName(address)
               ? ""
               : absl::StrCat("\"", address, "\" is not an IP address or a valid host name");
  }
  if (!config.eds() && Network::isValidHostName(address)) {
    return absl::StrCat(
        "\"", address,
        "\" is a host name, but a STATIC cluster takes IP addresses: set "
        "`type: STRICT_DNS` (or LOGICAL_DNS) on the cluster to resolve it with DNS");
  }
  return absl::StrCat("\"", address, "\" is not an IP address or localhost");
}

}  // namespace

absl::StatusOr<ClusterInfoConstSharedPtr> ClusterInfo::create(
    const sluice::config::v1::Cluster& config, const std::string& path, Stats::Store* stats,
    ClusterStateRegistry* registry, const ResolvedHosts* resolved,
    Tls::ClientContextConstSharedPtr tls, std::string tls_key) {
  auto info = std::make_shared<ClusterInfo>();
  Config::ErrorList errors;
  info->name_ = config.name();
  info->tls_ = std::move(tls);
  info->tls_key_ = std::move(tls_key);
  info->config_ = config;
  if (config.name().empty()) {
    errors.add(path + ".name", "is required");
  }
  info->lb_policy_ = config.lb_policy();
  if (config.endpoints_size() == 0 && !config.eds()) {
    errors.add(path + ".endpoints", "at least one endpoint is required");
  }
  compileDns(config, path, info->dns_, errors);
  if (resolved != nullptr && info->usesDns()) {
    info->resolved_ = *resolved;
  }
  // A DNS cluster skips an address it already has (two names resolving to one address).
  auto add = [&info](const Network::Address& address, uint32_t weight) {
    Endpoint ep;
    ep.address = address;
    ep.weight = weight;
    ep.name = address.toString();
    if (info->usesDns()) {
      for (const Endpoint& e : info->endpoints_) {
        if (e.name == ep.name) return;
      }
    }
    info->endpoints_.push_back(std::move(ep));
  };
  for (int i = 0; i < config.endpoints_size(); ++i) {
    const auto& ec = config.endpoints(i);
    const std::string epath = absl::StrCat(path, ".endpoints[", i, "]");
    if (ec.port() == 0 || ec.port() > 65535) {
      errors.add(epath + ".port", "must be 1-65535");
    }
    // An out-of-range port is reported once, as a port error: the address is checked alone.
    const uint32_t port = ec.port() != 0 && ec.port() <= 65535 ? ec.port() : 1;
    Network::Address literal;
    const bool is_literal =
        !ec.address().empty() && Network::Address::parse(ec.address(), port, literal);
    const std::string error = is_literal ? "" : hostError(config, ec.address());
    if (!error.empty()) {
      errors.add(epath + ".address", error);
      continue;
    }
    if (ec.weight() > 10000) {
      errors.add(epath + ".weight", "must be 1-10000");
    }
    const uint32_t weight = ec.weight() == 0 ? 1 : ec.weight();
    if (is_literal) {
      add(literal, weight);
      continue;
    }
    // A host name of a DNS cluster: one endpoint per address it resolved to.
    auto it = info->resolved_.find(ec.address());
    if (it == info->resolved_.end()) continue;
    for (const std::string& ip : it->second) {
      if (Network::Address::parse(ip, port, literal)) add(literal, weight);
      if (config.type() == sluice::config::v1::Cluster::LOGICAL_DNS) break;
    }
  }
  if (config.has_connect_timeout()) {
    auto d = Config::durationMs(config.connect_timeout(), path + ".connect_timeout");
    if (!d.ok()) {
      errors.add(d.status());
    } else if (d->count() == 0) {
      errors.add(path + ".connect_timeout", "must be > 0");
    } else {
      info->connect_timeout_ = *d;
    }
  }
  if (config.has_idle_timeout()) {
    auto d = Config::durationMs(config.idle_timeout(), path + ".idle_timeout");
    if (!d.ok())
      errors.add(d.status());
    else
      info->idle_timeout_ = *d;
  }
  if (config.max_idle_connections_per_endpoint() > 0) {
    info->max_idle_ = config.max_idle_connections_per_endpoint();
  }
  info->ring_hash_config_ = config.ring_hash();
  info->ring_hash_config_.set_header_name(absl::AsciiStrToLower(config.ring_hash().header_name()));
  if (config.lb_policy() == sluice::config::v1::Cluster::RING_HASH &&
      config.ring_hash().hash_on() == sluice::config::v1::RingHash::HEADER &&
      config.ring_hash().header_name().empty()) {
    errors.add(path + ".ring_hash.header_name", "is required when hash_on is HEADER");
  }
  compileHealthCheck(config, path, info->health_check_, errors);
  info->health_check_.tls = info->tls_;
  info->health_check_.http2 = config.protocol() == sluice::config::v1::Cluster::HTTP2;
  compileOutlier(config, path, info->outlier_, errors);
  compileBreakers(config, path, info->breakers_, errors);
  RETURN_IF_ERRORS(errors);

  // State shared across config versions (health, breaker counters): from the registry when
  // there is one, else this cluster's own.
  if (registry != nullptr) {
    info->state_ = registry->cluster(info->name_);
  } else {
    info->state_ = std::make_shared<ClusterState>(info->name_, nullptr, nullptr);
  }
  for (Endpoint& e : info->endpoints_) {
    e.state = registry != nullptr ? registry->endpoint(info->name_, e.name)
                                  : std::make_shared<EndpointState>(info->name_, e.name);
  }

  if (info->lb_policy_ == sluice::config::v1::Cluster::RING_HASH) {
    // Ketama-style ring: each endpoint gets points in proportion to its weight.
    const uint64_t min_size =
        config.ring_hash().minimum_ring_size() ? config.ring_hash().minimum_ring_size() : 1024;
    uint64_t total_weight = 0;
    for (const Endpoint& e : info->endpoints_) total_weight += e.weight;
    for (uint32_t i = 0; i < info->endpoints_.size(); ++i) {
      const Endpoint& e = info->endpoints_[i];
      uint64_t points =
          std::max<uint64_t>(1, (min_size * e.weight + total_weight - 1) / total_weight);
      for (uint64_t p = 0; p < points; ++p) {
        info->ring_.emplace_back(stableHash(absl::StrCat(e.name, "_", p)), i);
      }
    }
    std::sort(info->ring_.begin(), info->ring_.end());
  }

  if (stats != nullptr) {
    const std::string& n = info->name_;
    Stats::Labels labels{{"cluster", n}};
    ClusterStats& s = info->stats_;
#define SLUICE_MAKE_COUNTER(stat) \
  s.stat = &stats->counter(absl::StrCat("cluster.", n, "." #stat), "cluster_" #stat, labels);
#define SLUICE_MAKE_GAUGE(stat) \
  s.stat = &stats->gauge(absl::StrCat("cluster.", n, "." #stat), "cluster_" #stat, labels);
    ALL_CLUSTER_COUNTERS(SLUICE_MAKE_COUNTER)
    ALL_CLUSTER_GAUGES(SLUICE_MAKE_GAUGE)
    for (int c = 1; c <= 5; ++c) {
      Stats::Labels l = labels;
      l.emplace_back("code_class", absl::StrCat(c, "xx"));
      s.upstream_rq_class[c] = &stats->counter(
          absl::StrCat("cluster.", n, ".upstream_rq_", c, "xx"), "cluster_upstream_rq_xx_total", l);
    }
    s.upstream_rq_class[0] = s.upstream_rq_class[5];
    s.upstream_rq_time = &stats->histogram(absl::StrCat("cluster.", n, ".upstream_rq_time"),
                                           "cluster_upstream_rq_time", labels);
    s.rq_time =
        &stats->histogram(absl::StrCat("cluster.", n, ".rq_time"), "cluster_rq_time", labels);
    s.gateway_time = &stats->histogram(absl::StrCat("cluster.", n, ".gateway_time"),
                                       "cluster_gateway_time", labels);
    for (Endpoint& e : info->endpoints_) {
      Stats::Labels el{{"cluster", n}, {"endpoint", e.name}};
      const std::string prefix = absl::StrCat("cluster.", n, ".endpoint.", e.name, ".");
      e.stats.rq_total = &stats->counter(prefix + "rq_total", "cluster_endpoint_rq_total", el);
      e.stats.connect_fail =
          &stats->counter(prefix + "connect_fail", "cluster_endpoint_connect_fail_total", el);
      e.stats.rq_active = &stats->gauge(prefix + "rq_active", "cluster_endpoint_rq_active", el);
    }
  }
  return ClusterInfoConstSharedPtr(std::move(info));
}

}  // namespace Upstream
}  // namespace sluice
