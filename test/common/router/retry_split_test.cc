// Route retry policies and weighted-cluster (canary) splits.
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/router/config.h"

namespace sluice {
namespace Router {
namespace {

using sluice::config::v1::RouteTable;
using testing::HasSubstr;

absl::StatusOr<RouteTableConstSharedPtr> create(const std::string& route_yaml) {
  RouteTable config;
  const std::string yaml = absl::StrCat(
      "name: t\nvirtual_hosts:\n- domains: ['*']\n  routes:\n  - match: {prefix: /}\n    route: ",
      route_yaml, "\n");
  absl::Status s = Config::loadFromYaml(yaml, config);
  EXPECT_TRUE(s.ok()) << s << "\n" << yaml;
  return RouteTableImpl::create(config, "route_tables[0]", nullptr);
}

const RouteEntry& route(const RouteTableConstSharedPtr& t) {
  Http::RequestHeaderMap h;
  h.method = "GET";
  h.path = "/";
  h.add("host", "x");
  return *t->route(h);
}

std::string errorOf(const std::string& route_yaml) {
  auto t = create(route_yaml);
  EXPECT_FALSE(t.ok()) << route_yaml;
  return t.ok() ? "" : std::string(t.status().message());
}

// ---- retry policy ---------------------------------------------------------------------------

TEST(RetryPolicyTest, NoneWithoutRetryPolicy) {
  auto t = create("{cluster: a}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(nullptr, route(*t).retryPolicy());
}

TEST(RetryPolicyTest, Defaults) {
  auto t = create("{cluster: a, retry_policy: {}}");
  ASSERT_TRUE(t.ok()) << t.status();
  const RetryPolicy* p = route(*t).retryPolicy();
  ASSERT_NE(nullptr, p);
  EXPECT_EQ(1u, p->num_retries);
  EXPECT_EQ(0, p->per_try_timeout.count());
  EXPECT_EQ(25, p->base_interval.count());
  EXPECT_EQ(250, p->max_interval.count());
  EXPECT_TRUE(p->retriesConnectFailure());
  EXPECT_TRUE(p->retriesReset());
  EXPECT_TRUE(p->retriableStatus(502));
  EXPECT_TRUE(p->retriableStatus(503));
  EXPECT_TRUE(p->retriableStatus(504));
  EXPECT_FALSE(p->retriableStatus(500));
  EXPECT_FALSE(p->retriableStatus(404));
}

TEST(RetryPolicyTest, Conditions) {
  auto t = create(
      "{cluster: a, retry_policy: {retry_on: [5xx], num_retries: 3, per_try_timeout: 200ms, "
      "backoff: {base_interval: 10ms}}}");
  ASSERT_TRUE(t.ok()) << t.status();
  const RetryPolicy* p = route(*t).retryPolicy();
  EXPECT_EQ(3u, p->num_retries);
  EXPECT_EQ(200, p->per_try_timeout.count());
  EXPECT_EQ(10, p->base_interval.count());
  EXPECT_EQ(100, p->max_interval.count());  // 10 x base
  EXPECT_TRUE(p->retriableStatus(500));
  EXPECT_TRUE(p->retriableStatus(599));
  EXPECT_FALSE(p->retriableStatus(429));
  // 5xx covers connect failures and resets, as in Envoy.
  EXPECT_TRUE(p->retriesConnectFailure());
  EXPECT_TRUE(p->retriesReset());

  t = create("{cluster: a, retry_policy: {retry_on: [connect-failure]}}");
  p = route(*t).retryPolicy();
  EXPECT_TRUE(p->retriesConnectFailure());
  EXPECT_FALSE(p->retriesReset());
  EXPECT_FALSE(p->retriableStatus(503));

  t = create(
      "{cluster: a, retry_policy: {retry_on: [retriable-status-codes, reset], "
      "retriable_status_codes: [409, 429], backoff: {base_interval: 5ms, max_interval: 7ms}}}");
  p = route(*t).retryPolicy();
  EXPECT_TRUE(p->retriableStatus(409));
  EXPECT_TRUE(p->retriableStatus(429));
  EXPECT_FALSE(p->retriableStatus(503));
  EXPECT_FALSE(p->retriesConnectFailure());
  EXPECT_TRUE(p->retriesReset());
  EXPECT_EQ(7, p->max_interval.count());
}

TEST(RetryPolicyTest, GrpcConditions) {
  auto t = create("{cluster: a, retry_policy: {retry_on: [cancelled, unavailable]}}");
  ASSERT_TRUE(t.ok()) << t.status();
  const RetryPolicy* p = route(*t).retryPolicy();
  EXPECT_TRUE(p->retriesGrpc());
  EXPECT_TRUE(p->retriableGrpcStatus(1));
  EXPECT_TRUE(p->retriableGrpcStatus(14));
  EXPECT_FALSE(p->retriableGrpcStatus(4));
  EXPECT_FALSE(p->retriableGrpcStatus(8));
  EXPECT_FALSE(p->retriableGrpcStatus(0));
  EXPECT_FALSE(p->retriableStatus(503));
  EXPECT_FALSE(p->retriesConnectFailure());

  t = create("{cluster: a, retry_policy: {retry_on: [deadline-exceeded, resource-exhausted]}}");
  ASSERT_TRUE(t.ok()) << t.status();
  p = route(*t).retryPolicy();
  EXPECT_TRUE(p->retriableGrpcStatus(4));
  EXPECT_TRUE(p->retriableGrpcStatus(8));
  EXPECT_FALSE(p->retriableGrpcStatus(14));

  t = create("{cluster: a, retry_policy: {}}");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(route(*t).retryPolicy()->retriesGrpc());
}

TEST(RouteGrpcTest, MaxGrpcTimeout) {
  auto t = create("{cluster: a}");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(route(*t).maxGrpcTimeout().has_value());
  t = create("{cluster: a, max_grpc_timeout: 2.5s}");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(2500, route(*t).maxGrpcTimeout()->count());
  t = create("{cluster: a, max_grpc_timeout: 0s}");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(0, route(*t).maxGrpcTimeout()->count());
  EXPECT_THAT(errorOf("{cluster: a, max_grpc_timeout: -1s}"), HasSubstr("route.max_grpc_timeout"));
}

TEST(RetryPolicyTest, Errors) {
  EXPECT_THAT(errorOf("{cluster: a, retry_policy: {retry_on: [5xx, bogus]}}"),
              HasSubstr("route_tables[0].virtual_hosts[0].routes[0].route.retry_policy."
                        "retry_on[1]: unknown condition \"bogus\""));
  EXPECT_THAT(errorOf("{cluster: a, retry_policy: {retry_on: [retriable-status-codes]}}"),
              HasSubstr("retry_policy.retriable_status_codes: at least one is required"));
  EXPECT_THAT(errorOf("{cluster: a, retry_policy: {num_retries: 11}}"),
              HasSubstr("retry_policy.num_retries: must be <= 10"));
  EXPECT_THAT(errorOf("{cluster: a, retry_policy: {backoff: {base_interval: 0s}}}"),
              HasSubstr("retry_policy.backoff.base_interval: must be > 0"));
  EXPECT_THAT(
      errorOf("{cluster: a, retry_policy: {backoff: {base_interval: 1s, max_interval: 10ms}}}"),
      HasSubstr("retry_policy.backoff.max_interval: must be >= base_interval"));
}

// ---- weighted clusters -------------------------------------------------------------------------

Http::RequestHeaderMap req(std::initializer_list<std::pair<std::string, std::string>> headers) {
  Http::RequestHeaderMap h;
  h.method = "GET";
  h.path = "/";
  h.add("host", "x");
  for (const auto& [k, v] : headers) h.add(k, v);
  return h;
}

TEST(SplitTest, RandomSplitFollowsTheWeightsClosely) {
  auto t =
      create("{weighted_clusters: {clusters: [{name: v1, weight: 90}, {name: v2, weight: 10}]}}");
  ASSERT_TRUE(t.ok()) << t.status();
  const RouteEntry& r = route(*t);
  std::map<std::string, int> counts;
  Http::RequestHeaderMap h = req({});
  for (int i = 0; i < 10000; ++i) ++counts[r.selectCluster(h, "10.0.0.1")];
  // A low-discrepancy sequence: within a handful of requests of 9000/1000.
  EXPECT_NEAR(9000, counts["v1"], 10);
  EXPECT_NEAR(1000, counts["v2"], 10);
  // Also on other threads (each has its own sequence).
  std::map<std::string, int> other;
  std::thread th([&]() {
    for (int i = 0; i < 1000; ++i) ++other[r.selectCluster(h, "10.0.0.1")];
  });
  th.join();
  EXPECT_NEAR(900, other["v1"], 5);
}

TEST(SplitTest, StickyByHeaderCookieIpConsumer) {
  for (const std::string& on :
       {"HEADER, hash_key: X-User", "COOKIE, hash_key: session", "IP", "CONSUMER"}) {
    auto t = create(absl::StrCat("{weighted_clusters: {hash_on: ", on,
                                 ", clusters: [{name: v1, weight: 90}, {name: v2, weight: 10}]}}"));
    ASSERT_TRUE(t.ok()) << t.status();
    const RouteEntry& r = route(*t);
    std::map<std::string, int> sides;
    for (int client = 0; client < 1000; ++client) {
      const std::string id = absl::StrCat("client-", client);
      Http::RequestHeaderMap h = req({{"x-user", id},
                                      {"cookie", absl::StrCat("a=b; session=", id, "; c=d")},
                                      {"x-consumer-username", id}});
      const std::string ip = absl::StrCat("10.0.", client / 250, ".", client % 250);
      const std::string first = r.selectCluster(h, ip);
      for (int k = 0; k < 5; ++k) {
        ASSERT_EQ(first, r.selectCluster(h, ip)) << on << " " << id;
      }
      ++sides[first];
    }
    // 1000 clients split roughly 90/10.
    EXPECT_GT(sides["v2"], 50) << on;
    EXPECT_LT(sides["v2"], 150) << on;
  }
}

TEST(SplitTest, MissingKeyFallsBackToClientIp) {
  auto t = create(
      "{weighted_clusters: {hash_on: HEADER, hash_key: x-user, clusters: [{name: v1, weight: 50}, "
      "{name: v2, weight: 50}]}}");
  const RouteEntry& r = route(*t);
  auto ip = create(
      "{weighted_clusters: {hash_on: IP, clusters: [{name: v1, weight: 50}, "
      "{name: v2, weight: 50}]}}");
  const RouteEntry& by_ip = route(*ip);
  Http::RequestHeaderMap h = req({});
  for (int i = 0; i < 100; ++i) {
    const std::string addr = absl::StrCat("192.168.0.", i);
    EXPECT_EQ(by_ip.selectCluster(h, addr), r.selectCluster(h, addr));
  }
}

TEST(SplitTest, RaisingTheCanaryShareOnlyMovesClientsToTheCanary) {
  auto at10 = create(
      "{weighted_clusters: {hash_on: HEADER, hash_key: x-user, clusters: [{name: v1, weight: 90}, "
      "{name: v2, weight: 10}]}}");
  auto at30 = create(
      "{weighted_clusters: {hash_on: HEADER, hash_key: x-user, clusters: [{name: v1, weight: 7}, "
      "{name: v2, weight: 3}]}}");
  for (int client = 0; client < 1000; ++client) {
    Http::RequestHeaderMap h = req({{"x-user", absl::StrCat("u", client)}});
    if (route(*at10).selectCluster(h, "1.1.1.1") == "v2") {
      EXPECT_EQ("v2", route(*at30).selectCluster(h, "1.1.1.1"));
    }
  }
}

TEST(SplitTest, CanaryHeaderOverride) {
  auto t = create(
      "{weighted_clusters: {hash_on: IP, canary_header: X-Canary, clusters: [{name: stable, "
      "weight: 50}, {name: beta, weight: 25}, {name: canary, weight: 25}]}}");
  ASSERT_TRUE(t.ok()) << t.status();
  const RouteEntry& r = route(*t);
  std::map<std::string, int> never;
  for (int i = 0; i < 400; ++i) {
    const std::string ip = absl::StrCat("10.9.", i / 200, ".", i % 200);
    Http::RequestHeaderMap always = req({{"x-canary", "always"}});
    EXPECT_EQ("canary", r.selectCluster(always, ip));
    Http::RequestHeaderMap n = req({{"x-canary", "Never"}});
    ++never[r.selectCluster(n, ip)];
  }
  EXPECT_EQ(0, never["canary"]);
  EXPECT_GT(never["stable"], never["beta"]);
  EXPECT_GT(never["beta"], 50);
  // Other values: the normal split.
  Http::RequestHeaderMap other = req({{"x-canary", "maybe"}});
  std::map<std::string, int> normal;
  for (int i = 0; i < 400; ++i) {
    ++normal[r.selectCluster(other, absl::StrCat("10.8.", i / 200, ".", i % 200))];
  }
  EXPECT_GT(normal["canary"], 50);
}

TEST(SplitTest, Errors) {
  EXPECT_THAT(errorOf("{weighted_clusters: {hash_on: HEADER, clusters: [{name: a, weight: 1}]}}"),
              HasSubstr("route.weighted_clusters.hash_key: is required when hash_on is HEADER"));
  EXPECT_THAT(errorOf("{weighted_clusters: {hash_on: IP, hash_key: x, clusters: [{name: a, "
                      "weight: 1}]}}"),
              HasSubstr("weighted_clusters.hash_key: only for hash_on HEADER or COOKIE"));
  EXPECT_THAT(
      errorOf("{weighted_clusters: {canary_header: x-canary, clusters: [{name: a, weight: 1}]}}"),
      HasSubstr("weighted_clusters.canary_header: needs at least two clusters"));
  EXPECT_THAT(errorOf("{weighted_clusters: {canary_header: 'x canary', clusters: [{name: a, "
                      "weight: 1}, {name: b, weight: 1}]}}"),
              HasSubstr("invalid header name"));
}

}  // namespace
}  // namespace Router
}  // namespace sluice
