#include "source/control_plane/resources.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

using testing::ElementsAre;

TEST(ResourcesTest, TypeUrlsAndOrder) {
  EXPECT_EQ(typeUrl(ResourceType::Cluster), "type.googleapis.com/sluice.config.v1.Cluster");
  EXPECT_EQ(typeUrl(ResourceType::ClusterEndpoints),
            "type.googleapis.com/sluice.config.v1.ClusterEndpoints");
  EXPECT_EQ(typeUrl(ResourceType::Listener), "type.googleapis.com/sluice.config.v1.Listener");
  std::vector<std::string> order;
  for (ResourceType t : kAllTypes) {
    order.push_back(shortName(t));
    EXPECT_EQ(typeFromUrl(typeUrl(t)), t);
  }
  EXPECT_THAT(order, ElementsAre("Cluster", "ClusterEndpoints", "AuthPolicy", "RateLimitPolicy",
                                 "RouteTable", "Listener"));
  EXPECT_EQ(typeFromUrl("type.googleapis.com/envoy.config.cluster.v3.Cluster"), std::nullopt);
  EXPECT_EQ(typeFromUrl("Cluster"), std::nullopt);
}

TEST(ResourcesTest, ParseTypeNameAcceptsOperatorSpellings) {
  struct Case {
    const char* in;
    ResourceType want;
  };
  for (const Case& c : std::vector<Case>{
           {"Listener", ResourceType::Listener},
           {"listener", ResourceType::Listener},
           {"listeners", ResourceType::Listener},
           {"LISTENERS", ResourceType::Listener},
           {"RouteTable", ResourceType::RouteTable},
           {"route_tables", ResourceType::RouteTable},
           {"route-table", ResourceType::RouteTable},
           {"routetables", ResourceType::RouteTable},
           {"clusters", ResourceType::Cluster},
           {"Cluster", ResourceType::Cluster},
           {"cluster_endpoints", ResourceType::ClusterEndpoints},
           {"ClusterEndpoints", ResourceType::ClusterEndpoints},
           {"clusterendpoint", ResourceType::ClusterEndpoints},
           {"auth_policies", ResourceType::AuthPolicy},
           {"AuthPolicy", ResourceType::AuthPolicy},
           {"authpolicy", ResourceType::AuthPolicy},
           {"rate_limit_policies", ResourceType::RateLimitPolicy},
           {"RateLimitPolicy", ResourceType::RateLimitPolicy},
           {" rate_limit_policy ", ResourceType::RateLimitPolicy},
           {"sluice.config.v1.Cluster", ResourceType::Cluster},
           {"type.googleapis.com/sluice.config.v1.RouteTable", ResourceType::RouteTable},
       }) {
    EXPECT_EQ(parseTypeName(c.in), c.want) << c.in;
  }
  for (const char* bad : {"", "route", "routes", "endpoint", "clusterss", "Secret", "*"}) {
    EXPECT_EQ(parseTypeName(bad), std::nullopt) << bad;
  }
}

TEST(ResourcesTest, NamesAndCheckNames) {
  auto r = TestUtil::resources(R"(
clusters: [{name: a}, {name: b}, {name: a}, {}]
cluster_endpoints: [{cluster_name: a}, {cluster_name: a}]
listeners: [{name: l}]
)");
  auto clusters = resourcesOf(r, ResourceType::Cluster);
  ASSERT_EQ(clusters.size(), 4u);
  EXPECT_EQ(resourceName(*clusters[1], ResourceType::Cluster), "b");
  EXPECT_EQ(resourceName(*resourcesOf(r, ResourceType::ClusterEndpoints)[0],
                         ResourceType::ClusterEndpoints),
            "a");
  EXPECT_THAT(checkNames(r),
              ElementsAre("clusters[2].name: duplicate Cluster name \"a\" (first at clusters[0])",
                          "clusters[3].name: is required",
                          "cluster_endpoints[1].cluster_name: duplicate ClusterEndpoints name "
                          "\"a\" (first at cluster_endpoints[0])"));
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
