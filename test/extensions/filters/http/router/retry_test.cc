// Router retries, per-try timeouts and circuit breakers, against upstreams the test plays.
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
#include "source/extensions/filters/http/router/filter.h"
#include "test/test_common/http_utility.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Extensions {
namespace Router {
namespace {

using testing::HasSubstr;
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
  - match: {prefix: /retry}
    route: {cluster: backend, retry_policy: {retry_on: [5xx], num_retries: 2,
            backoff: {base_interval: 1ms}}}
  - match: {prefix: /pertry}
    route: {cluster: backend, timeout: 2s, retry_policy: {retry_on: [reset],
            per_try_timeout: 50ms, backoff: {base_interval: 1ms}}}
  - match: {prefix: /overall}
    route: {cluster: backend, timeout: 150ms, retry_policy: {retry_on: [5xx], num_retries: 5,
            backoff: {base_interval: 1ms}}}
  - match: {prefix: /deadfirst}
    route: {cluster: deadfirst, retry_policy: {retry_on: [connect-failure],
            backoff: {base_interval: 1ms}}}
  - match: {prefix: /queued}
    route: {cluster: queued}
  - match: {prefix: /limited}
    route: {cluster: limited, retry_policy: {retry_on: [5xx], backoff: {base_interval: 1ms}}}
  - {match: {prefix: /}, route: {cluster: backend}}
)";

// Two upstream endpoints (a, b) the test answers by hand.
class RetryTest : public testing::Test {
 protected:
  RetryTest() {
    signal(SIGPIPE, SIG_IGN);
    uint16_t dead_port;
    {
      Testing::TcpListener closed;
      dead_port = closed.port();
    }
    absl::flat_hash_map<std::string, Upstream::ClusterInfoConstSharedPtr> clusters;
    clusters["backend"] =
        cluster(absl::StrCat("name: backend\nendpoints: [{address: 127.0.0.1, port: ", a_.port(),
                             "}, {address: 127.0.0.1, port: ", b_.port(), "}]\n"));
    clusters["deadfirst"] =
        cluster(absl::StrCat("name: deadfirst\nendpoints: [{address: 127.0.0.1, port: ", dead_port,
                             "}, {address: 127.0.0.1, port: ", a_.port(), "}]\n"));
    clusters["limited"] = cluster(absl::StrCat(
        "name: limited\nendpoints: [{address: 127.0.0.1, port: ", a_.port(),
        "}, {address: 127.0.0.1, port: ", b_.port(),
        "}]\ncircuit_breakers: {max_requests: 1, max_retries: 0, max_queued_requests: 0}\n"));
    clusters["queued"] = cluster(absl::StrCat(
        "name: queued\nendpoints: [{address: 127.0.0.1, port: ", a_.port(),
        "}]\ncircuit_breakers: {max_requests: 1, max_queued_requests: 1, queue_timeout: 300ms}\n"));
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
    listen(a_, a_peers_);
    listen(b_, b_peers_);
  }

  ~RetryTest() override {
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

  Upstream::ClusterInfoConstSharedPtr cluster(const std::string& yaml) {
    sluice::config::v1::Cluster c;
    EXPECT_TRUE(Config::loadFromYaml(yaml, c).ok());
    auto info = Upstream::ClusterInfo::create(c, "c", &store_);
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
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

  bool run(const std::function<bool()>& done) { return Testing::runUntil(*dispatcher_, done); }

  // The upstream connection of `peers` that received `needle`.
  RawPeer& upstreamWith(std::vector<std::unique_ptr<RawPeer>>& peers, absl::string_view needle) {
    RawPeer* found = nullptr;
    EXPECT_TRUE(run([&]() {
      for (auto& p : peers) {
        if (absl::StrContains(p->received(), needle)) found = p.get();
      }
      return found != nullptr;
    })) << "nothing received "
        << needle;
    return *found;
  }

  std::vector<Response> waitForResponses(RawPeer& client, size_t n) {
    EXPECT_TRUE(run([&]() { return parseResponses(client.received()).size() >= n; }))
        << client.received();
    return parseResponses(client.received());
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

constexpr char k503[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy";
constexpr char k200b[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfrom b";

TEST_F(RetryTest, RetriableStatusGoesToTheOtherEndpoint) {
  RawPeer& c = connect();
  c.write("GET /retry HTTP/1.1\r\nHost: h\r\n\r\n");
  upstreamWith(a_peers_, "GET /retry ").write(k503);
  upstreamWith(b_peers_, "GET /retry ").write(k200b);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("from b", r[0].body);
  EXPECT_EQ(1, stat("cluster.backend.upstream_rq_retry"));
  EXPECT_EQ(1, stat("cluster.backend.upstream_rq_retry_success"));
  EXPECT_EQ(2, stat("cluster.backend.upstream_rq_total"));
  EXPECT_EQ(0, stat("cluster.backend.upstream_rq_active"));
  // The rest of the 503 is not read: its connection is closed, as Envoy resets a retried try.
  EXPECT_TRUE(run([&]() { return a_peers_[0]->peerClosed(); }));
}

TEST_F(RetryTest, ConnectionOfAnEmptyRetriedResponseGoesBackToThePool) {
  RawPeer& c = connect();
  c.write("GET /retry HTTP/1.1\r\nHost: h\r\n\r\n");
  upstreamWith(a_peers_, "GET /retry ").write("HTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n");
  upstreamWith(b_peers_, "GET /retry ").write(k200b);
  ASSERT_EQ(200u, waitForResponses(c, 1)[0].status);
  EXPECT_TRUE(run([&]() { return cm_.get("backend")->pool(0).idleCount() == 1; }));
  EXPECT_FALSE(a_peers_[0]->peerClosed());
}

TEST_F(RetryTest, RetriesRunOutAndTheLastResponseIsReturned) {
  RawPeer& c = connect();
  c.write("GET /retry HTTP/1.1\r\nHost: h\r\n\r\n");
  upstreamWith(a_peers_, "GET /retry ").write(k503);
  upstreamWith(b_peers_, "GET /retry ").write(k503);
  // Third try: both were tried, so either may get it.
  ASSERT_TRUE(run([&]() {
    int n = 0;
    for (auto* peers : {&a_peers_, &b_peers_}) {
      for (auto& p : *peers) n += absl::StrContains(p->received(), "GET /retry ") ? 1 : 0;
    }
    return n >= 2 && (a_peers_[0]->received().size() > 40 || b_peers_[0]->received().size() > 40);
  }));
  for (auto* peers : {&a_peers_, &b_peers_}) {
    for (auto& p : *peers) {
      if (absl::StrContains(p->received(), "GET /retry ")) p->write(k503);
    }
  }
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(503u, r[0].status);
  EXPECT_EQ("busy", r[0].body);
  EXPECT_EQ(2, stat("cluster.backend.upstream_rq_retry"));
  EXPECT_EQ(3, stat("cluster.backend.upstream_rq_total"));
  EXPECT_EQ(0u, cm_.get("backend")->info().state().retries_active.load());
}

TEST_F(RetryTest, NonIdempotentRequestIsNotRetriedOnceSent) {
  RawPeer& c = connect();
  c.write("POST /retry HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
  upstreamWith(a_peers_, "hi").write(k503);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(503u, r[0].status);
  EXPECT_EQ(0, stat("cluster.backend.upstream_rq_retry"));
  EXPECT_TRUE(b_peers_.empty());
}

TEST_F(RetryTest, BodyIsSentAgainAfterAReset) {
  RawPeer& c = connect();
  c.write("PUT /retry HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
  upstreamWith(a_peers_, "hello world").close();
  RawPeer& b = upstreamWith(b_peers_, "hello world");
  EXPECT_THAT(b.received(), HasSubstr("PUT /retry HTTP/1.1\r\n"));
  EXPECT_THAT(b.received(), HasSubstr("content-length: 11\r\n"));
  b.write(k200b);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
}

TEST_F(RetryTest, ChunkedBodyWithTrailersIsSentAgain) {
  RawPeer& c = connect();
  c.write(
      "PUT /retry HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
      "0\r\nX-Sum: 9\r\n\r\n");
  upstreamWith(a_peers_, "x-sum: 9").write(k503);
  RawPeer& b = upstreamWith(b_peers_, "x-sum: 9\r\n\r\n");
  EXPECT_THAT(b.received(), HasSubstr("3\r\nabc\r\n0\r\n"));
  b.write(k200b);
  EXPECT_EQ(200u, waitForResponses(c, 1)[0].status);
}

TEST_F(RetryTest, ConnectFailureIsRetriedForAnyMethod) {
  RawPeer& c = connect();
  c.write("POST /deadfirst HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody");
  RawPeer& a = upstreamWith(a_peers_, "body");
  EXPECT_THAT(a.received(), HasSubstr("POST /deadfirst"));
  a.write("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(201u, r[0].status);
  EXPECT_EQ(1, stat("cluster.deadfirst.upstream_rq_retry"));
  EXPECT_EQ(1, stat("cluster.deadfirst.upstream_cx_connect_fail"));
}

TEST_F(RetryTest, PerTryTimeoutMovesOnToAnotherEndpoint) {
  RawPeer& c = connect();
  c.write("GET /pertry HTTP/1.1\r\nHost: h\r\n\r\n");
  upstreamWith(a_peers_, "GET /pertry ");  // never answers
  upstreamWith(b_peers_, "GET /pertry ").write(k200b);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ(1, stat("cluster.backend.upstream_rq_per_try_timeout"));
  ASSERT_TRUE(run([&]() { return a_peers_[0]->peerClosed(); }));  // the slow try was dropped
}

TEST_F(RetryTest, RouteTimeoutCoversAllTries) {
  RawPeer& c = connect();
  const auto start = std::chrono::steady_clock::now();
  c.write("GET /overall HTTP/1.1\r\nHost: h\r\n\r\n");
  upstreamWith(a_peers_, "GET /overall ").write(k503);
  upstreamWith(b_peers_, "GET /overall ");  // never answers
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(504u, r[0].status);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
  EXPECT_EQ(1, stat("cluster.backend.upstream_rq_timeout"));
}

TEST_F(RetryTest, CircuitBreakerOverflowAnswers503Overloaded) {
  RawPeer& c1 = connect();
  c1.write("GET /limited HTTP/1.1\r\nHost: h\r\n\r\n");
  RawPeer& held = upstreamWith(a_peers_, "GET /limited ");
  RawPeer& c2 = connect();
  c2.write("GET /limited HTTP/1.1\r\nHost: h\r\n\r\n");
  std::vector<Response> r = waitForResponses(c2, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(503u, r[0].status);
  EXPECT_EQ("true", r[0].get("x-sluice-overloaded"));
  EXPECT_THAT(r[0].body, HasSubstr("overloaded"));
  EXPECT_EQ(1, stat("cluster.limited.upstream_rq_overflow"));
  // max_retries 0: a retriable status is returned as it is.
  held.write(k503);
  r = waitForResponses(c1, 1);
  EXPECT_EQ(503u, r[0].status);
  EXPECT_FALSE(r[0].has("x-sluice-overloaded"));
  EXPECT_EQ(1, stat("cluster.limited.upstream_rq_retry_overflow"));
  // The unit is free again.
  EXPECT_EQ(0u, cm_.get("limited")->info().state().rq_active.load());
}

TEST_F(RetryTest, RequestsOverMaxRequestsQueueForASlot) {
  RawPeer& c1 = connect();
  c1.write("GET /queued/1 HTTP/1.1\r\nHost: h\r\n\r\n");
  RawPeer& first = upstreamWith(a_peers_, "GET /queued/1 ");
  // The second waits for the slot; the third finds the queue (1) full: 503 at once.
  RawPeer& c2 = connect();
  c2.write("GET /queued/2 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(run([&]() { return stat("cluster.queued.upstream_rq_queued") == 1; }));
  RawPeer& c3 = connect();
  c3.write("GET /queued/3 HTTP/1.1\r\nHost: h\r\n\r\n");
  std::vector<Response> r = waitForResponses(c3, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(503u, r[0].status);
  EXPECT_EQ("true", r[0].get("x-sluice-overloaded"));
  EXPECT_EQ(1, stat("cluster.queued.upstream_rq_queue_overflow"));
  // The first completes: the queued request gets the slot and reaches the upstream.
  first.write(k200b);
  r = waitForResponses(c1, 1);
  EXPECT_EQ(200u, r[0].status);
  upstreamWith(a_peers_, "GET /queued/2 ").write(k200b);
  r = waitForResponses(c2, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  // A request that waits longer than queue_timeout gets 503.
  RawPeer& c4 = connect();
  c4.write("GET /queued/4 HTTP/1.1\r\nHost: h\r\n\r\n");
  RawPeer& held = upstreamWith(a_peers_, "GET /queued/4 ");
  RawPeer& c5 = connect();
  c5.write("GET /queued/5 HTTP/1.1\r\nHost: h\r\n\r\n");
  r = waitForResponses(c5, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(503u, r[0].status);
  EXPECT_THAT(r[0].body, HasSubstr("queue_timeout"));
  EXPECT_EQ(1, stat("cluster.queued.upstream_rq_queue_timeout"));
  held.write(k200b);
  r = waitForResponses(c4, 1);
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ(0u, cm_.get("queued")->info().state().rq_queued.load());
  EXPECT_EQ(0u, cm_.get("queued")->info().state().rq_active.load());
}

TEST_F(RetryTest, ClientGoingAwayDuringBackoffFreesEverything) {
  RawPeer& c = connect();
  c.write("GET /pertry HTTP/1.1\r\nHost: h\r\n\r\n");
  upstreamWith(a_peers_, "GET /pertry ");
  c.close();
  Testing::runPending(*dispatcher_);
  ASSERT_TRUE(run([&]() { return ctx_.connectionCount() == 0; }));
  const auto& state = cm_.get("backend")->info().state();
  EXPECT_EQ(0u, state.rq_active.load());
  EXPECT_EQ(0u, state.retries_active.load());
  EXPECT_EQ(0, stat("cluster.backend.upstream_rq_active"));
}

}  // namespace
}  // namespace Router
}  // namespace Extensions
}  // namespace sluice
