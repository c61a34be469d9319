#include "source/common/upstream/load_balancer.h"

#include <algorithm>

namespace sluice {
namespace Upstream {

namespace {
bool excluded(const LbContext& ctx, int i) {
  return std::find(ctx.exclude.begin(), ctx.exclude.end(), i) != ctx.exclude.end();
}
}  // namespace

LoadBalancerBase::LoadBalancerBase(const ClusterInfo& cluster, uint64_t seed)
    : cluster_(cluster), rng_(seed) {}

int LoadBalancerBase::choose(const LbContext& ctx) {
  if (cluster_.endpoints().empty()) {
    return -1;
  }
  const uint64_t generation = cluster_.state().healthGeneration();
  if (generation != generation_) {
    generation_ = generation;
    refresh();
  }
  if (panic_ && cluster_.stats().lb_healthy_panic != nullptr) {
    cluster_.stats().lb_healthy_panic->inc();
  }
  return ctx.exclude.empty() ? pick(ctx) : pickExcluding(ctx);
}

void LoadBalancerBase::refresh() {
  const auto& eps = cluster_.endpoints();
  healthy_.assign(eps.size(), 0);
  usable_list_.clear();
  for (size_t i = 0; i < eps.size(); ++i) {
    if (eps[i].state == nullptr || eps[i].state->healthy()) {
      healthy_[i] = 1;
      usable_list_.push_back(static_cast<int>(i));
    }
  }
  panic_ = usable_list_.empty();
  all_usable_ = panic_ || usable_list_.size() == eps.size();
}

int LoadBalancerBase::weightedRandom(const std::vector<int>& candidates) {
  if (candidates.empty()) {
    return -1;
  }
  const auto& eps = cluster_.endpoints();
  uint64_t total = 0;
  for (int i : candidates) total += eps[i].weight;
  uint64_t point = rng_() % total;
  for (int i : candidates) {
    if (point < eps[i].weight) {
      return i;
    }
    point -= eps[i].weight;
  }
  return candidates.back();
}

int LoadBalancerBase::pickExcluding(const LbContext& ctx) {
  scratch_.clear();
  const int n = static_cast<int>(cluster_.endpoints().size());
  for (int i = 0; i < n; ++i) {
    if (usable(i) && !excluded(ctx, i)) {
      scratch_.push_back(i);
    }
  }
  if (scratch_.empty()) {
    // Every usable endpoint was tried already: any of them is better than none.
    return pick(ctx);
  }
  return weightedRandom(scratch_);
}

RoundRobinLoadBalancer::RoundRobinLoadBalancer(const ClusterInfo& cluster, uint64_t seed)
    : LoadBalancerBase(cluster, seed), current_(cluster.endpoints().size(), 0) {
  for (const Endpoint& e : cluster.endpoints()) {
    total_ += e.weight;
    equal_weights_ = equal_weights_ && e.weight == cluster.endpoints()[0].weight;
  }
}

int RoundRobinLoadBalancer::pick(const LbContext&) {
  const auto& eps = cluster_.endpoints();
  if (equal_weights_) {
    for (size_t k = 0; k < eps.size(); ++k) {
      int i = next_;
      next_ = (next_ + 1) % eps.size();
      if (usable(i)) {
        return i;
      }
    }
    return -1;
  }
  if (allUsable()) {
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
  // The same algorithm over the healthy endpoints only.
  int best = -1;
  int64_t total = 0;
  for (int i : usableList()) {
    current_[i] += eps[i].weight;
    total += eps[i].weight;
    if (best < 0 || current_[i] > current_[best]) {
      best = i;
    }
  }
  if (best >= 0) {
    current_[best] -= total;
  }
  return best;
}

RandomLoadBalancer::RandomLoadBalancer(const ClusterInfo& cluster, uint64_t seed)
    : LoadBalancerBase(cluster, seed) {
  uint64_t sum = 0;
  for (const Endpoint& e : cluster.endpoints()) {
    sum += e.weight;
    cumulative_.push_back(sum);
  }
}

int RandomLoadBalancer::pickWeighted() {
  if (!allUsable()) {
    return weightedRandom(usableList());
  }
  if (cumulative_.empty()) {
    return -1;
  }
  uint64_t point = rng_() % cumulative_.back();
  return std::upper_bound(cumulative_.begin(), cumulative_.end(), point) - cumulative_.begin();
}

int RandomLoadBalancer::pick(const LbContext&) { return pickWeighted(); }

int LeastRequestLoadBalancer::pick(const LbContext&) {
  const auto& eps = cluster_.endpoints();
  if (allUsable() ? eps.size() <= 1 : usableList().size() <= 1) {
    return allUsable() ? 0 : usableList()[0];
  }
  int a = pickWeighted();
  int b = pickWeighted();
  // Compare active/weight without division: a_active * b_weight vs b_active * a_weight.
  uint64_t lhs = static_cast<uint64_t>(active_[a]) * eps[b].weight;
  uint64_t rhs = static_cast<uint64_t>(active_[b]) * eps[a].weight;
  return lhs <= rhs ? a : b;
}

int RingHashLoadBalancer::walk(const LbContext& ctx, bool avoid_excluded) {
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
  for (size_t k = 0; k < ring.size(); ++k, ++it) {
    if (it == ring.end()) {
      it = ring.begin();
    }
    const int e = it->second;
    if (usable(e) && !(avoid_excluded && excluded(ctx, e))) {
      return e;
    }
  }
  return -1;
}

int RingHashLoadBalancer::pick(const LbContext& ctx) { return walk(ctx, false); }

int RingHashLoadBalancer::pickExcluding(const LbContext& ctx) {
  int e = walk(ctx, true);
  return e >= 0 ? e : walk(ctx, false);
}

LoadBalancerPtr createLoadBalancer(const ClusterInfo& cluster,
                                   const std::vector<uint32_t>& active_requests, uint64_t seed) {
  switch (cluster.lbPolicy()) {
    case sluice::config::v1::Cluster::LEAST_REQUEST:
      return std::make_unique<LeastRequestLoadBalancer>(cluster, active_requests, seed);
    case sluice::config::v1::Cluster::RANDOM:
      return std::make_unique<RandomLoadBalancer>(cluster, seed);
    case sluice::config::v1::Cluster::RING_HASH:
      return std::make_unique<RingHashLoadBalancer>(cluster, seed);
    default:
      return std::make_unique<RoundRobinLoadBalancer>(cluster, seed);
  }
}

}  // namespace Upstream
}  // namespace sluice
