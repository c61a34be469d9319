#include "source/common/router/config.h"

#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "re2/re2.h"
#include "source/common/config/utility.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Router {
namespace {

using sluice::config::v1::RouteTable;
using testing::HasSubstr;

using ClusterExists = std::function<bool(const std::string&)>;

absl::StatusOr<RouteTableConstSharedPtr> create(const std::string& yaml,
                                                const ClusterExists& exists = nullptr,
                                                Stats::Store* stats = nullptr) {
  RouteTable config;
  absl::Status s = Config::loadFromYaml(yaml, config);
  EXPECT_TRUE(s.ok()) << s;
  return RouteTableImpl::create(config, "route_tables[0]", stats, exists);
}

RouteTableConstSharedPtr table(const std::string& yaml) {
  auto t = create(yaml);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : nullptr;
}

std::string errorOf(const std::string& yaml, const ClusterExists& exists = nullptr) {
  auto t = create(yaml, exists);
  EXPECT_FALSE(t.ok()) << yaml;
  return t.ok() ? "" : std::string(t.status().message());
}

Http::RequestHeaderMap request(const std::string& path, const std::string& host = "example.com",
                               const std::string& method = "GET") {
  Http::RequestHeaderMap h;
  h.method = method;
  h.path = path;
  if (!host.empty()) {
    h.add("host", host);
  }
  return h;
}

// The name of the route `headers` match, or "<none>".
std::string routeName(const RouteTableImpl& t, const Http::RequestHeaderMap& headers) {
  const RouteEntry* r = t.route(headers);
  return r == nullptr ? "<none>" : r->name();
}

std::string routeName(const RouteTableImpl& t, const std::string& path,
                      const std::string& host = "example.com", const std::string& method = "GET") {
  return routeName(t, request(path, host, method));
}

// ---- Virtual hosts -------------------------------------------------------------------------

constexpr char kHostsYaml[] = R"(
name: rt
virtual_hosts:
- name: wild
  domains: ["*.example.com"]
  routes: [{name: wild, match: {prefix: /}, direct_response: {status: 200}}]
- name: exact
  domains: [api.example.com, "API2.Example.com"]
  routes: [{name: exact, match: {prefix: /}, direct_response: {status: 200}}]
- name: deeper
  domains: ["*.eu.example.com"]
  routes: [{name: deeper, match: {prefix: /}, direct_response: {status: 200}}]
- name: default
  domains: ["*"]
  routes: [{name: default, match: {prefix: /}, direct_response: {status: 200}}]
)";

TEST(VirtualHostTest, ExactBeatsSuffixBeatsDefault) {
  auto t = table(kHostsYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("exact", routeName(*t, "/", "api.example.com"));
  EXPECT_EQ("wild", routeName(*t, "/", "www.example.com"));
  EXPECT_EQ("default", routeName(*t, "/", "example.org"));
  EXPECT_EQ("default", routeName(*t, "/", ""));  // no Host header
}

TEST(VirtualHostTest, LongestSuffixFirstRegardlessOfOrder) {
  auto t = table(kHostsYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("deeper", routeName(*t, "/", "x.eu.example.com"));
  EXPECT_EQ("deeper", routeName(*t, "/", "a.b.eu.example.com"));
  EXPECT_EQ("wild", routeName(*t, "/", "eu.example.com"));
}

TEST(VirtualHostTest, WildcardNeedsANonEmptyLabel) {
  auto t = table(kHostsYaml);
  ASSERT_NE(nullptr, t);
  // "*.example.com" does not match the bare domain.
  EXPECT_EQ("default", routeName(*t, "/", "example.com"));
  EXPECT_EQ("default", routeName(*t, "/", ".example.com"));
  EXPECT_EQ("default", routeName(*t, "/", "badexample.com"));
}

TEST(VirtualHostTest, PortAndCaseIgnored) {
  auto t = table(kHostsYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("exact", routeName(*t, "/", "api.example.com:8443"));
  EXPECT_EQ("exact", routeName(*t, "/", "API.Example.COM"));
  EXPECT_EQ("exact", routeName(*t, "/", "api2.example.com"));
  EXPECT_EQ("wild", routeName(*t, "/", "WWW.EXAMPLE.COM:80"));
}

TEST(VirtualHostTest, Ipv6HostWithPort) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["[::1]"]
  routes: [{name: v6, match: {prefix: /}, direct_response: {status: 200}}]
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("v6", routeName(*t, "/", "[::1]:8080"));
  EXPECT_EQ("v6", routeName(*t, "/", "[::1]"));
}

TEST(VirtualHostTest, NoDefaultMeansNoRoute) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: [a.com]
  routes: [{name: a, match: {prefix: /}, direct_response: {status: 200}}]
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("a", routeName(*t, "/", "a.com"));
  EXPECT_EQ("<none>", routeName(*t, "/", "b.com"));
  EXPECT_EQ(nullptr, t->virtualHost("b.com"));
  ASSERT_NE(nullptr, t->virtualHost("a.com"));
  EXPECT_EQ("vhost0", t->virtualHost("a.com")->name());
}

TEST(VirtualHostTest, RouteLookupGivesTheVirtualHostEvenWithoutARoute) {
  auto t = table(R"(
name: rt
virtual_hosts:
- name: api
  domains: [a.com]
  gateway_responses: {RESOURCE_NOT_FOUND: {status_code: 410}}
  routes: [{name: a, match: {prefix: /a}, direct_response: {status: 200}}]
- name: other
  domains: [b.com]
  routes: [{name: b, match: {prefix: /}, direct_response: {status: 200}}]
)");
  ASSERT_NE(nullptr, t);
  EXPECT_TRUE(t->hasGatewayResponses());
  const VirtualHostImpl* vh = nullptr;
  const RouteEntry* r = t->route(request("/a", "a.com"), vh);
  ASSERT_NE(nullptr, r);
  EXPECT_EQ("a", r->name());
  ASSERT_NE(nullptr, vh);
  EXPECT_EQ("api", vh->name());
  // No route matched: the virtual host is still known, with its gateway responses.
  EXPECT_EQ(nullptr, t->route(request("/zzz", "A.com:80"), vh));
  ASSERT_NE(nullptr, vh);
  EXPECT_EQ("api", vh->name());
  ASSERT_NE(nullptr, vh->gatewayResponses());
  EXPECT_EQ(410u,
            vh->gatewayResponses()->find(Http::GatewayResponseType::ResourceNotFound)->status_code);
  EXPECT_NE(nullptr, t->route(request("/", "b.com"), vh));
  EXPECT_EQ(nullptr, vh->gatewayResponses());
  // No virtual host either.
  EXPECT_EQ(nullptr, t->route(request("/", "c.com"), vh));
  EXPECT_EQ(nullptr, vh);
  EXPECT_FALSE(table(kHostsYaml)->hasGatewayResponses());
}

TEST(ConfigErrorTest, GatewayResponsesOfAVirtualHost) {
  EXPECT_EQ(errorOf(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  gateway_responses: {THROTLED: {}, THROTTLED: {status_code: 42}}
)"),
            "route_tables[0].virtual_hosts[0].gateway_responses.THROTLED: unknown gateway "
            "response type (one of RESOURCE_NOT_FOUND, UNAUTHORIZED, ACCESS_DENIED, EXPIRED_TOKEN, "
            "INVALID_API_KEY, THROTTLED, QUOTA_EXCEEDED, REQUEST_TOO_LARGE, BAD_REQUEST_BODY, "
            "BAD_REQUEST_PARAMETERS, UNSUPPORTED_MEDIA_TYPE, INTEGRATION_FAILURE, "
            "INTEGRATION_TIMEOUT, DEFAULT_4XX, DEFAULT_5XX)\n"
            "route_tables[0].virtual_hosts[0].gateway_responses.THROTTLED.status_code: must be 0 "
            "(the gateway's status) or 200..599");
}

// ---- Path matching -------------------------------------------------------------------------

constexpr char kPathsYaml[] = R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: exact, match: {path: /exact}, direct_response: {status: 200}}
  - {name: regex, match: {regex: "/items/[0-9]+"}, direct_response: {status: 200}}
  - {name: api, match: {prefix: /api/}, direct_response: {status: 200}}
  - {name: ci, match: {prefix: /CaseLess, case_sensitive: false}, direct_response: {status: 200}}
  - {name: ci_exact, match: {path: /Upper, case_sensitive: false}, direct_response: {status: 200}}
)";

TEST(PathMatchTest, PrefixPathRegex) {
  auto t = table(kPathsYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("exact", routeName(*t, "/exact"));
  EXPECT_EQ("exact", routeName(*t, "/exact?x=1"));  // the query is not part of the path
  EXPECT_EQ("<none>", routeName(*t, "/exact/"));
  EXPECT_EQ("<none>", routeName(*t, "/exactly"));
  EXPECT_EQ("<none>", routeName(*t, "/Exact"));
  EXPECT_EQ("regex", routeName(*t, "/items/123"));
  EXPECT_EQ("regex", routeName(*t, "/items/123?q=a"));
  EXPECT_EQ("<none>", routeName(*t, "/items/123/x"));  // regex matches the whole path
  EXPECT_EQ("<none>", routeName(*t, "/items/abc"));
  EXPECT_EQ("api", routeName(*t, "/api/"));
  EXPECT_EQ("api", routeName(*t, "/api/v1/users?id=3"));
  EXPECT_EQ("<none>", routeName(*t, "/api"));
  EXPECT_EQ("<none>", routeName(*t, "/API/"));
}

TEST(PathMatchTest, CaseInsensitive) {
  auto t = table(kPathsYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("ci", routeName(*t, "/caseless/x"));
  EXPECT_EQ("ci", routeName(*t, "/CASELESS"));
  EXPECT_EQ("ci_exact", routeName(*t, "/upper"));
  EXPECT_EQ("<none>", routeName(*t, "/upper/x"));
}

TEST(PathMatchTest, QueryIsNotMatchedByPrefix) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: q, match: {prefix: "/search"}, direct_response: {status: 200}}
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("q", routeName(*t, "/search?q=x"));
  EXPECT_EQ("<none>", routeName(*t, "/sea?rch"));
}

TEST(PathMatchTest, Methods) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: write, match: {prefix: /, methods: [post, PUT]}, direct_response: {status: 200}}
  - {name: read, match: {prefix: /, methods: [GET, HEAD]}, direct_response: {status: 200}}
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("write", routeName(*t, "/x", "h", "POST"));
  EXPECT_EQ("write", routeName(*t, "/x", "h", "PUT"));
  EXPECT_EQ("read", routeName(*t, "/x", "h", "GET"));
  EXPECT_EQ("read", routeName(*t, "/x", "h", "HEAD"));
  EXPECT_EQ("<none>", routeName(*t, "/x", "h", "DELETE"));
}

// ---- Header and query matchers -------------------------------------------------------------

constexpr char kHeadersYaml[] = R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - name: exact
    match: {prefix: /exact, headers: [{name: X-Env, exact: canary}]}
    direct_response: {status: 200}
  - name: prefix
    match: {prefix: /prefix, headers: [{name: user-agent, prefix: curl/}]}
    direct_response: {status: 200}
  - name: regex
    match: {prefix: /regex, headers: [{name: x-version, regex: "v[0-9]+"}]}
    direct_response: {status: 200}
  - name: present
    match: {prefix: /present, headers: [{name: authorization}]}
    direct_response: {status: 200}
  - name: present_explicit
    match: {prefix: /explicit, headers: [{name: authorization, present: true}]}
    direct_response: {status: 200}
  - name: not_canary
    match: {prefix: /invert, headers: [{name: x-env, exact: canary, invert: true}]}
    direct_response: {status: 200}
  - name: absent
    match: {prefix: /absent, headers: [{name: cookie, invert: true}]}
    direct_response: {status: 200}
  - name: all
    match: {prefix: /all, headers: [{name: a, exact: "1"}, {name: b, exact: "2"}]}
    direct_response: {status: 200}
  - name: fallback
    match: {prefix: /}
    direct_response: {status: 200}
)";

Http::RequestHeaderMap withHeaders(const std::string& path,
                                   const std::vector<std::pair<std::string, std::string>>& hs) {
  Http::RequestHeaderMap h = request(path);
  for (const auto& [k, v] : hs) h.add(k, v);
  return h;
}

TEST(HeaderMatchTest, Exact) {
  auto t = table(kHeadersYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("exact", routeName(*t, withHeaders("/exact", {{"x-env", "canary"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/exact", {{"x-env", "Canary"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/exact", {{"x-env", "canary2"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/exact", {})));
}

TEST(HeaderMatchTest, Prefix) {
  auto t = table(kHeadersYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("prefix", routeName(*t, withHeaders("/prefix", {{"user-agent", "curl/8.0"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/prefix", {{"user-agent", "wget/1"}})));
}

TEST(HeaderMatchTest, RegexIsAFullMatch) {
  auto t = table(kHeadersYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("regex", routeName(*t, withHeaders("/regex", {{"x-version", "v12"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/regex", {{"x-version", "v12b"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/regex", {{"x-version", "xv1"}})));
}

TEST(HeaderMatchTest, Present) {
  auto t = table(kHeadersYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("present", routeName(*t, withHeaders("/present", {{"authorization", ""}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/present", {})));
  EXPECT_EQ("present_explicit", routeName(*t, withHeaders("/explicit", {{"authorization", "x"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/explicit", {})));
}

TEST(HeaderMatchTest, Invert) {
  auto t = table(kHeadersYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("not_canary", routeName(*t, withHeaders("/invert", {{"x-env", "prod"}})));
  EXPECT_EQ("not_canary", routeName(*t, withHeaders("/invert", {})));  // absent: not "canary"
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/invert", {{"x-env", "canary"}})));
  EXPECT_EQ("absent", routeName(*t, withHeaders("/absent", {})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/absent", {{"cookie", "a=b"}})));
}

TEST(HeaderMatchTest, AllMustMatch) {
  auto t = table(kHeadersYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("all", routeName(*t, withHeaders("/all", {{"a", "1"}, {"b", "2"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/all", {{"a", "1"}})));
  EXPECT_EQ("fallback", routeName(*t, withHeaders("/all", {{"a", "1"}, {"b", "3"}})));
}

constexpr char kQueryYaml[] = R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - name: exact
    match: {prefix: /, query_parameters: [{name: debug, exact: "1"}]}
    direct_response: {status: 200}
  - name: regex
    match: {prefix: /, query_parameters: [{name: id, regex: "[0-9]+"}]}
    direct_response: {status: 200}
  - name: present
    match: {prefix: /, query_parameters: [{name: token}]}
    direct_response: {status: 200}
  - name: fallback
    match: {prefix: /}
    direct_response: {status: 200}
)";

TEST(QueryMatchTest, ExactRegexPresent) {
  auto t = table(kQueryYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("exact", routeName(*t, "/x?debug=1"));
  EXPECT_EQ("exact", routeName(*t, "/x?a=b&debug=1&c"));
  EXPECT_EQ("fallback", routeName(*t, "/x?debug=10"));
  EXPECT_EQ("fallback", routeName(*t, "/x?xdebug=1"));
  EXPECT_EQ("regex", routeName(*t, "/x?id=42"));
  EXPECT_EQ("fallback", routeName(*t, "/x?id=42a"));
  EXPECT_EQ("present", routeName(*t, "/x?token"));
  EXPECT_EQ("present", routeName(*t, "/x?token="));
  EXPECT_EQ("present", routeName(*t, "/x?a=1&token=abc"));
  EXPECT_EQ("fallback", routeName(*t, "/x"));
  EXPECT_EQ("fallback", routeName(*t, "/x?"));
  // Only the query string counts, not the path.
  EXPECT_EQ("fallback", routeName(*t, "/token"));
}

// ---- First match wins ----------------------------------------------------------------------

TEST(OrderTest, EarlierPrefixBeatsLaterExact) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: prefix, match: {prefix: /api}, direct_response: {status: 200}}
  - {name: exact, match: {path: /api/users}, direct_response: {status: 200}}
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("prefix", routeName(*t, "/api/users"));
}

TEST(OrderTest, EarlierShortPrefixBeatsLaterLongPrefix) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: short, match: {prefix: /a}, direct_response: {status: 200}}
  - {name: long, match: {prefix: /a/b/c}, direct_response: {status: 200}}
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("short", routeName(*t, "/a/b/c/d"));
}

TEST(OrderTest, EarlierLongPrefixBeatsLaterShortPrefix) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: long, match: {prefix: /a/b/c}, direct_response: {status: 200}}
  - {name: short, match: {prefix: /a}, direct_response: {status: 200}}
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("long", routeName(*t, "/a/b/c/d"));
  EXPECT_EQ("short", routeName(*t, "/a/b"));
}

TEST(OrderTest, RegexAndCaseInsensitiveKeepTheirPlace) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: exact_first, match: {path: /r/1}, direct_response: {status: 200}}
  - {name: regex, match: {regex: "/r/.*"}, direct_response: {status: 200}}
  - {name: prefix_after_regex, match: {prefix: /r/}, direct_response: {status: 200}}
  - {name: ci, match: {prefix: /C, case_sensitive: false}, direct_response: {status: 200}}
  - {name: exact_after_ci, match: {path: /c/x}, direct_response: {status: 200}}
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("exact_first", routeName(*t, "/r/1"));
  EXPECT_EQ("regex", routeName(*t, "/r/2"));
  EXPECT_EQ("ci", routeName(*t, "/c/x"));
}

TEST(OrderTest, SamePathDifferentConditionsInOrder) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: with_header, match: {path: /p, headers: [{name: x-a}]}, direct_response: {status: 200}}
  - {name: post, match: {path: /p, methods: [POST]}, direct_response: {status: 200}}
  - {name: any, match: {path: /p}, direct_response: {status: 200}}
  - {name: never, match: {path: /p}, direct_response: {status: 200}}
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("with_header", routeName(*t, withHeaders("/p", {{"x-a", "1"}})));
  EXPECT_EQ("post", routeName(*t, "/p", "h", "POST"));
  EXPECT_EQ("any", routeName(*t, "/p"));
}

TEST(OrderTest, RouteFailingConditionsFallsThroughToNextCandidate) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: deep_post, match: {prefix: /a/b, methods: [POST]}, direct_response: {status: 200}}
  - {name: mid, match: {path: /a/b/c}, direct_response: {status: 200}}
  - {name: shallow, match: {prefix: /a}, direct_response: {status: 200}}
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("deep_post", routeName(*t, "/a/b/c", "h", "POST"));
  EXPECT_EQ("mid", routeName(*t, "/a/b/c"));
  EXPECT_EQ("shallow", routeName(*t, "/a/b/d"));
}

// A linear-scan reference for path + method matching.
struct RefRoute {
  enum Kind { kPrefix, kExact, kRegex } kind;
  std::string value;
  std::unique_ptr<RE2> re;
  std::string method;  // empty = any
  std::string name;
};

std::string referenceMatch(const std::vector<RefRoute>& routes, const std::string& path,
                           const std::string& method) {
  for (const RefRoute& r : routes) {
    bool path_ok = false;
    switch (r.kind) {
      case RefRoute::kPrefix:
        path_ok = absl::StartsWith(path, r.value);
        break;
      case RefRoute::kExact:
        path_ok = path == r.value;
        break;
      case RefRoute::kRegex:
        path_ok = RE2::FullMatch(path, *r.re);
        break;
    }
    if (path_ok && (r.method.empty() || r.method == method)) {
      return r.name;
    }
  }
  return "<none>";
}

TEST(ScaleTest, TenThousandRoutesMatchLikeALinearScan) {
  RouteTable config;
  config.set_name("big");
  auto* vh = config.add_virtual_hosts();
  vh->add_domains("*");
  std::vector<RefRoute> ref;
  std::mt19937 rng(1234);
  for (int i = 0; i < 10000; ++i) {
    auto* r = vh->add_routes();
    const std::string name = absl::StrCat("r", i);
    r->set_name(name);
    r->mutable_direct_response()->set_status(200);
    RefRoute rr;
    rr.name = name;
    // Paths share prefixes at several depths so the index sees many candidate lengths.
    const std::string seg = absl::StrCat("/s", rng() % 50, "/t", rng() % 20);
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        rr.kind = RefRoute::kExact;
        rr.value = absl::StrCat(seg, "/e", i);
        r->mutable_match()->set_path(rr.value);
        break;
      case 4:
      case 5:
      case 6:
        rr.kind = RefRoute::kPrefix;
        rr.value = rng() % 3 == 0 ? seg : absl::StrCat(seg, "/p", i % 97);
        r->mutable_match()->set_prefix(rr.value);
        break;
      case 7:
        rr.kind = RefRoute::kPrefix;
        rr.value = absl::StrCat("/s", rng() % 50);
        rr.method = "POST";
        r->mutable_match()->set_prefix(rr.value);
        r->mutable_match()->add_methods("POST");
        break;
      case 8:
        rr.kind = RefRoute::kExact;
        rr.value = absl::StrCat(seg, "/e", i - 1);  // duplicate of an earlier exact path
        rr.method = "PUT";
        r->mutable_match()->set_path(rr.value);
        r->mutable_match()->add_methods("PUT");
        break;
      case 9:
        if (i % 1000 == 9) {
          rr.kind = RefRoute::kRegex;
          rr.value = absl::StrCat("/s", rng() % 50, "/t[0-9]+/x.*");
          rr.re = std::make_unique<RE2>(rr.value);
          r->mutable_match()->set_regex(rr.value);
        } else {
          rr.kind = RefRoute::kExact;
          rr.value = absl::StrCat(seg, "/z", i);
          r->mutable_match()->set_path(rr.value);
        }
        break;
    }
    ref.push_back(std::move(rr));
  }
  // Catch-all last.
  auto* last = vh->add_routes();
  last->set_name("catch_all");
  last->mutable_match()->set_prefix("/");
  last->mutable_direct_response()->set_status(404);
  RefRoute catch_all;
  catch_all.kind = RefRoute::kPrefix;
  catch_all.value = "/";
  catch_all.name = "catch_all";
  ref.push_back(std::move(catch_all));

  auto t = RouteTableImpl::create(config, "route_tables[0]", nullptr);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(10001u, (*t)->virtualHost("any")->routeCount());

  std::vector<std::string> paths;
  for (const RefRoute& r : ref) {
    if (r.kind != RefRoute::kRegex) {
      paths.push_back(r.value);
      paths.push_back(r.value + "/more");
      paths.push_back(r.value + "x");
    }
  }
  paths.push_back("/s1/t2/x-regex");
  paths.push_back("/nothing");
  int checked = 0;
  for (const std::string& path : paths) {
    for (const char* method : {"GET", "POST", "PUT"}) {
      Http::RequestHeaderMap h = request(path + "?q=1", "h", method);
      ASSERT_EQ(referenceMatch(ref, path, method), routeName(**t, h)) << method << " " << path;
      ++checked;
    }
  }
  EXPECT_GT(checked, 60000);
}

// ---- Actions -------------------------------------------------------------------------------

TEST(ActionTest, ClusterTimeoutAndDefaults) {
  auto t = table(R"(
name: rt
virtual_hosts:
- name: main
  domains: ["*"]
  routes:
  - {match: {prefix: /a}, route: {cluster: users, timeout: 250ms, host_rewrite: internal}}
  - {match: {prefix: /b}, route: {cluster: users, timeout: 0s}}
  - {match: {prefix: /}, route: {cluster: users}}
)");
  ASSERT_NE(nullptr, t);
  const RouteEntry* a = t->route(request("/a"));
  ASSERT_NE(nullptr, a);
  EXPECT_EQ("main/0", a->name());
  EXPECT_EQ(ActionType::Cluster, a->type());
  EXPECT_EQ("users", a->cluster());
  EXPECT_EQ("users", a->pickCluster(12345));
  EXPECT_EQ(250, a->timeout().count());
  EXPECT_EQ("internal", a->hostRewrite());
  EXPECT_EQ(0, t->route(request("/b"))->timeout().count());
  EXPECT_EQ(15000, t->route(request("/c"))->timeout().count());
  EXPECT_EQ("main/2", t->route(request("/c"))->name());
}

TEST(ActionTest, PrefixRewrite) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: p, match: {prefix: /api/}, route: {cluster: c, prefix_rewrite: /v2/}}
  - {name: root, match: {prefix: /root}, route: {cluster: c, prefix_rewrite: /}}
  - {name: e, match: {path: /old}, route: {cluster: c, prefix_rewrite: /new}}
  - {name: r, match: {regex: "/re/.*"}, route: {cluster: c, prefix_rewrite: /fixed}}
  - {name: none, match: {prefix: /}, route: {cluster: c}}
)");
  ASSERT_NE(nullptr, t);
  auto rewrite = [&](const std::string& path) {
    Http::RequestHeaderMap h = request(path);
    return t->route(h)->rewrittenPath(h);
  };
  EXPECT_EQ("/v2/users?id=1", rewrite("/api/users?id=1"));
  EXPECT_EQ("/v2/", rewrite("/api/"));
  EXPECT_EQ("//x", rewrite("/root/x"));
  EXPECT_EQ("/", rewrite("/root"));
  EXPECT_EQ("/new", rewrite("/old"));
  EXPECT_EQ("/new?a=b", rewrite("/old?a=b"));
  EXPECT_EQ("/fixed?z", rewrite("/re/anything?z"));
  EXPECT_EQ("", rewrite("/unchanged"));
}

TEST(ActionTest, DirectResponse) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {match: {path: /a}, direct_response: {status: 503, body: down, content_type: application/json}}
  - {match: {path: /b}, direct_response: {status: 204}}
)");
  ASSERT_NE(nullptr, t);
  const RouteEntry* a = t->route(request("/a"));
  EXPECT_EQ(ActionType::DirectResponse, a->type());
  EXPECT_EQ(503u, a->directStatus());
  EXPECT_EQ("down", a->directBody());
  EXPECT_EQ("application/json", a->directContentType());
  const RouteEntry* b = t->route(request("/b"));
  EXPECT_EQ("", b->directBody());
  EXPECT_EQ("text/plain", b->directContentType());
}

constexpr char kRedirectYaml[] = R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {name: https, match: {prefix: /secure}, redirect: {scheme_redirect: https}}
  - name: host
    match: {prefix: /moved}
    redirect: {host_redirect: new.example.com, response_code: 302}
  - {name: port, match: {prefix: /port}, redirect: {port_redirect: 8443}}
  - {name: path, match: {prefix: /old}, redirect: {path_redirect: /new, response_code: 308}}
  - {name: path_strip, match: {prefix: /pq}, redirect: {path_redirect: "/n?x=1", strip_query: true}}
  - {name: prefix, match: {prefix: /v1/}, redirect: {prefix_rewrite: /v2/, response_code: 307}}
  - {name: strip, match: {prefix: /strip}, redirect: {strip_query: true}}
  - name: all
    match: {prefix: /all}
    redirect: {scheme_redirect: https, host_redirect: h.io, port_redirect: 9, path_redirect: /p}
)";

std::string location(const RouteTableImpl& t, const std::string& path, const std::string& host,
                     const std::string& scheme = "http") {
  Http::RequestHeaderMap h = request(path, host);
  const RouteEntry* r = t.route(h);
  EXPECT_NE(nullptr, r);
  EXPECT_EQ(ActionType::Redirect, r->type());
  return r->redirectLocation(h, scheme);
}

TEST(RedirectTest, Locations) {
  auto t = table(kRedirectYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("https://example.com/secure?a=1", location(*t, "/secure?a=1", "example.com:8080"));
  EXPECT_EQ("http://new.example.com/moved/x", location(*t, "/moved/x", "example.com:8080"));
  EXPECT_EQ("http://example.com:8443/port", location(*t, "/port", "example.com:80"));
  EXPECT_EQ("http://example.com/new", location(*t, "/old/page?q=1", "example.com"));
  EXPECT_EQ("http://example.com/n", location(*t, "/pq?z=2", "example.com"));
  EXPECT_EQ("http://example.com/v2/items?id=3", location(*t, "/v1/items?id=3", "example.com"));
  EXPECT_EQ("http://example.com/strip/x", location(*t, "/strip/x?secret=1", "example.com"));
  EXPECT_EQ("https://h.io:9/p", location(*t, "/all/x?y", "example.com:1"));
}

TEST(RedirectTest, SameSchemeAndHostKeepsThePort) {
  auto t = table(kRedirectYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ("http://example.com:8080/strip", location(*t, "/strip", "example.com:8080"));
  EXPECT_EQ("https://example.com:8080/strip", location(*t, "/strip", "example.com:8080", "https"));
  EXPECT_EQ("http://[::1]:8080/strip", location(*t, "/strip", "[::1]:8080"));
}

TEST(RedirectTest, Codes) {
  auto t = table(kRedirectYaml);
  ASSERT_NE(nullptr, t);
  EXPECT_EQ(301u, t->route(request("/secure"))->redirectCode());
  EXPECT_EQ(302u, t->route(request("/moved"))->redirectCode());
  EXPECT_EQ(308u, t->route(request("/old"))->redirectCode());
  EXPECT_EQ(307u, t->route(request("/v1/"))->redirectCode());
}

TEST(WeightedClustersTest, PickClusterDistributionIsExactOverTheWeightRange) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - match: {prefix: /}
    route:
      weighted_clusters:
        clusters: [{name: a, weight: 1}, {name: b, weight: 3}, {name: c, weight: 6}]
)");
  ASSERT_NE(nullptr, t);
  const RouteEntry* r = t->route(request("/"));
  ASSERT_EQ(ActionType::WeightedClusters, r->type());
  ASSERT_EQ(3u, r->weightedClusters().size());
  EXPECT_EQ("b", r->weightedClusters()[1].first);
  EXPECT_EQ(3u, r->weightedClusters()[1].second);
  std::map<std::string, int> counts;
  for (uint64_t i = 0; i < 10000; ++i) {
    ++counts[r->pickCluster(i)];
  }
  EXPECT_EQ(1000, counts["a"]);
  EXPECT_EQ(3000, counts["b"]);
  EXPECT_EQ(6000, counts["c"]);
  // Boundaries.
  EXPECT_EQ("a", r->pickCluster(0));
  EXPECT_EQ("b", r->pickCluster(1));
  EXPECT_EQ("b", r->pickCluster(3));
  EXPECT_EQ("c", r->pickCluster(4));
  EXPECT_EQ("c", r->pickCluster(9));
  EXPECT_EQ("a", r->pickCluster(10));
}

TEST(WeightedClustersTest, RandomInputsRoughlyProportional) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - match: {prefix: /}
    route: {weighted_clusters: {clusters: [{name: a, weight: 20}, {name: b, weight: 80}]}}
)");
  ASSERT_NE(nullptr, t);
  const RouteEntry* r = t->route(request("/"));
  std::mt19937_64 rng(5);
  std::map<std::string, int> counts;
  for (int i = 0; i < 20000; ++i) ++counts[r->pickCluster(rng())];
  EXPECT_NEAR(4000, counts["a"], 400);
  EXPECT_NEAR(16000, counts["b"], 400);
}

TEST(StatsTest, RouteStatsRegistered) {
  Stats::Store store(1);
  auto t = create(R"(
name: rt
virtual_hosts:
- name: v
  domains: ["*"]
  routes: [{name: users, match: {prefix: /}, direct_response: {status: 200}}]
)",
                  nullptr, &store);
  ASSERT_TRUE(t.ok());
  const RouteEntry* r = (*t)->route(request("/"));
  ASSERT_NE(nullptr, r->stats().rq_total);
  ASSERT_NE(nullptr, r->stats().rq_time);
  r->stats().rq_total->inc();
  EXPECT_EQ(1, store.valueOf("route.users.rq_total"));
  EXPECT_THAT(store.renderPrometheus(), HasSubstr("sluice_route_rq_total{route=\"users\"} 1"));
}

TEST(StatsTest, NoStoreNoStats) {
  auto t = table(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes: [{match: {prefix: /}, direct_response: {status: 200}}]
)");
  ASSERT_NE(nullptr, t);
  EXPECT_EQ(nullptr, t->route(request("/"))->stats().rq_total);
}

// ---- Config errors -------------------------------------------------------------------------

TEST(ConfigErrorTest, MatchNeedsExactlyOnePathKind) {
  EXPECT_EQ(
      "route_tables[0].virtual_hosts[0].routes[1].match: exactly one of prefix, path, regex is "
      "required",
      errorOf(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {match: {prefix: /}, direct_response: {status: 200}}
  - {match: {}, direct_response: {status: 200}}
)"));
  EXPECT_EQ(
      "route_tables[0].virtual_hosts[0].routes[0].match: exactly one of prefix, path, regex is "
      "required",
      errorOf(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes: [{match: {prefix: /, path: /x}, direct_response: {status: 200}}]
)"));
}

TEST(ConfigErrorTest, InvalidRegexNamesTheField) {
  EXPECT_THAT(errorOf(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes: [{match: {regex: "/a(["}, direct_response: {status: 200}}]
)"),
              HasSubstr("route_tables[0].virtual_hosts[0].routes[0].match.regex: invalid regex "
                        "\"/a([\""));
  EXPECT_THAT(errorOf(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - match: {prefix: /, headers: [{name: a}, {name: b, regex: "*"}]}
    direct_response: {status: 200}
)"),
              HasSubstr("route_tables[0].virtual_hosts[0].routes[0].match.headers[1].regex: "
                        "invalid regex"));
  EXPECT_THAT(errorOf(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - match: {prefix: /, query_parameters: [{name: q, regex: "(("}]}
    direct_response: {status: 200}
)"),
              HasSubstr("route_tables[0].virtual_hosts[0].routes[0].match.query_parameters[0]."
                        "regex: invalid regex"));
}

TEST(ConfigErrorTest, UnknownClusterThroughCallback) {
  auto exists = [](const std::string& name) { return name == "known"; };
  EXPECT_EQ("route_tables[0].virtual_hosts[1].routes[0].route.cluster: unknown cluster \"nope\"",
            errorOf(R"(
name: rt
virtual_hosts:
- domains: [a]
  routes: [{match: {prefix: /}, route: {cluster: known}}]
- domains: [b]
  routes: [{match: {prefix: /}, route: {cluster: nope}}]
)",
                    exists));
  EXPECT_EQ(
      "route_tables[0].virtual_hosts[0].routes[0].route.weighted_clusters.clusters[1].name: "
      "unknown cluster \"gone\"",
      errorOf(R"(
name: rt
virtual_hosts:
- domains: [a]
  routes:
  - match: {prefix: /}
    route: {weighted_clusters: {clusters: [{name: known, weight: 1}, {name: gone, weight: 1}]}}
)",
              exists));
  // Without the callback any name is accepted.
  EXPECT_TRUE(create("name: rt\nvirtual_hosts: [{domains: [a], routes: [{match: {prefix: /}, "
                     "route: {cluster: nope}}]}]\n")
                  .ok());
}

TEST(ConfigErrorTest, FieldErrors) {
  struct Case {
    const char* routes_yaml;
    const char* error;
  } cases[] = {
      {"[{match: {prefix: x}, direct_response: {status: 200}}]",
       "routes[0].match: prefix and path must start with '/'"},
      {"[{match: {path: x}, direct_response: {status: 200}}]",
       "routes[0].match: prefix and path must start with '/'"},
      {"[{match: {prefix: /}}]",
       "routes[0]: exactly one of route, direct_response, redirect is required"},
      {"[{match: {prefix: /}, route: {cluster: a}, direct_response: {status: 200}}]",
       "routes[0]: exactly one of route, direct_response, redirect is required"},
      {"[{match: {prefix: /}, route: {}}]",
       "routes[0].route: exactly one of cluster, weighted_clusters is required"},
      {"[{match: {prefix: /}, route: {cluster: a, weighted_clusters: {clusters: [{name: b, "
       "weight: 1}]}}}]",
       "routes[0].route: exactly one of cluster, weighted_clusters is required"},
      {"[{match: {prefix: /}, route: {weighted_clusters: {}}}]",
       "routes[0].route.weighted_clusters.clusters: at least one is required"},
      {"[{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: a}]}}}]",
       "routes[0].route.weighted_clusters.clusters[0].weight: must be > 0"},
      {"[{match: {prefix: /}, route: {weighted_clusters: {clusters: [{weight: 1}]}}}]",
       "routes[0].route.weighted_clusters.clusters[0].name: is required"},
      {"[{match: {prefix: /}, route: {cluster: a, prefix_rewrite: v2}}]",
       "routes[0].route.prefix_rewrite: must start with '/' and hold only visible ASCII (no "
       "spaces, "
       "controls, '#')"},
      {"[{match: {prefix: /}, route: {cluster: a, timeout: -1s}}]",
       "routes[0].route.timeout: must not be negative"},
      {"[{match: {prefix: /}, direct_response: {status: 99}}]",
       "routes[0].direct_response.status: must be 200-599"},
      {"[{match: {prefix: /}, direct_response: {status: 600}}]",
       "routes[0].direct_response.status: must be 200-599"},
      {"[{match: {prefix: /}, redirect: {response_code: 200}}]",
       "routes[0].redirect.response_code: must be 301, 302, 303, 307 or 308"},
      {"[{match: {prefix: /}, redirect: {path_redirect: /a, prefix_rewrite: /b}}]",
       "routes[0].redirect: path_redirect and prefix_rewrite are exclusive"},
      {"[{match: {prefix: /}, redirect: {port_redirect: 70000}}]",
       "routes[0].redirect.port_redirect: must be <= 65535"},
      {"[{match: {prefix: /, headers: [{exact: a}]}, direct_response: {status: 200}}]",
       "routes[0].match.headers[0].name: is required"},
      {"[{match: {prefix: /, headers: [{name: a, exact: a, prefix: b}]}, direct_response: "
       "{status: 200}}]",
       "routes[0].match.headers[0]: at most one of exact, prefix, regex, present"},
      {"[{match: {prefix: /, query_parameters: [{exact: a}]}, direct_response: {status: 200}}]",
       "routes[0].match.query_parameters[0].name: is required"},
      {"[{match: {prefix: /, query_parameters: [{name: a, exact: a, present: true}]}, "
       "direct_response: {status: 200}}]",
       "routes[0].match.query_parameters[0]: at most one of exact, regex, present"},
  };
  for (const Case& c : cases) {
    const std::string yaml = absl::StrCat(
        "name: rt\nvirtual_hosts:\n- domains: [\"*\"]\n  routes: ", c.routes_yaml, "\n");
    // The first line is the error of the field (a few cases also report a consequence).
    const std::string error = errorOf(yaml);
    EXPECT_EQ(absl::StrCat("route_tables[0].virtual_hosts[0].", c.error),
              error.substr(0, error.find('\n')))
        << c.routes_yaml;
  }
}

TEST(ConfigErrorTest, TableAndDomainErrors) {
  EXPECT_EQ("route_tables[0].name: is required", errorOf("virtual_hosts: []\n"));
  EXPECT_EQ("route_tables[0].virtual_hosts[0].domains: at least one domain is required",
            errorOf("name: rt\nvirtual_hosts: [{routes: []}]\n"));
  EXPECT_EQ("route_tables[0].virtual_hosts[1].domains[0]: a second \"*\" virtual host",
            errorOf("name: rt\nvirtual_hosts: [{domains: ['*']}, {domains: ['*']}]\n"));
  EXPECT_EQ("route_tables[0].virtual_hosts[1].domains[1]: duplicate domain \"a.com\"",
            errorOf("name: rt\nvirtual_hosts: [{domains: [a.com]}, {domains: [b.com, A.com]}]\n"));
  EXPECT_EQ("route_tables[0].virtual_hosts[1].domains[0]: duplicate domain \"*.a.com\"",
            errorOf("name: rt\nvirtual_hosts: [{domains: ['*.a.com']}, {domains: ['*.a.com']}]\n"));
  EXPECT_EQ(
      "route_tables[0].virtual_hosts[0].domains[0]: wildcards must have the form "
      "\"*.suffix\"",
      errorOf("name: rt\nvirtual_hosts: [{domains: ['*foo.com']}]\n"));
  EXPECT_EQ("route_tables[0].virtual_hosts[0].domains[0]: invalid domain",
            errorOf("name: rt\nvirtual_hosts: [{domains: ['a.*.com']}]\n"));
  EXPECT_EQ("route_tables[0].virtual_hosts[0].domains[0]: invalid domain",
            errorOf("name: rt\nvirtual_hosts: [{domains: ['']}]\n"));
}

TEST(ConfigErrorTest, EveryErrorIsReported) {
  const std::string e = errorOf(R"(
name: rt
virtual_hosts:
- domains: ["*"]
  routes:
  - {match: {}, direct_response: {status: 200}}
  - {match: {regex: "("}, direct_response: {status: 1}}
)");
  EXPECT_THAT(e, HasSubstr("routes[0].match: exactly one of prefix, path, regex is required\n"));
  EXPECT_THAT(e, HasSubstr("routes[1].match.regex: invalid regex"));
  EXPECT_THAT(e, HasSubstr("routes[1].direct_response.status: must be 200-599"));
}

}  // namespace
}  // namespace Router
}  // namespace sluice
