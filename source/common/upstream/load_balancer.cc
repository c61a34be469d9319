#include "source/common/upstream/load_balancer.h"

#include <algorithm>

namespace sluice {
namespace Upstream {

RoundRobinLoadBalancer::RoundRobinLoadBalancer(const ClusterInfo& cluster)
    : cluster_(cluster), current_(cluster.endpoints().size(), 0) {
  for (const Endpoint& e : cluster.endpoints()) {
    total_ += e.weight;
    equal_weights_ = equal_weights_ && e.weight == cluster.endpoints()[0].weight;
  }
}

int RoundRobinLoadBalancer::choose(const LbContext&) {
  const auto& eps = cluster_.endpoints();
  if (eps.empty()) {
    return -1;
  }
  if (equal_weights_) {
    int i = next_;
    next_ = (next_ + 1) % eps.size();
    return i;
  }
  int best = 0;
  for (size_t i = 0; i < eps.size(); ++i) {
    current_[i] += eps[i].weight;
    if (current_[i] > current_[best]) {
      best = i;
    }
  }
  current_[best] -= total_;
  return best;
}

RandomLoadBalancer::RandomLoadBalancer(const ClusterInfo& cluster, uint64_t seed)
    : cluster_(cluster), rng_(seed) {
  uint64_t sum = 0;
  for (const Endpoint& e : cluster.endpoints()) {
    sum += e.weight;
    cumulative_.push_back(sum);
  }
}

int RandomLoadBalancer::pickWeighted() {
  if (cumulative_.empty()) {
    return -1;
  }
  uint64_t point = rng_() % cumulative_.back();
  return std::upper_bound(cumulative_.begin(), cumulative_.end(), point) - cumulative_.begin();
}

int RandomLoadBalancer::choose(const LbContext&) { return pickWeighted(); }

int LeastRequestLoadBalancer::choose(const LbContext&) {
  const auto& eps = cluster_.endpoints();
  if (eps.size() <= 1) {
    return eps.empty() ? -1 : 0;
  }
  int a = pickWeighted();
  int b = pickWeighted();
  // Compare active/weight without division: a_active * b_weight vs b_active * a_weight.
  uint64_t lhs = static_cast<uint64_t>(active_[a]) * eps[b].weight;
  uint64_t rhs = static_cast<uint64_t>(active_[b]) * eps[a].weight;
  return lhs <= rhs ? a : b;
}

int RingHashLoadBalancer::choose(const LbContext& ctx) {
  const auto& ring = cluster_.ring();
  if (ring.empty()) {
    return -1;
  }
  absl::string_view key = ctx.client_ip;
  if (cluster_.ringHash().hash_on() == sluice::config::v1::RingHash::HEADER &&
      ctx.headers != nullptr) {
    const Http::HeaderEntry* e = ctx.headers->find(cluster_.ringHash().header_name());
    if (e != nullptr) {
      key = e->value;
    }
  }
  const uint64_t h = stableHash(key);
  auto it = std::lower_bound(ring.begin(), ring.end(), std::make_pair(h, uint32_t{0}));
  if (it == ring.end()) {
    it = ring.begin();
  }
  return it->second;
}

LoadBalancerPtr createLoadBalancer(const ClusterInfo& cluster,
                                   const std::vector<uint32_t>& active_requests, uint64_t seed) {
  switch (cluster.lbPolicy()) {
    case sluice::config::v1::Cluster::LEAST_REQUEST:
      return std::make_unique<LeastRequestLoadBalancer>(cluster, active_requests, seed);
    case sluice::config::v1::Cluster::RANDOM:
      return std::make_unique<RandomLoadBalancer>(cluster, seed);
    case sluice::config::v1::Cluster::RING_HASH:
      return std::make_unique<RingHashLoadBalancer>(cluster);
    default:
      return std::make_unique<RoundRobinLoadBalancer>(cluster);
  }
}

}  // namespace Upstream
}  // namespace sluice
