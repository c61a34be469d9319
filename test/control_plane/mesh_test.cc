// MeshSnapshot (the group config as Envoy xDS v3 for proxyless gRPC) and the Envoy stream
// protocol, without gRPC.
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "gtest/gtest.h"
#include "source/control_plane/mesh_protocol.h"
#include "source/control_plane/mesh_resources.h"
#include "test/control_plane/test_utility.h"

// exact_match and total_weight are deprecated in Envoy's API; gRPC 1.51 reads only them.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace sluice {
namespace ControlPlane {
namespace {

constexpr char kConfig[] = R"(
clusters:
- name: a
  endpoints: [{address: localhost, port: 1, weight: 3}, {address: 127.0.0.2, port: 2, weight: 1}]
  circuit_breakers: {max_requests: 7}
- name: b
  lb_policy: RING_HASH
  ring_hash: {hash_on: HEADER, header_name: X-Key}
  endpoints: [{address: 127.0.0.3, port: 3}, {address: 127.0.0.4, port: 4}]
- name: c
  lb_policy: LEAST_REQUEST
  endpoints: [{address: 127.0.0.5, port: 5}]
route_tables:
- name: mesh
  virtual_hosts:
  - name: g
    domains: [Greeter, "*.svc", "*"]
    routes:
    - name: q
      match: {prefix: /, query_parameters: [{name: x}]}
      route: {cluster: a}
    - name: h
      match: {prefix: /pkg.S/, headers: [{name: X-Canary, exact: "yes"}]}
      route: {cluster: b}
    - name: w
      match: {prefix: /}
      route: {weighted_clusters: {clusters: [{name: a, weight: 9}, {name: c, weight: 1}]}}
)";

template <class M>
M unpack(const MeshSnapshot& s, MeshType t, const std::string& name) {
  const MeshResource* r = s.type(t).find(name);
  EXPECT_NE(r, nullptr) << meshTypeName(t) << " " << name;
  M m;
  if (r != nullptr) {
    EXPECT_TRUE(r->any.UnpackTo(&m));
  }
  return m;
}

GroupSnapshotConstSharedPtr group(const std::string& yaml, uint64_t version,
                                  const GroupSnapshot* previous = nullptr) {
  return GroupSnapshot::create("g", version, TestUtil::resources(yaml), previous);
}

TEST(MeshSnapshotTest, TranslatesTheGroupConfig) {
  auto s = MeshSnapshot::create(group(kConfig, 1), nullptr);
  EXPECT_EQ(s->targets(), std::vector<std::string>{"greeter"});

  auto listener = unpack<envoy::config::listener::v3::Listener>(*s, MeshType::Listener, "greeter");
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  ASSERT_TRUE(listener.api_listener().api_listener().UnpackTo(&hcm));
  EXPECT_EQ(hcm.rds().route_config_name(), "mesh");
  EXPECT_TRUE(hcm.rds().config_source().has_ads());
  ASSERT_EQ(hcm.http_filters_size(), 1);
  EXPECT_EQ(hcm.http_filters(0).name(), "envoy.filters.http.router");

  auto rc = unpack<envoy::config::route::v3::RouteConfiguration>(*s, MeshType::RouteConfiguration,
                                                                 "mesh");
  ASSERT_EQ(rc.virtual_hosts_size(), 1);
  const auto& vh = rc.virtual_hosts(0);
  EXPECT_EQ(std::vector<std::string>(vh.domains().begin(), vh.domains().end()),
            (std::vector<std::string>{"greeter", "*.svc", "*"}));
  ASSERT_EQ(vh.routes_size(), 2);  // the query-parameter route is left out
  EXPECT_EQ(vh.routes(0).match().headers(0).name(), "x-canary");
  EXPECT_EQ(vh.routes(0).match().headers(0).exact_match(), "yes");
  EXPECT_EQ(vh.routes(0).route().hash_policy(0).header().header_name(), "x-key");
  const auto& wc = vh.routes(1).route().weighted_clusters();
  EXPECT_EQ(wc.total_weight().value(), 10u);
  EXPECT_EQ(vh.routes(1).route().max_stream_duration().grpc_timeout_header_max().seconds(), 15);

  auto ca = unpack<envoy::config::cluster::v3::Cluster>(*s, MeshType::Cluster, "a");
  EXPECT_EQ(ca.type(), envoy::config::cluster::v3::Cluster::EDS);
  EXPECT_EQ(ca.circuit_breakers().thresholds(0).max_requests().value(), 7u);
  auto cb = unpack<envoy::config::cluster::v3::Cluster>(*s, MeshType::Cluster, "b");
  EXPECT_EQ(cb.lb_policy(), envoy::config::cluster::v3::Cluster::RING_HASH);
  auto cc = unpack<envoy::config::cluster::v3::Cluster>(*s, MeshType::Cluster, "c");
  EXPECT_EQ(cc.lb_policy(), envoy::config::cluster::v3::Cluster::ROUND_ROBIN);

  // Unequal weights: one locality per endpoint, weighted like it; localhost -> 127.0.0.1.
  auto ea = unpack<envoy::config::endpoint::v3::ClusterLoadAssignment>(
      *s, MeshType::ClusterLoadAssignment, "a");
  ASSERT_EQ(ea.endpoints_size(), 2);
  EXPECT_EQ(ea.endpoints(0).load_balancing_weight().value(), 3u);
  EXPECT_EQ(ea.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().address(),
            "127.0.0.1");
  // Equal weights: one locality, which still carries the locality field (gRPC requires it).
  auto eb = unpack<envoy::config::endpoint::v3::ClusterLoadAssignment>(
      *s, MeshType::ClusterLoadAssignment, "b");
  ASSERT_EQ(eb.endpoints_size(), 1);
  EXPECT_TRUE(eb.endpoints(0).has_locality());
  EXPECT_EQ(eb.endpoints(0).lb_endpoints_size(), 2);

  std::string notes;
  for (const auto& n : s->notes()) {
    notes += n + "\n";
  }
  EXPECT_NE(notes.find("query_parameters"), std::string::npos) << notes;
  EXPECT_NE(notes.find("LEAST_REQUEST served as ROUND_ROBIN"), std::string::npos) << notes;
}

TEST(MeshSnapshotTest, VersionsMoveOnlyWithContent) {
  auto g1 = group(kConfig, 1);
  auto s1 = MeshSnapshot::create(g1, nullptr);
  // A change proxyless clients do not see (a listener for data planes): no new versions.
  std::string more = std::string(kConfig) +
                     "listeners: [{name: edge, address: {host: 127.0.0.1, port: 0}, "
                     "route_table: mesh}]\n";
  auto g2 = group(more, 2, g1.get());
  auto s2 = MeshSnapshot::create(g2, s1.get());
  for (MeshType t : allMeshTypes()) {
    EXPECT_EQ(s2->type(t).version, "1") << meshTypeName(t);
  }
  // A cluster change moves Cluster only... and its endpoints when they change.
  std::string changed = more;
  changed.replace(changed.find("max_requests: 7"), 15, "max_requests: 8");
  auto s3 = MeshSnapshot::create(group(changed, 3, g2.get()), s2.get());
  EXPECT_EQ(s3->type(MeshType::Cluster).version, "3");
  EXPECT_EQ(s3->type(MeshType::ClusterLoadAssignment).version, "1");
  EXPECT_EQ(s3->type(MeshType::Listener).version, "1");
}

TEST(MeshSnapshotTest, CacheTranslatesOncePerSnapshot) {
  MeshCache cache;
  auto g1 = group(kConfig, 1);
  auto a = cache.get(g1);
  EXPECT_EQ(cache.get(g1), a);
  EXPECT_EQ(cache.get(nullptr), nullptr);
}

envoy::service::discovery::v3::DiscoveryRequest request(MeshType t, std::vector<std::string> names,
                                                        const std::string& nonce = "",
                                                        const std::string& version = "") {
  envoy::service::discovery::v3::DiscoveryRequest r;
  r.set_type_url(meshTypeUrl(t));
  for (auto& n : names) {
    r.add_resource_names(n);
  }
  r.set_response_nonce(nonce);
  r.set_version_info(version);
  return r;
}

TEST(MeshSotwProtocolTest, SubscriptionsAcksNacksAndPushes) {
  auto g1 = group(kConfig, 1);
  auto s1 = MeshSnapshot::create(g1, nullptr);
  MeshSotwProtocol p;
  const absl::Time now = absl::UnixEpoch();
  auto out = p.onRequest(request(MeshType::Cluster, {"a"}), s1.get(), now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].resources_size(), 1);
  EXPECT_EQ(out[0].version_info(), "1");
  // A stale nonce changes nothing, not even the names.
  EXPECT_TRUE(p.onRequest(request(MeshType::Cluster, {"a", "b"}, "999"), s1.get(), now).empty());
  // ACK with more names: answered with both.
  out = p.onRequest(request(MeshType::Cluster, {"a", "b"}, out[0].nonce(), "1"), s1.get(), now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].resources_size(), 2);
  EXPECT_EQ(p.progress()[meshIndex(MeshType::Cluster)].acked_version, "1");
  // NACK: recorded, nothing resent.
  auto nack = request(MeshType::Cluster, {"a", "b"}, out[0].nonce(), "1");
  nack.mutable_error_detail()->set_message("bad cluster");
  EXPECT_TRUE(p.onRequest(nack, s1.get(), now).empty());
  EXPECT_EQ(p.progress()[meshIndex(MeshType::Cluster)].nack_reason, "bad cluster");
  // A new version of the type is pushed; an unknown type is ignored.
  std::string changed = kConfig;
  changed.replace(changed.find("max_requests: 7"), 15, "max_requests: 9");
  auto s2 = MeshSnapshot::create(group(changed, 2, g1.get()), s1.get());
  out = p.onSnapshot(s2.get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].version_info(), "2");
  envoy::service::discovery::v3::DiscoveryRequest unknown;
  unknown.set_type_url("type.googleapis.com/nope");
  EXPECT_TRUE(p.onRequest(unknown, s2.get(), now).empty());
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
