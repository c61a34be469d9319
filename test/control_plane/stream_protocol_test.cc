#include "source/control_plane/stream_protocol.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

using sluice::service::discovery::v1::DeltaDiscoveryRequest;
using sluice::service::discovery::v1::DiscoveryRequest;
using testing::ElementsAre;
using testing::IsEmpty;
using TestUtil::typeNamed;

constexpr char kConfig[] = R"(
clusters:
- {name: users, endpoints: [{address: 10.0.0.1, port: 80}]}
- {name: billing, endpoints: [{address: 10.0.0.2, port: 80}]}
route_tables: [{name: main}]
listeners:
- {name: public, address: {host: 127.0.0.1, port: 8080}, route_table: main}
)";

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

DiscoveryRequest sotw(ResourceType t, const std::string& version = "",
                      const std::string& nonce = "", const char* error = nullptr) {
  DiscoveryRequest r;
  r.set_type_url(typeUrl(t));
  r.set_version_info(version);
  r.set_response_nonce(nonce);
  if (error != nullptr) {
    r.mutable_error_detail()->set_code(3);
    r.mutable_error_detail()->set_message(error);
  }
  return r;
}

DeltaDiscoveryRequest delta(ResourceType t, const std::string& nonce = "",
                            const char* error = nullptr) {
  DeltaDiscoveryRequest r;
  r.set_type_url(typeUrl(t));
  r.set_response_nonce(nonce);
  if (error != nullptr) {
    r.mutable_error_detail()->set_message(error);
  }
  return r;
}

template <class R>
std::vector<std::string> typesOf(const std::vector<R>& responses) {
  std::vector<std::string> out;
  for (const auto& r : responses) {
    out.push_back(shortName(*typeFromUrl(r.type_url())));
  }
  return out;
}

class SotwProtocolTest : public testing::Test {
 protected:
  // Subscribes to every type and ACKs, as a data plane does on connect.
  void connect(const GroupSnapshot* snap) {
    for (ResourceType t : allTypes()) {
      auto out = p_.onRequest(sotw(t), snap, kNow);
      ASSERT_EQ(out.size(), 1u);
      EXPECT_TRUE(p_.onRequest(sotw(t, out[0].version_info(), out[0].nonce()), snap, kNow).empty());
    }
  }

  GroupSnapshotConstSharedPtr v1_ =
      GroupSnapshot::create("g", 1, TestUtil::resources(kConfig), nullptr);
  SotwProtocol p_;
};

TEST_F(SotwProtocolTest, FirstRequestOfEveryTypeIsAnswered) {
  auto out = p_.onRequest(sotw(typeNamed("Cluster")), v1_.get(), kNow);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].version_info(), "1");
  EXPECT_EQ(out[0].resources_size(), 2);
  EXPECT_FALSE(out[0].nonce().empty());
  // Even a type with no resources: the data plane learns it is in sync.
  auto empty = p_.onRequest(sotw(typeNamed("AuthPolicy")), v1_.get(), kNow);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].resources_size(), 0);
  EXPECT_NE(empty[0].nonce(), out[0].nonce());
  EXPECT_EQ(p_.progress()[typeIndex(typeNamed("Cluster"))].sent_version, "1");
  EXPECT_TRUE(p_.progress()[typeIndex(typeNamed("Cluster"))].acked_version.empty());
}

TEST_F(SotwProtocolTest, ReconnectWithTheCurrentVersionIsNotResent) {
  auto out = p_.onRequest(sotw(typeNamed("Cluster"), "1"), v1_.get(), kNow);
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ(p_.progress()[typeIndex(typeNamed("Cluster"))].acked_version, "1");
  // An older version is.
  EXPECT_EQ(p_.onRequest(sotw(typeNamed("Listener"), "0"), v1_.get(), kNow).size(), 1u);
}

TEST_F(SotwProtocolTest, NoConfigYetAnswersWhenThereIsOne) {
  EXPECT_THAT(p_.onRequest(sotw(typeNamed("Cluster")), nullptr, kNow), IsEmpty());
  EXPECT_THAT(p_.onRequest(sotw(typeNamed("Listener")), nullptr, kNow), IsEmpty());
  EXPECT_THAT(typesOf(p_.onSnapshot(v1_.get())), ElementsAre("Cluster", "Listener"));
}

TEST_F(SotwProtocolTest, AckNackAndStaleNonces) {
  auto out = p_.onRequest(sotw(typeNamed("Cluster")), v1_.get(), kNow);
  const std::string nonce = out[0].nonce();
  // Stale nonce: nothing recorded.
  EXPECT_THAT(p_.onRequest(sotw(typeNamed("Cluster"), "1", "999"), v1_.get(), kNow), IsEmpty());
  EXPECT_TRUE(p_.progress()[typeIndex(typeNamed("Cluster"))].acked_version.empty());
  // NACK: recorded, nothing resent.
  const absl::Time later = kNow + absl::Seconds(5);
  EXPECT_THAT(p_.onRequest(sotw(typeNamed("Cluster"), "", nonce, "bad cluster"), v1_.get(), later),
              IsEmpty());
  EXPECT_EQ(p_.progress()[typeIndex(typeNamed("Cluster"))].nacked_version, "1");
  EXPECT_EQ(p_.progress()[typeIndex(typeNamed("Cluster"))].nack_reason, "bad cluster");
  EXPECT_EQ(p_.progress()[typeIndex(typeNamed("Cluster"))].nack_time, later);
  EXPECT_TRUE(p_.progress()[typeIndex(typeNamed("Cluster"))].acked_version.empty());
  // The same snapshot again (e.g. another group published): still not resent.
  EXPECT_THAT(p_.onSnapshot(v1_.get()), IsEmpty());
  // A new version of the type is pushed; its ACK clears the NACK.
  auto changed = TestUtil::resources(kConfig);
  changed.mutable_clusters(0)->set_name("users2");
  auto v2 = GroupSnapshot::create("g", 2, changed, v1_.get());
  auto push = p_.onSnapshot(v2.get());
  ASSERT_EQ(push.size(), 1u);
  EXPECT_EQ(push[0].version_info(), "2");
  // The old nonce is stale now.
  EXPECT_THAT(p_.onRequest(sotw(typeNamed("Cluster"), "1", nonce), v2.get(), kNow), IsEmpty());
  EXPECT_TRUE(p_.progress()[typeIndex(typeNamed("Cluster"))].acked_version.empty());
  p_.onRequest(sotw(typeNamed("Cluster"), "2", push[0].nonce()), v2.get(), kNow);
  EXPECT_EQ(p_.progress()[typeIndex(typeNamed("Cluster"))].acked_version, "2");
  EXPECT_TRUE(p_.progress()[typeIndex(typeNamed("Cluster"))].nacked_version.empty());
  EXPECT_TRUE(p_.progress()[typeIndex(typeNamed("Cluster"))].nack_reason.empty());
}

TEST_F(SotwProtocolTest, NewVersionPushesOnlyChangedTypesInOrderEvenUnacked) {
  connect(v1_.get());
  auto r = TestUtil::resources(kConfig);
  r.mutable_listeners(0)->mutable_address()->set_port(9);
  r.mutable_clusters(1)->mutable_endpoints(0)->set_port(9);
  auto v2 = GroupSnapshot::create("g", 2, r, v1_.get());
  auto push = p_.onSnapshot(v2.get());
  EXPECT_THAT(typesOf(push), ElementsAre("Cluster", "Listener"));
  // Not ACKed yet, and a third version changes the route table and the cluster again.
  r.mutable_route_tables(0)->add_virtual_hosts()->set_name("vh");
  r.mutable_clusters(1)->mutable_endpoints(0)->set_port(10);
  auto v3 = GroupSnapshot::create("g", 3, r, v2.get());
  auto push3 = p_.onSnapshot(v3.get());
  EXPECT_THAT(typesOf(push3), ElementsAre("Cluster", "RouteTable"));
  EXPECT_EQ(push3[0].version_info(), "3");
  EXPECT_EQ(p_.progress()[typeIndex(typeNamed("Listener"))].sent_version, "2");
  EXPECT_EQ(p_.progress()[typeIndex(typeNamed("Listener"))].acked_version, "1");
}

TEST_F(SotwProtocolTest, UnknownTypeIsIgnored) {
  DiscoveryRequest r;
  r.set_type_url("type.googleapis.com/envoy.config.cluster.v3.Cluster");
  EXPECT_THAT(p_.onRequest(r, v1_.get(), kNow), IsEmpty());
  r.set_response_nonce("1");
  EXPECT_THAT(p_.onRequest(r, v1_.get(), kNow), IsEmpty());
  for (const auto& t : p_.progress()) {
    EXPECT_FALSE(t.subscribed);
  }
}

TEST(SotwQueueTest, WaitingResponsesAreTheLatestPerTypeInTypeOrder) {
  auto response = [](ResourceType t, const std::string& version) {
    SotwProtocol::Response r;
    r.set_type_url(typeUrl(t));
    r.set_version_info(version);
    return r;
  };
  std::deque<SotwProtocol::Response> queue;
  SotwProtocol::enqueue(
      queue, {response(typeNamed("RouteTable"), "5"), response(typeNamed("Listener"), "5")});
  // v6 changes clusters and the route table before v5 was written: the v5 route table is
  // dropped, and the v5 listener (which may name a route table only v5/v6 has) goes last.
  SotwProtocol::enqueue(
      queue, {response(typeNamed("Cluster"), "6"), response(typeNamed("RouteTable"), "6")});
  std::vector<std::string> got;
  for (const auto& r : queue) {
    got.push_back(absl::StrCat(shortName(*typeFromUrl(r.type_url())), "@", r.version_info()));
  }
  EXPECT_THAT(got, ElementsAre("Cluster@6", "RouteTable@6", "Listener@5"));

  std::deque<DeltaProtocol::Response> delta_queue;
  DeltaProtocol::Response d;
  d.set_type_url(typeUrl(typeNamed("Listener")));
  DeltaProtocol::enqueue(delta_queue, {d});
  d.set_type_url(typeUrl(typeNamed("Cluster")));
  DeltaProtocol::enqueue(delta_queue, {d});
  ASSERT_EQ(delta_queue.size(), 2u);  // Deltas are never merged or reordered.
  EXPECT_EQ(delta_queue[0].type_url(), typeUrl(typeNamed("Listener")));
}

TEST(DeltaProtocolTest, InitialVersionsRemovalsAndAcks) {
  auto v1 = GroupSnapshot::create("g", 1, TestUtil::resources(kConfig), nullptr);
  const TypeSnapshot& clusters = v1->type(typeNamed("Cluster"));
  DeltaProtocol p;

  // The client has users at the current version and a cluster that is gone.
  auto req = delta(typeNamed("Cluster"));
  (*req.mutable_initial_resource_versions())["users"] = clusters.find("users")->version;
  (*req.mutable_initial_resource_versions())["gone"] = "abc";
  auto out = p.onRequest(req, v1.get(), kNow);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].system_version_info(), "1");
  ASSERT_EQ(out[0].resources_size(), 1);
  EXPECT_EQ(out[0].resources(0).name(), "billing");
  EXPECT_EQ(out[0].resources(0).version(), clusters.find("billing")->version);
  EXPECT_EQ(out[0].resources(0).resource().type_url(), typeUrl(typeNamed("Cluster")));
  EXPECT_THAT(out[0].removed_resources(), ElementsAre("gone"));
  EXPECT_EQ(p.known(typeNamed("Cluster")).size(), 2u);

  // First request of a type with nothing to send: answered anyway, empty.
  auto empty = p.onRequest(delta(typeNamed("AuthPolicy")), v1.get(), kNow);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].resources_size(), 0);
  EXPECT_EQ(empty[0].removed_resources_size(), 0);

  // ACK; stale; NACK.
  p.onRequest(delta(typeNamed("Cluster"), out[0].nonce()), v1.get(), kNow);
  EXPECT_EQ(p.progress()[typeIndex(typeNamed("Cluster"))].acked_version, "1");
  EXPECT_THAT(p.onRequest(delta(typeNamed("Cluster"), "77", "x"), v1.get(), kNow), IsEmpty());
  EXPECT_TRUE(p.progress()[typeIndex(typeNamed("Cluster"))].nacked_version.empty());

  // v2: billing changes, users removed, a new one. Only that goes out.
  auto r = TestUtil::resources(kConfig);
  r.mutable_clusters(1)->mutable_endpoints(0)->set_port(9);
  r.mutable_clusters(0)->set_name("accounts");
  auto v2 = GroupSnapshot::create("g", 2, r, v1.get());
  auto push = p.onSnapshot(v2.get());
  ASSERT_EQ(push.size(), 1u);
  EXPECT_EQ(push[0].system_version_info(), "2");
  ASSERT_EQ(push[0].resources_size(), 2);
  EXPECT_EQ(push[0].resources(0).name(), "accounts");
  EXPECT_EQ(push[0].resources(1).name(), "billing");
  EXPECT_THAT(push[0].removed_resources(), ElementsAre("users"));
  p.onRequest(delta(typeNamed("Cluster"), push[0].nonce(), "rejected"), v2.get(), kNow);
  EXPECT_EQ(p.progress()[typeIndex(typeNamed("Cluster"))].nacked_version, "2");
  EXPECT_EQ(p.progress()[typeIndex(typeNamed("Cluster"))].nack_reason, "rejected");
  EXPECT_EQ(p.progress()[typeIndex(typeNamed("Cluster"))].acked_version, "1");
  // No resend of the rejected version.
  EXPECT_THAT(p.onSnapshot(v2.get()), IsEmpty());
}

TEST(DeltaProtocolTest, SameContentUnderANewVersionSendsNothing) {
  auto a = GroupSnapshot::create("default", 1, TestUtil::resources(kConfig), nullptr);
  // The node's group gets its own config, identical: new version, same resources.
  auto b = GroupSnapshot::create("edge", 2, TestUtil::resources(kConfig), nullptr);
  DeltaProtocol p;
  auto out = p.onRequest(delta(typeNamed("Cluster")), a.get(), kNow);
  p.onRequest(delta(typeNamed("Cluster"), out[0].nonce()), a.get(), kNow);
  EXPECT_THAT(p.onSnapshot(b.get()), IsEmpty());
  EXPECT_EQ(p.progress()[typeIndex(typeNamed("Cluster"))].sent_version, "2");
  EXPECT_EQ(p.progress()[typeIndex(typeNamed("Cluster"))].acked_version, "2");
}

TEST(DeltaProtocolTest, SubscriptionChangesAndNamedSubscriptionsAreWildcard) {
  auto v1 = GroupSnapshot::create("g", 1, TestUtil::resources(kConfig), nullptr);
  DeltaProtocol p;
  auto req = delta(typeNamed("Cluster"));
  req.add_resource_names_subscribe("users");
  auto out = p.onRequest(req, v1.get(), kNow);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].resources_size(), 2);
  // A later request without a nonce (subscription change) sends nothing new.
  EXPECT_THAT(p.onRequest(delta(typeNamed("Cluster")), v1.get(), kNow), IsEmpty());
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
