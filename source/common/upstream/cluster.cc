#include "source/common/upstream/cluster.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Upstream {

uint64_t stableHash(absl::string_view data) {
  // FNV-1a followed by a splitmix64 finaliser for good bit dispersion.
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

absl::StatusOr<ClusterInfoConstSharedPtr> ClusterInfo::create(
    const sluice::config::v1::Cluster& config, const std::string& path, Stats::Store* stats) {
  auto info = std::make_shared<ClusterInfo>();
  Config::ErrorList errors;
  info->name_ = config.name();
  info->config_ = config;
  if (config.name().empty()) {
    errors.add(path + ".name", "is required");
  }
  info->lb_policy_ = config.lb_policy();
  if (config.endpoints_size() == 0 && !config.eds()) {
    errors.add(path + ".endpoints", "at least one endpoint is required");
  }
  for (int i = 0; i < config.endpoints_size(); ++i) {
    const auto& ec = config.endpoints(i);
    const std::string epath = absl::StrCat(path, ".endpoints[", i, "]");
    Endpoint ep;
    if (ec.port() == 0 || ec.port() > 65535) {
      errors.add(epath + ".port", "must be 1-65535");
    }
    // An out-of-range port is reported once, as a port error: the address is checked alone.
    const bool port_ok = ec.port() != 0 && ec.port() <= 65535;
    if (!Network::Address::parse(ec.address(), port_ok ? ec.port() : 1, ep.address) ||
        ec.address().empty()) {
      errors.add(epath + ".address",
                 absl::StrCat("\"", ec.address(), "\" is not an IP address or localhost"));
      continue;
    }
    if (ec.weight() > 10000) {
      errors.add(epath + ".weight", "must be 1-10000");
    }
    ep.weight = ec.weight() == 0 ? 1 : ec.weight();
    ep.name = ep.address.toString();
    info->endpoints_.push_back(std::move(ep));
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
  RETURN_IF_ERRORS(errors);

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
