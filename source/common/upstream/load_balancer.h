#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "source/common/http/headers.h"
#include "source/common/upstream/cluster.h"

namespace sluice {
namespace Upstream {

struct LbContext {
  const Http::RequestHeaderMap* headers = nullptr;
  absl::string_view client_ip;
  // Endpoints this request already tried (retries): avoided while another usable one exists.
  absl::Span<const int> exclude;
};

// Per-worker load balancer: picks an endpoint index. Not thread-safe (worker-local).
//
// Health: endpoints whose EndpointState has a health flag (failed active health check, ejected
// by outlier detection) get no requests. The healthy set is rebuilt only when the cluster's
// health generation moves, so a pick costs one atomic load more than without health checking.
// When no endpoint is healthy, every endpoint is used (panic mode, counted in
// `lb_healthy_panic`).
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // Returns an endpoint index, or -1 when there is none.
  virtual int choose(const LbContext& ctx) = 0;
};
using LoadBalancerPtr = std::unique_ptr<LoadBalancer>;

// `active_requests` (per endpoint, owned by the caller and updated by it) feeds LEAST_REQUEST.
LoadBalancerPtr createLoadBalancer(const ClusterInfo& cluster,
                                   const std::vector<uint32_t>& active_requests, uint64_t seed);

// Health bookkeeping and the retry path shared by every policy.
class LoadBalancerBase : public LoadBalancer {
 public:
  int choose(const LbContext& ctx) final;

 protected:
  LoadBalancerBase(const ClusterInfo& cluster, uint64_t seed);
  // Picks among the usable endpoints (all of them when every one is healthy or in panic).
  virtual int pick(const LbContext& ctx) = 0;
  // Picks with `ctx.exclude` avoided; the default draws at random by weight among the usable,
  // non-excluded endpoints.
  virtual int pickExcluding(const LbContext& ctx);
  // Usable: healthy, or every endpoint while none is (panic).
  bool usable(int i) const { return all_usable_ || healthy_[i] != 0; }
  bool allUsable() const { return all_usable_; }
  // The usable endpoints (only maintained while not all are).
  const std::vector<int>& usableList() const { return usable_list_; }
  int weightedRandom(const std::vector<int>& candidates);

  const ClusterInfo& cluster_;
  std::mt19937_64 rng_;

 private:
  void refresh();

  uint64_t generation_ = ~0ULL;
  bool all_usable_ = true;
  bool panic_ = false;
  std::vector<uint8_t> healthy_;
  std::vector<int> usable_list_;
  std::vector<int> scratch_;
};

// Smooth weighted round robin (nginx): over any window of sum(weights) picks each endpoint
// exactly `weight` times, interleaved rather than in bursts. Unhealthy endpoints are left out of
// the rotation.
class RoundRobinLoadBalancer : public LoadBalancerBase {
 public:
  explicit RoundRobinLoadBalancer(const ClusterInfo& cluster, uint64_t seed = 1);

 protected:
  int pick(const LbContext& ctx) override;

 private:
  std::vector<int64_t> current_;
  int64_t total_ = 0;
  bool equal_weights_ = true;
  uint32_t next_ = 0;
};

class RandomLoadBalancer : public LoadBalancerBase {
 public:
  RandomLoadBalancer(const ClusterInfo& cluster, uint64_t seed);

 protected:
  int pick(const LbContext& ctx) override;
  int pickWeighted();
  std::vector<uint64_t> cumulative_;
};

// Power of two choices: two weighted-random picks, the one with fewer active requests (relative
// to its weight) wins.
class LeastRequestLoadBalancer : public RandomLoadBalancer {
 public:
  LeastRequestLoadBalancer(const ClusterInfo& cluster, const std::vector<uint32_t>& active,
                           uint64_t seed)
      : RandomLoadBalancer(cluster, seed), active_(active) {}

 protected:
  int pick(const LbContext& ctx) override;

 private:
  const std::vector<uint32_t>& active_;
};

// Consistent hashing; an unhealthy (or, for a retry, already tried) endpoint's keys go to the
// next usable endpoint on the ring.
class RingHashLoadBalancer : public LoadBalancerBase {
 public:
  explicit RingHashLoadBalancer(const ClusterInfo& cluster, uint64_t seed = 1)
      : LoadBalancerBase(cluster, seed) {}

 protected:
  int pick(const LbContext& ctx) override;
  int pickExcluding(const LbContext& ctx) override;

 private:
  int walk(const LbContext& ctx, bool avoid_excluded);
};

}  // namespace Upstream
}  // namespace sluice
