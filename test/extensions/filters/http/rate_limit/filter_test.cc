#include "source/extensions/filters/http/rate_limit/filter.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/utility.h"
#include "source/common/http/filter_config.h"
#include "source/common/router/config.h"
#include "source/common/upstream/cluster_manager.h"
#include "test/extensions/filters/http/rate_limit/redis_server.h"
#include "test/test_common/network_utility.h"
#include "test/test_common/route_table.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

using testing::HasSubstr;

constexpr int64_t kT0 = 1767225600000 + 250;  // 2026-01-01T00:00:00.250Z

constexpr char kRoutes[] = R"(
name: t
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - {name: by-ip, match: {prefix: /ip}, direct_response: {status: 200}, rate_limit: ip}
  - {name: by-consumer, match: {prefix: /consumer}, direct_response: {status: 200}, rate_limit: consumer}
  - {name: by-credential, match: {prefix: /credential}, direct_response: {status: 200}, rate_limit: credential}
  - {name: by-header, match: {prefix: /header}, direct_response: {status: 200}, rate_limit: header}
  - {name: by-path, match: {prefix: /path}, direct_response: {status: 200}, rate_limit: path}
  - {name: by-service, match: {prefix: /service}, route: {cluster: users}, rate_limit: service}
  - {name: by-split, match: {prefix: /split}, route: {weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b, weight: 1}]}}, rate_limit: service}
  - {name: by-route, match: {prefix: /route}, direct_response: {status: 200}, rate_limit: route}
  - {name: kong, match: {prefix: /kong}, direct_response: {status: 200}, rate_limit: kong}
  - {name: ietf, match: {prefix: /ietf}, direct_response: {status: 200}, rate_limit: ietf}
  - {name: hidden, match: {prefix: /hidden}, direct_response: {status: 200}, rate_limit: hidden}
  - {name: per-consumer, match: {prefix: /per-consumer}, direct_response: {status: 200}, filter_config: {rate_limit: {policy: ip, consumer_policies: {vip: hidden}}}}
  - {name: only-consumers, match: {prefix: /only-consumers}, direct_response: {status: 200}, filter_config: {rate_limit: {disabled: true, consumer_policies: {alice: consumer}}}}
  - {name: missing, match: {prefix: /missing}, direct_response: {status: 200}, rate_limit: not-sent-yet}
  - {name: free, match: {prefix: /}, direct_response: {status: 200}}
)";

constexpr char kPolicies[] = R"(
- {name: ip, second: 2, minute: 3, limit_by: IP, algorithm: FIXED_WINDOW}
- {name: consumer, minute: 2, limit_by: CONSUMER}
- {name: credential, minute: 2, limit_by: CREDENTIAL}
- {name: header, minute: 2, limit_by: HEADER, header_name: X-Tenant}
- {name: path, minute: 2, limit_by: PATH}
- {name: service, minute: 2, limit_by: SERVICE}
- {name: route, minute: 2, limit_by: ROUTE}
- {name: kong, second: 5, minute: 10, headers: KONG, algorithm: FIXED_WINDOW}
- {name: ietf, second: 5, headers: IETF, algorithm: FIXED_WINDOW}
- {name: hidden, second: 1, hide_client_headers: true, algorithm: FIXED_WINDOW}
)";

// The filter's view of a stream, as the connection manager would provide it: local replies go
// through the filter's encodeHeaders, as they do for real.
class FakeStream : public Http::StreamDecoderFilterCallbacks,
                   public Http::StreamEncoderFilterCallbacks {
 public:
  FakeStream(Event::Dispatcher& d, Upstream::ClusterManager& cm) : dispatcher_(d), cm_(cm) {}

  Event::Dispatcher& dispatcher() override { return dispatcher_; }
  Http::StreamInfo& streamInfo() override { return info; }
  const Router::RouteEntry* route() override { return route_entry; }
  Upstream::ClusterManager& clusterManager() override { return cm_; }
  absl::string_view downstreamAddress() override { return client_ip; }
  void resetStream() override {}
  uint32_t bufferLimit() override { return 1 << 20; }
  void continueDecoding() override { ++continued; }
  void sendLocalReply(uint32_t status, absl::string_view message,
                      absl::optional<Http::ResponseFlag> flag,
                      std::function<void(Http::ResponseHeaderMap&)> modify,
                      absl::optional<Http::GatewayResponseType> type) override {
    local_message = std::string(message);
    local_type = type;
    if (flag) info.addFlag(*flag);
    response = std::make_unique<Http::ResponseHeaderMap>();
    response->status = status;
    if (modify) modify(*response);
    filter->encodeHeaders(*response, false);
  }
  void encodeHeaders(Http::ResponseHeaderMapPtr&&, bool) override {}
  void encodeData(Buffer::Instance&, bool) override {}
  void encodeTrailers(Http::HeaderMapPtr&&) override {}
  bool responseStarted() const override { return response != nullptr; }
  void onDecoderFilterAboveWriteBufferHighWatermark() override {}
  void onDecoderFilterBelowWriteBufferLowWatermark() override {}
  void addDownstreamWatermarkCallbacks(Http::DownstreamWatermarkCallbacks&) override {}
  void removeDownstreamWatermarkCallbacks(Http::DownstreamWatermarkCallbacks&) override {}
  Http::RequestHeaderMap& requestHeaders() override { return request; }
  void sendContinueIfExpected() override {}
  void continueEncoding() override {}

  // Runs the request through the filter; then (if it went on) an upstream 200 back through it.
  Http::FilterHeadersStatus run() {
    filter->setDecoderFilterCallbacks(*this);
    filter->setEncoderFilterCallbacks(*this);
    status = filter->decodeHeaders(request, true);
    return status;
  }
  // The upstream answers (after the request went on).
  Http::ResponseHeaderMap& upstreamResponse() {
    response = std::make_unique<Http::ResponseHeaderMap>();
    response->status = 200;
    filter->encodeHeaders(*response, true);
    return *response;
  }

  Http::StreamInfo info;
  Http::RequestHeaderMap request;
  const Router::RouteEntry* route_entry = nullptr;
  std::string client_ip = "10.0.0.1";
  std::shared_ptr<RateLimitFilter> filter;
  Http::FilterHeadersStatus status = Http::FilterHeadersStatus::Continue;
  int continued = 0;
  std::string local_message;
  absl::optional<Http::GatewayResponseType> local_type;
  Http::ResponseHeaderMapPtr response;

 private:
  Event::Dispatcher& dispatcher_;
  Upstream::ClusterManager& cm_;
};

class RateLimitFilterTest : public testing::Test {
 protected:
  RateLimitFilterTest() {
    sluice::config::v1::RouteTable rt;
    EXPECT_TRUE(Config::loadFromYaml(kRoutes, rt).ok());
    auto table = Testing::compileRouteTable(rt);
    EXPECT_TRUE(table.ok()) << table.status();
    table_ = *table;
    config_ = makeConfig(kPolicies);
  }
  ~RateLimitFilterTest() override {
    streams_.clear();
    RedisClient::clearThread();
    Testing::runPending(*dispatcher_);
  }

  std::shared_ptr<FilterConfig> makeConfig(const std::string& policies_yaml) {
    auto c = std::make_shared<FilterConfig>(local_, &stats_, [this]() { return now_; });
    sluice::config::v1::StaticResources sr;
    EXPECT_TRUE(
        Config::loadFromYaml(absl::StrCat("rate_limit_policies:\n", policies_yaml), sr).ok());
    for (const auto& p : sr.rate_limit_policies()) {
      EXPECT_TRUE(c->addPolicy(p, p.name())) << p.name();
    }
    return c;
  }

  FakeStream& stream(const std::string& path,
                     std::vector<std::pair<std::string, std::string>> headers = {},
                     std::shared_ptr<FilterConfig> config = nullptr) {
    streams_.push_back(std::make_unique<FakeStream>(*dispatcher_, cm_));
    FakeStream& s = *streams_.back();
    s.request.method = "GET";
    s.request.path = path;
    s.request.add("host", "example.com");
    for (auto& [k, v] : headers) s.request.add(k, v);
    s.route_entry = table_->route(s.request);
    s.filter = std::make_shared<RateLimitFilter>(config ? config : config_);
    return s;
  }

  // Sends a request to `path`; true if it went on (200 path), false if answered locally.
  bool admitted(const std::string& path,
                std::vector<std::pair<std::string, std::string>> headers = {},
                const std::string& consumer = "", const std::string& ip = "10.0.0.1") {
    FakeStream& s = stream(path, std::move(headers));
    if (!consumer.empty()) {
      s.info.filter_state.set(Http::FilterStateNames::kConsumer,
                              std::make_shared<Http::FilterState::StringObject>(consumer));
      s.info.filter_state.set(Http::FilterStateNames::kCredential,
                              std::make_shared<Http::FilterState::StringObject>("key:" + consumer));
    }
    s.client_ip = ip;
    return s.run() == Http::FilterHeadersStatus::Continue;
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Upstream::ClusterManager cm_{*dispatcher_, 1};
  Stats::Store stats_{1};
  LocalStoreSharedPtr local_ = std::make_shared<LocalStore>(nullptr);
  int64_t now_ = kT0;
  sluice::Router::RouteTableConstSharedPtr table_;
  std::shared_ptr<FilterConfig> config_;
  std::vector<std::unique_ptr<FakeStream>> streams_;
};

TEST_F(RateLimitFilterTest, RoutesWithoutAPolicyPassUntouched) {
  FakeStream& s = stream("/other");
  EXPECT_EQ(s.run(), Http::FilterHeadersStatus::Continue);
  EXPECT_EQ(s.upstreamResponse().size(), 0u) << "no headers without a decision";
  FakeStream& m = stream("/missing");
  EXPECT_EQ(m.run(), Http::FilterHeadersStatus::Continue)
      << "a policy the control plane has not sent yet does not block the route";
}

TEST_F(RateLimitFilterTest, RejectsWith429RetryAfterAndBothHeaderStyles) {
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(admitted("/ip"));
  FakeStream& s = stream("/ip");
  s.client_ip = "10.0.0.1";
  EXPECT_EQ(s.run(), Http::FilterHeadersStatus::StopIteration);
  ASSERT_NE(s.response, nullptr);
  const Http::ResponseHeaderMap& h = *s.response;
  EXPECT_EQ(h.status, 429u);
  EXPECT_EQ(s.local_message, "API rate limit exceeded");
  EXPECT_EQ(s.local_type, Http::GatewayResponseType::Throttled);
  EXPECT_EQ(s.info.response_flags.toString(), "RL");
  EXPECT_EQ(h.get("retry-after"), "1");  // the second ends in 750 ms
  EXPECT_EQ(h.get("x-ratelimit-limit-second"), "2");
  EXPECT_EQ(h.get("x-ratelimit-remaining-second"), "0");
  EXPECT_EQ(h.get("x-ratelimit-limit-minute"), "3");
  EXPECT_EQ(h.get("x-ratelimit-remaining-minute"), "1");
  EXPECT_EQ(h.get("ratelimit-limit"), "2");
  EXPECT_EQ(h.get("ratelimit-remaining"), "0");
  EXPECT_EQ(h.get("ratelimit-reset"), "1");
  EXPECT_EQ(h.get("ratelimit-policy"), "\"ip-second\";q=2;w=1, \"ip-minute\";q=3;w=60");
  EXPECT_EQ(h.get("ratelimit"), "\"ip-second\";r=0;t=1, \"ip-minute\";r=1;t=60");
  EXPECT_EQ(stats_.valueOf("rate_limit.ip.allowed"), 2);
  EXPECT_EQ(stats_.valueOf("rate_limit.ip.limited"), 1);
  // Another client has its own budget.
  EXPECT_TRUE(admitted("/ip", {}, "", "10.0.0.2"));
  // The next second: the minute (1 left) is now the tightest window.
  now_ += 1000;
  FakeStream& next = stream("/ip");
  ASSERT_EQ(next.run(), Http::FilterHeadersStatus::Continue);
  Http::ResponseHeaderMap& up = next.upstreamResponse();
  EXPECT_EQ(up.get("x-ratelimit-remaining-second"), "1");
  EXPECT_EQ(up.get("x-ratelimit-remaining-minute"), "0");
  EXPECT_EQ(up.get("ratelimit-limit"), "3");
  EXPECT_EQ(up.get("ratelimit-remaining"), "0");
  EXPECT_EQ(up.get("ratelimit-reset"), "59");
  FakeStream& over = stream("/ip");
  EXPECT_EQ(over.run(), Http::FilterHeadersStatus::StopIteration);
  EXPECT_EQ(over.response->get("retry-after"), "59");
}

// A refusal by a window of a day (or longer) is a quota, by a shorter one a throttle.
TEST(RateLimitRefusalTypeTest, DayWindowsAreQuotas) {
  PolicyProto proto;
  proto.set_name("q");
  proto.set_minute(5);
  proto.set_day(100);
  auto policy = compilePolicy(proto, "p");
  ASSERT_TRUE(policy.ok()) << policy.status();
  Decision d;
  d.allowed = false;
  d.windows = {WindowStatus{5, 0, 1000}, WindowStatus{100, 40, 1000}};
  EXPECT_EQ(RateLimitFilter::refusalType(**policy, d), Http::GatewayResponseType::Throttled);
  d.windows = {WindowStatus{5, 3, 1000}, WindowStatus{100, 0, 1000}};
  EXPECT_EQ(RateLimitFilter::refusalType(**policy, d), Http::GatewayResponseType::QuotaExceeded);
  d.windows = {WindowStatus{5, 0, 1000}, WindowStatus{100, 0, 1000}};
  EXPECT_EQ(RateLimitFilter::refusalType(**policy, d), Http::GatewayResponseType::QuotaExceeded);
  // A malformed decision (fewer windows) is never read past its end.
  d.windows.clear();
  EXPECT_EQ(RateLimitFilter::refusalType(**policy, d), Http::GatewayResponseType::Throttled);
}

TEST_F(RateLimitFilterTest, SlidingWindowHeadersNeverSayMoreThanTheWindow) {
  // A sliding minute counts 11 buckets of 6 s: after a burst in the current bucket the exact wait
  // is 65.75 s here. The headers say the window.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(admitted("/path"));
  FakeStream& s = stream("/path");
  ASSERT_EQ(s.run(), Http::FilterHeadersStatus::StopIteration);
  ASSERT_NE(s.response, nullptr);
  EXPECT_EQ(s.response->get("retry-after"), "60");
  EXPECT_EQ(s.response->get("ratelimit-reset"), "60");
  EXPECT_EQ(s.response->get("ratelimit"), "\"path\";r=0;t=60");
}

TEST_F(RateLimitFilterTest, HeaderStyles) {
  FakeStream& k = stream("/kong");
  ASSERT_EQ(k.run(), Http::FilterHeadersStatus::Continue);
  Http::ResponseHeaderMap& kh = k.upstreamResponse();
  EXPECT_EQ(kh.get("x-ratelimit-remaining-second"), "4");
  EXPECT_EQ(kh.get("x-ratelimit-remaining-minute"), "9");
  EXPECT_EQ(kh.get("ratelimit-remaining"), "4");
  EXPECT_FALSE(kh.has("ratelimit-policy"));
  EXPECT_FALSE(kh.has("ratelimit"));

  FakeStream& i = stream("/ietf");
  ASSERT_EQ(i.run(), Http::FilterHeadersStatus::Continue);
  Http::ResponseHeaderMap& ih = i.upstreamResponse();
  EXPECT_EQ(ih.get("ratelimit-policy"), "\"ietf\";q=5;w=1");
  EXPECT_EQ(ih.get("ratelimit"), "\"ietf\";r=4;t=1");
  EXPECT_FALSE(ih.has("x-ratelimit-limit-second"));
  EXPECT_FALSE(ih.has("ratelimit-limit"));

  FakeStream& h = stream("/hidden");
  ASSERT_EQ(h.run(), Http::FilterHeadersStatus::Continue);
  EXPECT_EQ(h.upstreamResponse().size(), 0u);
  FakeStream& h2 = stream("/hidden");
  ASSERT_EQ(h2.run(), Http::FilterHeadersStatus::StopIteration);
  EXPECT_EQ(h2.response->status, 429u);
  EXPECT_EQ(h2.response->size(), 1u) << "only Retry-After when headers are hidden";
  EXPECT_EQ(h2.response->get("retry-after"), "1");
}

TEST_F(RateLimitFilterTest, OurHeadersReplaceAnUpstreamsOwn) {
  FakeStream& s = stream("/kong");
  ASSERT_EQ(s.run(), Http::FilterHeadersStatus::Continue);
  s.response = std::make_unique<Http::ResponseHeaderMap>();
  s.response->status = 200;
  s.response->add("ratelimit-remaining", "999");
  s.filter->encodeHeaders(*s.response, true);
  EXPECT_EQ(s.response->count("ratelimit-remaining"), 1u);
  EXPECT_EQ(s.response->get("ratelimit-remaining"), "4");
}

TEST_F(RateLimitFilterTest, LimitByConsumerAndCredentialFallBackToTheClientIp) {
  EXPECT_TRUE(admitted("/consumer", {}, "alice"));
  EXPECT_TRUE(admitted("/consumer", {}, "alice"));
  EXPECT_FALSE(admitted("/consumer", {}, "alice"));
  EXPECT_TRUE(admitted("/consumer", {}, "bob"));
  // No consumer: the client IP is the key (and an IP is not confused with a consumer name).
  EXPECT_TRUE(admitted("/consumer", {}, "", "10.9.9.9"));
  EXPECT_TRUE(admitted("/consumer", {}, "10.9.9.9", "10.9.9.9"));
  EXPECT_TRUE(admitted("/consumer", {}, "", "10.9.9.9"));
  EXPECT_FALSE(admitted("/consumer", {}, "", "10.9.9.9"));

  EXPECT_TRUE(admitted("/credential", {}, "carol"));
  EXPECT_TRUE(admitted("/credential", {}, "carol"));
  EXPECT_FALSE(admitted("/credential", {}, "carol"));
  EXPECT_TRUE(admitted("/credential", {}, "", "10.8.8.8"));
}

// consumer_policies (Kong's rate-limiting scoped to a consumer): the consumer's own policy
// replaces the route's, also where the route has none (disabled).
TEST_F(RateLimitFilterTest, ConsumerPoliciesReplaceTheRoutesPolicy) {
  // vip: `hidden` (1 a second), not the route's `ip` (2 a second).
  EXPECT_TRUE(admitted("/per-consumer", {}, "vip"));
  EXPECT_FALSE(admitted("/per-consumer", {}, "vip"));
  // Anyone else: the route's policy, by IP.
  EXPECT_TRUE(admitted("/per-consumer", {}, "bob"));
  EXPECT_TRUE(admitted("/per-consumer", {}, "carol"));
  EXPECT_FALSE(admitted("/per-consumer", {}, "bob"));
  // No route policy: only alice is limited (`consumer`, 2 a minute).
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(admitted("/only-consumers", {}, "bob"));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(admitted("/only-consumers"));
  EXPECT_TRUE(admitted("/only-consumers", {}, "alice"));
  EXPECT_TRUE(admitted("/only-consumers", {}, "alice"));
  EXPECT_FALSE(admitted("/only-consumers", {}, "alice"));
}

TEST(RateLimitRouteConfigTest, ConsumerPoliciesMustExist) {
  sluice::config::v1::RouteTable rt;
  ASSERT_TRUE(Config::loadFromYaml(R"(
name: t
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - {name: r, match: {prefix: /}, direct_response: {status: 200},
     filter_config: {rate_limit: {disabled: true, consumer_policies: {alice: nope, "": x}}}}
)",
                                   rt)
                  .ok());
  static const Config::PolicySet* none = new Config::PolicySet();
  Http::FilterValidationContext ctx;
  ctx.policies = none;
  Http::FilterConfigCompiler filters(ctx);
  auto table = Router::RouteTableImpl::create(rt, "route_tables[0]", nullptr, nullptr, &filters);
  ASSERT_FALSE(table.ok());
  EXPECT_THAT(std::string(table.status().message()),
              HasSubstr("route_tables[0].virtual_hosts[0].routes[0].filter_config.rate_limit."
                        "consumer_policies[\"alice\"]: unknown rate limit policy \"nope\""));
  EXPECT_THAT(std::string(table.status().message()),
              HasSubstr("consumer_policies[\"\"]: a consumer name and a policy name are required"));
}

TEST_F(RateLimitFilterTest, LimitByHeaderPathServiceAndRoute) {
  EXPECT_TRUE(admitted("/header", {{"x-tenant", "t1"}}));
  EXPECT_TRUE(admitted("/header", {{"x-tenant", "t1"}}));
  EXPECT_FALSE(admitted("/header", {{"x-tenant", "t1"}}, "", "10.0.0.99"));
  EXPECT_TRUE(admitted("/header", {{"x-tenant", "t2"}}));
  EXPECT_TRUE(admitted("/header", {}, "", "10.7.7.7")) << "no header: by client IP";

  EXPECT_TRUE(admitted("/path/a?x=1"));
  EXPECT_TRUE(admitted("/path/a?x=2", {}, "", "10.0.0.5"));
  EXPECT_FALSE(admitted("/path/a")) << "the query string is not part of the path";
  EXPECT_TRUE(admitted("/path/b"));

  EXPECT_TRUE(admitted("/service/x", {}, "", "10.1.1.1"));
  EXPECT_TRUE(admitted("/service/y", {}, "", "10.1.1.2"));
  EXPECT_FALSE(admitted("/service/z", {}, "", "10.1.1.3")) << "one budget per cluster";
  EXPECT_TRUE(admitted("/split", {}, "", "10.1.1.1")) << "a split is its own service";

  EXPECT_TRUE(admitted("/route/1", {}, "", "10.2.2.1"));
  EXPECT_TRUE(admitted("/route/2", {}, "", "10.2.2.2"));
  EXPECT_FALSE(admitted("/route/3", {}, "", "10.2.2.3"));
}

TEST_F(RateLimitFilterTest, IdentityStrings) {
  FakeStream& s = stream("/service", {{"x-tenant", "t"}});
  const Http::StreamInfo info;
  auto id = [&](const std::string& policy, FakeStream& st) {
    std::string out = "junk from the previous request";
    RateLimitFilter::identity(*config_->find(policy)->policy, st.request, *st.route_entry, info,
                              "1.2.3.4", out);
    return out;
  };
  EXPECT_EQ(id("service", s), "service:users");
  EXPECT_EQ(id("header", s), "header:t");
  EXPECT_EQ(id("consumer", s), "ip:1.2.3.4");
  EXPECT_EQ(id("route", s), "route:by-service");
  FakeStream& split = stream("/split");
  EXPECT_EQ(id("service", split), "service:a,b");
  FakeStream& big = stream("/header", {{"x-tenant", std::string(300, 'z')}});
  EXPECT_EQ(id("header", big).substr(0, 7), "sha256:");
}

TEST_F(RateLimitFilterTest, CountersSurviveANewConfig) {
  ASSERT_TRUE(admitted("/consumer", {}, "dave"));
  // A config push: a new FilterConfig (same process-wide store), same policy name.
  auto pushed = makeConfig("- {name: consumer, minute: 2, limit_by: CONSUMER}");
  FakeStream& s = stream("/consumer", {}, pushed);
  s.info.filter_state.set(Http::FilterStateNames::kConsumer,
                          std::make_shared<Http::FilterState::StringObject>("dave"));
  EXPECT_EQ(s.run(), Http::FilterHeadersStatus::Continue);
  FakeStream& t = stream("/consumer", {}, pushed);
  t.info.filter_state.set(Http::FilterStateNames::kConsumer,
                          std::make_shared<Http::FilterState::StringObject>("dave"));
  EXPECT_EQ(t.run(), Http::FilterHeadersStatus::StopIteration);
}

TEST(RateLimitFactoryTest, RegisteredWithATypedConfigAndSharesTheLocalStore) {
  const Http::FilterType* type = Http::FilterTypeRegistry::get("rate_limit");
  ASSERT_NE(type, nullptr);
  EXPECT_FALSE(type->isTerminal());
  // Its config message is its own: an unknown field is refused with its path.
  google::protobuf::Struct settings;
  (*settings.mutable_fields())["x"].set_number_value(1);
  std::unique_ptr<google::protobuf::Message> config = type->createEmptyConfigProto();
  absl::Status bad =
      Http::decodeFilterConfig(settings, *config, "listeners[0].http_filters[1].config");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "listeners[0].http_filters[1].config.x: unknown field");

  Http::NamedHttpFilterConfigFactory* f = Http::FilterRegistry::get("rate_limit");
  ASSERT_NE(f, nullptr);
  auto policies = std::make_shared<Config::PolicySet>();
  Http::SingletonManager singletons;
  Stats::Store stats(1);
  Http::FactoryContext ctx;
  ctx.stats = &stats;
  ctx.policies = policies;
  ctx.singletons = &singletons;
  config = type->createEmptyConfigProto();
  EXPECT_TRUE(f->createFilterFactory(*config, "f", ctx).ok());
  auto store1 = singletons.getOrCreate<LocalStore>("rate_limit.local_store", nullptr);
  EXPECT_TRUE(f->createFilterFactory(*config, "f", ctx).ok());
  auto store2 = singletons.getOrCreate<LocalStore>("rate_limit.local_store", nullptr);
  EXPECT_EQ(store1, store2) << "one LOCAL store per process, kept across snapshots";
  // Validation only (sluice --validate): no singletons, no stats, nothing started.
  Http::FactoryContext validate;
  validate.policies = policies;
  EXPECT_TRUE(f->createFilterFactory(*config, "f", validate).ok());
}

TEST(RateLimitFilterConfigTest, ValidationOnlyConfigsShareOneStatsSink) {
  PolicyProto p;
  ASSERT_TRUE(Config::loadFromYaml("{name: v, minute: 1}", p).ok());
  FilterConfig a(std::make_shared<LocalStore>(nullptr), nullptr);
  FilterConfig b(std::make_shared<LocalStore>(nullptr), nullptr);
  ASSERT_TRUE(a.addPolicy(p, "p"));
  ASSERT_TRUE(b.addPolicy(p, "p"));
  const RateLimitStats& sa = a.find("v")->stats;
  ASSERT_NE(sa.allowed, nullptr);
  EXPECT_EQ(sa.allowed, sa.limited);
  EXPECT_EQ(sa.allowed, b.find("v")->stats.fail_open) << "no per-config stats memory";
}

// REDIS through the filter, against a real redis-server.
class RateLimitFilterRedisTest : public RateLimitFilterTest {
 protected:
  void SetUp() override {
    if (!Testing::RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
    ASSERT_TRUE(redis_.start());
  }
  std::shared_ptr<FilterConfig> redisConfig(const std::string& extra, uint16_t port) {
    return makeConfig(
        absl::StrCat("- {name: ip, second: 2, minute: 3, limit_by: IP, policy: "
                     "REDIS, redis: {port: ",
                     port, "}", extra, "}"));
  }
  Testing::RedisServer redis_;
};

TEST_F(RateLimitFilterRedisTest, DecidesAfterOneRoundTrip) {
  auto cfg = redisConfig("", redis_.port());
  std::vector<FakeStream*> ss;
  for (int i = 0; i < 4; ++i) {
    FakeStream& s = stream("/ip", {}, cfg);
    EXPECT_EQ(s.run(), Http::FilterHeadersStatus::StopIteration) << "waits for Redis";
    ss.push_back(&s);
  }
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() {
    return ss[0]->continued + ss[1]->continued == 2 && ss[3]->response != nullptr;
  }));
  EXPECT_EQ(ss[2]->continued + (ss[2]->response != nullptr), 1);
  EXPECT_EQ(ss[3]->response->status, 429u);
  EXPECT_EQ(ss[3]->continued, 0);
  EXPECT_TRUE(ss[3]->response->has("retry-after"));
  EXPECT_EQ(ss[0]->upstreamResponse().get("x-ratelimit-remaining-second"), "1");
  EXPECT_EQ(stats_.valueOf("rate_limit.ip.redis_error"), 0);
}

TEST_F(RateLimitFilterRedisTest, RedisDownFailsOpenOrClosedAtOnce) {
  uint16_t dead;
  {
    Testing::TcpListener l;
    dead = l.port();
  }
  auto open = redisConfig("", dead);
  FakeStream& a = stream("/ip", {}, open);
  a.run();
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() {
    return a.status == Http::FilterHeadersStatus::Continue || a.continued == 1;
  }));
  EXPECT_EQ(a.response, nullptr);
  // Backing off now: the next request is decided without waiting.
  FakeStream& b = stream("/ip", {}, open);
  EXPECT_EQ(b.run(), Http::FilterHeadersStatus::Continue);
  EXPECT_EQ(stats_.valueOf("rate_limit.ip.fail_open"), 2);
  EXPECT_EQ(stats_.valueOf("rate_limit.ip.redis_error"), 2);

  auto closed = redisConfig(", fault_tolerant: false", dead);
  FakeStream& c = stream("/ip", {}, closed);
  EXPECT_EQ(c.run(), Http::FilterHeadersStatus::StopIteration);
  ASSERT_NE(c.response, nullptr);
  EXPECT_EQ(c.response->status, 503u);
  EXPECT_EQ(c.local_message, "rate limit service unavailable");
  EXPECT_EQ(c.info.response_flags.toString(), "RLSE");
  EXPECT_EQ(stats_.valueOf("rate_limit.ip.fail_closed"), 1);
}

TEST_F(RateLimitFilterRedisTest, ASilentRedisTimesOut) {
  // Accepts connections and never answers.
  Testing::TcpListener silent;
  std::vector<int> accepted;
  auto accept_event = dispatcher_->createFileEvent(
      silent.fd(),
      [&](uint32_t) {
        int fd;
        while ((fd = silent.accept()) >= 0) accepted.push_back(fd);
      },
      Event::FileReadyType::Read);
  auto cfg = makeConfig(absl::StrCat(
      "- {name: slow, minute: 5, limit_by: IP, policy: REDIS, redis: {port: ", silent.port(),
      ", timeout: 30ms}}\n- {name: slow-closed, minute: 5, limit_by: IP, policy: REDIS, "
      "fault_tolerant: false, redis: {port: ",
      silent.port(), ", timeout: 30ms}}"));
  sluice::config::v1::RouteTable rt;
  ASSERT_TRUE(Config::loadFromYaml(R"(
name: s
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: o, match: {prefix: /open}, direct_response: {status: 200}, rate_limit: slow}
  - {name: c, match: {prefix: /closed}, direct_response: {status: 200}, rate_limit: slow-closed}
)",
                                   rt)
                  .ok());
  table_ = *Testing::compileRouteTable(rt);
  const auto start = std::chrono::steady_clock::now();
  FakeStream& o = stream("/open", {}, cfg);
  FakeStream& c = stream("/closed", {}, cfg);
  EXPECT_EQ(o.run(), Http::FilterHeadersStatus::StopIteration);
  EXPECT_EQ(c.run(), Http::FilterHeadersStatus::StopIteration);
  ASSERT_TRUE(
      Testing::runUntil(*dispatcher_, [&]() { return o.continued == 1 && c.response != nullptr; }));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(29));
  EXPECT_LT(took, std::chrono::milliseconds(500));
  EXPECT_EQ(c.response->status, 503u);
  EXPECT_EQ(stats_.valueOf("rate_limit.slow.redis_timeout"), 1);
  EXPECT_EQ(stats_.valueOf("rate_limit.slow.fail_open"), 1);
  EXPECT_EQ(stats_.valueOf("rate_limit.slow-closed.fail_closed"), 1);
  for (int fd : accepted) close(fd);
}

TEST_F(RateLimitFilterRedisTest, AStreamThatGoesAwayIsNeverCalledBack) {
  auto cfg = redisConfig("", redis_.port());
  FakeStream& s = stream("/ip", {}, cfg);
  ASSERT_EQ(s.run(), Http::FilterHeadersStatus::StopIteration);
  s.filter->onDestroy();
  FakeStream& t = stream("/ip", {}, cfg);
  ASSERT_EQ(t.run(), Http::FilterHeadersStatus::StopIteration);
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return t.continued == 1; }));
  Testing::runPending(*dispatcher_);
  EXPECT_EQ(s.continued, 0);
  EXPECT_EQ(s.response, nullptr);
}

}  // namespace
}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
