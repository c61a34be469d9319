// The http_log entry (serializeEntry: Kong's fields, redaction, UTF-8, query parsing) and the
// filter's onDestroy() handing entries to the route's or the listener's sink.
#include "source/extensions/filters/http/http_log/filter.h"

#include <signal.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/common/common/json_value.h"
#include "source/common/config/utility.h"
#include "source/common/event/dispatcher.h"
#include "source/common/router/config.h"
#include "source/common/stats/stats.h"
#include "test/test_common/filter_callbacks.h"
#include "test/test_common/network_utility.h"
#include "test/test_common/route_table.h"
#include "test/test_common/test_http_server.h"

namespace sluice {
namespace Extensions {
namespace HttpLog {
namespace {

const bool kSigpipeIgnored = signal(SIGPIPE, SIG_IGN) != SIG_ERR;

class EntryTest : public testing::Test {
 protected:
  EntryTest() {
    info_.start = std::chrono::steady_clock::now() - std::chrono::milliseconds(250);
    info_.start_wall =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
    info_.request_id = "rid-1";
    info_.status = 201;
    info_.bytes_received = 10;
    info_.bytes_sent = 20;
    info_.upstream_time_us = 200500;  // 200 ms of the 250
    info_.upstream_cluster = "users";
    request_.method = "POST";
    request_.path = "/v1/users?b=2";
    request_.add("host", "api.example.com");
    request_.add("x-forwarded-proto", "https");
    request_.add("accept", "a");
    request_.add("accept", "b");
    request_.add("authorization", "Bearer secret-token");
    response_.status = 201;
    response_.add("content-type", "application/json");
    response_.add("set-cookie", "sid=secret-cookie");
  }

  Json::Value entry() {
    EntryInput in;
    in.info = &info_;
    in.request = &request_;
    in.response = &response_;
    in.client_ip = "10.1.2.3";
    in.now = info_.start + std::chrono::milliseconds(250);
    raw_ = serializeEntry(in, names_);
    auto v = Json::parse(raw_);  // strict: valid UTF-8, no duplicate names
    EXPECT_TRUE(v.ok()) << v.status() << "\n" << raw_;
    return v.ok() ? *v : Json::Value();
  }
  static std::string str(const Json::Value& v, absl::string_view path1,
                         absl::string_view path2 = "") {
    const Json::Value* x = v.find(path1);
    if (x != nullptr && !path2.empty()) x = x->find(path2);
    return x == nullptr ? "<missing>" : x->str();
  }

  Http::StreamInfo info_;
  Http::RequestHeaderMap request_;
  Http::ResponseHeaderMap response_;
  Http::CredentialNames names_;
  std::string raw_;
};

TEST_F(EntryTest, KongFields) {
  info_.original_path = "/v1/users/../users?b=2&access_token=tok-value";
  info_.filter_state.set(Http::FilterStateNames::kConsumer,
                         std::make_shared<Http::FilterState::StringObject>("alice"));
  info_.filter_state.set(Http::FilterStateNames::kCredential,
                         std::make_shared<Http::FilterState::StringObject>("key:abc"));
  info_.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  Json::Value e = entry();
  EXPECT_EQ("POST", str(e, "request", "method"));
  EXPECT_EQ("/v1/users/../users?b=2&access_token=REDACTED", str(e, "request", "uri"));
  EXPECT_EQ("https://api.example.com/v1/users/../users?b=2&access_token=REDACTED",
            str(e, "request", "url"));
  EXPECT_EQ("/v1/users?b=2", str(e, "upstream_uri"));
  const Json::Value* headers = e.find("request")->find("headers");
  ASSERT_NE(nullptr, headers);
  ASSERT_TRUE(headers->find("accept")->isArray());
  EXPECT_EQ("a", headers->find("accept")->items()[0].str());
  EXPECT_EQ("b", headers->find("accept")->items()[1].str());
  EXPECT_EQ("REDACTED", str(*headers, "authorization"));
  EXPECT_EQ("REDACTED", e.find("request")->find("querystring")->find("access_token")->str());
  EXPECT_EQ("201", str(e, "response", "status"));
  EXPECT_EQ("REDACTED", e.find("response")->find("headers")->find("set-cookie")->str());
  EXPECT_EQ("250", str(e, "latencies", "request"));
  EXPECT_EQ("200", str(e, "latencies", "proxy"));
  EXPECT_EQ("50", str(e, "latencies", "kong"));
  EXPECT_EQ("users", str(e, "service", "name"));
  EXPECT_EQ("alice", str(e, "consumer", "username"));
  EXPECT_EQ("key:abc", str(e, "authenticated_entity", "id"));
  EXPECT_EQ("10.1.2.3", str(e, "client_ip"));
  EXPECT_EQ("1700000000123", str(e, "started_at"));
  EXPECT_EQ("rid-1", str(e, "request_id"));
  EXPECT_EQ("4bf92f3577b34da6a3ce929d0e0e4736", str(e, "trace_id"));
  EXPECT_EQ(nullptr, e.find("route"));  // no route matched
  // Sizes: the request line and headers as HTTP/1.1 carries them, plus the bodies.
  const std::string request_line = "POST " + info_.original_path + " HTTP/1.1\r\n";
  uint64_t header_bytes = 2;
  for (const auto& h : request_.entries()) header_bytes += h.key.size() + h.value.size() + 4;
  EXPECT_EQ(std::to_string(request_line.size() + header_bytes + 10), str(e, "request", "size"));
  EXPECT_EQ(raw_.find("secret"), std::string::npos);
  EXPECT_EQ(raw_.find("tok-value"), std::string::npos);
}

TEST_F(EntryTest, WithoutUpstreamOrResponse) {
  info_.upstream_time_us = -1;
  info_.upstream_cluster.clear();
  info_.status = 0;
  EntryInput in;
  in.info = &info_;
  in.request = &request_;
  in.now = info_.start + std::chrono::milliseconds(7);
  raw_ = serializeEntry(in, names_);
  auto e = Json::parse(raw_);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ("-1", str(*e, "latencies", "proxy"));
  EXPECT_EQ("7", str(*e, "latencies", "kong"));
  EXPECT_EQ("7", str(*e, "latencies", "request"));
  EXPECT_EQ("0", str(*e, "response", "status"));
  EXPECT_TRUE(e->find("response")->find("headers")->members().empty());
  EXPECT_EQ(nullptr, e->find("service"));
  EXPECT_EQ(nullptr, e->find("consumer"));
  EXPECT_EQ(nullptr, e->find("trace_id"));
}

TEST_F(EntryTest, QueryStringLikeKong) {
  names_.addQueryParam("apikey");
  request_.path =
      "/p?a=1&a=2&a=3&flag&sp=a+b%20c&enc%5Bx%5D=%E2%82%AC&&bad=%zz&api%6Bey=k1&apikey=k2";
  Json::Value e = entry();
  const Json::Value* q = e.find("request")->find("querystring");
  ASSERT_NE(nullptr, q);
  ASSERT_TRUE(q->find("a")->isArray());
  EXPECT_EQ(3u, q->find("a")->items().size());
  EXPECT_TRUE(q->find("flag")->isBool());
  EXPECT_TRUE(q->find("flag")->boolValue());
  EXPECT_EQ("a b c", q->find("sp")->str());
  EXPECT_EQ("\xE2\x82\xAC", q->find("enc[x]")->str());
  EXPECT_EQ("%zz", q->find("bad")->str());
  // A credential's name written with an escape is still a credential.
  ASSERT_TRUE(q->find("apikey")->isArray());
  EXPECT_EQ("REDACTED", q->find("apikey")->items()[0].str());
  EXPECT_EQ("REDACTED", q->find("apikey")->items()[1].str());
  EXPECT_EQ(raw_.find("k1"), std::string::npos);
  EXPECT_EQ(raw_.find("k2"), std::string::npos);
  EXPECT_EQ(
      "/p?a=1&a=2&a=3&flag&sp=a+b%20c&enc%5Bx%5D=%E2%82%AC&&bad=%zz&api%6Bey=REDACTED&"
      "apikey=REDACTED",
      str(e, "request", "uri"));

  std::string many = "/p?";
  for (int i = 0; i < 150; ++i) absl::StrAppend(&many, "k", i, "=", i, "&");
  request_.path = many;
  e = entry();
  EXPECT_EQ(100u, e.find("request")->find("querystring")->members().size());  // as nginx
}

TEST_F(EntryTest, BytesThatAreNotUtf8StayValidJson) {
  request_.add("x-bin", std::string("a\xff\xfe"
                                    "b\xc3\x28"
                                    "\xed\xa0\x80"
                                    "\xf0\x9f\x98\x80",
                                    13));
  request_.path = "/p?x=%ff%fe";
  request_.add("x-ctl", std::string("\x01\"\\", 3));
  Json::Value e = entry();
  const Json::Value* h = e.find("request")->find("headers");
  // Invalid bytes (a lone 0xff, a broken 2-byte sequence, a surrogate) become U+FFFD; the valid
  // 4-byte emoji stays.
  EXPECT_EQ(
      "a\xEF\xBF\xBD\xEF\xBF\xBD"
      "b\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
      "\xF0\x9F\x98\x80",
      h->find("x-bin")->str());
  EXPECT_EQ(std::string("\x01\"\\", 3), h->find("x-ctl")->str());
  EXPECT_EQ("\xEF\xBF\xBD\xEF\xBF\xBD", e.find("request")->find("querystring")->find("x")->str());
}

TEST_F(EntryTest, PolicyCredentialHeadersAnyCase) {
  names_.addHeader("X-Partner-Key");
  request_.add("x-partner-key", "pk-secret");
  request_.add("cookie", "c-secret");
  request_.add("proxy-authorization", "p-secret");
  request_.add("x-api-key", "x-secret");
  Json::Value e = entry();
  EXPECT_EQ(raw_.find("secret"), std::string::npos) << raw_;
  EXPECT_EQ("REDACTED", e.find("request")->find("headers")->find("x-partner-key")->str());
}

// ---- The filter with a sink and a collector ---------------------------------------------------

using Server = Testing::TestHttpServer;

class HttpLogFilterTest : public testing::Test {
 protected:
  LogConfigConstSharedPtr compile(const std::string& yaml) {
    ConfigProto proto;
    absl::Status s = Config::loadFromYaml(yaml, proto);
    EXPECT_TRUE(s.ok()) << s;
    Config::ErrorList errors;
    auto c = compileConfig(
        proto, [](absl::string_view f) { return std::string(f); }, true, errors);
    EXPECT_TRUE(errors.empty()) << errors.status();
    return c;
  }

  std::string url(const Server& s) { return absl::StrCat("http://127.0.0.1:", s.port(), "/logs"); }

  // One stream through a filter of `config` on `route`, ended with onDestroy().
  void stream(const FilterConfigConstSharedPtr& config, const Router::RouteEntry* route,
              const std::string& path) {
    Testing::FakeFilterCallbacks cb(*dispatcher_);
    cb.request.method = "GET";
    cb.request.path = path;
    cb.route_entry = route;
    cb.info.start = dispatcher_->now();
    cb.info.status = 200;
    Http::ResponseHeaderMap response;
    response.status = 200;
    cb.response_headers = &response;
    HttpLogFilter filter(config);
    filter.setDecoderFilterCallbacks(cb);
    EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter.decodeHeaders(cb.request, true));
    filter.onDestroy();
  }

  static std::vector<std::string> uris(const Server& s) {
    std::vector<std::string> out;
    for (const auto& r : s.requests()) {
      auto v = Json::parse(r.body);
      EXPECT_TRUE(v.ok()) << r.body;
      if (v.ok()) out.push_back(v->find("request")->find("uri")->str());
    }
    return out;
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store stats_{1};
  Http::SingletonManager singletons_;
};

TEST_F(HttpLogFilterTest, RouteConfigReplacesTheListenersAndDisables) {
  auto ok = [](const Server::Request&) { return Server::Action(); };
  Server a(*dispatcher_, ok);
  Server b(*dispatcher_, ok);
  auto listener = compile("http_endpoint: " + url(a) + "\nflush_timeout: 0s");
  auto fc = std::make_shared<FilterConfig>(listener, Http::CredentialNames(), &singletons_, &stats_,
                                           nullptr);
  sluice::config::v1::RouteTable table;
  ASSERT_TRUE(Config::loadFromYaml(absl::StrCat(R"(
name: main
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - name: quiet
    match: {prefix: /quiet}
    route: {cluster: c}
    filter_config: {http_log: {disabled: true}}
  - name: other
    match: {prefix: /other}
    route: {cluster: c}
    filter_config: {http_log: {http_endpoint: ")",
                                                url(b), R"(", flush_timeout: 0s}}
  - name: default
    match: {prefix: /}
    route: {cluster: c}
)"),
                                   table)
                  .ok());
  auto routes = Testing::compileRouteTable(table);
  ASSERT_TRUE(routes.ok()) << routes.status();
  Http::RequestHeaderMap h;
  auto route_for = [&](const std::string& path) {
    h.path = path;
    h.method = "GET";
    return (*routes)->route(h);
  };
  stream(fc, route_for("/x"), "/x");
  stream(fc, route_for("/quiet/1"), "/quiet/1");
  stream(fc, route_for("/other/1"), "/other/1");
  stream(fc, nullptr, "/no-route");
  ASSERT_TRUE(Testing::runUntil(
      *dispatcher_, [&]() { return a.requests().size() == 2 && b.requests().size() == 1; }));
  Testing::runPending(*dispatcher_);
  EXPECT_EQ((std::vector<std::string>{"/x", "/no-route"}), uris(a));
  EXPECT_EQ((std::vector<std::string>{"/other/1"}), uris(b));
  // Both sinks are process-wide singletons: another listener config with the same settings
  // shares the first one.
  auto again =
      std::make_shared<FilterConfig>(compile("http_endpoint: " + url(a) + "\nflush_timeout: 0s"),
                                     Http::CredentialNames(), &singletons_, &stats_, nullptr);
  EXPECT_EQ(fc->sinkFor(fc->listener()), again->sinkFor(again->listener()));
}

TEST_F(HttpLogFilterTest, NothingWithoutASink) {
  // Only validating: no singletons, no sink, and the filter does nothing.
  auto fc = std::make_shared<FilterConfig>(compile("http_endpoint: http://127.0.0.1:1/"),
                                           Http::CredentialNames(), nullptr, nullptr, nullptr);
  EXPECT_EQ(nullptr, fc->sinkFor(fc->listener()));
  stream(fc, nullptr, "/x");
}

}  // namespace
}  // namespace HttpLog
}  // namespace Extensions
}  // namespace sluice
