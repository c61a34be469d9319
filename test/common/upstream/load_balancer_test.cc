#include "source/common/upstream/load_balancer.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster.h"

namespace sluice {
namespace Upstream {
namespace {

using sluice::config::v1::Cluster;

class LoadBalancerTest : public testing::Test {
 protected:
  // A cluster with one endpoint per weight (127.0.0.1:9001, :9002, ...).
  ClusterInfoConstSharedPtr cluster(Cluster::LbPolicy policy, const std::vector<uint32_t>& weights,
                                    const std::string& extra_yaml = "") {
    std::string yaml =
        absl::StrCat("name: c\nlb_policy: ", Cluster::LbPolicy_Name(policy), "\nendpoints:\n");
    for (size_t i = 0; i < weights.size(); ++i) {
      absl::StrAppend(&yaml, "- {address: 127.0.0.1, port: ", 9001 + i, ", weight: ", weights[i],
                      "}\n");
    }
    yaml += extra_yaml;
    Cluster config;
    absl::Status s = Config::loadFromYaml(yaml, config);
    EXPECT_TRUE(s.ok()) << s;
    auto info = ClusterInfo::create(config, "clusters[0]", &store_);
    EXPECT_TRUE(info.ok()) << info.status();
    clusters_.push_back(*info);
    active_.emplace_back(weights.size(), 0);
    return *info;
  }

  LoadBalancerPtr lb(const ClusterInfoConstSharedPtr& info, uint64_t seed = 1) {
    return createLoadBalancer(*info, active_.back(), seed);
  }

  std::vector<uint32_t>& active() { return active_.back(); }

  // Picks `n` times; returns the sequence.
  static std::vector<int> picks(LoadBalancer& lb, size_t n, const LbContext& ctx = {}) {
    std::vector<int> out;
    for (size_t i = 0; i < n; ++i) out.push_back(lb.choose(ctx));
    return out;
  }

  static std::map<int, int> counts(const std::vector<int>& seq) {
    std::map<int, int> c;
    for (int i : seq) ++c[i];
    return c;
  }

  static int longestRun(const std::vector<int>& seq, int value) {
    int best = 0, run = 0;
    for (int i : seq) {
      run = i == value ? run + 1 : 0;
      best = std::max(best, run);
    }
    return best;
  }

  Stats::Store store_{1};
  std::vector<ClusterInfoConstSharedPtr> clusters_;
  std::deque<std::vector<uint32_t>> active_;  // stable addresses: the LB keeps a reference
};

// ---- ROUND_ROBIN ---------------------------------------------------------------------------

TEST_F(LoadBalancerTest, SmoothWeightedRoundRobinSequence) {
  auto info = cluster(Cluster::ROUND_ROBIN, {5, 1, 1});
  auto balancer = lb(info);
  // nginx's smooth weighted round robin: a a b a c a a, then the same again.
  const std::vector<int> expected = {0, 0, 1, 0, 2, 0, 0};
  EXPECT_EQ(expected, picks(*balancer, 7));
  EXPECT_EQ(expected, picks(*balancer, 7));
}

TEST_F(LoadBalancerTest, SmoothWeightedRoundRobinExactCountsInEveryWindow) {
  auto info = cluster(Cluster::ROUND_ROBIN, {5, 1, 1});
  auto balancer = lb(info);
  const std::vector<int> seq = picks(*balancer, 700);
  for (size_t w = 0; w < seq.size(); w += 7) {
    std::map<int, int> c = counts(std::vector<int>(seq.begin() + w, seq.begin() + w + 7));
    EXPECT_EQ(5, c[0]) << "window " << w;
    EXPECT_EQ(1, c[1]) << "window " << w;
    EXPECT_EQ(1, c[2]) << "window " << w;
  }
  // Interleaved: b and c are never back to back, and a never runs longer than the two halves
  // of a window joined (2 + 2), unlike plain weighted round robin (5 in a row).
  EXPECT_EQ(1, longestRun(seq, 1));
  EXPECT_EQ(1, longestRun(seq, 2));
  EXPECT_LE(longestRun(seq, 0), 4);
}

TEST_F(LoadBalancerTest, RoundRobinTwoToOneExact) {
  auto info = cluster(Cluster::ROUND_ROBIN, {100, 50});
  auto balancer = lb(info);
  std::map<int, int> c = counts(picks(*balancer, 300));
  EXPECT_EQ(200, c[0]);
  EXPECT_EQ(100, c[1]);
}

TEST_F(LoadBalancerTest, RoundRobinSpreadsUnevenWeights) {
  auto info = cluster(Cluster::ROUND_ROBIN, {3, 2});
  auto balancer = lb(info);
  // Weights 3,2: a b a b a.
  EXPECT_EQ((std::vector<int>{0, 1, 0, 1, 0}), picks(*balancer, 5));
}

TEST_F(LoadBalancerTest, RoundRobinEqualWeightsCycles) {
  auto info = cluster(Cluster::ROUND_ROBIN, {1, 1, 1});
  auto balancer = lb(info);
  EXPECT_EQ((std::vector<int>{0, 1, 2, 0, 1, 2, 0}), picks(*balancer, 7));
}

TEST_F(LoadBalancerTest, RoundRobinEqualNonUnitWeightsCycles) {
  auto info = cluster(Cluster::ROUND_ROBIN, {7, 7});
  auto balancer = lb(info);
  EXPECT_EQ((std::vector<int>{0, 1, 0, 1}), picks(*balancer, 4));
}

TEST_F(LoadBalancerTest, RoundRobinSingleEndpoint) {
  auto info = cluster(Cluster::ROUND_ROBIN, {3});
  auto balancer = lb(info);
  EXPECT_EQ((std::vector<int>{0, 0, 0}), picks(*balancer, 3));
}

TEST_F(LoadBalancerTest, DefaultWeightIsOne) {
  Cluster config;
  ASSERT_TRUE(Config::loadFromYaml(R"(
name: c
endpoints:
- {address: 127.0.0.1, port: 1}
- {address: 127.0.0.1, port: 2, weight: 2}
)",
                                   config)
                  .ok());
  auto info = ClusterInfo::create(config, "c", &store_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(1u, (*info)->endpoints()[0].weight);
  std::vector<uint32_t> active(2, 0);
  auto balancer = createLoadBalancer(**info, active, 1);
  std::map<int, int> c = counts(picks(*balancer, 300));
  EXPECT_EQ(100, c[0]);
  EXPECT_EQ(200, c[1]);
}

// ---- RANDOM --------------------------------------------------------------------------------

TEST_F(LoadBalancerTest, RandomIsRoughlyProportionalToWeight) {
  auto info = cluster(Cluster::RANDOM, {3, 1});
  auto balancer = lb(info, 42);
  std::map<int, int> c = counts(picks(*balancer, 40000));
  EXPECT_NEAR(30000, c[0], 1200);
  EXPECT_NEAR(10000, c[1], 1200);
}

TEST_F(LoadBalancerTest, RandomEqualWeights) {
  auto info = cluster(Cluster::RANDOM, {1, 1, 1, 1});
  auto balancer = lb(info, 7);
  std::map<int, int> c = counts(picks(*balancer, 40000));
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(10000, c[i], 800) << i;
  }
}

TEST_F(LoadBalancerTest, RandomIsDeterministicForASeed) {
  auto info = cluster(Cluster::RANDOM, {1, 2, 3});
  auto a = lb(info, 99);
  auto b = lb(info, 99);
  auto c = lb(info, 100);
  const std::vector<int> sa = picks(*a, 100);
  EXPECT_EQ(sa, picks(*b, 100));
  EXPECT_NE(sa, picks(*c, 100));
}

TEST_F(LoadBalancerTest, RandomAlwaysInRange) {
  auto info = cluster(Cluster::RANDOM, {10000, 1});
  auto balancer = lb(info, 3);
  for (int i : picks(*balancer, 10000)) {
    ASSERT_GE(i, 0);
    ASSERT_LT(i, 2);
  }
}

// ---- LEAST_REQUEST -------------------------------------------------------------------------

TEST_F(LoadBalancerTest, LeastRequestPrefersTheLessLoaded) {
  auto info = cluster(Cluster::LEAST_REQUEST, {1, 1});
  auto balancer = lb(info, 5);
  active() = {10, 0};
  std::map<int, int> c = counts(picks(*balancer, 10000));
  // Power of two choices: the busy endpoint wins only when both picks land on it (~1/4).
  EXPECT_GT(c[1], 7000);
  EXPECT_LT(c[0], 3000);
}

TEST_F(LoadBalancerTest, LeastRequestFollowsChangingLoad) {
  auto info = cluster(Cluster::LEAST_REQUEST, {1, 1});
  auto balancer = lb(info, 5);
  active() = {0, 10};
  EXPECT_GT(counts(picks(*balancer, 4000))[0], 2800);
  active() = {10, 0};
  EXPECT_GT(counts(picks(*balancer, 4000))[1], 2800);
}

TEST_F(LoadBalancerTest, LeastRequestPowerOfTwoChoicesOdds) {
  // With three endpoints and a strict load order, the busiest is chosen only when both random
  // picks are it (1/9); the least busy whenever it is one of the picks (5/9).
  auto info = cluster(Cluster::LEAST_REQUEST, {1, 1, 1});
  auto balancer = lb(info, 11);
  active() = {0, 5, 10};
  std::map<int, int> c = counts(picks(*balancer, 9000));
  EXPECT_NEAR(5000, c[0], 400);
  EXPECT_NEAR(3000, c[1], 400);
  EXPECT_NEAR(1000, c[2], 300);
}

TEST_F(LoadBalancerTest, LeastRequestWeighsLoadByWeight) {
  // Endpoint 1 has 4x the weight: 3 active on it is lighter than 1 on endpoint 0.
  auto info = cluster(Cluster::LEAST_REQUEST, {1, 4});
  auto balancer = lb(info, 13);
  active() = {1, 3};
  std::map<int, int> c = counts(picks(*balancer, 10000));
  // Endpoint 0 is chosen only if both picks are endpoint 0: (1/5)^2 = 4%.
  EXPECT_LT(c[0], 700);
}

TEST_F(LoadBalancerTest, LeastRequestIdleSpreadsByWeight) {
  auto info = cluster(Cluster::LEAST_REQUEST, {1, 1});
  auto balancer = lb(info, 17);
  std::map<int, int> c = counts(picks(*balancer, 10000));
  EXPECT_GT(c[0], 2000);
  EXPECT_GT(c[1], 2000);
}

TEST_F(LoadBalancerTest, LeastRequestSingleEndpoint) {
  auto info = cluster(Cluster::LEAST_REQUEST, {1});
  auto balancer = lb(info);
  active() = {100};
  EXPECT_EQ(0, balancer->choose({}));
}

// ---- RING_HASH -----------------------------------------------------------------------------

Http::RequestHeaderMap headersWith(const std::string& name, const std::string& value) {
  Http::RequestHeaderMap h;
  h.method = "GET";
  h.path = "/";
  h.add(name, value);
  return h;
}

TEST_F(LoadBalancerTest, RingHashIsStableForAKey) {
  auto info = cluster(Cluster::RING_HASH, {1, 1, 1});
  auto balancer = lb(info);
  LbContext ctx;
  ctx.client_ip = "10.1.2.3";
  const int first = balancer->choose(ctx);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(first, balancer->choose(ctx));
  }
  // The ring is a pure function of the config: another instance agrees.
  auto again = cluster(Cluster::RING_HASH, {1, 1, 1});
  EXPECT_EQ(info->ring(), again->ring());
  EXPECT_EQ(first, lb(again)->choose(ctx));
}

TEST_F(LoadBalancerTest, RingHashSpreadsKeys) {
  auto info = cluster(Cluster::RING_HASH, {1, 1, 1});
  auto balancer = lb(info);
  std::map<int, int> c;
  for (int i = 0; i < 3000; ++i) {
    const std::string ip = absl::StrCat("10.0.", i / 256, ".", i % 256);
    LbContext ctx;
    ctx.client_ip = ip;
    ++c[balancer->choose(ctx)];
  }
  ASSERT_EQ(3u, c.size());
  for (const auto& [ep, n] : c) {
    EXPECT_GT(n, 700) << "endpoint " << ep;
    EXPECT_LT(n, 1300) << "endpoint " << ep;
  }
}

TEST_F(LoadBalancerTest, RingHashRingSizeAndWeights) {
  auto info = cluster(Cluster::RING_HASH, {3, 1}, "ring_hash: {minimum_ring_size: 400}\n");
  std::map<uint32_t, int> points;
  for (const auto& [hash, ep] : info->ring()) ++points[ep];
  EXPECT_EQ(300, points[0]);
  EXPECT_EQ(100, points[1]);
  EXPECT_TRUE(std::is_sorted(info->ring().begin(), info->ring().end()));

  auto balancer = lb(info);
  std::map<int, int> c;
  for (int i = 0; i < 4000; ++i) {
    LbContext ctx;
    const std::string key = absl::StrCat("client-", i);
    ctx.client_ip = key;
    ++c[balancer->choose(ctx)];
  }
  EXPECT_NEAR(3000, c[0], 300);
  EXPECT_NEAR(1000, c[1], 300);
}

TEST_F(LoadBalancerTest, RingHashDefaultRingSize) {
  auto info = cluster(Cluster::RING_HASH, {1, 1});
  EXPECT_EQ(1024u, info->ring().size());
}

TEST_F(LoadBalancerTest, RingHashOnHeader) {
  auto info = cluster(Cluster::RING_HASH, {1, 1, 1, 1},
                      "ring_hash: {hash_on: HEADER, header_name: X-User}\n");
  auto balancer = lb(info);
  // Same header from different client IPs: same endpoint.
  std::map<std::string, int> by_user;
  for (int i = 0; i < 200; ++i) {
    const std::string user = absl::StrCat("user-", i % 20);
    Http::RequestHeaderMap h = headersWith("x-user", user);
    LbContext ctx;
    ctx.headers = &h;
    const std::string ip = absl::StrCat("192.168.0.", i);
    ctx.client_ip = ip;
    const int ep = balancer->choose(ctx);
    auto [it, inserted] = by_user.emplace(user, ep);
    EXPECT_EQ(it->second, ep) << user;
  }
  // Twenty users don't all land on one endpoint.
  std::set<int> used;
  for (const auto& [u, ep] : by_user) used.insert(ep);
  EXPECT_GT(used.size(), 1u);
}

TEST_F(LoadBalancerTest, RingHashOnHeaderFallsBackToSourceIp) {
  auto info = cluster(Cluster::RING_HASH, {1, 1, 1, 1},
                      "ring_hash: {hash_on: HEADER, header_name: x-user}\n");
  auto balancer = lb(info);
  Http::RequestHeaderMap no_header = headersWith("other", "v");
  std::set<int> used;
  for (int i = 0; i < 50; ++i) {
    const std::string ip = absl::StrCat("172.16.0.", i);
    LbContext ctx;
    ctx.headers = &no_header;
    ctx.client_ip = ip;
    const int ep = balancer->choose(ctx);
    used.insert(ep);
    // Same as hashing on the IP alone.
    LbContext ip_only;
    ip_only.client_ip = ip;
    EXPECT_EQ(ep, balancer->choose(ip_only));
  }
  EXPECT_GT(used.size(), 1u);
}

TEST_F(LoadBalancerTest, RingHashOnSourceIpIgnoresHeaders) {
  auto info = cluster(Cluster::RING_HASH, {1, 1, 1, 1},
                      "ring_hash: {hash_on: SOURCE_IP, header_name: x-user}\n");
  auto balancer = lb(info);
  LbContext base;
  base.client_ip = "10.9.8.7";
  const int ep = balancer->choose(base);
  for (int i = 0; i < 50; ++i) {
    Http::RequestHeaderMap h = headersWith("x-user", absl::StrCat("u", i));
    LbContext ctx;
    ctx.headers = &h;
    ctx.client_ip = "10.9.8.7";
    EXPECT_EQ(ep, balancer->choose(ctx));
  }
}

TEST_F(LoadBalancerTest, RingHashHeaderVsIpPickDifferently) {
  // Hashing the header value, not the IP: with many keys, some pick another endpoint than
  // their IP would.
  auto info = cluster(Cluster::RING_HASH, {1, 1, 1, 1},
                      "ring_hash: {hash_on: HEADER, header_name: x-user}\n");
  auto balancer = lb(info);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string ip = absl::StrCat("10.0.0.", i);
    Http::RequestHeaderMap h = headersWith("x-user", absl::StrCat("user", i));
    LbContext with_header;
    with_header.headers = &h;
    with_header.client_ip = ip;
    LbContext ip_only;
    ip_only.client_ip = ip;
    differ += balancer->choose(with_header) != balancer->choose(ip_only);
  }
  EXPECT_GT(differ, 30);
}

TEST(StableHashTest, DeterministicAndDistinct) {
  EXPECT_EQ(stableHash("abc"), stableHash("abc"));
  EXPECT_NE(stableHash("abc"), stableHash("abd"));
  EXPECT_NE(stableHash(""), stableHash("a"));
}

}  // namespace
}  // namespace Upstream
}  // namespace sluice
