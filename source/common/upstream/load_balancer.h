#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/strings/string_view.h"
#include "source/common/http/headers.h"
#include "source/common/upstream/cluster.h"

namespace sluice {
namespace Upstream {

struct LbContext {
  const Http::RequestHeaderMap* headers = nullptr;
  absl::string_view client_ip;
};

// Per-worker load balancer: picks an endpoint index. Not thread-safe (worker-local).
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

// Smooth weighted round robin (nginx): over any window of sum(weights) picks each endpoint
// exactly `weight` times, interleaved rather than in bursts.
class RoundRobinLoadBalancer : public LoadBalancer {
 public:
  explicit RoundRobinLoadBalancer(const ClusterInfo& cluster);
  int choose(const LbContext& ctx) override;

 private:
  const ClusterInfo& cluster_;
  std::vector<int64_t> current_;
  int64_t total_ = 0;
  bool equal_weights_ = true;
  uint32_t next_ = 0;
};

class RandomLoadBalancer : public LoadBalancer {
 public:
  RandomLoadBalancer(const ClusterInfo& cluster, uint64_t seed);
  int choose(const LbContext& ctx) override;

 protected:
  int pickWeighted();
  const ClusterInfo& cluster_;
  std::mt19937_64 rng_;
  std::vector<uint64_t> cumulative_;
};

// Power of two choices: two weighted-random picks, the one with fewer active requests (relative
// to its weight) wins.
class LeastRequestLoadBalancer : public RandomLoadBalancer {
 public:
  LeastRequestLoadBalancer(const ClusterInfo& cluster, const std::vector<uint32_t>& active,
                           uint64_t seed)
      : RandomLoadBalancer(cluster, seed), active_(active) {}
  int choose(const LbContext& ctx) override;

 private:
  const std::vector<uint32_t>& active_;
};

class RingHashLoadBalancer : public LoadBalancer {
 public:
  explicit RingHashLoadBalancer(const ClusterInfo& cluster) : cluster_(cluster) {}
  int choose(const LbContext& ctx) override;

 private:
  const ClusterInfo& cluster_;
};

}  // namespace Upstream
}  // namespace sluice
