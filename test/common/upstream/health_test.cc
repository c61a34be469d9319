// Health checks, outlier detection, circuit-breaker config and health-aware load balancing.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/cluster_manager.h"
#include "source/common/upstream/health_manager.h"
#include "source/common/upstream/load_balancer.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Upstream {
namespace {

using sluice::config::v1::Cluster;
using testing::HasSubstr;

absl::StatusOr<ClusterInfoConstSharedPtr> create(const std::string& yaml,
                                                 Stats::Store* store = nullptr,
                                                 ClusterStateRegistry* registry = nullptr) {
  Cluster config;
  absl::Status s = Config::loadFromYaml(yaml, config);
  EXPECT_TRUE(s.ok()) << s;
  return ClusterInfo::create(config, "clusters[0]", store, registry);
}

std::string errorOf(const std::string& yaml) {
  auto c = create(yaml);
  EXPECT_FALSE(c.ok()) << yaml;
  return c.ok() ? "" : std::string(c.status().message());
}

// ---- config --------------------------------------------------------------------------------

TEST(HealthConfigTest, DefaultsFollowEnvoy) {
  auto c = create("name: c\nendpoints: [{address: 127.0.0.1, port: 1}]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  const ClusterInfo& info = **c;
  EXPECT_FALSE(info.healthCheck().enabled);
  EXPECT_FALSE(info.outlier().enabled);
  const CircuitBreakerConfig& cb = info.circuitBreakers();
  EXPECT_EQ(1024u, cb.max_connections);
  EXPECT_EQ(1024u, cb.max_pending_requests);
  EXPECT_EQ(1024u, cb.max_requests);
  EXPECT_EQ(3u, cb.max_retries);
  EXPECT_FALSE(cb.retry_budget);

  auto d = create(R"(
name: c
endpoints: [{address: 127.0.0.1, port: 1}]
health_check: {http_path: /health}
outlier_detection: {}
circuit_breakers: {retry_budget: {}}
)");
  ASSERT_TRUE(d.ok()) << d.status();
  const HealthCheckConfig& hc = (*d)->healthCheck();
  EXPECT_TRUE(hc.enabled);
  EXPECT_FALSE(hc.tcp);
  EXPECT_EQ("/health", hc.path);
  EXPECT_EQ("c", hc.host);
  EXPECT_EQ(5000, hc.interval.count());
  EXPECT_EQ(1000, hc.timeout.count());
  EXPECT_EQ(0, hc.interval_jitter.count());
  EXPECT_EQ(2u, hc.healthy_threshold);
  EXPECT_EQ(3u, hc.unhealthy_threshold);
  EXPECT_TRUE(hc.expected(200));
  EXPECT_TRUE(hc.expected(204));
  EXPECT_FALSE(hc.expected(301));
  EXPECT_FALSE(hc.expected(503));
  const OutlierConfig& od = (*d)->outlier();
  EXPECT_TRUE(od.enabled);
  EXPECT_EQ(5u, od.consecutive_5xx);
  EXPECT_EQ(0u, od.consecutive_gateway_failure);
  EXPECT_EQ(10000, od.interval.count());
  EXPECT_EQ(30000, od.base_ejection_time.count());
  EXPECT_EQ(300000, od.max_ejection_time.count());
  EXPECT_EQ(10u, od.max_ejection_percent);
  EXPECT_TRUE((*d)->circuitBreakers().retry_budget);
  EXPECT_EQ(20u, (*d)->circuitBreakers().budget_percent);
  EXPECT_EQ(3u, (*d)->circuitBreakers().min_retry_concurrency);
}

TEST(HealthConfigTest, Settings) {
  auto c = create(R"(
name: c
endpoints: [{address: 127.0.0.1, port: 1}]
health_check: {type: TCP, interval: 2s, timeout: 300ms, interval_jitter: 100ms,
               healthy_threshold: 1, unhealthy_threshold: 4}
outlier_detection: {consecutive_5xx: 0, consecutive_gateway_failure: 3, interval: 1s,
                    base_ejection_time: 2s, max_ejection_time: 8s, max_ejection_percent: 50}
circuit_breakers: {max_connections: 10, max_pending_requests: 2, max_requests: 5, max_retries: 0}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const ClusterInfo& info = **c;
  EXPECT_TRUE(info.healthCheck().tcp);
  EXPECT_EQ(2000, info.healthCheck().interval.count());
  EXPECT_EQ(300, info.healthCheck().timeout.count());
  EXPECT_EQ(100, info.healthCheck().interval_jitter.count());
  EXPECT_EQ(1u, info.healthCheck().healthy_threshold);
  EXPECT_EQ(4u, info.healthCheck().unhealthy_threshold);
  EXPECT_EQ(0u, info.outlier().consecutive_5xx);
  EXPECT_EQ(3u, info.outlier().consecutive_gateway_failure);
  EXPECT_EQ(2000, info.outlier().base_ejection_time.count());
  EXPECT_EQ(8000, info.outlier().max_ejection_time.count());
  EXPECT_EQ(50u, info.outlier().max_ejection_percent);
  EXPECT_EQ(10u, info.circuitBreakers().max_connections);
  EXPECT_EQ(2u, info.circuitBreakers().max_pending_requests);
  EXPECT_EQ(5u, info.circuitBreakers().max_requests);
  EXPECT_EQ(0u, info.circuitBreakers().max_retries);
}

TEST(HealthConfigTest, Errors) {
  const std::string base = "name: c\nendpoints: [{address: 127.0.0.1, port: 1}]\n";
  EXPECT_THAT(errorOf(base + "health_check: {interval: 1s}"),
              HasSubstr("clusters[0].health_check.http_path: is required for HTTP"));
  EXPECT_THAT(errorOf(base + "health_check: {type: TCP, http_path: /x}"),
              HasSubstr("health_check.http_path: only for type HTTP"));
  EXPECT_THAT(errorOf(base + "health_check: {http_path: /x, interval: 0s}"),
              HasSubstr("health_check.interval: must be > 0"));
  EXPECT_THAT(errorOf(base + "health_check: {http_path: /x, expected_statuses: [99]}"),
              HasSubstr("health_check.expected_statuses[0]: must be 100-599"));
  EXPECT_THAT(errorOf(base + "outlier_detection: {max_ejection_percent: 101}"),
              HasSubstr("outlier_detection.max_ejection_percent: must be <= 100"));
  EXPECT_THAT(errorOf(base + "outlier_detection: {base_ejection_time: 10s, max_ejection_time: 1s}"),
              HasSubstr("outlier_detection.max_ejection_time: must be >= base_ejection_time"));
  EXPECT_THAT(errorOf(base + "circuit_breakers: {max_requests: 0}"),
              HasSubstr("circuit_breakers.max_requests: must be > 0"));
  EXPECT_THAT(errorOf(base + "circuit_breakers: {retry_budget: {budget_percent: 101}}"),
              HasSubstr("circuit_breakers.retry_budget.budget_percent: must be <= 100"));
}

// ---- shared state ---------------------------------------------------------------------------

TEST(ClusterStateRegistryTest, StateSurvivesNewConfigVersions) {
  ClusterStateRegistry registry(nullptr, nullptr);
  auto v1 = create(
      "name: c\nendpoints: [{address: 127.0.0.1, port: 1}, {address: 127.0.0.1, "
      "port: 2}]\n",
      nullptr, &registry);
  ASSERT_TRUE(v1.ok());
  (*v1)->endpoints()[1].state->setFlag(kFailedActiveHealthCheck, true);
  // A new version (another endpoint added, lb policy changed) finds the same state.
  auto v2 = create(
      "name: c\nlb_policy: RANDOM\nendpoints: [{address: 127.0.0.1, port: 2}, "
      "{address: 127.0.0.1, port: 3}]\n",
      nullptr, &registry);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ((*v1)->endpoints()[1].state, (*v2)->endpoints()[0].state);
  EXPECT_FALSE((*v2)->endpoints()[0].state->healthy());
  EXPECT_TRUE((*v2)->endpoints()[1].state->healthy());
  EXPECT_EQ(&(*v1)->state(), &(*v2)->state());

  // Only states no config holds are forgotten.
  v1 = absl::InternalError("dropped");
  std::vector<std::string> dropped;
  registry.prune([&](EndpointState& e) { dropped.push_back(e.address()); });
  EXPECT_EQ(std::vector<std::string>{"127.0.0.1:1"}, dropped);
  EXPECT_NE(nullptr, registry.findEndpoint("c", "127.0.0.1:2"));
  EXPECT_EQ(nullptr, registry.findEndpoint("c", "127.0.0.1:1"));
}

TEST(ClusterStateTest, CircuitBreakerCounters) {
  std::atomic<uint32_t> n{0};
  EXPECT_TRUE(ClusterState::tryAcquire(n, 2));
  EXPECT_TRUE(ClusterState::tryAcquire(n, 2));
  EXPECT_FALSE(ClusterState::tryAcquire(n, 2));
  EXPECT_EQ(2u, n.load());
  ClusterState::release(n);
  EXPECT_TRUE(ClusterState::tryAcquire(n, 2));
}

class RecordingSink : public OutlierEventSink {
 public:
  void onConsecutiveFailures(const EndpointStateSharedPtr& e, OutlierReason r) override {
    events.emplace_back(e->address(), r);
  }
  std::vector<std::pair<std::string, OutlierReason>> events;
};

TEST(ClusterStateTest, ConsecutiveFailuresReachTheMainThreadOncePerCrossing) {
  Event::DispatcherPtr main = Event::createLibeventDispatcher();
  RecordingSink sink;
  ClusterState state("c", main.get(), &sink);
  auto ep = std::make_shared<EndpointState>("c", "127.0.0.1:1");
  OutlierConfig cfg;
  cfg.enabled = true;
  cfg.consecutive_5xx = 3;
  cfg.consecutive_gateway_failure = 2;

  state.reportOutcome(ep, Outcome::Http5xx, cfg);
  state.reportOutcome(ep, Outcome::Success, cfg);  // breaks the streak
  state.reportOutcome(ep, Outcome::Http5xx, cfg);
  state.reportOutcome(ep, Outcome::Http5xx, cfg);
  Testing::runPending(*main);
  EXPECT_TRUE(sink.events.empty());
  state.reportOutcome(ep, Outcome::Http5xx, cfg);  // third in a row
  state.reportOutcome(ep, Outcome::Http5xx, cfg);  // past the threshold: no second event
  Testing::runPending(*main);
  ASSERT_EQ(1u, sink.events.size());
  EXPECT_EQ(OutlierReason::Consecutive5xx, sink.events[0].second);

  // Gateway failures: 502/503/504 and local failures count; a 500 breaks that streak.
  cfg.consecutive_5xx = 0;
  state.reportOutcome(ep, Outcome::GatewayError, cfg);
  state.reportOutcome(ep, Outcome::Http5xx, cfg);
  state.reportOutcome(ep, Outcome::LocalFailure, cfg);
  Testing::runPending(*main);
  EXPECT_EQ(1u, sink.events.size());
  state.reportOutcome(ep, Outcome::GatewayError, cfg);
  Testing::runPending(*main);
  ASSERT_EQ(2u, sink.events.size());
  EXPECT_EQ(OutlierReason::ConsecutiveGatewayFailure, sink.events[1].second);
}

// ---- load balancing with health ---------------------------------------------------------------

class HealthLbTest : public testing::TestWithParam<Cluster::LbPolicy> {
 protected:
  ClusterInfoConstSharedPtr cluster(size_t n, const std::string& extra = "") {
    std::string yaml =
        absl::StrCat("name: c\nlb_policy: ", Cluster::LbPolicy_Name(GetParam()), "\nendpoints:\n");
    for (size_t i = 0; i < n; ++i) {
      absl::StrAppend(&yaml, "- {address: 127.0.0.1, port: ", 9001 + i, ", weight: ", i + 1, "}\n");
    }
    yaml += extra;
    auto info = create(yaml, &store_);
    EXPECT_TRUE(info.ok()) << info.status();
    info_ = *info;
    active_.assign(n, 0);
    lb_ = createLoadBalancer(*info_, active_, 42);
    return info_;
  }
  void setHealthy(int i, bool healthy) {
    info_->endpoints()[i].state->setFlag(kFailedActiveHealthCheck, !healthy);
    info_->state().bumpHealthGeneration();
  }
  std::map<int, int> counts(size_t picks, absl::Span<const int> exclude = {}) {
    std::map<int, int> c;
    Http::RequestHeaderMap headers;
    for (size_t i = 0; i < picks; ++i) {
      headers.set("x-k", absl::StrCat(i));
      const std::string ip = absl::StrCat("10.0.0.", i % 250);
      LbContext ctx;
      ctx.headers = &headers;
      ctx.client_ip = ip;
      ctx.exclude = exclude;
      ++c[lb_->choose(ctx)];
    }
    return c;
  }

  Stats::Store store_{1};
  ClusterInfoConstSharedPtr info_;
  std::vector<uint32_t> active_;
  LoadBalancerPtr lb_;
};

TEST_P(HealthLbTest, UnhealthyEndpointsGetNoRequests) {
  cluster(3);
  EXPECT_EQ(3u, counts(600).size());
  setHealthy(1, false);
  std::map<int, int> c = counts(600);
  EXPECT_EQ(0u, c.count(1));
  EXPECT_EQ(0u, c.count(-1));
  EXPECT_EQ(600, c[0] + c[2]);
  EXPECT_GT(c[0], 0);
  EXPECT_GT(c[2], 0);
  // Back in.
  setHealthy(1, true);
  EXPECT_GT(counts(600)[1], 0);
  EXPECT_EQ(0, store_.valueOf("cluster.c.lb_healthy_panic"));
}

TEST_P(HealthLbTest, PanicWhenNoEndpointIsHealthy) {
  cluster(2);
  setHealthy(0, false);
  setHealthy(1, false);
  std::map<int, int> c = counts(200);
  EXPECT_GT(c[0], 0);
  EXPECT_GT(c[1], 0);
  EXPECT_EQ(200, store_.valueOf("cluster.c.lb_healthy_panic"));
}

TEST_P(HealthLbTest, RetriesAvoidEndpointsAlreadyTried) {
  cluster(3);
  const int tried[] = {2};
  std::map<int, int> c = counts(300, tried);
  EXPECT_EQ(0u, c.count(2));
  EXPECT_EQ(300, c[0] + c[1]);
  // Everything usable tried: better the same endpoint than none.
  setHealthy(0, false);
  setHealthy(1, false);
  c = counts(50, tried);
  EXPECT_EQ(50, c[2]);
}

INSTANTIATE_TEST_SUITE_P(Policies, HealthLbTest,
                         testing::Values(Cluster::ROUND_ROBIN, Cluster::LEAST_REQUEST,
                                         Cluster::RANDOM, Cluster::RING_HASH),
                         [](const testing::TestParamInfo<Cluster::LbPolicy>& p) {
                           return Cluster::LbPolicy_Name(p.param);
                         });

TEST(HealthLbTest2, WeightedRoundRobinOverHealthySubsetKeepsWeights) {
  Stats::Store store{1};
  auto info = create(R"(
name: c
endpoints:
- {address: 127.0.0.1, port: 1, weight: 3}
- {address: 127.0.0.1, port: 2, weight: 1}
- {address: 127.0.0.1, port: 3, weight: 5}
)",
                     &store);
  ASSERT_TRUE(info.ok());
  std::vector<uint32_t> active(3, 0);
  auto lb = createLoadBalancer(**info, active, 1);
  (*info)->endpoints()[2].state->setFlag(kFailedOutlierCheck, true);
  (*info)->state().bumpHealthGeneration();
  std::map<int, int> c;
  for (int i = 0; i < 400; ++i) ++c[lb->choose({})];
  EXPECT_EQ(300, c[0]);
  EXPECT_EQ(100, c[1]);
  EXPECT_EQ(0, c[2]);
}

TEST(HealthLbTest2, RingHashMovesOnlyTheUnhealthyEndpointsKeys) {
  Stats::Store store{1};
  auto info = create(R"(
name: c
lb_policy: RING_HASH
endpoints: [{address: 127.0.0.1, port: 1}, {address: 127.0.0.1, port: 2},
            {address: 127.0.0.1, port: 3}]
)",
                     &store);
  ASSERT_TRUE(info.ok());
  std::vector<uint32_t> active(3, 0);
  auto lb = createLoadBalancer(**info, active, 1);
  std::vector<std::string> ips;
  std::vector<int> before;
  for (int i = 0; i < 300; ++i) {
    ips.push_back(absl::StrCat("10.1.", i / 200, ".", i % 200));
    LbContext ctx;
    ctx.client_ip = ips.back();
    before.push_back(lb->choose(ctx));
  }
  (*info)->endpoints()[1].state->setFlag(kFailedActiveHealthCheck, true);
  (*info)->state().bumpHealthGeneration();
  for (size_t i = 0; i < ips.size(); ++i) {
    LbContext ctx;
    ctx.client_ip = ips[i];
    const int after = lb->choose(ctx);
    EXPECT_NE(1, after);
    if (before[i] != 1) {
      EXPECT_EQ(before[i], after) << ips[i];
    }
  }
}

// ---- active health checks and outlier detection on a real loop --------------------------------

// Accepts connections on a loopback port and answers each HTTP request with `status`.
class FakeUpstream {
 public:
  explicit FakeUpstream(Event::Dispatcher& d) : dispatcher_(d) {
    event_ = d.createFileEvent(
        listener_.fd(),
        [this](uint32_t) {
          int fd;
          while ((fd = listener_.accept()) >= 0) {
            peers_.push_back(std::make_unique<Testing::RawPeer>(dispatcher_, fd));
            ++accepted;
          }
        },
        Event::FileReadyType::Read);
  }
  // Answers every complete request received so far.
  void answer() {
    for (auto& p : peers_) {
      while (absl::StrContains(p->received(), "\r\n\r\n")) {
        requests.push_back(p->received().substr(0, p->received().find("\r\n\r\n")));
        std::string rest = p->received().substr(p->received().find("\r\n\r\n") + 4);
        p->clearReceived();
        if (!silent) {
          p->write(absl::StrCat("HTTP/1.1 ", status, " X\r\nContent-Length: 2\r\n\r\nok"));
        }
        (void)rest;
      }
    }
  }
  void stop() {
    event_.reset();
    listener_.close();
    for (auto& p : peers_) p->close();
  }
  uint16_t port() const { return port_; }

  int status = 200;
  bool silent = false;
  int accepted = 0;
  std::vector<std::string> requests;

 private:
  Event::Dispatcher& dispatcher_;
  Testing::TcpListener listener_;
  uint16_t port_ = listener_.port();
  Event::FileEventPtr event_;
  std::vector<std::unique_ptr<Testing::RawPeer>> peers_;
};

class HealthManagerTest : public testing::Test {
 protected:
  ~HealthManagerTest() override {
    manager_.reset();
    Testing::runPending(*dispatcher_);
  }
  ClusterInfoConstSharedPtr build(const std::string& yaml) {
    auto info = create(yaml, &store_, &manager_->registry());
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
  }
  void publish(const ClusterInfoConstSharedPtr& info) {
    absl::flat_hash_map<std::string, ClusterInfoConstSharedPtr> m;
    if (info) m[info->name()] = info;
    manager_->update(m);
  }
  bool run(const std::function<bool()>& done, int ms = 3000) {
    return Testing::runUntil(
        *dispatcher_,
        [&]() {
          for (auto* u : upstreams_) u->answer();
          return done();
        },
        std::chrono::milliseconds(ms));
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{1};
  std::unique_ptr<HealthManager> manager_ = std::make_unique<HealthManager>(*dispatcher_, &store_);
  std::vector<FakeUpstream*> upstreams_;
};

TEST_F(HealthManagerTest, HttpCheckMarksUnhealthyAfterThresholdAndBackAfterHealthyThreshold) {
  FakeUpstream up(*dispatcher_);
  upstreams_.push_back(&up);
  auto info = build(absl::StrCat(R"(
name: api
endpoints: [{address: 127.0.0.1, port: )",
                                 up.port(), R"(}]
health_check: {http_path: /healthz, host: api.internal, interval: 20ms, timeout: 200ms,
               unhealthy_threshold: 3, healthy_threshold: 2}
)"));
  publish(info);
  EndpointState& st = *info->endpoints()[0].state;
  ASSERT_TRUE(run([&]() { return st.hc.checks >= 3; }));
  EXPECT_TRUE(st.healthy());
  EXPECT_EQ(1, up.accepted);  // keep-alive between checks
  ASSERT_FALSE(up.requests.empty());
  EXPECT_THAT(up.requests[0], HasSubstr("GET /healthz HTTP/1.1\r\n"));
  EXPECT_THAT(up.requests[0], HasSubstr("host: api.internal"));
  const std::string gauge = absl::StrCat("cluster.api.endpoint.127.0.0.1:", up.port(), ".healthy");
  EXPECT_EQ(1, store_.valueOf(gauge));

  up.status = 503;
  const uint64_t base = st.hc.checks;
  ASSERT_TRUE(run([&]() { return !st.healthy(); }));
  EXPECT_EQ(base + 3, st.hc.checks);  // exactly unhealthy_threshold failures
  EXPECT_EQ("status 503", st.hc.last_failure);
  EXPECT_EQ(kFailedActiveHealthCheck, st.flags());
  EXPECT_EQ(0, store_.valueOf(gauge));
  EXPECT_EQ(0, store_.valueOf("cluster.api.membership_healthy"));

  up.status = 200;
  const uint64_t bad = st.hc.checks;
  ASSERT_TRUE(run([&]() { return st.healthy(); }));
  EXPECT_EQ(bad + 2, st.hc.checks);  // healthy_threshold successes
  EXPECT_EQ(1, store_.valueOf(gauge));
  EXPECT_GT(store_.valueOf("cluster.api.health_check.failure"), 2);
}

TEST_F(HealthManagerTest, TcpCheckAndTimeouts) {
  FakeUpstream up(*dispatcher_);
  upstreams_.push_back(&up);
  auto info = build(absl::StrCat("name: t\nendpoints: [{address: 127.0.0.1, port: ", up.port(),
                                 "}]\nhealth_check: {type: TCP, interval: 20ms, timeout: 100ms, "
                                 "unhealthy_threshold: 2}\n"));
  publish(info);
  EndpointState& st = *info->endpoints()[0].state;
  ASSERT_TRUE(run([&]() { return st.hc.checks >= 2; }));
  EXPECT_TRUE(st.healthy());
  EXPECT_TRUE(up.requests.empty());  // TCP: connect only
  up.stop();
  ASSERT_TRUE(run([&]() { return !st.healthy(); }));
  EXPECT_THAT(st.hc.last_failure, HasSubstr("connect failed"));
}

TEST_F(HealthManagerTest, FirstCheckDecidesAndSilentEndpointTimesOut) {
  FakeUpstream up(*dispatcher_);
  up.silent = true;
  upstreams_.push_back(&up);
  auto info = build(absl::StrCat("name: s\nendpoints: [{address: 127.0.0.1, port: ", up.port(),
                                 "}]\nhealth_check: {http_path: /, interval: 1s, timeout: 50ms, "
                                 "unhealthy_threshold: 5}\n"));
  publish(info);
  EndpointState& st = *info->endpoints()[0].state;
  // A new endpoint's first result counts at once, whatever the threshold.
  ASSERT_TRUE(run([&]() { return !st.healthy(); }));
  EXPECT_EQ(1u, st.hc.checks);
  EXPECT_EQ("timeout", st.hc.last_failure);
}

TEST_F(HealthManagerTest, HealthSurvivesConfigPushesAndRemovingHealthCheckClearsIt) {
  FakeUpstream up(*dispatcher_);
  up.status = 500;
  upstreams_.push_back(&up);
  const std::string eps =
      absl::StrCat("endpoints: [{address: 127.0.0.1, port: ", up.port(), "}]\n");
  auto v1 = build("name: c\n" + eps + "health_check: {http_path: /, interval: 20ms}\n");
  publish(v1);
  EndpointState& st = *v1->endpoints()[0].state;
  ASSERT_TRUE(run([&]() { return !st.healthy(); }));
  const uint64_t checks = st.hc.checks;
  // Another setting changes: the endpoint stays unhealthy, and its session keeps running.
  auto v2 = build("name: c\nconnect_timeout: 2s\n" + eps +
                  "health_check: {http_path: /, interval: 20ms}\n");
  EXPECT_EQ(&st, v2->endpoints()[0].state.get());
  publish(v2);
  EXPECT_FALSE(st.healthy());
  ASSERT_TRUE(run([&]() { return st.hc.checks >= checks + 2; }));
  EXPECT_FALSE(st.healthy());
  // No health check any more: healthy.
  auto v3 = build("name: c\n" + eps);
  publish(v3);
  EXPECT_TRUE(st.healthy());
}

TEST_F(HealthManagerTest, OutlierEjectionGrowsAndEndsOnItsOwn) {
  auto info = build(R"(
name: o
endpoints: [{address: 127.0.0.1, port: 1}, {address: 127.0.0.1, port: 2},
            {address: 127.0.0.1, port: 3}, {address: 127.0.0.1, port: 4}]
outlier_detection: {consecutive_5xx: 2, base_ejection_time: 60ms, max_ejection_time: 150ms,
                    max_ejection_percent: 25, interval: 10s}
)");
  publish(info);
  const auto& eps = info->endpoints();
  auto fail = [&](int i, int n) {
    for (int k = 0; k < n; ++k) {
      info->state().reportOutcome(eps[i].state, Outcome::Http5xx, info->outlier());
    }
    Testing::runPending(*dispatcher_);
  };
  const uint64_t gen = info->state().healthGeneration();
  fail(0, 2);
  EXPECT_EQ(kFailedOutlierCheck, eps[0].state->flags());
  EXPECT_GT(info->state().healthGeneration(), gen);
  EXPECT_EQ(1, store_.valueOf("cluster.o.outlier_detection.ejections_active"));
  // max_ejection_percent 25 of 4: one at a time.
  fail(1, 2);
  EXPECT_TRUE(eps[1].state->healthy());
  EXPECT_EQ(1, store_.valueOf("cluster.o.outlier_detection.ejections_overflow"));

  EXPECT_EQ(60, eps[0].state->outlier.last_ejection_time.count());
  ASSERT_TRUE(run([&]() { return eps[0].state->healthy(); }));
  // Ejected again: twice as long (base x ejections), capped by max_ejection_time.
  fail(0, 2);
  ASSERT_FALSE(eps[0].state->healthy());
  EXPECT_EQ(120, eps[0].state->outlier.last_ejection_time.count());
  ASSERT_TRUE(run([&]() { return eps[0].state->healthy(); }));
  EXPECT_EQ(2u, eps[0].state->outlier.ejections);
  EXPECT_EQ(2u, eps[0].state->outlier.ejection_multiplier);
  fail(0, 2);
  EXPECT_EQ(150, eps[0].state->outlier.last_ejection_time.count());
  EXPECT_EQ(3, store_.valueOf("cluster.o.outlier_detection.ejections_enforced"));
}

TEST_F(HealthManagerTest, RemovedClusterForgetsStateAndGauges) {
  FakeUpstream up(*dispatcher_);
  upstreams_.push_back(&up);
  auto info = build(absl::StrCat("name: g\nendpoints: [{address: 127.0.0.1, port: ", up.port(),
                                 "}]\nhealth_check: {http_path: /, interval: 20ms}\n"));
  publish(info);
  ASSERT_TRUE(run([&]() { return info->endpoints()[0].state->hc.checks >= 1; }));
  const std::string gauge = absl::StrCat("cluster.g.endpoint.127.0.0.1:", up.port(), ".healthy");
  EXPECT_EQ(1, store_.valueOf(gauge));
  info.reset();
  publish(nullptr);
  EXPECT_EQ(0, store_.valueOf(gauge));
  EXPECT_EQ(nullptr, manager_->registry().findEndpoint("g", absl::StrCat("127.0.0.1:", up.port())));
}

// ---- circuit breakers in the connection pool --------------------------------------------------

class RecordingCallbacks : public PoolCallbacks {
 public:
  void onPoolReady(ActiveClient& c) override { ready.push_back(&c); }
  void onPoolFailure(PoolFailureReason r, absl::string_view) override { failures.push_back(r); }
  void onUpstreamAboveWriteBufferHighWatermark() override {}
  void onUpstreamBelowWriteBufferLowWatermark() override {}
  std::vector<ActiveClient*> ready;
  std::vector<PoolFailureReason> failures;
};

TEST(ConnPoolBreakerTest, PendingAndConnectionLimitsAcrossPools) {
  Event::DispatcherPtr d = Event::createLibeventDispatcher();
  Stats::Store store{1};
  Testing::TcpListener listener;
  auto info =
      create(absl::StrCat("name: b\nendpoints: [{address: 127.0.0.1, port: ", listener.port(),
                          "}]\ncircuit_breakers: {max_connections: 2, "
                          "max_pending_requests: 1}\n"),
             &store);
  ASSERT_TRUE(info.ok());
  // Two pools (two workers) share the cluster's counters.
  ConnPool a(*d, **info, (*info)->endpoints()[0], 65536);
  ConnPool b(*d, **info, (*info)->endpoints()[0], 65536);
  RecordingCallbacks cb1, cb2, cb3, cb4;
  ASSERT_NE(nullptr, a.newStream(cb1, false));  // connecting: pending 1
  EXPECT_EQ(nullptr, b.newStream(cb2, false));  // pending limit
  ASSERT_EQ(1u, cb2.failures.size());
  EXPECT_EQ(PoolFailureReason::Overflow, cb2.failures[0]);
  EXPECT_EQ(1, store.valueOf("cluster.b.upstream_rq_pending_overflow"));
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return !cb1.ready.empty(); }));
  EXPECT_EQ(0u, (*info)->state().rq_pending.load());
  ASSERT_NE(nullptr, b.newStream(cb3, false));
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return !cb3.ready.empty(); }));
  EXPECT_EQ(2u, (*info)->state().cx_active.load());
  EXPECT_EQ(nullptr, a.newStream(cb4, false));  // connection limit
  ASSERT_EQ(1u, cb4.failures.size());
  EXPECT_EQ(1, store.valueOf("cluster.b.upstream_cx_overflow"));
  // A closed connection frees its unit.
  a.release(*cb1.ready[0], false);
  Testing::runPending(*d);
  EXPECT_EQ(1u, (*info)->state().cx_active.load());
  b.release(*cb3.ready[0], false);
  Testing::runPending(*d);
  EXPECT_EQ(0u, (*info)->state().cx_active.load());
}

}  // namespace
}  // namespace Upstream
}  // namespace sluice
