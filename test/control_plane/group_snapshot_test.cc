#include "source/control_plane/group_snapshot.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

using testing::ElementsAre;
using testing::IsEmpty;
using TestUtil::typeNamed;

constexpr char kConfig[] = R"(
clusters:
- {name: users, endpoints: [{address: 10.0.0.1, port: 80}]}
- {name: billing, endpoints: [{address: 10.0.0.2, port: 80}]}
route_tables:
- name: main
  virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: users}}]}]
listeners:
- {name: public, address: {host: 127.0.0.1, port: 8080}, route_table: main}
)";

std::vector<std::string> names(const TypeSnapshot& ts) {
  std::vector<std::string> out;
  for (const auto& r : ts.resources) {
    out.push_back(r.name);
  }
  return out;
}

TEST(GroupSnapshotTest, Sha256) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(contentVersion("abc"), "ba7816bf8f01cfea");
}

TEST(GroupSnapshotTest, EncodesOncePerType) {
  auto snap = GroupSnapshot::create("edge", 7, TestUtil::resources(kConfig), nullptr);
  EXPECT_EQ(snap->group(), "edge");
  EXPECT_EQ(snap->version(), "7");
  const TypeSnapshot& clusters = snap->type(typeNamed("Cluster"));
  EXPECT_EQ(clusters.version, "7");
  // Name order, whatever the declaration order.
  EXPECT_THAT(names(clusters), ElementsAre("billing", "users"));
  ASSERT_EQ(clusters.response.resources_size(), 2);
  EXPECT_EQ(clusters.response.version_info(), "7");
  EXPECT_EQ(clusters.response.type_url(), typeUrl(typeNamed("Cluster")));
  EXPECT_TRUE(clusters.response.nonce().empty());
  const google::protobuf::Any& any = clusters.any(clusters.resources[1]);
  EXPECT_EQ(any.type_url(), "type.googleapis.com/sluice.config.v1.Cluster");
  sluice::config::v1::Cluster decoded;
  ASSERT_TRUE(any.UnpackTo(&decoded));
  EXPECT_EQ(decoded.name(), "users");
  EXPECT_EQ(clusters.resources[1].version, contentVersion(any.value()));
  EXPECT_EQ(clusters.resources[1].version.size(), 16u);
  ASSERT_NE(clusters.find("users"), nullptr);
  EXPECT_EQ(clusters.find("users")->name, "users");
  EXPECT_EQ(clusters.find("nope"), nullptr);
  // Empty types are published too (so a node knows it has none).
  EXPECT_EQ(snap->type(typeNamed("AuthPolicy")).version, "7");
  EXPECT_EQ(snap->type(typeNamed("AuthPolicy")).response.resources_size(), 0);
}

TEST(GroupSnapshotTest, TypeVersionsBumpOnlyForChangedTypes) {
  auto v1 = GroupSnapshot::create("g", 1, TestUtil::resources(kConfig), nullptr);
  // Only a cluster's endpoint changes.
  auto changed = TestUtil::resources(kConfig);
  changed.mutable_clusters(0)->mutable_endpoints(0)->set_port(81);
  auto v2 = GroupSnapshot::create("g", 2, changed, v1.get());
  EXPECT_EQ(v2->version(), "2");
  EXPECT_EQ(v2->type(typeNamed("Cluster")).version, "2");
  EXPECT_EQ(v2->type(typeNamed("RouteTable")).version, "1");
  EXPECT_EQ(v2->type(typeNamed("Listener")).version, "1");
  EXPECT_EQ(v2->type(typeNamed("AuthPolicy")).version, "1");
  EXPECT_EQ(v2->type(typeNamed("RouteTable")).response.version_info(), "1");
  std::vector<bool> only_clusters(typeCount(), false);
  only_clusters[typeIndex(typeNamed("Cluster"))] = true;
  EXPECT_EQ(v2->changedTypes(v1.get()), only_clusters);
  EXPECT_FALSE(v2->sameContent(*v1));
  // The unchanged cluster keeps its content version; the changed one gets a new one.
  EXPECT_EQ(v2->type(typeNamed("Cluster")).find("billing")->version,
            v1->type(typeNamed("Cluster")).find("billing")->version);
  EXPECT_NE(v2->type(typeNamed("Cluster")).find("users")->version,
            v1->type(typeNamed("Cluster")).find("users")->version);

  // Then the listener: the cluster keeps version 2.
  auto more = changed;
  more.mutable_listeners(0)->mutable_address()->set_port(9090);
  auto v3 = GroupSnapshot::create("g", 3, more, v2.get());
  EXPECT_EQ(v3->type(typeNamed("Cluster")).version, "2");
  EXPECT_EQ(v3->type(typeNamed("Listener")).version, "3");
  EXPECT_EQ(v3->type(typeNamed("RouteTable")).version, "1");
}

TEST(GroupSnapshotTest, OrderOfDeclarationIsNotAChange) {
  auto a = GroupSnapshot::create("g", 1, TestUtil::resources(kConfig), nullptr);
  auto reordered = TestUtil::resources(kConfig);
  reordered.mutable_clusters()->SwapElements(0, 1);
  auto b = GroupSnapshot::create("g", 2, reordered, a.get());
  EXPECT_TRUE(b->sameContent(*a));
  EXPECT_EQ(b->type(typeNamed("Cluster")).version, "1");
}

TEST(GroupSnapshotTest, RestoresGivenTypeVersions) {
  // Secret, Cluster, ClusterEndpoints, AuthPolicy, RateLimitPolicy, RouteTable, Listener.
  GroupSnapshot::TypeVersions versions = {"", "3", "1", "", "1", "5", "5"};
  ASSERT_EQ(versions.size(), static_cast<size_t>(typeCount()));
  auto snap = GroupSnapshot::create("g", 5, TestUtil::resources(kConfig), versions);
  EXPECT_EQ(snap->type(typeNamed("Cluster")).version, "3");
  EXPECT_EQ(snap->type(typeNamed("Cluster")).response.version_info(), "3");
  EXPECT_EQ(snap->type(typeNamed("AuthPolicy")).version, "5");
  EXPECT_EQ(snap->typeVersions()[typeIndex(typeNamed("RouteTable"))], "5");
  // Same content as a fresh encode: the content hashes are stable.
  auto fresh = GroupSnapshot::create("g", 9, TestUtil::resources(kConfig), nullptr);
  EXPECT_TRUE(snap->sameContent(*fresh));
}

TEST(GroupSnapshotTest, ComputeDelta) {
  auto snap = GroupSnapshot::create("g", 1, TestUtil::resources(kConfig), nullptr);
  const TypeSnapshot& clusters = snap->type(typeNamed("Cluster"));
  const std::string users = clusters.find("users")->version;

  // A new stream with nothing: everything.
  DeltaUpdate all = computeDelta(clusters, {});
  ASSERT_EQ(all.updated.size(), 2u);
  EXPECT_EQ(all.updated[0]->name, "billing");
  EXPECT_THAT(all.removed, IsEmpty());

  // Has users at the current version, billing at an old one, and two that are gone.
  DeltaUpdate d = computeDelta(
      clusters, {{"users", users}, {"billing", "0000000000000000"}, {"old", "x"}, {"a", "y"}});
  ASSERT_EQ(d.updated.size(), 1u);
  EXPECT_EQ(d.updated[0]->name, "billing");
  EXPECT_THAT(d.removed, ElementsAre("a", "old"));

  DeltaUpdate none =
      computeDelta(clusters, {{"users", users}, {"billing", clusters.find("billing")->version}});
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
