// Building snapshots from static plus control-plane resources: eds clusters, policies and
// their references, error naming, reuse of unchanged route tables, and the retention of
// removed-but-referenced resources that makes type-by-type updates make-before-break.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/server/config/snapshot.h"
#include "source/server/dynamic_resources.h"

namespace sluice {
namespace Server {
namespace {

using sluice::config::v1::Bootstrap;
using sluice::config::v1::StaticResources;
using testing::HasSubstr;
using testing::Not;

StaticResources resources(const std::string& yaml) {
  StaticResources r;
  absl::Status s = Config::loadFromYaml(yaml, r);
  EXPECT_TRUE(s.ok()) << s;
  return r;
}

std::string validationError(const std::string& yaml) {
  absl::Status s = validateResources(resources(yaml));
  EXPECT_FALSE(s.ok()) << yaml;
  return std::string(s.message());
}

constexpr char kDeclared[] = R"(
clusters:
- {name: api, eds: true}
- {name: old, endpoints: [{address: 127.0.0.1, port: 9002}]}
cluster_endpoints:
- {cluster_name: api, endpoints: [{address: 127.0.0.1, port: 9001, weight: 5}]}
auth_policies:
- {name: partner, key_auth: {}}
rate_limit_policies:
- {name: per-ip, minute: 10, limit_by: IP}
route_tables:
- name: main
  virtual_hosts:
  - domains: ["*"]
    routes:
    - {match: {prefix: /api}, route: {cluster: api}, auth: partner, rate_limit: per-ip}
    - {match: {prefix: /old}, route: {cluster: old}}
listeners:
- name: public
  address: {host: 127.0.0.1, port: 0}
  route_table: main
  http_filters: [{name: auth}, {name: rate_limit}, {name: router}]
)";

TEST(ValidateResourcesTest, AcceptsEdsClustersPoliciesAndReferences) {
  absl::Status s = validateResources(resources(kDeclared));
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ValidateResourcesTest, NamesFieldsWithoutStaticPrefix) {
  std::string e = validationError(R"(
clusters: [{name: a, endpoints: [{address: 127.0.0.1, port: 0}]}]
)");
  EXPECT_THAT(e, HasSubstr("clusters[0].endpoints[0].port: must be 1-65535"));
  EXPECT_THAT(e, Not(HasSubstr("static_resources")));
}

TEST(ValidateResourcesTest, RejectsUnknownPoliciesAndBadEndpointSets) {
  std::string e = validationError(R"(
clusters: [{name: a, eds: true, endpoints: [{address: 127.0.0.1, port: 1}]},
           {name: b, endpoints: [{address: 127.0.0.1, port: 1}]}]
cluster_endpoints:
- {cluster_name: b, endpoints: [{address: 127.0.0.1, port: 1}]}
- {cluster_name: nope, endpoints: [{address: 127.0.0.1, port: 1}]}
- {cluster_name: a, endpoints: [{address: not-an-ip, port: 1}]}
rate_limit_policies: [{name: r}, {name: h, second: 1, limit_by: HEADER}]
route_tables:
- name: t
  virtual_hosts:
  - domains: ["*"]
    routes: [{match: {prefix: /}, route: {cluster: b}, auth: missing, rate_limit: gone}]
)");
  EXPECT_THAT(e, HasSubstr("clusters[0].endpoints: must be empty when eds is set"));
  EXPECT_THAT(e, HasSubstr("cluster_endpoints[0].cluster_name: cluster \"b\" does not set eds"));
  EXPECT_THAT(e, HasSubstr("cluster_endpoints[1].cluster_name: unknown cluster \"nope\""));
  EXPECT_THAT(e, HasSubstr("cluster_endpoints[2].endpoints[0].address"));
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[0]: needs at least one of second"));
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[1].header_name: is required"));
  EXPECT_THAT(e, HasSubstr("routes[0].auth: unknown auth policy \"missing\""));
  EXPECT_THAT(e, HasSubstr("routes[0].rate_limit: unknown rate limit policy \"gone\""));
}

TEST(DynamicConfigTest, DynamicErrorsAreNamedByTypeAndName) {
  Bootstrap b;
  *b.mutable_static_resources() = resources(R"(
clusters: [{name: static-one, endpoints: [{address: 127.0.0.1, port: 1}]}]
)");
  MergedConfig m = mergeDynamic(b, resources(R"(
clusters: [{name: static-one, endpoints: [{address: 127.0.0.1, port: 2}]},
           {name: broken, endpoints: [{address: 127.0.0.1, port: 70000}]}]
)"));
  BuildOptions o;
  o.first_dynamic_cluster = m.first_dynamic_cluster;
  auto snap = buildSnapshot(m.bootstrap, nullptr, o);
  ASSERT_FALSE(snap.ok());
  const std::string e(snap.status().message());
  EXPECT_THAT(e, HasSubstr("Cluster \"static-one\".name: duplicate cluster \"static-one\""));
  EXPECT_THAT(e, HasSubstr("Cluster \"broken\".endpoints[0].port: must be 1-65535"));
}

TEST(DynamicConfigTest, EdsEndpointsMergeIntoTheirCluster) {
  Bootstrap b;
  *b.mutable_static_resources() = resources(kDeclared);
  auto snap = buildSnapshot(b, nullptr, BuildOptions{});
  ASSERT_TRUE(snap.ok()) << snap.status();
  const auto& api = (*snap)->clusters.at("api");
  ASSERT_EQ(api->endpoints().size(), 1u);
  EXPECT_EQ(api->endpoints()[0].weight, 5u);
  EXPECT_TRUE((*snap)->policies->contains("AuthPolicy", "partner"));
  EXPECT_TRUE((*snap)->policies->contains("RateLimitPolicy", "per-ip"));

  // An eds cluster whose endpoints have not arrived is valid and has none (503 at request).
  StaticResources r = resources(kDeclared);
  r.clear_cluster_endpoints();
  *b.mutable_static_resources() = r;
  auto empty = buildSnapshot(b, nullptr, BuildOptions{});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE((*empty)->clusters.at("api")->endpoints().empty());
}

TEST(DynamicConfigTest, UnchangedRouteTablesAndClustersAreReused) {
  Bootstrap b;
  *b.mutable_static_resources() = resources(kDeclared);
  auto first = buildSnapshot(b, nullptr, BuildOptions{});
  ASSERT_TRUE(first.ok());
  b.mutable_static_resources()->mutable_cluster_endpoints(0)->mutable_endpoints(0)->set_port(9009);
  BuildOptions o;
  o.previous = first->get();
  auto second = buildSnapshot(b, nullptr, o);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->route_tables.at("main"), (*first)->route_tables.at("main"));
  EXPECT_EQ((*second)->clusters.at("old"), (*first)->clusters.at("old"));
  EXPECT_NE((*second)->clusters.at("api"), (*first)->clusters.at("api"));
  EXPECT_EQ((*second)->clusters.at("api")->endpoints()[0].address.port(), 9009);
}

TEST(DynamicConfigTest, RemovedResourcesStayWhileReferenced) {
  const StaticResources previous = resources(kDeclared);
  // The Cluster update drops "old" (and "api"'s definition stays): routes still use it.
  StaticResources declared = previous;
  declared.mutable_clusters()->RemoveLast();
  declared.clear_cluster_endpoints();
  declared.clear_auth_policies();
  std::vector<std::string> retained;
  StaticResources effective = withRetained(declared, previous, StaticResources(), &retained);
  EXPECT_THAT(retained, testing::UnorderedElementsAre("Cluster/old", "ClusterEndpoints/api",
                                                      "AuthPolicy/partner"));
  EXPECT_EQ(effective.clusters_size(), 2);

  // The RouteTable update stops referring to them: now they go.
  StaticResources next = effective;
  next.mutable_route_tables(0)->mutable_virtual_hosts(0)->mutable_routes()->RemoveLast();
  next.mutable_route_tables(0)->mutable_virtual_hosts(0)->mutable_routes(0)->clear_auth();
  next.mutable_clusters()->RemoveLast();  // "old" as retained above
  next.clear_auth_policies();
  retained.clear();
  StaticResources after = withRetained(next, effective, StaticResources(), &retained);
  EXPECT_THAT(retained, testing::ElementsAre());  // endpoints of api are still declared
  EXPECT_EQ(after.clusters_size(), 1);
  EXPECT_EQ(after.auth_policies_size(), 0);

  // A route table removed while a listener still names it stays too.
  StaticResources no_tables = effective;
  no_tables.clear_route_tables();
  retained.clear();
  withRetained(no_tables, effective, StaticResources(), &retained);
  EXPECT_THAT(retained, testing::Contains("RouteTable/main"));

  // A policy a listener's filter config names (its default policy) stays as long as that.
  StaticResources with_default = after;
  with_default.mutable_route_tables(0)
      ->mutable_virtual_hosts(0)
      ->mutable_routes(0)
      ->clear_rate_limit();
  (*with_default.mutable_listeners(0)
        ->mutable_http_filters(1)
        ->mutable_config()
        ->mutable_fields())["policy"]
      .set_string_value("per-ip");
  StaticResources dropped = with_default;
  dropped.clear_rate_limit_policies();
  retained.clear();
  withRetained(dropped, with_default, StaticResources(), &retained);
  EXPECT_THAT(retained, testing::ElementsAre("RateLimitPolicy/per-ip"));
  dropped.mutable_listeners(0)->mutable_http_filters(1)->clear_config();  // no longer named
  retained.clear();
  withRetained(dropped, with_default, StaticResources(), &retained);
  EXPECT_THAT(retained, testing::ElementsAre());
}

TEST(DynamicConfigTest, StaticResourcesMayNameWhatTheControlPlaneSends) {
  Bootstrap b;
  *b.mutable_static_resources() = resources(R"(
listeners: [{name: edge, address: {host: 127.0.0.1, port: 0}, route_table: from-cp}]
route_tables:
- name: local
  virtual_hosts:
  - domains: ["*"]
    routes: [{match: {prefix: /}, route: {cluster: cp-cluster}, auth: cp-policy}]
)");
  EXPECT_FALSE(buildSnapshot(b, nullptr, BuildOptions{}).ok());
  BuildOptions o;
  o.static_may_reference_dynamic = true;
  auto snap = buildSnapshot(b, nullptr, o);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ((*snap)->listeners[0].http->route_table, nullptr);  // 404 until it arrives

  // Dynamic resources are still held to every reference.
  MergedConfig m = mergeDynamic(b, resources(R"(
route_tables:
- name: from-cp
  virtual_hosts:
  - domains: ["*"]
    routes: [{match: {prefix: /}, route: {cluster: nowhere}}]
)"));
  o.first_dynamic_route_table = m.first_dynamic_route_table;
  auto strict = buildSnapshot(m.bootstrap, nullptr, o);
  ASSERT_FALSE(strict.ok());
  EXPECT_THAT(std::string(strict.status().message()),
              HasSubstr("RouteTable \"from-cp\".virtual_hosts[0].routes[0].route.cluster"));
}

}  // namespace
}  // namespace Server
}  // namespace sluice
