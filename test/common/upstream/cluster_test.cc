#include "source/common/upstream/cluster.h"

#include <string>

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
                                                 Stats::Store* store = nullptr) {
  Cluster config;
  absl::Status s = Config::loadFromYaml(yaml, config);
  EXPECT_TRUE(s.ok()) << s;
  return ClusterInfo::create(config, "static_resources.clusters[2]", store);
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
  EXPECT_THAT(errorOf("name: c\nendpoints: [{address: example.com, port: 80}]\n"),
              HasSubstr("static_resources.clusters[2].endpoints[0].address: \"example.com\" is "
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
