#include "source/extensions/filters/http/cors/filter.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/config/v1/route.pb.h"
#include "source/common/config/utility.h"
#include "source/common/event/dispatcher.h"
#include "source/common/router/config.h"
#include "source/common/upstream/cluster_manager.h"
#include "source/extensions/filters/http/cors/config.h"
#include "test/test_common/filter_callbacks.h"
#include "test/test_common/route_table.h"

namespace sluice {
namespace Extensions {
namespace Cors {
namespace {

using testing::HasSubstr;

// Per-route policies: a virtual host replaces the listener's, a route replaces its host's or
// switches CORS off.
constexpr char kRoutes[] = R"(
name: t
virtual_hosts:
- name: partners
  domains: ["partners.example"]
  filter_config: {cors: {origins: ["https://partner.example"], credentials: true}}
  routes:
  - {name: off, match: {prefix: /off}, direct_response: {status: 200},
     filter_config: {cors: {disabled: true}}}
  - {name: open, match: {prefix: /open}, direct_response: {status: 200},
     filter_config: {cors: {origins: ["*"]}}}
  - {name: host-policy, match: {prefix: /}, direct_response: {status: 200}}
- name: all
  domains: ["*"]
  routes:
  - {name: default, match: {prefix: /}, direct_response: {status: 200}}
)";

// The filter's view of a stream, as the connection manager gives it: a response the filter
// starts goes through every encoder filter, this one included.
class FakeStream : public Testing::FakeFilterCallbacks {
 public:
  FakeStream(Event::Dispatcher& d, Upstream::ClusterManager& cm) : FakeFilterCallbacks(d, &cm) {}

  using Testing::FakeFilterCallbacks::sendLocalReply;
  void sendLocalReply(uint32_t status, absl::string_view, absl::optional<Http::ResponseFlag>,
                      std::function<void(Http::ResponseHeaderMap&)>,
                      absl::optional<Http::GatewayResponseType> = absl::nullopt) override {
    auto h = std::make_unique<Http::ResponseHeaderMap>();
    h->status = status;
    encodeHeaders(std::move(h), false);
  }
  void encodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override {
    response = std::move(headers);
    response_end = end_stream;
    filter->encodeHeaders(*response, end_stream);
  }
  bool responseStarted() const override { return response != nullptr; }

  // The upstream's response (with `headers`) back through the filter.
  Http::ResponseHeaderMap& upstreamResponse(
      std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto h = std::make_unique<Http::ResponseHeaderMap>();
    h->status = 200;
    for (auto& [k, v] : headers) h->add(k, v);
    encodeHeaders(std::move(h), true);
    return *response;
  }

  std::shared_ptr<CorsFilter> filter;
  Http::ResponseHeaderMapPtr response;
  bool response_end = false;
};

class CorsFilterTest : public testing::Test {
 protected:
  CorsFilterTest() {
    sluice::config::v1::RouteTable rt;
    EXPECT_TRUE(Config::loadFromYaml(kRoutes, rt).ok());
    auto table = Testing::compileRouteTable(rt);
    EXPECT_TRUE(table.ok()) << table.status();
    table_ = *table;
    CorsSettings s;
    s.origins = {"https://app.example", R"(https://.*\.app\.example)"};
    s.headers = {"Authorization", "Content-Type"};
    s.exposed_headers = {"X-Total"};
    s.max_age = 600;
    s.private_network = true;
    Config::ErrorList errors;
    listener_ = CorsPolicy::create(s, "cfg", errors);
    EXPECT_TRUE(errors.empty()) << errors.status();
  }

  FakeStream& stream(const std::string& method, const std::string& path,
                     std::vector<std::pair<std::string, std::string>> headers,
                     const std::string& host = "api.example") {
    streams_.push_back(std::make_unique<FakeStream>(*dispatcher_, cm_));
    FakeStream& s = *streams_.back();
    s.request.method = method;
    s.request.path = path;
    s.request.add("host", host);
    for (auto& [k, v] : headers) s.request.add(k, v);
    s.route_entry = table_->route(s.request);
    s.filter = std::make_shared<CorsFilter>(listener_);
    s.filter->setDecoderFilterCallbacks(s);
    s.filter->setEncoderFilterCallbacks(s);
    return s;
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Upstream::ClusterManager cm_{*dispatcher_, 1};
  sluice::Router::RouteTableConstSharedPtr table_;
  CorsPolicyConstSharedPtr listener_;
  std::vector<std::unique_ptr<FakeStream>> streams_;
};

TEST_F(CorsFilterTest, PreflightIsAnsweredWithEveryHeader) {
  FakeStream& s = stream("OPTIONS", "/x",
                         {{"origin", "https://app.example"},
                          {"access-control-request-method", "PUT"},
                          {"access-control-request-headers", "x-ignored"},
                          {"access-control-request-private-network", "true"}});
  EXPECT_EQ(s.filter->decodeHeaders(s.request, true), Http::FilterHeadersStatus::StopIteration);
  ASSERT_NE(s.response, nullptr);
  EXPECT_TRUE(s.response_end);
  const Http::ResponseHeaderMap& h = *s.response;
  EXPECT_EQ(h.status, 200u);
  // Exactly these, in this order; the filter's own encodeHeaders left its answer alone.
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& e : h.entries()) got.emplace_back(e.key, e.value);
  EXPECT_EQ(
      got,
      (std::vector<std::pair<std::string, std::string>>{
          {"access-control-allow-origin", "https://app.example"},
          {"vary", "Origin"},
          {"access-control-allow-headers", "Authorization,Content-Type"},
          {"access-control-allow-methods", "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"},
          {"access-control-max-age", "600"},
          {"access-control-allow-private-network", "true"},
          {"content-length", "0"},
      }));
}

TEST_F(CorsFilterTest, PreflightFromARefusedOriginGetsNoCorsHeaders) {
  FakeStream& s = stream("OPTIONS", "/x",
                         {{"origin", "https://evil.example"},
                          {"access-control-request-method", "PUT"},
                          {"access-control-request-private-network", "true"}});
  EXPECT_EQ(s.filter->decodeHeaders(s.request, true), Http::FilterHeadersStatus::StopIteration);
  ASSERT_NE(s.response, nullptr);
  EXPECT_EQ(s.response->status, 200u);
  std::vector<std::string> names;
  for (const auto& e : s.response->entries()) names.push_back(e.key);
  EXPECT_EQ(names, (std::vector<std::string>{"vary", "content-length"}));
  EXPECT_EQ(s.response->get("vary"), "Origin");
}

TEST_F(CorsFilterTest, OptionsWithoutRequestMethodIsAnActualRequest) {
  FakeStream& s = stream("OPTIONS", "/x", {{"origin", "https://a.app.example"}});
  EXPECT_EQ(s.filter->decodeHeaders(s.request, true), Http::FilterHeadersStatus::Continue);
  EXPECT_EQ(s.response, nullptr);
  Http::ResponseHeaderMap& h = s.upstreamResponse();
  EXPECT_EQ(h.get("access-control-allow-origin"), "https://a.app.example");
  EXPECT_EQ(h.get("access-control-expose-headers"), "X-Total");
  EXPECT_FALSE(h.has("access-control-allow-methods"));
  EXPECT_FALSE(h.has("access-control-max-age"));
}

TEST_F(CorsFilterTest, ActualResponseHeadersReplaceTheUpstreams) {
  FakeStream& s = stream("GET", "/x", {{"origin", "https://app.example:443"}});
  EXPECT_EQ(s.filter->decodeHeaders(s.request, true), Http::FilterHeadersStatus::Continue);
  Http::ResponseHeaderMap& h = s.upstreamResponse({{"access-control-allow-origin", "*"},
                                                   {"access-control-expose-headers", "X-Up"},
                                                   {"vary", "Accept-Encoding"}});
  EXPECT_EQ(h.count("access-control-allow-origin"), 1u);
  EXPECT_EQ(h.get("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(h.get("access-control-expose-headers"), "X-Total");
  EXPECT_EQ(h.get("vary"), "Accept-Encoding, Origin");
  EXPECT_FALSE(h.has("access-control-allow-credentials"));
}

TEST_F(CorsFilterTest, RefusedOriginLosesTheUpstreamsCorsHeaders) {
  FakeStream& s = stream("GET", "/x", {{"origin", "https://evil.example"}});
  EXPECT_EQ(s.filter->decodeHeaders(s.request, true), Http::FilterHeadersStatus::Continue);
  Http::ResponseHeaderMap& h =
      s.upstreamResponse({{"access-control-allow-origin", "https://evil.example"},
                          {"access-control-allow-credentials", "true"},
                          {"access-control-expose-headers", "X-Up"},
                          {"x-other", "kept"}});
  EXPECT_FALSE(h.has("access-control-allow-origin"));
  EXPECT_FALSE(h.has("access-control-allow-credentials"));
  EXPECT_FALSE(h.has("access-control-expose-headers"));
  EXPECT_EQ(h.get("vary"), "Origin");
  EXPECT_EQ(h.get("x-other"), "kept");
}

TEST_F(CorsFilterTest, RequestWithoutOriginGetsOnlyVaryOrigin) {
  FakeStream& s = stream("OPTIONS", "/x", {{"access-control-request-method", "PUT"}});
  EXPECT_EQ(s.filter->decodeHeaders(s.request, true), Http::FilterHeadersStatus::Continue);
  Http::ResponseHeaderMap& h = s.upstreamResponse({{"access-control-allow-origin", "*"}});
  // The listener's policy lists origins: its answer depends on the Origin, so a cache must not
  // serve this response to a CORS request (Fetch 3.2.5). Nothing else changes.
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.get("access-control-allow-origin"), "*");
  EXPECT_EQ(h.get("vary"), "Origin");
}

TEST_F(CorsFilterTest, RouteAndVirtualHostPoliciesReplaceTheListeners) {
  // The virtual host's policy: another origin, credentials.
  FakeStream& host =
      stream("GET", "/x", {{"origin", "https://partner.example"}}, "partners.example");
  host.filter->decodeHeaders(host.request, true);
  Http::ResponseHeaderMap& h = host.upstreamResponse();
  EXPECT_EQ(h.get("access-control-allow-origin"), "https://partner.example");
  EXPECT_EQ(h.get("access-control-allow-credentials"), "true");
  EXPECT_FALSE(h.has("access-control-expose-headers")) << "nothing of the listener's is merged";
  FakeStream& app = stream("GET", "/x", {{"origin", "https://app.example"}}, "partners.example");
  app.filter->decodeHeaders(app.request, true);
  EXPECT_FALSE(app.upstreamResponse().has("access-control-allow-origin"));

  // A route's own policy.
  FakeStream& open =
      stream("GET", "/open", {{"origin", "https://any.example"}}, "partners.example");
  open.filter->decodeHeaders(open.request, true);
  Http::ResponseHeaderMap& o = open.upstreamResponse();
  EXPECT_EQ(o.get("access-control-allow-origin"), "*");
  EXPECT_FALSE(o.has("vary"));

  // Switched off: preflights go on, responses are untouched.
  FakeStream& off =
      stream("OPTIONS", "/off",
             {{"origin", "https://partner.example"}, {"access-control-request-method", "PUT"}},
             "partners.example");
  EXPECT_EQ(off.filter->decodeHeaders(off.request, true), Http::FilterHeadersStatus::Continue);
  EXPECT_EQ(off.response, nullptr);
  EXPECT_EQ(off.upstreamResponse().size(), 0u);
}

TEST_F(CorsFilterTest, LocalReplyBeforeTheFilterRanStillGetsHeaders) {
  // An earlier filter (auth placed first) answered 401: decodeHeaders never ran here.
  FakeStream& s = stream("GET", "/x", {{"origin", "https://app.example"}});
  s.sendLocalReply(401, "no credentials", absl::nullopt, nullptr);
  EXPECT_EQ(s.response->get("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(s.response->get("vary"), "Origin");
  EXPECT_EQ(s.response->get("access-control-expose-headers"), "X-Total");
}

TEST(CorsRouteConfigTest, DisabledTakesNoOtherFieldAndErrorsNameTheirFields) {
  sluice::config::v1::RouteTable rt;
  ASSERT_TRUE(Config::loadFromYaml(R"(
name: t
virtual_hosts:
- name: v
  domains: ["*"]
  filter_config: {cors: {origins: ["https://ok.example", "(x"]}}
  routes:
  - {match: {prefix: /a}, direct_response: {status: 200},
     filter_config: {cors: {disabled: true, max_age: 0}}}
  - {match: {prefix: /}, direct_response: {status: 200},
     filter_config: {cors: {methods: [GET, FETCH]}}}
)",
                                   rt)
                  .ok());
  auto table = Testing::compileRouteTable(rt);
  ASSERT_FALSE(table.ok());
  const std::string e(table.status().message());
  EXPECT_THAT(e, HasSubstr("route_tables[0].virtual_hosts[0].filter_config.cors.origins[1]: "
                           "invalid regex: missing ): (x"));
  EXPECT_THAT(e, HasSubstr("virtual_hosts[0].routes[0].filter_config.cors.disabled: no other "
                           "field may be set with disabled: true"));
  EXPECT_THAT(e, HasSubstr("virtual_hosts[0].routes[1].filter_config.cors.methods[1]: \"FETCH\" "
                           "is not one of"));
}

}  // namespace
}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
