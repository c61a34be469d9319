#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "source/common/event/dispatcher.h"
#include "source/common/network/dns_resolver.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster.h"

namespace sluice {
namespace Upstream {

#define ALL_DNS_CLUSTER_COUNTERS(COUNTER) \
  COUNTER(update_attempt)                 \
  COUNTER(update_success)                 \
  COUNTER(update_failure)                 \
  COUNTER(update_empty)                   \
  COUNTER(update_changed)

struct DnsClusterStats {
  ALL_DNS_CLUSTER_COUNTERS(SLUICE_DECLARE_COUNTER)
};

// Service discovery for STRICT_DNS and LOGICAL_DNS clusters, on the main thread: resolves each
// host name of each such cluster of the running config, again every `dns_refresh_rate` (or after
// the answer's TTL with `respect_dns_ttl`), and keeps what the names resolved to. When that
// changes, `on_change` runs (once per loop iteration at most): the owner builds a new snapshot
// with resolved() and publishes it to the workers like any endpoint change. A failed or empty
// answer keeps the last good addresses. Workers never resolve cluster names.
//
// Main thread only.
class DnsDiscovery {
 public:
  // `stats` may be null (tests).
  DnsDiscovery(Event::Dispatcher& main, Network::DnsResolver& resolver, Stats::Store* stats,
               std::function<void()> on_change);
  ~DnsDiscovery();

  // After each config publish: starts resolving the names of new DNS clusters (at once), keeps
  // the names that stay (with their addresses and schedule), forgets the others.
  void update(const absl::flat_hash_map<std::string, ClusterInfoConstSharedPtr>& clusters);

  // By cluster name: what its names resolved to (names never resolved are absent).
  const ResolvedClusters& resolved() const { return resolved_; }

  // Every name known has had its first answer (or failed once).
  bool initialized() const { return unanswered_ == 0; }

 private:
  // One host name of one cluster.
  struct Target {
    std::string cluster;
    std::string host;
    Network::DnsLookupFamily family;
    bool logical = false;
    DnsConfig config;
    Network::DnsQueryPtr query;
    Event::TimerPtr timer;
    bool answered = false;
    bool failing = false;  // the last attempt failed (logged once until it recovers)
  };
  struct Cluster {
    DnsClusterStats stats{};
    absl::flat_hash_map<std::string, std::unique_ptr<Target>> targets;  // by host name
  };

  void resolve(Target& t);
  void onAnswer(Target& t, Network::DnsResolutionStatus status, absl::string_view details,
                std::vector<Network::DnsResponse>&& answer);
  void forget(Target& t);
  void changed();

  Event::Dispatcher& main_;
  Network::DnsResolver& resolver_;
  Stats::Store* stats_;
  std::function<void()> on_change_;
  Event::TimerPtr notify_timer_;
  absl::flat_hash_map<std::string, Cluster> clusters_;
  ResolvedClusters resolved_;
  size_t unanswered_ = 0;
};

}  // namespace Upstream
}  // namespace sluice
