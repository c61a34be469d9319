#include "source/common/upstream/cluster.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Upstream {
namespace {

using sluice::config::v1::Cluster;
using testing::HasSubstr;

absl::StatusOr<ClusterInfoConstSharedPtr> create(const std::string& yaml,
                                                 Stats::Store* store = nullptr,
                                                 const ResolvedHosts* resolved = nullptr) {
  Cluster config;
  absl::Status s = Config::loadFromYaml(yaml, config);
  EXPECT_TRUE(s.ok()) << s;
  return ClusterInfo::create(config, "static_resources.clusters[2]", store, nullptr, resolved);
}

std::vector<std::string> endpointNames(const ClusterInfo& info) {
  std::vector<std::string> out;
  for (const Endpoint& e : info.endpoints()) out.push_back(absl::StrCat(e.name, "/", e.weight));
  return out;
}

std::string errorOf(const std::string& yaml) {
  auto c = create(yaml);
  EXPECT_FALSE(c.ok()) << yaml;
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(ClusterInfoTest, Defaults) {
  auto c = create("name: users\nendpoints: [{address: 127.0.0.1, port: 8080}]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  const ClusterInfo& info = **c;
  EXPECT_EQ("users", info.name());
  EXPECT_EQ(Cluster::ROUND_ROBIN, info.lbPolicy());
  EXPECT_EQ(5000, info.connectTimeout().count());
  EXPECT_EQ(60000, info.idleTimeout().count());
  EXPECT_EQ(64u, info.maxIdlePerEndpoint());
  ASSERT_EQ(1u, info.endpoints().size());
  EXPECT_EQ("127.0.0.1:8080", info.endpoints()[0].name);
  EXPECT_EQ(1u, info.endpoints()[0].weight);
  EXPECT_TRUE(info.ring().empty());
}

TEST(ClusterInfoTest, Settings) {
  auto c = create(R"(
name: users
lb_policy: LEAST_REQUEST
connect_timeout: 250ms
idle_timeout: 2m
max_idle_connections_per_endpoint: 8
endpoints:
- {address: "::1", port: 443, weight: 10000}
- {address: localhost, port: 80}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const ClusterInfo& info = **c;
  EXPECT_EQ(Cluster::LEAST_REQUEST, info.lbPolicy());
  EXPECT_EQ(250, info.connectTimeout().count());
  EXPECT_EQ(120000, info.idleTimeout().count());
  EXPECT_EQ(8u, info.maxIdlePerEndpoint());
  EXPECT_EQ("[::1]:443", info.endpoints()[0].name);
  EXPECT_EQ(10000u, info.endpoints()[0].weight);
  EXPECT_EQ("127.0.0.1:80", info.endpoints()[1].name);
}

TEST(ClusterInfoTest, ErrorsNameTheirField) {
  EXPECT_EQ("static_resources.clusters[2].name: is required",
            errorOf("endpoints: [{address: 127.0.0.1, port: 1}]\n"));
  EXPECT_EQ("static_resources.clusters[2].endpoints: at least one endpoint is required",
            errorOf("name: c\n"));
  EXPECT_EQ("static_resources.clusters[2].endpoints[1].port: must be 1-65535",
            errorOf("name: c\nendpoints: [{address: 127.0.0.1, port: 1}, "
                    "{address: 127.0.0.1, port: 0}]\n"));
  EXPECT_THAT(errorOf("name: c\nendpoints: [{address: 'example com', port: 80}]\n"),
              HasSubstr("static_resources.clusters[2].endpoints[0].address: \"example com\" is "
                        "not an IP address or localhost"));
  EXPECT_THAT(errorOf("name: c\nendpoints: [{address: '', port: 80}]\n"),
              HasSubstr("static_resources.clusters[2].endpoints[0].address"));
  EXPECT_EQ("static_resources.clusters[2].endpoints[0].weight: must be 1-10000",
            errorOf("name: c\nendpoints: [{address: 127.0.0.1, port: 80, weight: 10001}]\n"));
  EXPECT_EQ("static_resources.clusters[2].connect_timeout: must be > 0",
            errorOf("name: c\nconnect_timeout: 0s\nendpoints: [{address: 127.0.0.1, port: 1}]\n"));
  EXPECT_EQ(
      "static_resources.clusters[2].ring_hash.header_name: is required when hash_on is "
      "HEADER",
      errorOf("name: c\nlb_policy: RING_HASH\nring_hash: {hash_on: HEADER}\n"
              "endpoints: [{address: 127.0.0.1, port: 1}]\n"));
}

TEST(ClusterInfoTest, NegativeDurationIsAnError) {
  EXPECT_THAT(errorOf("name: c\nidle_timeout: -1s\nendpoints: [{address: 127.0.0.1, port: 1}]\n"),
              HasSubstr("static_resources.clusters[2].idle_timeout: must not be negative"));
}

TEST(ClusterInfoTest, AllErrorsReportedTogether) {
  const std::string e = errorOf("endpoints: [{address: bad, port: 0}]\n");
  EXPECT_THAT(e, HasSubstr("static_resources.clusters[2].name: is required"));
  EXPECT_THAT(e, HasSubstr("static_resources.clusters[2].endpoints[0].port"));
  EXPECT_THAT(e, HasSubstr("static_resources.clusters[2].endpoints[0].address"));
}

TEST(ClusterInfoTest, StatsRegistered) {
  Stats::Store store(1);
  auto c = create("name: users\nendpoints: [{address: 127.0.0.1, port: 8080}]\n", &store);
  ASSERT_TRUE(c.ok());
  const ClusterStats& s = (*c)->stats();
  s.upstream_rq_total->inc();
  s.upstream_rq_class[2]->inc(3);
  (*c)->endpoints()[0].stats.rq_total->inc(4);
  EXPECT_EQ(1, store.valueOf("cluster.users.upstream_rq_total"));
  EXPECT_EQ(3, store.valueOf("cluster.users.upstream_rq_2xx"));
  EXPECT_EQ(4, store.valueOf("cluster.users.endpoint.127.0.0.1:8080.rq_total"));
  EXPECT_THAT(store.renderPrometheus(),
              HasSubstr("sluice_cluster_upstream_rq_total{cluster=\"users\"} 1\n"));
  EXPECT_THAT(
      store.renderPrometheus(),
      HasSubstr("sluice_cluster_upstream_rq_xx_total{cluster=\"users\",code_class=\"2xx\"} 3\n"));
}

TEST(ClusterInfoTest, HeaderNameIsLowerCased) {
  auto c = create(
      "name: c\nlb_policy: RING_HASH\nring_hash: {hash_on: HEADER, header_name: "
      "X-User-Id}\nendpoints: [{address: 127.0.0.1, port: 1}]\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ("x-user-id", (*c)->ringHash().header_name());
}

}  // namespace
}  // namespace Upstream
}  // namespace sluice

namespace sluice {
namespace Upstream {
namespace {

TEST(DnsClusterTest, HostNameInStaticClusterSuggestsStrictDns) {
  const std::string e = errorOf("name: c\nendpoints: [{address: users.internal, port: 80}]\n");
  EXPECT_THAT(e, HasSubstr("static_resources.clusters[2].endpoints[0].address: "
                           "\"users.internal\" is a host name"));
  EXPECT_THAT(e, HasSubstr("type: STRICT_DNS"));
  // EDS endpoint sets are addresses only: no suggestion there.
  EXPECT_THAT(errorOf("name: c\neds: true\nendpoints: [{address: users.internal, port: 80}]\n"),
              HasSubstr("\"users.internal\" is not an IP address or localhost"));
}

TEST(DnsClusterTest, Validation) {
  EXPECT_THAT(errorOf("name: c\ntype: STRICT_DNS\neds: true\n"),
              HasSubstr("static_resources.clusters[2].eds: must not be set in a STRICT_DNS "
                        "cluster"));
  EXPECT_THAT(errorOf("name: c\ntype: LOGICAL_DNS\nendpoints: [{address: a.internal, port: 80}, "
                      "{address: b.internal, port: 80}]\n"),
              HasSubstr("static_resources.clusters[2].endpoints: a LOGICAL_DNS cluster takes "
                        "exactly one endpoint"));
  EXPECT_THAT(errorOf("name: c\ntype: LOGICAL_DNS\n"),
              HasSubstr("at least one endpoint is required"));
  EXPECT_THAT(errorOf("name: c\ntype: STRICT_DNS\nendpoints: [{address: -bad-.internal, port: "
                      "80}]\n"),
              HasSubstr("endpoints[0].address: \"-bad-.internal\" is not an IP address or a "
                        "valid host name"));
  EXPECT_THAT(errorOf("name: c\ntype: STRICT_DNS\ndns_refresh_rate: 0s\n"
                      "endpoints: [{address: a.internal, port: 80}]\n"),
              HasSubstr("static_resources.clusters[2].dns_refresh_rate: must be > 0"));
  EXPECT_THAT(errorOf("name: c\ntype: STRICT_DNS\nendpoints: [{address: a.internal, port: 0}]\n"),
              HasSubstr("endpoints[0].port: must be 1-65535"));
}

TEST(DnsClusterTest, Defaults) {
  auto c = create("name: c\ntype: STRICT_DNS\nendpoints: [{address: a.internal, port: 80}]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->usesDns());
  EXPECT_EQ(5000, (*c)->dns().refresh_rate.count());
  EXPECT_TRUE((*c)->dns().respect_ttl);
  EXPECT_EQ(Cluster::V4_ONLY, (*c)->dns().lookup_family);
  // Not resolved yet: no endpoint (503 until the name resolves).
  EXPECT_TRUE((*c)->endpoints().empty());

  c = create(
      "name: c\ntype: STRICT_DNS\ndns_refresh_rate: 250ms\nrespect_dns_ttl: false\n"
      "dns_lookup_family: AUTO\nendpoints: [{address: a.internal, port: 80}]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(250, (*c)->dns().refresh_rate.count());
  EXPECT_FALSE((*c)->dns().respect_ttl);
  EXPECT_EQ(Cluster::AUTO, (*c)->dns().lookup_family);
}

TEST(DnsClusterTest, StrictDnsEndpointsFromResolvedNames) {
  ResolvedHosts resolved{{"a.internal", {"10.0.0.1", "10.0.0.2"}},
                         {"b.internal", {"10.0.0.2", "::1"}},
                         {"unused.internal", {"10.9.9.9"}}};
  auto c = create(R"(
name: c
type: STRICT_DNS
endpoints:
- {address: a.internal, port: 80, weight: 5}
- {address: b.internal, port: 80, weight: 2}
- {address: b.internal, port: 81}
- {address: 10.0.0.7, port: 80}
- {address: never.internal, port: 80}
)",
                  nullptr, &resolved);
  ASSERT_TRUE(c.ok()) << c.status();
  // The configured port and weight; an address two names share is listed once.
  EXPECT_EQ((std::vector<std::string>{"10.0.0.1:80/5", "10.0.0.2:80/5", "[::1]:80/2",
                                      "10.0.0.2:81/1", "[::1]:81/1", "10.0.0.7:80/1"}),
            endpointNames(**c));
  EXPECT_EQ(resolved, (*c)->resolvedHosts());
}

TEST(DnsClusterTest, LogicalDnsUsesTheFirstAddress) {
  ResolvedHosts resolved{{"a.internal", {"10.0.0.3", "10.0.0.1"}}};
  auto c = create("name: c\ntype: LOGICAL_DNS\nendpoints: [{address: a.internal, port: 8080}]\n",
                  nullptr, &resolved);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((std::vector<std::string>{"10.0.0.3:8080/1"}), endpointNames(**c));
}

TEST(DnsClusterTest, StaticClusterIgnoresResolvedNames) {
  ResolvedHosts resolved{{"a.internal", {"10.0.0.3"}}};
  auto c = create("name: c\nendpoints: [{address: 127.0.0.1, port: 8080}]\n", nullptr, &resolved);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c.value()->resolvedHosts().empty());
  EXPECT_FALSE(c.value()->usesDns());
}

}  // namespace
}  // namespace Upstream
}  // namespace sluice
