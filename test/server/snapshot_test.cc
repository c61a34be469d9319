#include "source/server/config/snapshot.h"

#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/http/filter.h"
#include "source/common/http/filter_config.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Server {
namespace {

using sluice::config::v1::Bootstrap;
using testing::HasSubstr;

// A non-terminal filter, registered for these tests only: its config message is a Struct whose
// key "bad" its validation refuses.
class NoopFilterType : public Http::FilterType {
 public:
  std::string name() const override { return "test.noop"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<google::protobuf::Struct>();
  }
  void validateConfig(const google::protobuf::Message& config, const std::string& path,
                      const Http::FilterValidationContext&,
                      Config::ErrorList& errors) const override {
    if (static_cast<const google::protobuf::Struct&>(config).fields().contains("bad")) {
      errors.add(path + ".bad", "not allowed");
    }
  }
};
REGISTER_HTTP_FILTER_TYPE(NoopFilterType);

class NoopFilterFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return "test.noop"; }
  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message&,
                                                            const std::string&,
                                                            Http::FactoryContext&) override {
    return Http::FilterFactoryCb([](Http::FilterChainFactoryCallbacks&) {});
  }
};
REGISTER_HTTP_FILTER(NoopFilterFactory);

constexpr char kValid[] = R"(
node: {id: n1, cluster: c1}
admin: {address: 127.0.0.1, port: 0}
static_resources:
  clusters:
  - name: users
    connect_timeout: 1s
    endpoints: [{address: 127.0.0.1, port: 9001}, {address: 127.0.0.1, port: 9002, weight: 3}]
  - name: orders
    lb_policy: LEAST_REQUEST
    endpoints: [{address: "::1", port: 9003}]
  route_tables:
  - name: main
    virtual_hosts:
    - domains: ["*"]
      routes:
      - {match: {prefix: /users}, route: {cluster: users}}
      - match: {prefix: /orders}
        route:
          weighted_clusters: {clusters: [{name: orders, weight: 1}, {name: users, weight: 1}]}
  listeners:
  - name: public
    address: {host: 127.0.0.1, port: 0}
    route_table: main
    http_filters: [{name: test.noop}, {name: router}]
    limits:
      max_request_headers_kb: 16
      max_headers_count: 50
      max_request_body_bytes: 1000000
      request_headers_timeout: 5s
      idle_timeout: 2m
      request_timeout: 30s
      buffer_limit_bytes: 65536
    scheme: https
  - name: internal
    address: {host: "::1", port: 8081}
    route_table: main
)";

Bootstrap load(const std::string& yaml) {
  Bootstrap b;
  absl::Status s = Config::loadFromYaml(yaml, b);
  EXPECT_TRUE(s.ok()) << s;
  return b;
}

absl::StatusOr<SnapshotConstSharedPtr> build(const std::string& yaml,
                                             Stats::Store* stats = nullptr) {
  return buildSnapshot(load(yaml), stats, nullptr);
}

// The error message of building `yaml` (every line one error).
std::string errorOf(const std::string& yaml) {
  auto s = build(yaml);
  EXPECT_FALSE(s.ok()) << yaml;
  return s.ok() ? "" : std::string(s.status().message());
}

TEST(SnapshotTest, RebuildReusesUnchangedClustersOnly) {
  // A reload keeps the ClusterInfo of a cluster whose config is unchanged (workers keep its
  // connection pools) and builds changed ones anew.
  Stats::Store store(1);
  auto first = build(kValid, &store);
  ASSERT_TRUE(first.ok()) << first.status();
  std::string changed = kValid;
  const std::string from = "endpoints: [{address: \"::1\", port: 9003}]";
  ASSERT_NE(std::string::npos, changed.find(from));
  changed.replace(changed.find(from), from.size(), "endpoints: [{address: \"::1\", port: 9004}]");
  auto second = buildSnapshot(load(changed), &store, nullptr, first->get());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*first)->clusters.at("users").get(), (*second)->clusters.at("users").get());
  EXPECT_NE((*first)->clusters.at("orders").get(), (*second)->clusters.at("orders").get());
  EXPECT_EQ(9004, (*second)->clusters.at("orders")->endpoints()[0].address.port());
}

// A DNS cluster is built from what its names resolved to: a new object when the addresses
// change, the previous one when neither they nor its config did.
TEST(SnapshotTest, DnsClustersAreRebuiltWhenTheirAddressesChange) {
  constexpr char kDns[] = R"(
static_resources:
  clusters:
  - name: api
    type: STRICT_DNS
    endpoints: [{address: api.internal, port: 8080, weight: 2}]
  - name: fixed
    endpoints: [{address: 127.0.0.1, port: 9001}]
)";
  Stats::Store store(1);
  BuildOptions o;
  auto none = buildSnapshot(load(kDns), &store, o);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE((*none)->clusters.at("api")->endpoints().empty());

  Upstream::ResolvedClusters resolved{{"api", {{"api.internal", {"10.0.0.1", "10.0.0.2"}}}}};
  o.resolved_dns = &resolved;
  o.previous = none->get();
  auto first = buildSnapshot(load(kDns), &store, o);
  ASSERT_TRUE(first.ok()) << first.status();
  const auto& eps = (*first)->clusters.at("api")->endpoints();
  ASSERT_EQ(2u, eps.size());
  EXPECT_EQ("10.0.0.1:8080", eps[0].name);
  EXPECT_EQ(2u, eps[1].weight);
  EXPECT_EQ((*none)->clusters.at("fixed").get(), (*first)->clusters.at("fixed").get());

  o.previous = first->get();
  auto same = buildSnapshot(load(kDns), &store, o);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ((*first)->clusters.at("api").get(), (*same)->clusters.at("api").get());

  resolved["api"]["api.internal"] = {"10.0.0.3"};
  auto moved = buildSnapshot(load(kDns), &store, o);
  ASSERT_TRUE(moved.ok());
  EXPECT_NE((*first)->clusters.at("api").get(), (*moved)->clusters.at("api").get());
  EXPECT_EQ("10.0.0.3:8080", (*moved)->clusters.at("api")->endpoints()[0].name);
}

TEST(SnapshotTest, HostNameInAStaticClusterSuggestsStrictDns) {
  sluice::config::v1::StaticResources sr;
  ASSERT_TRUE(Config::loadFromYaml(
                  "clusters: [{name: c, endpoints: [{address: api.internal, port: 80}]}]", sr)
                  .ok());
  // What sluicectl validate and sluice-cp run.
  absl::Status s = validateResources(sr);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("clusters[0].endpoints[0].address: \"api.internal\" is a host name"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("type: STRICT_DNS"));
  sr.mutable_clusters(0)->set_type(sluice::config::v1::Cluster::STRICT_DNS);
  EXPECT_TRUE(validateResources(sr).ok());
}

TEST(SnapshotTest, DnsResolversMustBeAddresses) {
  const std::string e = errorOf(
      "dns_resolvers: [{address: dns.internal}, {address: 127.0.0.1, port: 70000}, {address: "
      "\"::1\", port: 5353}]\n");
  EXPECT_THAT(e, HasSubstr("dns_resolvers[0].address: \"dns.internal\" is not an IP address"));
  EXPECT_THAT(e, HasSubstr("dns_resolvers[1].port: must be <= 65535"));
  EXPECT_THAT(e, testing::Not(HasSubstr("dns_resolvers[2]")));
}

TEST(SnapshotTest, ValidBootstrap) {
  Stats::Store store(1);
  auto snap = build(kValid, &store);
  ASSERT_TRUE(snap.ok()) << snap.status();
  const Snapshot& s = **snap;
  EXPECT_EQ("static", s.version);
  EXPECT_EQ("n1", s.bootstrap.node().id());
  ASSERT_EQ(2u, s.clusters.size());
  EXPECT_EQ(2u, s.clusters.at("users")->endpoints().size());
  EXPECT_EQ(1000, s.clusters.at("users")->connectTimeout().count());
  ASSERT_EQ(1u, s.route_tables.size());
  ASSERT_EQ(2u, s.listeners.size());

  const ListenerInfo& pub = s.listeners[0];
  EXPECT_EQ("public", pub.name);
  EXPECT_EQ("127.0.0.1:0", pub.address.toString());
  EXPECT_EQ(1024u, pub.backlog);
  ASSERT_NE(nullptr, pub.http);
  EXPECT_EQ(s.route_tables.at("main"), pub.http->route_table);
  EXPECT_EQ(2u, pub.http->filter_factories.size());
  EXPECT_EQ(16u * 1024, pub.http->codec.max_request_headers_bytes);
  EXPECT_EQ(50u, pub.http->codec.max_headers_count);
  EXPECT_EQ(1000000u, pub.http->codec.max_request_body_bytes);
  EXPECT_EQ(5000, pub.http->request_headers_timeout.count());
  EXPECT_EQ(120000, pub.http->idle_timeout.count());
  EXPECT_EQ(30000, pub.http->request_timeout.count());
  EXPECT_EQ(65536u, pub.http->buffer_limit);
  EXPECT_EQ("https", pub.http->scheme);
  EXPECT_EQ(nullptr, pub.http->access_log);

  // Defaults.
  const ListenerInfo& internal = s.listeners[1];
  EXPECT_EQ("[::1]:8081", internal.address.toString());
  EXPECT_EQ(1u, internal.http->filter_factories.size());  // the router
  EXPECT_EQ(60u * 1024, internal.http->codec.max_request_headers_bytes);
  EXPECT_EQ(100u, internal.http->codec.max_headers_count);
  EXPECT_EQ(0u, internal.http->codec.max_request_body_bytes);
  EXPECT_EQ(30000, internal.http->request_headers_timeout.count());
  EXPECT_EQ(60000, internal.http->idle_timeout.count());
  EXPECT_EQ(0, internal.http->request_timeout.count());
  EXPECT_EQ(32u * 1024, internal.http->buffer_limit);
  EXPECT_EQ("http", internal.http->scheme);

  // Stats were registered for the clusters and routes.
  EXPECT_EQ(0, store.valueOf("cluster.users.upstream_rq_total"));
}

TEST(SnapshotTest, DefaultBootstrapYamlIsValid) {
  Bootstrap b;
  absl::Status s = Config::loadFromYaml(defaultBootstrapYaml(), b);
  ASSERT_TRUE(s.ok()) << s;
  auto snap = buildSnapshot(b, nullptr, nullptr);
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(1u, (*snap)->listeners.size());
  EXPECT_EQ("127.0.0.1:8080", (*snap)->listeners[0].address.toString());
  EXPECT_EQ(9901u, (*snap)->bootstrap.admin().port());
  // It answers /healthz itself.
  Http::RequestHeaderMap h;
  h.method = "GET";
  h.path = "/healthz";
  h.add("host", "localhost:8080");
  const Router::RouteEntry* r = (*snap)->listeners[0].http->route_table->route(h);
  ASSERT_NE(nullptr, r);
  EXPECT_EQ(Router::ActionType::DirectResponse, r->type());
  EXPECT_EQ(200u, r->directStatus());
  EXPECT_EQ("ok\n", r->directBody());
  h.path = "/anything";
  ASSERT_NE(nullptr, (*snap)->listeners[0].http->route_table->route(h));
  EXPECT_THAT((*snap)->listeners[0].http->route_table->route(h)->directBody(),
              HasSubstr("Sluice is running"));
}

TEST(SnapshotTest, EmptyBootstrapIsValid) {
  auto snap = build("");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE((*snap)->listeners.empty());
}

constexpr char kListenerBase[] = R"(
static_resources:
  clusters:
  - name: users
    endpoints: [{address: 127.0.0.1, port: 9001}]
  route_tables:
  - name: main
    virtual_hosts: [{domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: users}}]}]
  listeners:
  - name: l
    address: {host: 127.0.0.1, port: 8080}
    route_table: main
)";

// kListenerBase with `extra` appended to the listener (indented as its fields).
std::string listenerWith(const std::string& extra) {
  std::string out = kListenerBase;
  for (absl::string_view line : absl::StrSplit(extra, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "    ", line, "\n");
  }
  return out;
}

TEST(SnapshotTest, UnknownRouteTable) {
  std::string yaml = kListenerBase;
  yaml.replace(yaml.find("route_table: main"), 17, "route_table: nope");
  EXPECT_EQ("static_resources.listeners[0].route_table: unknown route table \"nope\"",
            errorOf(yaml));
}

TEST(SnapshotTest, MissingRouteTable) {
  std::string yaml = kListenerBase;
  yaml.replace(yaml.find("route_table: main"), 17, "scheme: http");
  EXPECT_EQ("static_resources.listeners[0].route_table: is required", errorOf(yaml));
}

TEST(SnapshotTest, UnknownFilter) {
  const std::string e = errorOf(listenerWith("http_filters: [{name: nope}, {name: router}]"));
  EXPECT_THAT(e, HasSubstr("static_resources.listeners[0].http_filters[0].name: unknown filter "
                           "\"nope\" (known: "));
  EXPECT_THAT(e, HasSubstr("router"));
  EXPECT_THAT(e, HasSubstr("test.noop"));
}

TEST(SnapshotTest, RouterMustBeLast) {
  EXPECT_EQ("static_resources.listeners[0].http_filters[0]: a terminal filter must be last",
            errorOf(listenerWith("http_filters: [{name: router}, {name: router}]")));
  EXPECT_EQ(
      "static_resources.listeners[0].http_filters[1]: the last filter must be terminal (router)",
      errorOf(listenerWith("http_filters: [{name: router}, {name: test.noop}]"))
          .substr(std::string("static_resources.listeners[0].http_filters[0]: a terminal filter "
                              "must be last\n")
                      .size()));
  EXPECT_EQ(
      "static_resources.listeners[0].http_filters[0]: the last filter must be terminal (router)",
      errorOf(listenerWith("http_filters: [{name: test.noop}]")));
}

TEST(SnapshotTest, FilterConfigErrors) {
  EXPECT_EQ(
      "static_resources.listeners[0].http_filters[1].config: the router filter takes no settings",
      errorOf(listenerWith("http_filters: [{name: test.noop}, {name: router, config: {x: "
                           "1}}]")));
  EXPECT_EQ("static_resources.listeners[0].http_filters[0].config.bad: not allowed",
            errorOf(listenerWith("http_filters: [{name: test.noop, config: {bad: 1}}, {name: "
                                 "router}]")));
}

TEST(SnapshotTest, DuplicateNames) {
  const std::string e = errorOf(R"(
static_resources:
  clusters:
  - {name: a, endpoints: [{address: 127.0.0.1, port: 1}]}
  - {name: a, endpoints: [{address: 127.0.0.1, port: 2}]}
  route_tables:
  - {name: rt, virtual_hosts: [{domains: [x], routes: []}]}
  - {name: rt, virtual_hosts: [{domains: [y], routes: []}]}
  listeners:
  - {name: l, address: {port: 1}, route_table: rt}
  - {name: l, address: {port: 2}, route_table: rt}
)");
  EXPECT_THAT(e, HasSubstr("static_resources.clusters[1].name: duplicate cluster \"a\""));
  EXPECT_THAT(e, HasSubstr("static_resources.route_tables[1].name: duplicate route table \"rt\""));
  EXPECT_THAT(e, HasSubstr("static_resources.listeners[1].name: duplicate listener \"l\""));
}

TEST(SnapshotTest, BadAddress) {
  std::string yaml = kListenerBase;
  yaml.replace(yaml.find("host: 127.0.0.1, port: 8080"), 27, "host: not-an-ip, port: 8080");
  EXPECT_EQ("static_resources.listeners[0].address: invalid address \"not-an-ip:8080\"",
            errorOf(yaml));
  yaml = kListenerBase;
  yaml.replace(yaml.find("port: 8080"), 10, "port: 70000");
  EXPECT_EQ("static_resources.listeners[0].address: invalid address \"127.0.0.1:70000\"",
            errorOf(yaml));
}

TEST(SnapshotTest, DefaultListenerHostIsAnyAddress) {
  std::string yaml = kListenerBase;
  yaml.replace(yaml.find("host: 127.0.0.1, port: 8080"), 27, "port: 8080");
  auto snap = build(yaml);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ("0.0.0.0:8080", (*snap)->listeners[0].address.toString());
}

TEST(SnapshotTest, UnknownClusterInARoute) {
  std::string yaml = kListenerBase;
  yaml.replace(yaml.find("cluster: users}"), 15, "cluster: nope}");
  const std::string e = errorOf(yaml);
  // The route's own error first; the listener then can't find the table that failed.
  EXPECT_EQ(
      "static_resources.route_tables[0].virtual_hosts[0].routes[0].route.cluster: unknown "
      "cluster \"nope\"",
      e.substr(0, e.find('\n')));
}

TEST(SnapshotTest, ClusterErrorsNameTheirField) {
  EXPECT_THAT(errorOf(R"(
static_resources:
  clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 0}]}]
)"),
              HasSubstr("static_resources.clusters[0].endpoints[0].port: must be 1-65535"));
}

TEST(SnapshotTest, LimitErrors) {
  EXPECT_EQ("static_resources.listeners[0].limits.max_request_headers_kb: must be <= 8192",
            errorOf(listenerWith("limits: {max_request_headers_kb: 9000}")));
  EXPECT_EQ("static_resources.listeners[0].limits.buffer_limit_bytes: must be >= 16384",
            errorOf(listenerWith("limits: {buffer_limit_bytes: 100}")));
  EXPECT_EQ(
      "static_resources.listeners[0].limits.request_headers_timeout: must be > 0 (slow clients "
      "must be cut off)",
      errorOf(listenerWith("limits: {request_headers_timeout: 0s}")));
  EXPECT_EQ("static_resources.listeners[0].limits.idle_timeout: must not be negative",
            errorOf(listenerWith("limits: {idle_timeout: -1s}")));
  EXPECT_EQ("static_resources.listeners[0].scheme: must be http or https",
            errorOf(listenerWith("scheme: ftp")));
  EXPECT_EQ("static_resources.listeners[0].access_log.path: is required",
            errorOf(listenerWith("access_log: {}")));
}

TEST(SnapshotTest, ListenerNameRequired) {
  std::string yaml = kListenerBase;
  yaml.replace(yaml.find("- name: l\n"), 10, "- backlog: 5\n");
  EXPECT_EQ("static_resources.listeners[0].name: is required", errorOf(yaml));
}

TEST(SnapshotTest, TopLevelErrors) {
  EXPECT_EQ("admin.port: must be <= 65535", errorOf("admin: {port: 70000}\n"));
  EXPECT_EQ("concurrency: must be <= 256", errorOf("concurrency: 1000\n"));
  EXPECT_EQ("drain_timeout: must not be negative", errorOf("drain_timeout: -5s\n"));
}

TEST(SnapshotTest, EveryErrorIsReported) {
  const std::string e = errorOf(R"(
concurrency: 1000
static_resources:
  clusters: [{name: c, endpoints: []}]
  route_tables:
  - name: rt
    virtual_hosts: [{domains: ["*"], routes: [{match: {}, route: {cluster: c}}]}]
  listeners:
  - {name: l, address: {host: bad}, route_table: rt, http_filters: [{name: nope}]}
)");
  const std::vector<std::string> lines = absl::StrSplit(e, '\n');
  EXPECT_GE(lines.size(), 5u) << e;
  EXPECT_THAT(e, HasSubstr("concurrency: must be <= 256"));
  EXPECT_THAT(e, HasSubstr("static_resources.clusters[0].endpoints: at least one endpoint"));
  EXPECT_THAT(e, HasSubstr("static_resources.route_tables[0].virtual_hosts[0].routes[0].match:"));
  EXPECT_THAT(e, HasSubstr("static_resources.listeners[0].address: invalid address"));
  EXPECT_THAT(e, HasSubstr("static_resources.listeners[0].http_filters[0].name: unknown filter"));
}

TEST(SnapshotTest, AccessLogSinksAreShared) {
  char dir[] = "/tmp/sluice_snapshot_test_XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(dir));
  const std::string path = std::string(dir) + "/access.log";
  AccessLogRegistry registry;
  const std::string yaml = listenerWith("access_log: {path: " + path + "}") +
                           "  - {name: l2, address: {port: 1}, route_table: main, access_log: "
                           "{path: " +
                           path + "}}\n";
  auto snap = buildSnapshot(load(yaml), nullptr, &registry);
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_NE(nullptr, (*snap)->listeners[0].http->access_log);
  EXPECT_EQ((*snap)->listeners[0].http->access_log, (*snap)->listeners[1].http->access_log);
  // A second config version reuses the open file.
  auto again = buildSnapshot(load(yaml), nullptr, &registry);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*snap)->listeners[0].http->access_log, (*again)->listeners[0].http->access_log);
  registry.flushAll();
  snap = absl::StatusOr<SnapshotConstSharedPtr>(nullptr);
  again = absl::StatusOr<SnapshotConstSharedPtr>(nullptr);
  registry = AccessLogRegistry();
  unlink(path.c_str());
  rmdir(dir);
}

TEST(SnapshotTest, AccessLogOpenFailureNamesTheField) {
  AccessLogRegistry registry;
  auto snap = buildSnapshot(load(listenerWith("access_log: {path: /nonexistent/dir/a.log}")),
                            nullptr, &registry);
  ASSERT_FALSE(snap.ok());
  EXPECT_THAT(std::string(snap.status().message()),
              HasSubstr("static_resources.listeners[0].access_log.path: "));
}

}  // namespace
}  // namespace Server
}  // namespace sluice
