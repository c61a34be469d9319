#include "source/control_plane/control_service.h"

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/redact.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

namespace control = sluice::service::control::v1;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;
using testing::Not;
using TestUtil::typeNamed;

constexpr char kConfig[] = R"(
clusters:
- {name: users, endpoints: [{address: 10.0.0.1, port: 80}]}
- {name: billing, endpoints: [{address: 10.0.0.2, port: 80}]}
listeners:
- {name: public, address: {host: 127.0.0.1, port: 8080}, route_table: main}
)";

absl::Status validator(const sluice::config::v1::StaticResources& r) {
  for (const auto& c : r.clusters()) {
    if (c.name() == "bad") {
      return absl::InvalidArgumentError("clusters[0].endpoints: bad\nclusters[0].lb_policy: bad");
    }
  }
  return absl::OkStatus();
}

class ControlServiceTest : public testing::Test {
 protected:
  control::ApplyResponse apply(const std::string& group, const std::string& yaml) {
    control::ApplyRequest req;
    req.set_group(group);
    *req.mutable_resources() = TestUtil::resources(yaml);
    req.set_source("test");
    control::ApplyResponse resp;
    EXPECT_TRUE(service_.apply(req, "ipv4:127.0.0.1:1", resp).ok());
    return resp;
  }
  grpc::Status get(const std::string& group, const std::string& type, const std::string& name,
                   control::GetResponse& out) {
    control::GetRequest req;
    req.set_group(group);
    req.set_type(type);
    req.set_name(name);
    return service_.get(req, out);
  }

  SnapshotCache cache_{nullptr, validator};
  NodeRegistry registry_;
  ControlServiceImpl service_{cache_, registry_};
};

TEST_F(ControlServiceTest, ApplyAndValidate) {
  auto r = apply("", kConfig);
  EXPECT_TRUE(r.accepted());
  EXPECT_TRUE(r.changed());
  EXPECT_EQ(r.version(), "1");
  EXPECT_EQ(cache_.groups().at("default").source, "test");
  r = apply("default", kConfig);
  EXPECT_TRUE(r.accepted());
  EXPECT_FALSE(r.changed());
  EXPECT_EQ(r.version(), "1");
  r = apply("default", "clusters: [{name: bad}]");
  EXPECT_FALSE(r.accepted());
  EXPECT_EQ(r.version(), "1");
  EXPECT_THAT(r.errors(), ElementsAre("clusters[0].endpoints: bad", "clusters[0].lb_policy: bad"));

  control::ApplyRequest no_source;
  control::ApplyResponse resp;
  ASSERT_TRUE(service_.apply(no_source, "ipv4:10.1.1.1:5", resp).ok());
  EXPECT_EQ(cache_.groups().at("default").source, "apply from ipv4:10.1.1.1:5");

  control::ValidateRequest v;
  *v.mutable_resources() = TestUtil::resources("clusters: [{name: bad}]");
  control::ValidateResponse vr;
  ASSERT_TRUE(service_.validate(v, vr).ok());
  EXPECT_FALSE(vr.valid());
  EXPECT_EQ(vr.errors_size(), 2);
}

TEST_F(ControlServiceTest, Diff) {
  apply("default", kConfig);
  control::DiffRequest req;
  req.set_group("edge");  // No config of its own: compared with the default group's.
  auto r = TestUtil::resources(kConfig);
  r.mutable_clusters(0)->mutable_endpoints(0)->set_port(81);
  r.mutable_clusters()->RemoveLast();
  r.add_auth_policies()->set_name("jwt");
  *req.mutable_resources() = r;
  control::DiffResponse resp;
  ASSERT_TRUE(service_.diff(req, resp).ok());
  EXPECT_THAT(resp.errors(), IsEmpty());
  ASSERT_EQ(resp.changes_size(), 3);
  EXPECT_EQ(resp.changes(0).kind(), control::ResourceChange::REMOVED);
  EXPECT_EQ(resp.changes(0).type(), "Cluster");
  EXPECT_EQ(resp.changes(0).name(), "billing");
  EXPECT_THAT(resp.changes(0).before_json(), HasSubstr("10.0.0.2"));
  EXPECT_TRUE(resp.changes(0).after_json().empty());
  EXPECT_EQ(resp.changes(1).kind(), control::ResourceChange::CHANGED);
  EXPECT_EQ(resp.changes(1).name(), "users");
  EXPECT_THAT(resp.changes(1).before_json(), HasSubstr("80"));
  EXPECT_THAT(resp.changes(1).after_json(), HasSubstr("81"));
  EXPECT_EQ(resp.changes(2).kind(), control::ResourceChange::ADDED);
  EXPECT_EQ(resp.changes(2).type(), "AuthPolicy");

  // Invalid proposals still get a diff, plus the errors.
  control::DiffRequest bad;
  *bad.mutable_resources() = TestUtil::resources("clusters: [{name: bad}]");
  control::DiffResponse bad_resp;
  ASSERT_TRUE(service_.diff(bad, bad_resp).ok());
  EXPECT_EQ(bad_resp.errors_size(), 2);
  EXPECT_EQ(bad_resp.changes_size(), 4);
}

TEST_F(ControlServiceTest, Get) {
  control::GetResponse out;
  grpc::Status s = get("", "clusters", "", out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("no config"));

  apply("default", kConfig);
  apply("default", std::string(kConfig) + "auth_policies: [{name: jwt}]\n");  // version 2
  out.Clear();
  ASSERT_TRUE(get("", "clusters", "", out).ok());
  EXPECT_EQ(out.version(), "1");  // The type's version: clusters last changed at 1.
  ASSERT_EQ(out.resources_json_size(), 2);
  EXPECT_THAT(out.resources_json(0), HasSubstr("\"billing\""));
  EXPECT_THAT(out.resources_json(1), HasSubstr("\"users\""));

  out.Clear();
  ASSERT_TRUE(get("edge", "Cluster", "users", out).ok());  // Served the default group's.
  ASSERT_EQ(out.resources_json_size(), 1);
  EXPECT_THAT(out.resources_json(0), HasSubstr("10.0.0.1"));

  out.Clear();
  ASSERT_TRUE(get("", "AUTH_POLICIES", "", out).ok());
  EXPECT_EQ(out.version(), "2");
  EXPECT_EQ(out.resources_json_size(), 1);

  s = get("", "listeners", "nope", out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("Listener \"nope\" not found in group \"default\""));
  s = get("", "certificates", "", out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("unknown type \"certificates\""));
  EXPECT_THAT(s.error_message(), HasSubstr("RateLimitPolicy"));
  s = get("", "", "", out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Private keys never leave sluice-cp in clear: get and diff print a fingerprint, which tells a
// changed key from the same one; the placeholder applied back is refused.
TEST_F(ControlServiceTest, SecretsAreRedactedInGetAndDiff) {
  constexpr char kSecrets[] = R"(
secrets:
- {name: edge, tls_certificate: {certificate_chain: CERT, private_key: "PRIVATE KEY ONE"}}
- {name: ca, validation_context: {trusted_ca: CA}}
)";
  ASSERT_TRUE(apply("", kSecrets).accepted());
  control::GetResponse out;
  ASSERT_TRUE(get("", "secrets", "", out).ok());
  ASSERT_EQ(out.resources_json_size(), 2);
  std::string all = out.resources_json(0) + out.resources_json(1);
  EXPECT_THAT(all, Not(HasSubstr("PRIVATE KEY ONE")));
  EXPECT_THAT(all, HasSubstr(Config::redactedValue("PRIVATE KEY ONE")));
  EXPECT_THAT(all, HasSubstr("CERT"));
  EXPECT_THAT(all, HasSubstr("\"trusted_ca\": \"CA\""));
  out.Clear();
  ASSERT_TRUE(get("", "Secret", "edge", out).ok());
  EXPECT_THAT(out.resources_json(0), Not(HasSubstr("PRIVATE KEY ONE")));

  control::DiffRequest d;
  *d.mutable_resources() = TestUtil::resources(absl::StrReplaceAll(kSecrets, {{"ONE", "TWO"}}));
  control::DiffResponse diff;
  ASSERT_TRUE(service_.diff(d, diff).ok());
  ASSERT_EQ(diff.changes_size(), 1);
  EXPECT_EQ(diff.changes(0).kind(), control::ResourceChange::CHANGED);
  EXPECT_EQ(diff.changes(0).name(), "edge");
  const std::string both = diff.changes(0).before_json() + diff.changes(0).after_json();
  EXPECT_THAT(both, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(diff.changes(0).before_json(), HasSubstr(Config::redactedValue("PRIVATE KEY ONE")));
  EXPECT_THAT(diff.changes(0).after_json(), HasSubstr(Config::redactedValue("PRIVATE KEY TWO")));

  // `sluicectl get secrets` output applied back as is.
  auto r = apply("", absl::StrReplaceAll(
                         kSecrets, {{"\"PRIVATE KEY ONE\"",
                                     "\"" + Config::redactedValue("PRIVATE KEY ONE") + "\""}}));
  EXPECT_FALSE(r.accepted());
  EXPECT_THAT(
      r.errors(),
      ElementsAre(HasSubstr("secrets[0].tls_certificate.private_key: is a redacted placeholder")));
}

TEST_F(ControlServiceTest, Status) {
  apply("default", kConfig);
  apply("edge", "clusters: [{name: e}]");
  const auto now = absl::FromUnixSeconds(1700000000);
  auto def = cache_.own("default");

  NodeRecord a;
  a.id = "n2";
  a.group = "edge";
  a.api = "sotw";
  a.stream_id = registry_.newStreamId();
  a.connected_since = now;
  registry_.connected(a);
  NodeRecord b = a;
  b.id = "n1";
  b.group = "other";  // Served the default group.
  b.api = "delta";
  b.stream_id = registry_.newStreamId();
  registry_.connected(b);
  Progress p(typeCount());
  for (ResourceType t : allTypes()) {
    p[typeIndex(t)].subscribed = true;
    p[typeIndex(t)].sent_version = def->type(t).version;
    p[typeIndex(t)].acked_version = def->type(t).version;
  }
  registry_.update(b.stream_id, "n1", p, now);
  const int cluster = typeIndex(typeNamed("Cluster"));
  p[cluster].nacked_version = "1";
  p[cluster].nack_reason = "no";
  p[cluster].nack_time = now;
  registry_.update(a.stream_id, "n2", p, now);

  control::StatusResponse resp;
  ASSERT_TRUE(service_.status(resp).ok());
  ASSERT_EQ(resp.groups_size(), 3);
  EXPECT_EQ(resp.groups(0).name(), "default");
  EXPECT_EQ(resp.groups(0).version(), "1");
  EXPECT_EQ(resp.groups(0).source(), "test");
  EXPECT_EQ(resp.groups(0).resources().at("Cluster"), 2u);
  EXPECT_EQ(resp.groups(0).resources().at("Listener"), 1u);
  EXPECT_EQ(resp.groups(1).name(), "edge");
  EXPECT_EQ(resp.groups(1).version(), "2");
  EXPECT_EQ(resp.groups(2).name(), "other");
  EXPECT_EQ(resp.groups(2).source(), "default group");
  EXPECT_EQ(resp.groups(2).version(), "1");

  ASSERT_EQ(resp.nodes_size(), 2);
  // By group, then id.
  EXPECT_EQ(resp.nodes(0).id(), "n2");
  EXPECT_EQ(resp.nodes(0).group(), "edge");
  EXPECT_FALSE(resp.nodes(0).in_sync());  // Its ACKs are of the default group's versions.
  ASSERT_EQ(resp.nodes(0).types_size(), typeCount());
  EXPECT_EQ(resp.nodes(0).types(cluster).type(), "Cluster");
  EXPECT_EQ(resp.nodes(0).types(cluster).nack_reason(), "no");
  EXPECT_EQ(resp.nodes(0).types(cluster).nack_time().seconds(), 1700000000);
  EXPECT_EQ(resp.nodes(1).id(), "n1");
  EXPECT_EQ(resp.nodes(1).api(), "delta");
  EXPECT_TRUE(resp.nodes(1).connected());
  EXPECT_TRUE(resp.nodes(1).in_sync());

  registry_.disconnected(b.stream_id, "n1", now + absl::Seconds(3));
  resp.Clear();
  ASSERT_TRUE(service_.status(resp).ok());
  EXPECT_FALSE(resp.nodes(1).connected());
  EXPECT_FALSE(resp.nodes(1).in_sync());
  EXPECT_EQ(resp.nodes(1).last_seen().seconds(), 1700000003);
}

TEST(NodeRegistryTest, NewestStreamWinsAndDisconnectedAreCapped) {
  NodeRegistry registry(/*max_disconnected=*/2);
  const auto now = absl::FromUnixSeconds(1700000000);
  NodeRecord r;
  r.id = "n";
  r.stream_id = registry.newStreamId();
  registry.connected(r);
  NodeRecord newer = r;
  newer.stream_id = registry.newStreamId();
  newer.peer = "newer";
  registry.connected(newer);
  Progress p(typeCount());
  p[0].subscribed = true;
  p[0].acked_version = "old";
  registry.update(r.stream_id, "n", p, now);  // Ignored: an older stream.
  registry.disconnected(r.stream_id, "n", now);
  auto nodes = registry.nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_TRUE(nodes[0].connected);
  EXPECT_EQ(nodes[0].peer, "newer");
  EXPECT_FALSE(nodes[0].types[0].subscribed);

  for (int i = 0; i < 4; ++i) {
    NodeRecord g;
    g.id = absl::StrCat("gone", i);
    g.stream_id = registry.newStreamId();
    registry.connected(g);
    registry.disconnected(g.stream_id, g.id, now + absl::Seconds(i));
  }
  nodes = registry.nodes();
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].id, "gone2");
  EXPECT_EQ(nodes[1].id, "gone3");
  EXPECT_EQ(nodes[2].id, "n");
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
