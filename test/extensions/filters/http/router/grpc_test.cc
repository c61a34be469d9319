// gRPC in the router and the connection manager: trailers-only local replies, grpc-timeout with
// max_grpc_timeout, and the gRPC retry conditions, against upstreams the test plays.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
  - match: {prefix: /svc.Default/}
    route: {cluster: backend, timeout: 200ms}
  - match: {prefix: /svc.Capped/}
    route: {cluster: backend, timeout: 10s, max_grpc_timeout: 50ms}
  - match: {prefix: /svc.Uncapped/}
    route: {cluster: backend, timeout: 20ms, max_grpc_timeout: 0s}
  - match: {prefix: /svc.Retry/}
    route: {cluster: backend, retry_policy: {retry_on: [unavailable, resource-exhausted],
            num_retries: 1, backoff: {base_interval: 1ms}}}
  - match: {prefix: /svc.Missing/}
    route: {cluster: missing}
)";

class GrpcRouterTest : public testing::Test {
 protected:
  GrpcRouterTest() {
    signal(SIGPIPE, SIG_IGN);
    sluice::config::v1::Cluster c;
    EXPECT_TRUE(Config::loadFromYaml(
                    absl::StrCat("name: backend\nendpoints: [{address: "
                                 "127.0.0.1, port: ",
                                 a_.port(), "}, {address: 127.0.0.1, port: ", b_.port(), "}]\n"),
                    c)
                    .ok());
    auto info = Upstream::ClusterInfo::create(c, "c", &store_);
    EXPECT_TRUE(info.ok()) << info.status();
    cm_.update({{"backend", *info}});

    sluice::config::v1::RouteTable rt;
    absl::Status s = Config::loadFromYaml(kRoutes, rt);
    EXPECT_TRUE(s.ok()) << s;
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
    listen(a_, a_peers_);
    listen(b_, b_peers_);
  }

  ~GrpcRouterTest() override {
    for (auto& c : clients_) c->close();
    for (auto* peers : {&a_peers_, &b_peers_}) {
      for (auto& u : *peers) u->close();
    }
    EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ctx_.connectionCount() == 0; }));
    Testing::runPending(*dispatcher_);
    cm_.update({});
    Testing::runPending(*dispatcher_);
    events_.clear();
  }

  void listen(Testing::TcpListener& l, std::vector<std::unique_ptr<RawPeer>>& peers) {
    events_.push_back(dispatcher_->createFileEvent(
        l.fd(),
        [this, &l, &peers](uint32_t) {
          int fd;
          while ((fd = l.accept()) >= 0) {
            peers.push_back(std::make_unique<RawPeer>(*dispatcher_, fd));
          }
        },
        Event::FileReadyType::Read));
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

  bool run(const std::function<bool()>& done,
           std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    return Testing::runUntil(*dispatcher_, done, timeout);
  }

  // Runs the loop for `d` (nothing to wait for).
  void runFor(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    run([&]() { return std::chrono::steady_clock::now() >= until; }, d * 2);
  }

  RawPeer* upstreamWith(std::vector<std::unique_ptr<RawPeer>>& peers, absl::string_view needle) {
    RawPeer* found = nullptr;
    run([&]() {
      for (auto& p : peers) {
        if (absl::StrContains(p->received(), needle)) found = p.get();
      }
      return found != nullptr;
    });
    return found;
  }
  // Either endpoint (round robin picks one).
  RawPeer* anyUpstreamWith(absl::string_view needle) {
    RawPeer* found = nullptr;
    run([&]() {
      for (auto* peers : {&a_peers_, &b_peers_}) {
        for (auto& p : *peers) {
          if (absl::StrContains(p->received(), needle)) found = p.get();
        }
      }
      return found != nullptr;
    });
    return found;
  }

  std::vector<Response> waitForResponses(RawPeer& client, size_t n) {
    EXPECT_TRUE(run([&]() { return parseResponses(client.received()).size() >= n; }))
        << client.received();
    return parseResponses(client.received());
  }

  static std::string grpcRequest(absl::string_view path, absl::string_view extra = "",
                                 absl::string_view body = "\0\0\0\0\x02hi") {
    return absl::StrCat("POST ", path,
                        " HTTP/1.1\r\nHost: h\r\nContent-Type: application/grpc\r\nTE: "
                        "trailers\r\n",
                        extra, "Content-Length: ", body.size(), "\r\n\r\n", body);
  }

  int64_t stat(const std::string& name) { return store_.valueOf(name); }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{1};
  Http::HttpStats stats_ = Http::HttpStats::create(store_);
  Upstream::ClusterManager cm_{*dispatcher_, 1};
  Http::WorkerContext ctx_{*dispatcher_, cm_, stats_, 7};
  std::shared_ptr<TestConfigSource> source_ = std::make_shared<TestConfigSource>();
  Testing::TcpListener a_;
  Testing::TcpListener b_;
  std::vector<Event::FileEventPtr> events_;
  std::vector<std::unique_ptr<RawPeer>> a_peers_;
  std::vector<std::unique_ptr<RawPeer>> b_peers_;
  std::vector<std::unique_ptr<RawPeer>> clients_;
};

const std::string kBody("\0\0\0\0\x02hi", 7);
constexpr char kTrailersOnlyUnavailable[] =
    "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 14\r\n"
    "grpc-message: down\r\ncontent-length: 0\r\n\r\n";
constexpr char kOk[] =
    "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n"
    "7\r\n\0\0\0\0\x02ok\r\n0\r\ngrpc-status: 0\r\n\r\n";
const std::string kOkResponse(kOk, sizeof(kOk) - 1);

TEST_F(GrpcRouterTest, NoRouteIsUnimplementedTrailersOnly) {
  RawPeer& c = connect();
  c.write(grpcRequest("/other.Service/Method", "", kBody));
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("application/grpc", r[0].get("content-type"));
  EXPECT_EQ("12", r[0].get("grpc-status"));
  EXPECT_EQ("no route matched", r[0].get("grpc-message"));
  EXPECT_EQ("0", r[0].get("content-length"));
  EXPECT_EQ("", r[0].body);
  EXPECT_FALSE(r[0].get("x-request-id").empty());
  EXPECT_FALSE(r[0].get("date").empty());
  // The connection stays usable.
  c.write(grpcRequest("/other.Service/Method", "", kBody));
  EXPECT_EQ(2u, waitForResponses(c, 2).size());
}

TEST_F(GrpcRouterTest, UnknownClusterIsUnavailable) {
  RawPeer& c = connect();
  c.write(grpcRequest("/svc.Missing/M", "", kBody));
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("14", r[0].get("grpc-status"));
  EXPECT_EQ("cluster \"missing\" not found", r[0].get("grpc-message"));
}

TEST_F(GrpcRouterTest, GrpcWebLocalReplyKeepsItsContentType) {
  RawPeer& c = connect();
  c.write(
      "POST /nowhere/M HTTP/1.1\r\nHost: h\r\nContent-Type: application/grpc-web-text+proto; "
      "charset=x\r\nContent-Length: 0\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("application/grpc-web-text+proto", r[0].get("content-type"));
  EXPECT_EQ("12", r[0].get("grpc-status"));
}

TEST_F(GrpcRouterTest, NonGrpcLocalReplyIsStillJson) {
  RawPeer& c = connect();
  c.write("POST /nowhere HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(404u, r[0].status);
  EXPECT_EQ("application/json", r[0].get("content-type"));
  EXPECT_FALSE(r[0].has("grpc-status"));
}

TEST_F(GrpcRouterTest, ClientGrpcTimeoutShortensTheRouteTimeout) {
  RawPeer& c = connect();
  const auto start = std::chrono::steady_clock::now();
  c.write(grpcRequest("/svc.Default/M", "grpc-timeout: 30m\r\n", kBody));
  ASSERT_NE(nullptr, anyUpstreamWith("/svc.Default/M"));
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(190));
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("4", r[0].get("grpc-status"));
  EXPECT_EQ("upstream request timeout", r[0].get("grpc-message"));
  EXPECT_EQ(1, stat("cluster.backend.upstream_rq_timeout"));
}

TEST_F(GrpcRouterTest, RouteTimeoutCapsTheClientsTimeout) {
  RawPeer& c = connect();
  c.write(grpcRequest("/svc.Default/M", "grpc-timeout: 100S\r\n", kBody));
  RawPeer* up = anyUpstreamWith("/svc.Default/M");
  ASSERT_NE(nullptr, up);
  // Without max_grpc_timeout the header goes upstream as the client sent it.
  EXPECT_TRUE(absl::StrContains(up->received(), "grpc-timeout: 100S\r\n")) << up->received();
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("4", r[0].get("grpc-status"));
}

TEST_F(GrpcRouterTest, InvalidGrpcTimeoutIsIgnored) {
  RawPeer& c = connect();
  const auto start = std::chrono::steady_clock::now();
  c.write(grpcRequest("/svc.Default/M", "grpc-timeout: 1s\r\n", kBody));
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("4", r[0].get("grpc-status"));
  // The route's 200ms, not 1 ms or 1 s.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(190));
}

TEST_F(GrpcRouterTest, MaxGrpcTimeoutCapsAndIsSentUpstream) {
  RawPeer& c = connect();
  const auto start = std::chrono::steady_clock::now();
  c.write(grpcRequest("/svc.Capped/M", "grpc-timeout: 20S\r\n", kBody));
  RawPeer* up = anyUpstreamWith("/svc.Capped/M");
  ASSERT_NE(nullptr, up);
  EXPECT_TRUE(absl::StrContains(up->received(), "grpc-timeout: 50m\r\n")) << up->received();
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("4", r[0].get("grpc-status"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(GrpcRouterTest, MaxGrpcTimeoutWithoutClientTimeoutIsTheTimeout) {
  RawPeer& c = connect();
  c.write(grpcRequest("/svc.Capped/M", "", kBody));
  RawPeer* up = anyUpstreamWith("/svc.Capped/M");
  ASSERT_NE(nullptr, up);
  EXPECT_TRUE(absl::StrContains(up->received(), "grpc-timeout: 50m\r\n")) << up->received();
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("4", r[0].get("grpc-status"));
}

TEST_F(GrpcRouterTest, ZeroMaxGrpcTimeoutLetsTheClientGoPastTheRouteTimeout) {
  RawPeer& c = connect();
  c.write(grpcRequest("/svc.Uncapped/M", "grpc-timeout: 5S\r\n", kBody));
  RawPeer* up = anyUpstreamWith("/svc.Uncapped/M");
  ASSERT_NE(nullptr, up);
  runFor(std::chrono::milliseconds(80));  // 4x the route timeout
  EXPECT_EQ("", c.received());
  up->write(kOkResponse);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ(std::string("\0\0\0\0\x02ok", 7), r[0].body);
}

TEST_F(GrpcRouterTest, NonGrpcRequestIgnoresGrpcTimeout) {
  RawPeer& c = connect();
  c.write(
      "POST /svc.Uncapped/M HTTP/1.1\r\nHost: h\r\ngrpc-timeout: 5S\r\nContent-Length: 0\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(504u, r[0].status);
}

TEST_F(GrpcRouterTest, RetriesTrailersOnlyUnavailableWithTheBody) {
  RawPeer& c = connect();
  c.write(grpcRequest("/svc.Retry/M", "", kBody));
  RawPeer* first = anyUpstreamWith("/svc.Retry/M");
  ASSERT_NE(nullptr, first);
  first->write(kTrailersOnlyUnavailable);
  // The retry goes to the other endpoint, with the same body.
  std::vector<std::unique_ptr<RawPeer>>& others =
      std::any_of(a_peers_.begin(), a_peers_.end(),
                  [&](const std::unique_ptr<RawPeer>& p) { return p.get() == first; })
          ? b_peers_
          : a_peers_;
  RawPeer* second = upstreamWith(others, "/svc.Retry/M");
  ASSERT_NE(nullptr, second);
  ASSERT_TRUE(run([&]() { return absl::StrContains(second->received(), kBody); }));
  second->write(kOkResponse);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ(std::string("\0\0\0\0\x02ok", 7), r[0].body);
  EXPECT_EQ(1, stat("cluster.backend.upstream_rq_retry"));
}

TEST_F(GrpcRouterTest, OtherGrpcStatusesAreNotRetried) {
  RawPeer& c = connect();
  c.write(grpcRequest("/svc.Retry/M", "", kBody));
  RawPeer* first = anyUpstreamWith("/svc.Retry/M");
  ASSERT_NE(nullptr, first);
  first->write(
      "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 13\r\n"
      "content-length: 0\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("13", r[0].get("grpc-status"));
  EXPECT_EQ(0, stat("cluster.backend.upstream_rq_retry"));
}

TEST_F(GrpcRouterTest, LastTryAnswerGoesToTheClient) {
  RawPeer& c = connect();
  c.write(grpcRequest("/svc.Retry/M", "", kBody));
  RawPeer* first = anyUpstreamWith("/svc.Retry/M");
  ASSERT_NE(nullptr, first);
  first->write(
      "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 8\r\n"
      "content-length: 0\r\n\r\n");
  ASSERT_TRUE(run([&]() { return stat("cluster.backend.upstream_rq_retry") == 1; }));
  RawPeer* second = nullptr;
  ASSERT_TRUE(run([&]() {
    for (auto* peers : {&a_peers_, &b_peers_}) {
      for (auto& p : *peers) {
        if (p.get() != first && absl::StrContains(p->received(), kBody)) second = p.get();
      }
    }
    return second != nullptr;
  }));
  second->write(kTrailersOnlyUnavailable);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("14", r[0].get("grpc-status"));
  EXPECT_EQ("down", r[0].get("grpc-message"));
}

TEST_F(GrpcRouterTest, NonGrpcRequestIsNotRetriedOnGrpcStatus) {
  RawPeer& c = connect();
  c.write("POST /svc.Retry/M HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
  RawPeer* first = anyUpstreamWith("/svc.Retry/M");
  ASSERT_NE(nullptr, first);
  first->write(kTrailersOnlyUnavailable);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("14", r[0].get("grpc-status"));
  EXPECT_EQ(0, stat("cluster.backend.upstream_rq_retry"));
}

}  // namespace
}  // namespace Router
}  // namespace Extensions
}  // namespace sluice
