#include "source/extensions/filters/http/router/filter.h"

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/http/conn_manager.h"
#include "source/common/http/filter_config.h"
#include "source/common/router/config.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/cluster_manager.h"
#include "test/test_common/http_utility.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Extensions {
namespace Router {
namespace {

using testing::HasSubstr;
using testing::Not;
using Testing::parseResponses;
using Testing::RawPeer;
using Testing::Response;

struct TestConfigSource : public Http::ConfigSource {
  const Http::ConnectionManagerConfigConstSharedPtr& config() const override { return current; }
  Http::ConnectionManagerConfigConstSharedPtr current;
};

constexpr char kRoutes[] = R"(
name: test
virtual_hosts:
- domains: ["*"]
  routes:
  - match: {prefix: /rewrite/}
    route: {cluster: backend, prefix_rewrite: /v2/, host_rewrite: internal}
  - {match: {prefix: /slow}, route: {cluster: backend, timeout: 50ms}}
  - {match: {prefix: /down}, route: {cluster: nowhere}}
  - {match: {prefix: /}, route: {cluster: backend}}
)";

// Downstream clients -> ConnectionManagerImpl with the router -> a TCP upstream the test plays.
class RouterFilterTest : public testing::Test {
 protected:
  RouterFilterTest() {
    signal(SIGPIPE, SIG_IGN);
    absl::flat_hash_map<std::string, Upstream::ClusterInfoConstSharedPtr> clusters;
    clusters["backend"] = cluster("backend", upstream_listener_.port());
    // A port nothing listens on (closed right away).
    uint16_t dead_port;
    {
      Testing::TcpListener closed;
      dead_port = closed.port();
    }
    clusters["nowhere"] = cluster("nowhere", dead_port);
    cm_.update(clusters);

    sluice::config::v1::RouteTable rt;
    EXPECT_TRUE(Config::loadFromYaml(kRoutes, rt).ok());
    auto table = sluice::Router::RouteTableImpl::create(rt, "route_tables[0]", &store_);
    EXPECT_TRUE(table.ok()) << table.status();
    auto config = std::make_shared<Http::ConnectionManagerConfig>();
    config->route_table = *table;
    Http::FactoryContext fctx{&store_, "test"};
    auto router = Http::FilterRegistry::get("router")->createFilterFactory(
        *Http::FilterTypeRegistry::get("router")->createEmptyConfigProto(), "f", fctx);
    EXPECT_TRUE(router.ok());
    config->filter_factories.push_back(*router);
    source_->current = config;

    accept_event_ = dispatcher_->createFileEvent(
        upstream_listener_.fd(),
        [this](uint32_t) {
          int fd;
          while ((fd = upstream_listener_.accept()) >= 0) {
            upstreams_.push_back(std::make_unique<RawPeer>(*dispatcher_, fd));
          }
        },
        Event::FileReadyType::Read);
  }

  ~RouterFilterTest() override {
    for (auto& c : clients_) c->close();
    for (auto& u : upstreams_) u->close();
    EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ctx_.connectionCount() == 0; }));
    Testing::runPending(*dispatcher_);
    cm_.update({});
    Testing::runPending(*dispatcher_);
    accept_event_.reset();
  }

  Upstream::ClusterInfoConstSharedPtr cluster(const std::string& name, uint16_t port) {
    sluice::config::v1::Cluster c;
    EXPECT_TRUE(
        Config::loadFromYaml(absl::StrCat("name: ", name, "\nconnect_timeout: 1s\n",
                                          "endpoints: [{address: 127.0.0.1, port: ", port, "}]\n"),
                             c)
            .ok());
    auto info = Upstream::ClusterInfo::create(c, name, &store_);
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
  }

  RawPeer& connect() {
    auto [server_fd, client_fd] = Testing::socketPair();
    auto conn = std::make_unique<Network::Connection>(*dispatcher_, server_fd, false);
    Network::Address peer;
    EXPECT_TRUE(Network::Address::parse("10.1.2.3", 50000, peer));
    conn->setPeerAddress(peer);
    new Http::ConnectionManagerImpl(ctx_, source_, std::move(conn));  // owns itself
    clients_.push_back(std::make_unique<RawPeer>(*dispatcher_, client_fd));
    return *clients_.back();
  }

  bool run(const std::function<bool()>& done) { return Testing::runUntil(*dispatcher_, done); }

  // Waits for upstream connection `i` to have received `needle`.
  RawPeer& upstreamWith(size_t i, absl::string_view needle) {
    EXPECT_TRUE(run([&]() {
      return upstreams_.size() > i && absl::StrContains(upstreams_[i]->received(), needle);
    })) << (upstreams_.size() > i ? upstreams_[i]->received() : "no upstream connection");
    return *upstreams_.at(i);
  }

  std::vector<Response> waitForResponses(RawPeer& client, size_t n) {
    EXPECT_TRUE(run([&]() { return parseResponses(client.received()).size() >= n; }))
        << client.received();
    return parseResponses(client.received());
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{1};
  Http::HttpStats stats_ = Http::HttpStats::create(store_);
  Upstream::ClusterManager cm_{*dispatcher_, 1};
  Http::WorkerContext ctx_{*dispatcher_, cm_, stats_, 7};
  std::shared_ptr<TestConfigSource> source_ = std::make_shared<TestConfigSource>();
  Testing::TcpListener upstream_listener_;
  Event::FileEventPtr accept_event_;
  std::vector<std::unique_ptr<RawPeer>> upstreams_;
  std::vector<std::unique_ptr<RawPeer>> clients_;
};

TEST_F(RouterFilterTest, ProxiesRequestAndResponse) {
  RawPeer& c = connect();
  c.write(
      "GET /users?id=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: t\r\n"
      "Connection: keep-alive, x-drop\r\nX-Drop: 1\r\nTE: trailers\r\n\r\n");
  RawPeer& up = upstreamWith(0, "\r\n\r\n");
  const std::string& req = up.received();
  EXPECT_TRUE(absl::StartsWith(req, "GET /users?id=1 HTTP/1.1\r\n")) << req;
  EXPECT_THAT(req, HasSubstr("host: api.example.com\r\n"));
  EXPECT_THAT(req, HasSubstr("user-agent: t\r\n"));
  EXPECT_THAT(req, HasSubstr("x-forwarded-for: 10.1.2.3\r\n"));
  EXPECT_THAT(req, HasSubstr("x-forwarded-proto: http\r\n"));
  EXPECT_THAT(req, HasSubstr("x-request-id: "));
  EXPECT_THAT(req, Not(HasSubstr("x-drop")));
  EXPECT_THAT(req, Not(HasSubstr("te: ")));
  EXPECT_THAT(req, Not(HasSubstr("connection:")));

  up.write(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: yes\r\nKeep-Alive: timeout=5\r\n\r\nhello");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("hello", r[0].body);
  EXPECT_EQ("yes", r[0].get("x-up"));
  EXPECT_FALSE(r[0].has("keep-alive"));
  EXPECT_FALSE(r[0].get("x-request-id").empty());
  EXPECT_EQ(1, store_.valueOf("cluster.backend.upstream_rq_total"));
  EXPECT_EQ(1, store_.valueOf("cluster.backend.upstream_rq_2xx"));
}

TEST_F(RouterFilterTest, KeepAliveUpstreamConnectionIsReused) {
  for (int i = 0; i < 3; ++i) {
    RawPeer& c = connect();  // a new downstream connection each time
    c.write(absl::StrCat("GET /r", i, " HTTP/1.1\r\nHost: a\r\n\r\n"));
    RawPeer& up = upstreamWith(0, absl::StrCat("GET /r", i, " "));
    up.write(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr", i));
    std::vector<Response> r = waitForResponses(c, 1);
    ASSERT_EQ(1u, r.size());
    EXPECT_EQ(absl::StrCat("r", i), r[0].body);
  }
  EXPECT_EQ(1u, upstreams_.size());
  EXPECT_EQ(2, store_.valueOf("cluster.backend.upstream_cx_reused"));
}

TEST_F(RouterFilterTest, PrefixAndHostRewrite) {
  RawPeer& c = connect();
  c.write("GET /rewrite/items?x=1 HTTP/1.1\r\nHost: public.example.com\r\n\r\n");
  RawPeer& up = upstreamWith(0, "\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(up.received(), "GET /v2/items?x=1 HTTP/1.1\r\n")) << up.received();
  EXPECT_THAT(up.received(), HasSubstr("host: internal\r\n"));
  EXPECT_THAT(up.received(), HasSubstr("x-forwarded-host: public.example.com\r\n"));
}

TEST_F(RouterFilterTest, RequestBodiesAreForwarded) {
  RawPeer& c = connect();
  c.write("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
  RawPeer& up = upstreamWith(0, "hello world");
  EXPECT_THAT(up.received(), HasSubstr("content-length: 11\r\n"));
  up.write("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(1u, waitForResponses(c, 1).size());

  c.write(
      "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
      "0\r\nX-Sum: 1\r\n\r\n");
  upstreamWith(0, "x-sum: 1\r\n\r\n");
  EXPECT_THAT(up.received(), HasSubstr("transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"));
}

TEST_F(RouterFilterTest, ChunkedAndCloseDelimitedResponses) {
  RawPeer& c = connect();
  c.write("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  RawPeer& up = upstreamWith(0, "\r\n\r\n");
  up.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("abcd", r[0].body);
  EXPECT_EQ("chunked", r[0].get("transfer-encoding"));

  c.write("GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  upstreamWith(0, "GET /b ");
  up.write("HTTP/1.1 200 OK\r\n\r\nuntil close");
  up.shutdownWrite();
  r = waitForResponses(c, 2);
  ASSERT_EQ(2u, r.size());
  EXPECT_EQ("until close", r[1].body);
  EXPECT_FALSE(c.peerClosed());  // the downstream connection stays open (chunked re-framing)
}

TEST_F(RouterFilterTest, UpstreamClosesBeforeResponseIs502) {
  RawPeer& c = connect();
  c.write("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  upstreamWith(0, "\r\n\r\n").close();
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(502u, r[0].status);
  EXPECT_THAT(r[0].body, HasSubstr("upstream connection closed before response"));
}

TEST_F(RouterFilterTest, InvalidUpstreamResponseIs502) {
  RawPeer& c = connect();
  c.write("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  upstreamWith(0, "\r\n\r\n").write("NOT HTTP AT ALL\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(502u, r[0].status);
  EXPECT_THAT(r[0].body, HasSubstr("invalid response from upstream"));
}

TEST_F(RouterFilterTest, ConnectFailureIs503) {
  RawPeer& c = connect();
  c.write("GET /down HTTP/1.1\r\nHost: a\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(503u, r[0].status);
  EXPECT_THAT(r[0].body, HasSubstr("upstream connect error"));
  EXPECT_EQ(1, store_.valueOf("cluster.nowhere.upstream_cx_connect_fail"));
}

TEST_F(RouterFilterTest, RouteTimeoutIs504) {
  RawPeer& c = connect();
  c.write("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
  upstreamWith(0, "\r\n\r\n");  // never answers
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(504u, r[0].status);
  EXPECT_THAT(r[0].body, HasSubstr("upstream request timeout"));
  EXPECT_EQ(1, store_.valueOf("cluster.backend.upstream_rq_timeout"));
}

TEST_F(RouterFilterTest, UpstreamResetAfterResponseStartedResetsDownstream) {
  RawPeer& c = connect();
  c.write("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  RawPeer& up = upstreamWith(0, "\r\n\r\n");
  up.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
  ASSERT_TRUE(run([&]() { return absl::StrContains(c.received(), "partial"); }));
  up.close();
  ASSERT_TRUE(run([&]() { return c.peerClosed(); }));
  EXPECT_TRUE(parseResponses(c.received()).empty());  // truncated, never completed
}

// Regression (fixed): an upstream that sends a second, unsolicited response in the same segment as
// the first gets that response delivered to the NEXT request on the pooled connection, even from
// another client. ClientConnectionImpl::dispatch (codec_impl.cc) stops at HPE_PAUSED after a
// complete response and leaves the rest in the connection's read buffer; reusable() stays true, so
// ConnPool::release keeps the connection and the leftover bytes are parsed as the reply to
// whatever request is sent next.
TEST_F(RouterFilterTest, UnsolicitedUpstreamResponseNeverReachesAnotherClient) {
  RawPeer& alice = connect();
  alice.write("GET /alice HTTP/1.1\r\nHost: a\r\n\r\n");
  RawPeer& up = upstreamWith(0, "GET /alice ");
  up.write(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nalice"
      "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nalice's secret");
  std::vector<Response> a = waitForResponses(alice, 1);
  ASSERT_EQ(1u, a.size());
  EXPECT_EQ("alice", a[0].body);

  RawPeer& bob = connect();
  bob.write("GET /bob HTTP/1.1\r\nHost: a\r\n\r\n");
  // Bob's request goes upstream (on the pooled connection) and is answered properly.
  RawPeer* bob_upstream = nullptr;
  ASSERT_TRUE(run([&]() {
    for (auto& u : upstreams_) {
      if (absl::StrContains(u->received(), "GET /bob ")) bob_upstream = u.get();
    }
    return bob_upstream != nullptr;
  }));
  bob_upstream->write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbob");
  std::vector<Response> b = waitForResponses(bob, 1);
  ASSERT_EQ(1u, b.size());
  EXPECT_EQ("bob", b[0].body);
  EXPECT_NE("alice's secret", b[0].body);
}

}  // namespace
}  // namespace Router
}  // namespace Extensions
}  // namespace sluice
