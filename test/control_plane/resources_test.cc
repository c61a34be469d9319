#include "source/control_plane/resources.h"

#include <algorithm>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/policy_registry.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

using testing::ElementsAre;
using TestUtil::typeNamed;

TEST(ResourcesTest, TypeUrlsAndOrder) {
  EXPECT_EQ(typeUrl(typeNamed("Cluster")), "type.googleapis.com/sluice.config.v1.Cluster");
  EXPECT_EQ(typeUrl(typeNamed("ClusterEndpoints")),
            "type.googleapis.com/sluice.config.v1.ClusterEndpoints");
  EXPECT_EQ(typeUrl(typeNamed("Listener")), "type.googleapis.com/sluice.config.v1.Listener");
  std::vector<std::string> order;
  for (ResourceType t : allTypes()) {
    order.push_back(shortName(t));
    EXPECT_EQ(typeFromUrl(typeUrl(t)), t);
  }
  EXPECT_THAT(order, ElementsAre("Secret", "Cluster", "ClusterEndpoints", "AuthPolicy",
                                 "RateLimitPolicy", "RouteTable", "Listener"));
  EXPECT_EQ(typeFromUrl("type.googleapis.com/envoy.config.cluster.v3.Cluster"), std::nullopt);
  EXPECT_EQ(typeFromUrl("Cluster"), std::nullopt);
}

// The types are read from StaticResources: every repeated message field is one, in the data
// plane's order (Secret, Cluster, ClusterEndpoints, the other lists in field order, RouteTable,
// Listener), so a new list needs no change in the control plane.
TEST(ResourcesTest, TypesAreTheListsOfStaticResources) {
  const auto* d = sluice::config::v1::StaticResources::descriptor();
  const std::vector<std::string> first = {"secrets", "clusters", "cluster_endpoints"};
  const std::vector<std::string> last = {"route_tables", "listeners"};
  std::vector<std::string> want = first;
  int lists = 0;
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (!f->is_repeated() || f->message_type() == nullptr) {
      continue;
    }
    ++lists;
    if (std::find(first.begin(), first.end(), f->name()) == first.end() &&
        std::find(last.begin(), last.end(), f->name()) == last.end()) {
      want.push_back(f->name());
    }
  }
  want.insert(want.end(), last.begin(), last.end());
  EXPECT_EQ(typeCount(), lists);
  ASSERT_EQ(allTypes().size(), want.size());

  std::vector<std::string> fields;
  for (int i = 0; i < typeCount(); ++i) {
    const ResourceType t = allTypes()[i];
    EXPECT_EQ(typeIndex(t), i);
    fields.push_back(fieldName(t));
    const auto* field = d->FindFieldByName(fieldName(t));
    ASSERT_NE(field, nullptr) << fieldName(t);
    EXPECT_EQ(shortName(t), field->message_type()->name());
    EXPECT_EQ(typeUrl(t), "type.googleapis.com/" + field->message_type()->full_name());
    EXPECT_EQ(typeFromUrl(typeUrl(t)), t);
    EXPECT_EQ(parseTypeName(shortName(t)), t);
    EXPECT_EQ(parseTypeName(fieldName(t)), t);
    EXPECT_EQ(parseTypeName(typeUrl(t)), t);
  }
  EXPECT_EQ(fields, want);
}

// Each policy type a linked filter registers is served (no list of its own in the control plane).
TEST(ResourcesTest, EveryRegisteredPolicyTypeIsAType) {
  ASSERT_FALSE(Config::PolicyTypeRegistry::all().empty());
  for (const Config::PolicyType* policy : Config::PolicyTypeRegistry::all()) {
    auto t = parseTypeName(policy->field());
    ASSERT_TRUE(t.has_value()) << policy->field();
    EXPECT_EQ(fieldName(*t), policy->field());
    EXPECT_EQ(shortName(*t), Config::PolicyTypeRegistry::typeName(*policy));
  }
}

TEST(ResourcesTest, ParseTypeNameAcceptsOperatorSpellings) {
  struct Case {
    const char* in;
    ResourceType want;
  };
  for (const Case& c : std::vector<Case>{
           {"Listener", typeNamed("Listener")},
           {"listener", typeNamed("Listener")},
           {"listeners", typeNamed("Listener")},
           {"LISTENERS", typeNamed("Listener")},
           {"RouteTable", typeNamed("RouteTable")},
           {"route_tables", typeNamed("RouteTable")},
           {"route-table", typeNamed("RouteTable")},
           {"routetables", typeNamed("RouteTable")},
           {"clusters", typeNamed("Cluster")},
           {"Cluster", typeNamed("Cluster")},
           {"cluster_endpoints", typeNamed("ClusterEndpoints")},
           {"ClusterEndpoints", typeNamed("ClusterEndpoints")},
           {"clusterendpoint", typeNamed("ClusterEndpoints")},
           {"auth_policies", typeNamed("AuthPolicy")},
           {"AuthPolicy", typeNamed("AuthPolicy")},
           {"authpolicy", typeNamed("AuthPolicy")},
           {"rate_limit_policies", typeNamed("RateLimitPolicy")},
           {"RateLimitPolicy", typeNamed("RateLimitPolicy")},
           {" rate_limit_policy ", typeNamed("RateLimitPolicy")},
           {"secrets", typeNamed("Secret")},
           {"Secret", typeNamed("Secret")},
           {"sluice.config.v1.Cluster", typeNamed("Cluster")},
           {"type.googleapis.com/sluice.config.v1.RouteTable", typeNamed("RouteTable")},
       }) {
    EXPECT_EQ(parseTypeName(c.in), c.want) << c.in;
  }
  for (const char* bad : {"", "route", "routes", "endpoint", "clusterss", "Secrets2", "*"}) {
    EXPECT_EQ(parseTypeName(bad), std::nullopt) << bad;
  }
}

TEST(ResourcesTest, NamesAndCheckNames) {
  auto r = TestUtil::resources(R"(
clusters: [{name: a}, {name: b}, {name: a}, {}]
cluster_endpoints: [{cluster_name: a}, {cluster_name: a}]
listeners: [{name: l}]
)");
  auto clusters = resourcesOf(r, typeNamed("Cluster"));
  ASSERT_EQ(clusters.size(), 4u);
  EXPECT_EQ(resourceName(*clusters[1], typeNamed("Cluster")), "b");
  EXPECT_EQ(resourceName(*resourcesOf(r, typeNamed("ClusterEndpoints"))[0],
                         typeNamed("ClusterEndpoints")),
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
