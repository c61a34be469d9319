#include "source/common/upstream/dns_discovery.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Upstream {
namespace {

using ClusterProto = sluice::config::v1::Cluster;

Network::DnsLookupFamily toFamily(ClusterProto::DnsLookupFamily f) {
  switch (f) {
    case ClusterProto::V6_ONLY:
      return Network::DnsLookupFamily::V6Only;
    case ClusterProto::AUTO:
      return Network::DnsLookupFamily::Auto;
    default:
      return Network::DnsLookupFamily::V4Only;
  }
}

// Would `next` change the endpoints: for STRICT_DNS, another set of addresses (DNS servers
// rotate the order of their answers: that is no change); for LOGICAL_DNS, another first one.
bool sameEndpoints(const std::vector<std::string>& current, const std::vector<std::string>& next,
                   bool logical) {
  if (logical) {
    return !current.empty() && !next.empty() && current.front() == next.front();
  }
  std::vector<std::string> a = current;
  std::vector<std::string> b = next;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

}  // namespace

DnsDiscovery::DnsDiscovery(Event::Dispatcher& main, Network::DnsResolver& resolver,
                           Stats::Store* stats, std::function<void()> on_change)
    : main_(main), resolver_(resolver), stats_(stats), on_change_(std::move(on_change)) {
  notify_timer_ = main_.createTimer([this]() { on_change_(); });
}

DnsDiscovery::~DnsDiscovery() = default;

void DnsDiscovery::update(
    const absl::flat_hash_map<std::string, ClusterInfoConstSharedPtr>& clusters) {
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    auto next = clusters.find(it->first);
    if (next != clusters.end() && next->second->usesDns()) {
      ++it;
      continue;
    }
    for (auto& [host, t] : it->second.targets) forget(*t);
    resolved_.erase(it->first);
    clusters_.erase(it++);
  }
  for (const auto& [name, info] : clusters) {
    if (!info->usesDns()) continue;
    const bool fresh = !clusters_.contains(name);
    Cluster& c = clusters_[name];
    if (fresh && stats_ != nullptr) {
      Stats::Labels labels{{"cluster", name}};
#define SLUICE_MAKE_DNS_COUNTER(stat)                                            \
  c.stats.stat = &stats_->counter(absl::StrCat("cluster.", name, ".dns." #stat), \
                                  "cluster_dns_" #stat "_total", labels);
      ALL_DNS_CLUSTER_COUNTERS(SLUICE_MAKE_DNS_COUNTER)
#undef SLUICE_MAKE_DNS_COUNTER
    }
    // The host names among the endpoints (IP literals and localhost need no DNS).
    absl::flat_hash_set<std::string> hosts;
    for (const auto& e : info->config().endpoints()) {
      Network::Address literal;
      if (!Network::Address::parse(e.address(), 1, literal)) hosts.insert(e.address());
    }
    for (auto it = c.targets.begin(); it != c.targets.end();) {
      if (hosts.contains(it->first)) {
        ++it;
        continue;
      }
      forget(*it->second);
      auto r = resolved_.find(name);
      if (r != resolved_.end()) r->second.erase(it->first);
      c.targets.erase(it++);
    }
    const Network::DnsLookupFamily family = toFamily(info->dns().lookup_family);
    const bool logical = info->config().type() == ClusterProto::LOGICAL_DNS;
    for (const std::string& host : hosts) {
      std::unique_ptr<Target>& t = c.targets[host];
      if (t == nullptr) {
        t = std::make_unique<Target>();
        t->cluster = name;
        t->host = host;
        t->family = family;
        t->logical = logical;
        t->config = info->dns();
        Target* tp = t.get();
        t->timer = main_.createTimer([this, tp]() { resolve(*tp); });
        ++unanswered_;
        resolve(*t);
        continue;
      }
      const bool refresh_changed = t->config.refresh_rate != info->dns().refresh_rate;
      t->config = info->dns();
      t->logical = logical;
      if (t->family != family) {
        // Other records: ask now (the addresses found so far stay until the answer).
        t->family = family;
        resolve(*t);
      } else if (refresh_changed && t->timer->enabled()) {
        t->timer->enableTimer(t->config.refresh_rate);
      }
    }
    auto r = resolved_.find(name);
    if (r != resolved_.end() && r->second.empty()) resolved_.erase(r);
  }
}

void DnsDiscovery::resolve(Target& t) {
  t.timer->disableTimer();
  const DnsClusterStats& st = clusters_[t.cluster].stats;
  if (st.update_attempt != nullptr) st.update_attempt->inc();
  Target* tp = &t;
  // The query belongs to the target: forgetting the target cancels it.
  t.query =
      resolver_.resolve(t.host, t.family,
                        [this, tp](Network::DnsResolutionStatus status, absl::string_view details,
                                   std::vector<Network::DnsResponse>&& answer) {
                          onAnswer(*tp, status, details, std::move(answer));
                        });
}

void DnsDiscovery::onAnswer(Target& t, Network::DnsResolutionStatus status,
                            absl::string_view details, std::vector<Network::DnsResponse>&& answer) {
  t.query.reset();
  if (!t.answered) {
    t.answered = true;
    --unanswered_;
  }
  const DnsClusterStats& st = clusters_[t.cluster].stats;
  auto count = [](Stats::Counter* c) {
    if (c != nullptr) c->inc();
  };
  auto& hosts = resolved_[t.cluster];
  auto known = hosts.find(t.host);
  const size_t kept = known == hosts.end() ? 0 : known->second.size();
  std::chrono::milliseconds next = t.config.refresh_rate;
  if (status == Network::DnsResolutionStatus::Failure || answer.empty()) {
    count(status == Network::DnsResolutionStatus::Failure ? st.update_failure : st.update_empty);
    if (!t.failing) {
      spdlog::warn("cluster \"{}\": DNS resolution of {} {}; keeping the {} address(es) it had",
                   t.cluster, t.host,
                   status == Network::DnsResolutionStatus::Failure
                       ? absl::StrCat("failed (", details, ")")
                       : std::string("found no address"),
                   kept);
    }
    t.failing = true;
    if (hosts.empty()) resolved_.erase(t.cluster);
  } else {
    count(st.update_success);
    if (t.failing) {
      spdlog::info("cluster \"{}\": {} resolves again", t.cluster, t.host);
      t.failing = false;
    }
    std::vector<std::string> ips;
    int64_t min_ttl = -1;
    for (const Network::DnsResponse& r : answer) {
      std::string ip = r.address.ip();
      if (std::find(ips.begin(), ips.end(), ip) == ips.end()) ips.push_back(std::move(ip));
      const int64_t ttl = r.ttl.count();
      min_ttl = min_ttl < 0 ? ttl : std::min(min_ttl, ttl);
    }
    if (t.config.respect_ttl && min_ttl > 0) {
      // Envoy's rule: with respect_dns_ttl the record's TTL is the refresh interval.
      next = std::chrono::milliseconds(min_ttl * 1000);
    }
    if (known == hosts.end() || !sameEndpoints(known->second, ips, t.logical)) {
      count(st.update_changed);
      spdlog::info("cluster \"{}\": {} resolved to {}", t.cluster, t.host,
                   absl::StrJoin(ips, ", "));
      hosts[t.host] = std::move(ips);
      changed();
    }
  }
  t.timer->enableTimer(next);
}

void DnsDiscovery::forget(Target& t) {
  t.query.reset();
  t.timer->disableTimer();
  if (!t.answered) {
    t.answered = true;
    --unanswered_;
  }
}

void DnsDiscovery::changed() {
  if (!notify_timer_->enabled()) notify_timer_->enableTimer(std::chrono::milliseconds(0));
}

}  // namespace Upstream
}  // namespace sluice
