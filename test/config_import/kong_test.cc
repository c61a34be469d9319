// The Kong importer seen from outside: a Kong declarative file in, Sluice resources and
// diagnostics out. Every converted result also goes through Sluice's own validation (the one
// sluice --validate and sluice-cp run), so what the importer writes is what Sluice accepts.

#include "source/config_import/kong.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "re2/re2.h"
#include "source/cli/format.h"
#include "source/common/config/utility.h"
#include "source/config_import/import.h"
#include "source/server/config/snapshot.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace ConfigImport {
namespace {

using sluice::config::v1::Route;
using sluice::config::v1::StaticResources;
using sluice::config::v1::VirtualHost;

Result convertText(const std::string& text, bool lenient = false, const std::string& jwks = "") {
  Options options;
  options.lenient = lenient;
  options.oauth2_jwks = jwks;
  return convertKong(text, options);
}

std::string diags(const Result& r) { return renderDiagnostics(r.diagnostics, "kong.yml"); }

// The diagnostic at `path` (exact) with `line`, whose message contains `text`.
bool has(const Result& r, Diagnostic::Severity severity, const std::string& path, int line,
         const std::string& text) {
  for (const Diagnostic& d : r.diagnostics.all()) {
    if (d.severity == severity && d.path == path && (line == 0 || d.line == line) &&
        absl::StrContains(d.message, text)) {
      return true;
    }
  }
  return false;
}
bool hasError(const Result& r, const std::string& path, int line, const std::string& text) {
  return has(r, Diagnostic::Severity::Error, path, line, text);
}
bool hasWarning(const Result& r, const std::string& path, int line, const std::string& text) {
  return has(r, Diagnostic::Severity::Warning, path, line, text);
}

void expectValid(const Result& r) {
  ASSERT_TRUE(r.ok()) << diags(r);
  absl::Status s = Server::validateResources(r.resources);
  EXPECT_TRUE(s.ok()) << s.message() << "\n" << Config::toJson(r.resources, true);
}

const VirtualHost* vhost(const StaticResources& res, const std::string& domain) {
  for (const auto& vh : res.route_tables(0).virtual_hosts()) {
    for (const auto& d : vh.domains()) {
      if (d == domain) return &vh;
    }
  }
  return nullptr;
}

const sluice::config::v1::Cluster* cluster(const StaticResources& res, const std::string& name) {
  for (const auto& c : res.clusters()) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}

// What Sluice does with a request path on a virtual host: the first matching route (path,
// prefix, or full-match regex; methods and headers ignored here), its name and the path sent
// upstream (prefix_rewrite replaces the matched prefix, or the whole path of a path/regex
// route). "" when nothing matches.
std::pair<std::string, std::string> sluiceRoute(const VirtualHost& vh, const std::string& path,
                                                const std::string& method = "GET") {
  for (const Route& r : vh.routes()) {
    if (r.name() == "kong-no-route") return {"", ""};  // Kong's 404
    const auto& m = r.match();
    if (m.methods_size() > 0 &&
        std::find(m.methods().begin(), m.methods().end(), method) == m.methods().end()) {
      continue;
    }
    std::string upstream;
    if (!m.path().empty()) {
      if (path != m.path()) continue;
      upstream = r.route().prefix_rewrite().empty() ? path : r.route().prefix_rewrite();
    } else if (!m.prefix().empty()) {
      if (!absl::StartsWith(path, m.prefix())) continue;
      upstream = r.route().prefix_rewrite().empty()
                     ? path
                     : r.route().prefix_rewrite() + path.substr(m.prefix().size());
    } else if (!m.regex().empty()) {
      if (!RE2::FullMatch(path, m.regex())) continue;
      upstream = r.route().prefix_rewrite().empty() ? path : r.route().prefix_rewrite();
    } else {
      continue;
    }
    return {r.name(), upstream};
  }
  return {"", ""};
}

// JSON text with every object's keys sorted (protobuf maps, filter_config and Struct configs,
// iterate in no fixed order): the goldens compare byte for byte.
void canonicalJson(const YAML::Node& node, std::string& out) {
  if (node.IsMap()) {
    std::vector<std::string> keys;
    for (const auto& kv : node) keys.push_back(kv.first.as<std::string>());
    std::sort(keys.begin(), keys.end());
    out += "{";
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i > 0) out += ",";
      YAML::Node key(keys[i]);
      key.SetTag("!");
      canonicalJson(key, out);
      out += ":";
      canonicalJson(node[keys[i]], out);
    }
    out += "}";
  } else if (node.IsSequence()) {
    out += "[";
    for (size_t i = 0; i < node.size(); ++i) {
      if (i > 0) out += ",";
      canonicalJson(node[i], out);
    }
    out += "]";
  } else if (node.IsScalar() && node.Tag() == "!") {
    out += "\"";
    for (unsigned char c : node.Scalar()) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c < 0x20) {
        out += absl::StrFormat("\\u%04x", c);
      } else {
        out += static_cast<char>(c);
      }
    }
    out += "\"";
  } else if (node.IsScalar()) {
    out += node.Scalar();
  } else {
    out += "null";
  }
}

std::string canonicalJson(const std::string& json) {
  std::string out;
  canonicalJson(YAML::Load(json), out);
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char kMinimal[] = R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - name: r
    paths: [/a]
)K";

// ---------------------------------------------------------------------------------------------
// Format versions.

TEST(KongFormat, EachFormatVersionLoads) {
  for (const char* v : {"3.0", "2.1", "1.1"}) {
    std::string text = absl::StrReplaceAll(kMinimal, {{"3.0", v}});
    Result r = convertText(text);
    expectValid(r);
    EXPECT_EQ(r.resources.clusters_size(), 1) << v;
  }
}

TEST(KongFormat, UnknownVersionRefused) {
  Result r = convertText(absl::StrReplaceAll(kMinimal, {{"3.0", "4.0"}}));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(hasError(r, "_format_version", 1, "\"4.0\" is not a Kong format version"))
      << diags(r);
  Result none = convertText("services: []\n");
  EXPECT_TRUE(hasError(none, "_format_version", 0, "is required")) << diags(none);
}

TEST(KongFormat, Pre30RegexLookingPathsBecomeRegexes) {
  const std::string text = R"K(_format_version: "2.1"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - name: r
    paths: ["/items/\\d+", /plain-path_1.2~]
    strip_path: false
)K";
  Result r = convertText(text);
  expectValid(r);
  const VirtualHost* vh = vhost(r.resources, "*");
  ASSERT_NE(vh, nullptr);
  EXPECT_EQ(vh->routes(0).match().regex(), "(?:/items/\\d+).*");
  EXPECT_EQ(sluiceRoute(*vh, "/items/42").first, "r");
  EXPECT_EQ(sluiceRoute(*vh, "/plain-path_1.2~/x").first, "r");
  // In 3.0 the same text is a literal prefix.
  Result r3 = convertText(absl::StrReplaceAll(text, {{"\"2.1\"", "\"3.0\""}}));
  expectValid(r3);
  const VirtualHost* vh3 = vhost(r3.resources, "*");
  EXPECT_EQ(sluiceRoute(*vh3, "/items/42").first, "");
  EXPECT_EQ(sluiceRoute(*vh3, "/items/\\d+").first, "r");
}

TEST(KongFormat, NotAMapAndGarbage) {
  EXPECT_FALSE(convertText("- a\n- b\n").ok());
  EXPECT_FALSE(convertText("_format_version: \"3.0\"\nservices: 5\n").ok());
  EXPECT_FALSE(convertText("{{{").ok());
  Result r = convertText("_format_version: \"3.0\"\nservices:\n- 7\n- name: x\n");
  EXPECT_TRUE(hasError(r, "services[0]", 3, "must be a map")) << diags(r);
  EXPECT_TRUE(hasError(r, "services[1].host", 4, "is required")) << diags(r);
}

// ---------------------------------------------------------------------------------------------
// Services.

TEST(KongService, UrlAndExplicitFieldsAreTheSame) {
  const std::string by_url = R"K(_format_version: "3.0"
services:
- name: s
  url: https://api.example.com/base
  routes: [{name: r, paths: [/a]}]
)K";
  const std::string by_fields = R"K(_format_version: "3.0"
services:
- name: s
  protocol: https
  host: api.example.com
  path: /base
  routes: [{name: r, paths: [/a]}]
)K";
  Result a = convertText(by_url);
  Result b = convertText(by_fields);
  expectValid(a);
  expectValid(b);
  EXPECT_EQ(Config::toJson(a.resources), Config::toJson(b.resources));
  const auto* c = cluster(a.resources, "s");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->endpoints(0).port(), 443u);  // inferred from https
  EXPECT_EQ(c->type(), sluice::config::v1::Cluster::STRICT_DNS);
  EXPECT_EQ(c->tls().sni(), "api.example.com");
  // Kong doesn't verify upstream certificates by default; Sluice does: said.
  EXPECT_TRUE(hasWarning(a, "services[0]", 3, "tls_verify")) << diags(a);

  Result http = convertText(R"K(_format_version: "3.0"
services: [{name: s, host: 10.1.2.3, routes: [{paths: [/]}]}]
)K");
  expectValid(http);
  EXPECT_EQ(cluster(http.resources, "s")->endpoints(0).port(), 80u);
  EXPECT_EQ(cluster(http.resources, "s")->type(), sluice::config::v1::Cluster::STATIC);
}

TEST(KongService, RetriesAndTimeouts) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  retries: 2
  connect_timeout: 1500
  read_timeout: 3000
  write_timeout: 4000
  routes: [{name: r, paths: [/a]}]
- name: t
  url: http://127.0.0.1:9001
  routes: [{name: u, paths: [/b]}]
)K");
  expectValid(r);
  const auto* c = cluster(r.resources, "s");
  EXPECT_EQ(c->connect_timeout().seconds(), 1);
  EXPECT_EQ(c->connect_timeout().nanos(), 500000000);
  const Route& route = vhost(r.resources, "*")->routes(0);
  EXPECT_EQ(route.route().timeout().seconds(), 4);  // the larger of read and write
  EXPECT_EQ(route.route().retry_policy().num_retries(), 2u);
  EXPECT_EQ(absl::StrJoin(route.route().retry_policy().retry_on(), ","), "connect-failure,reset");
  // Kong's defaults: 5 retries, 60 s.
  const VirtualHost* vh = vhost(r.resources, "*");
  const Route* u = nullptr;
  for (const Route& x : vh->routes()) {
    if (x.name() == "u") u = &x;
  }
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->route().retry_policy().num_retries(), 5u);
  EXPECT_EQ(u->route().timeout().seconds(), 60);
  EXPECT_EQ(cluster(r.resources, "t")->connect_timeout().seconds(), 60);
}

TEST(KongService, UnsupportedProtocolAndBadUrl) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: tcp://10.0.0.1:5000
- name: t
  url: "not a url"
)K");
  EXPECT_TRUE(hasError(r, "services[0].url", 3, "protocol \"tcp\" is not supported")) << diags(r);
  EXPECT_TRUE(hasError(r, "services[1].url", 6, "is not a URL")) << diags(r);
}

// ---------------------------------------------------------------------------------------------
// Routes: paths, strip_path, preserve_host, order.

// Kong's upstream paths (path_handling v0), as Kong's own docs tabulate them.
TEST(KongRoute, StripPathAndServicePathAsKong) {
  struct Case {
    const char* service_path;
    const char* route_path;
    bool strip;
    const char* request;
    const char* upstream;
  };
  const Case cases[] = {
      {"/", "/fee", true, "/fee", "/"},
      {"/", "/fee", true, "/fee/", "/"},
      {"/", "/fee", true, "/fee/fi", "/fi"},
      {"/", "/fee", true, "/feefi", "/fi"},
      {"/", "/fee", false, "/fee/fi", "/fee/fi"},
      {"/s", "/fee", true, "/fee", "/s"},
      {"/s", "/fee", true, "/fee/", "/s/"},
      {"/s", "/fee", true, "/fee/fi", "/s/fi"},
      {"/s", "/fee", true, "/feefi", "/s/fi"},
      {"/s", "/fee", false, "/fee", "/s/fee"},
      {"/s", "/fee", false, "/fee/fi", "/s/fee/fi"},
      {"/s/", "/fee", true, "/fee", "/s"},
      {"/s/", "/fee", true, "/fee/", "/s/"},
      {"/s/", "/fee", true, "/fee/fi", "/s/fi"},
      {"/s/", "/fee", true, "/feefi", "/s/fi"},
      {"/s/", "/fee", false, "/fee/fi", "/s/fee/fi"},
      {"/s/", "/fee/", true, "/fee/", "/s/"},
      {"/s/", "/fee/", true, "/fee/fi", "/s/fi"},
      {"/s", "/fee/", true, "/fee/", "/s/"},
      {"/s", "/fee/", true, "/fee/fi", "/s/fi"},
      {"/s", "/", true, "/", "/s"},
      {"/s", "/", true, "/fi", "/s/fi"},
      {"/s", "/", false, "/", "/s"},
      {"/s", "/", false, "/fi", "/s/fi"},
      {"/", "/", false, "/fi", "/fi"},
  };
  for (const Case& c : cases) {
    const std::string text = absl::StrCat(R"K(_format_version: "3.0"
services:
- name: s
  host: 127.0.0.1
  port: 9000
  path: )K",
                                          c.service_path, R"K(
  routes:
  - name: r
    strip_path: )K",
                                          c.strip ? "true" : "false", R"K(
    paths: [")K",
                                          c.route_path, R"K("]
)K");
    Result r = convertText(text);
    expectValid(r);
    auto [name, upstream] = sluiceRoute(*vhost(r.resources, "*"), c.request);
    EXPECT_EQ(name, "r") << c.service_path << " " << c.route_path << " " << c.request;
    EXPECT_EQ(upstream, c.upstream)
        << "service path " << c.service_path << ", route path " << c.route_path << ", strip_path "
        << c.strip << ", request " << c.request;
  }
}

TEST(KongRoute, PreserveHost) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://backend.internal:8080
  routes:
  - {name: keep, paths: [/keep], preserve_host: true}
  - {name: swap, paths: [/swap]}
- name: t
  url: http://other.internal
  routes: [{name: default-port, paths: [/other]}]
)K");
  expectValid(r);
  for (const Route& route : vhost(r.resources, "*")->routes()) {
    if (route.name() == "keep") EXPECT_EQ(route.route().host_rewrite(), "");
    if (route.name() == "swap") EXPECT_EQ(route.route().host_rewrite(), "backend.internal:8080");
    if (route.name() == "default-port") {
      EXPECT_EQ(route.route().host_rewrite(), "other.internal");
    }
  }
}

// Kong 3.0's order: more criteria first, then regex routes by regex_priority, then prefixes
// longest first (kong/router/atc_compat.lua).
TEST(KongRoute, OrderAsKong) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - {name: short, paths: [/a], strip_path: false}
  - {name: long, paths: [/a/b/c], strip_path: false}
  - {name: regex-low, paths: ["~/a/b"], strip_path: false, regex_priority: 1}
  - {name: regex-high, paths: ["~/a/[a-z]+$"], strip_path: false, regex_priority: 9}
  - {name: with-method, paths: [/a], methods: [DELETE], strip_path: false}
)K");
  expectValid(r);
  std::vector<std::string> names;
  for (const Route& route : vhost(r.resources, "*")->routes()) {
    if (names.empty() || names.back() != route.name()) names.push_back(route.name());
  }
  EXPECT_EQ(absl::StrJoin(names, ","), "with-method,regex-high,regex-low,long,short,kong-no-route");
  const VirtualHost& vh = *vhost(r.resources, "*");
  EXPECT_EQ(sluiceRoute(vh, "/a/b").first, "regex-high");
  EXPECT_EQ(sluiceRoute(vh, "/a/b/x").first, "regex-low");
  EXPECT_EQ(sluiceRoute(vh, "/a/b/c/d").first, "regex-low");
  EXPECT_EQ(sluiceRoute(vh, "/a/x/y").first, "short");
  EXPECT_EQ(sluiceRoute(vh, "/a/b", "DELETE").first, "with-method");
}

TEST(KongRoute, RegexTranslationAndRefusals) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - {name: named, paths: ["~/u/(?<id>\\d+)$"], strip_path: false}
  - {name: lookahead, paths: ["~/x(?=y)"], strip_path: false}
  - {name: stripped, paths: ["~/v\\d+/"]}
- name: based
  url: http://127.0.0.1:9000/base
  routes:
  - {name: based, paths: ["~/b"], strip_path: false}
  - {name: based-stripped, paths: ["~/c"]}
)K");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(hasError(r, "services[0].routes[1].paths[0]", 7, "can't be used by Sluice (RE2)"))
      << diags(r);
  EXPECT_TRUE(hasError(r, "services[1].routes[1].paths[0]", 13,
                       "strip_path with a regex path to service \"based\" with path \"/base\""))
      << diags(r);
  EXPECT_EQ(r.diagnostics.errorCount(), 2u) << diags(r);
  Result lenient = convertText(absl::StrCat(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - {name: named, paths: ["~/u/(?<id>\\d+)$"], strip_path: false}
  - {name: lookahead, paths: ["~/x(?=y)", /x], strip_path: false}
)K"),
                               true);
  expectValid(lenient);
  const VirtualHost& vh = *vhost(lenient.resources, "*");
  // Kong's order: lookahead's plain path is longer (2) than named's (none).
  EXPECT_EQ(vh.routes(0).name(), "lookahead");
  ASSERT_EQ(vh.routes_size(), 3);  // /x (prefix), the named regex, Kong's 404
  EXPECT_EQ(vh.routes(1).match().regex(), "(?:/u/(?P<id>\\d+)$).*");
  EXPECT_EQ(sluiceRoute(vh, "/u/12").first, "named");
  EXPECT_EQ(sluiceRoute(vh, "/u/12/x").first, "");
  EXPECT_EQ(sluiceRoute(vh, "/xy").first, "lookahead");  // its plain path remains
  EXPECT_TRUE(hasWarning(lenient, "services[0].routes[1].paths[0]", 7, "(?=")) << diags(lenient);
}

// A regex route's upstream path as Kong builds it: request_transformer's replace.uri with the
// route regex's captures (Sluice's prefix_rewrite would replace the whole path).
TEST(KongRoute, RegexUpstreamPaths) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - {name: stripped, paths: ["~/v\\d+"]}
- name: based
  url: http://127.0.0.1:9000/base
  routes:
  - {name: based, paths: ["~/b"], strip_path: false}
  - {name: root, paths: ["~/"], strip_path: false}
)K");
  expectValid(r);
  std::map<std::string, std::vector<const Route*>> by_name;
  for (const Route& x : vhost(r.resources, "*")->routes()) by_name[x.name()].push_back(&x);
  const Route& stripped = *by_name["stripped"][0];
  // Kong: "/v2/x" -> "/x", "/v2" -> "/", "/v2x" -> "/x".
  std::string rest;
  ASSERT_TRUE(RE2::FullMatch("/v2/x", stripped.match().regex(), &rest));
  EXPECT_EQ(rest, "x");
  ASSERT_TRUE(RE2::FullMatch("/v2x", stripped.match().regex(), &rest));
  EXPECT_EQ(rest, "x");
  EXPECT_EQ(Config::toJson(stripped.filter_config().at("request_transformer")),
            R"K({"replace":{"uri":"/$(uri_captures.kong_rest)"}})K");
  const Route& based = *by_name["based"][0];
  EXPECT_EQ(based.match().regex(), "(?P<kong_path>(?:/b).*)");
  EXPECT_EQ(Config::toJson(based.filter_config().at("request_transformer")),
            R"K({"replace":{"uri":"/base$(uri_captures.kong_path)"}})K");
  // "/" itself goes to "/base" (not "/base/"), as Kong joins them.
  ASSERT_EQ(by_name["root"].size(), 2u);
  EXPECT_EQ(by_name["root"][0]->match().path(), "/");
  EXPECT_EQ(by_name["root"][0]->route().prefix_rewrite(), "/base");
}

TEST(KongRoute, HostsMethodsHeaders) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - {name: exact, hosts: [api.example.com], paths: [/], methods: [get]}
  - {name: wild, hosts: ["*.example.com"], paths: [/w]}
  - {name: any, paths: [/any], headers: {x-v: [One, "~*t.o"]}}
)K");
  expectValid(r);
  const VirtualHost* exact = vhost(r.resources, "api.example.com");
  const VirtualHost* wild = vhost(r.resources, "*.example.com");
  const VirtualHost* star = vhost(r.resources, "*");
  ASSERT_TRUE(exact && wild && star);
  // Kong matches every route for every Host: the exact host also gets the wildcard's and
  // the host-less routes (in Kong's order), the wildcard the host-less ones.
  std::set<std::string> names;
  for (const Route& x : exact->routes()) names.insert(x.name());
  EXPECT_EQ(absl::StrJoin(names, ","), "any,exact,kong-no-route,wild");
  names.clear();
  for (const Route& x : wild->routes()) names.insert(x.name());
  EXPECT_EQ(absl::StrJoin(names, ","), "any,kong-no-route,wild");
  names.clear();
  for (const Route& x : star->routes()) names.insert(x.name());
  EXPECT_EQ(absl::StrJoin(names, ","), "any,kong-no-route");
  EXPECT_EQ(exact->routes(0).match().methods(0), "GET");
  const auto& h = star->routes(0).match().headers(0);
  EXPECT_EQ(h.name(), "x-v");
  EXPECT_TRUE(RE2::FullMatch("ONE", h.regex()));
  EXPECT_TRUE(RE2::FullMatch("two", h.regex()));
  EXPECT_TRUE(RE2::FullMatch("x-TWO-y", h.regex())) << "Kong searches: not anchored";
  EXPECT_FALSE(RE2::FullMatch("three", h.regex()));
}

TEST(KongRoute, HttpsOnlyRoutes) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - {name: upgrade, paths: [/u], protocols: [https]}
  - {name: redirect, paths: [/r], protocols: [https], https_redirect_status_code: 308}
)K");
  expectValid(r);
  for (const Route& x : vhost(r.resources, "*")->routes()) {
    if (x.name() == "upgrade") EXPECT_EQ(x.direct_response().status(), 426u);
    if (x.name() == "redirect") {
      EXPECT_EQ(x.redirect().scheme_redirect(), "https");
      EXPECT_EQ(x.redirect().response_code(), 308u);
    }
  }
}

TEST(KongRoute, DanglingServiceAndUnknownFields) {
  const std::string text = R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  colour: blue
routes:
- name: r
  service: nope
  paths: [/r]
- name: ok
  service: {name: s}
  paths: [/ok]
)K";
  Result strict = convertText(text);
  EXPECT_FALSE(strict.ok());
  EXPECT_TRUE(hasError(strict, "services[0].colour", 5, "Kong has no such field (it takes id"))
      << diags(strict);
  EXPECT_TRUE(hasError(strict, "routes[0].service", 8, "no service \"nope\" in this file"))
      << diags(strict);
  Result lenient = convertText(text, true);
  expectValid(lenient);
  EXPECT_TRUE(hasWarning(lenient, "routes[0].service", 8, "no service \"nope\""));
  EXPECT_EQ(vhost(lenient.resources, "*")->routes(0).name(), "ok");
}

// ---------------------------------------------------------------------------------------------
// Upstreams.

TEST(KongUpstream, TargetsAlgorithmsHealthchecks) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- {name: a, host: up-a, routes: [{paths: [/a]}]}
- {name: b, host: up-b, routes: [{paths: [/b]}]}
upstreams:
- name: up-a
  algorithm: consistent-hashing
  hash_on: header
  hash_on_header: x-user
  healthchecks:
    active:
      healthy: {interval: 3}
  targets:
  - {target: "10.0.0.1:81", weight: 10}
  - {target: 10.0.0.2}
  - {target: "10.0.0.3:83", weight: 0}
- name: up-b
  algorithm: least-connections
  healthchecks:
    passive:
      unhealthy: {http_failures: 4}
  targets: [{target: "b.internal:90"}]
- name: spare
)K");
  expectValid(r);
  const auto* a = cluster(r.resources, "a");
  ASSERT_EQ(a->endpoints_size(), 2);
  EXPECT_EQ(a->endpoints(0).port(), 81u);
  EXPECT_EQ(a->endpoints(0).weight(), 10u);
  EXPECT_EQ(a->endpoints(1).port(), 8000u);  // Kong's default target port
  EXPECT_EQ(a->endpoints(1).weight(), 100u);
  EXPECT_EQ(a->lb_policy(), sluice::config::v1::Cluster::RING_HASH);
  EXPECT_EQ(a->ring_hash().header_name(), "x-user");
  // Kong's active defaults are materialized.
  EXPECT_EQ(a->health_check().http_path(), "/");
  EXPECT_EQ(a->health_check().interval().seconds(), 3);
  EXPECT_EQ(a->health_check().timeout().seconds(), 1);
  EXPECT_EQ(absl::StrJoin(a->health_check().expected_statuses(), ","), "200,302");
  const auto* b = cluster(r.resources, "b");
  EXPECT_EQ(b->lb_policy(), sluice::config::v1::Cluster::LEAST_REQUEST);
  EXPECT_EQ(b->type(), sluice::config::v1::Cluster::STRICT_DNS);
  EXPECT_EQ(b->outlier_detection().consecutive_5xx(), 4u);
  EXPECT_FALSE(b->has_health_check());
  EXPECT_TRUE(hasWarning(r, "upstreams[2]", 23, "no service has host \"spare\"")) << diags(r);
  // Host without preserve_host: the first target's (warned: Kong sends the chosen one's), or
  // host_header.
  EXPECT_TRUE(hasWarning(r, "upstreams[0]", 6,
                         "Sluice sends one Host for every target: "
                         "\"10.0.0.1:81\""))
      << diags(r);
  for (const Route& x : vhost(r.resources, "*")->routes()) {
    if (x.match().prefix() == "/a") EXPECT_EQ(x.route().host_rewrite(), "10.0.0.1:81");
    if (x.match().prefix() == "/b") EXPECT_EQ(x.route().host_rewrite(), "b.internal:90");
  }
  Result hh = convertText(R"K(_format_version: "3.0"
services: [{name: a, host: up, routes: [{paths: [/a]}]}]
upstreams: [{name: up, host_header: api.internal, targets: [{target: "10.0.0.1:80"}, {target: "10.0.0.2:80"}]}]
)K");
  expectValid(hh);
  EXPECT_EQ(vhost(hh.resources, "*")->routes(0).route().host_rewrite(), "api.internal");
}

TEST(KongUpstream, UnknownHealthcheckFieldNamed) {
  const std::string text = R"K(_format_version: "3.0"
services: [{name: a, host: up, routes: [{paths: [/a]}]}]
upstreams:
- name: up
  healthchecks:
    active:
      unhealthy:
        successes: 1
  targets: [{target: "10.0.0.1:80"}]
)K";
  Result r = convertText(text);
  EXPECT_EQ(diags(r),
            "kong.yml:8: error: upstreams[0].healthchecks.active.unhealthy.successes: Kong has "
            "no such field (it takes http_failures, tcp_failures, timeouts, interval, "
            "http_statuses)\n");
  Result lenient = convertText(text, true);
  expectValid(lenient);
}

// ---------------------------------------------------------------------------------------------
// Consumers and auth plugins.

TEST(KongConsumer, NestedAndTopLevelCredentials) {
  const std::string base = R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/]}]
  plugins: [{name: key-auth}, {name: jwt, config: {uri_param_names: []}}]
consumers:
- username: alice
  keyauth_credentials: [{key: k1}]
  jwt_secrets: [{key: iss-a, secret: sa}]
  acls: [{group: g1}]
- username: bob
keyauth_credentials:
- {consumer: bob, key: k2}
acls:
- {consumer: {username: bob}, group: g2}
)K";
  Result r = convertText(base + "jwt_secrets:\n- {consumer: nobody, key: x, secret: y}\n");
  EXPECT_TRUE(hasError(r, "jwt_secrets[0].consumer", 18, "no consumer \"nobody\"")) << diags(r);
  Result lenient = convertText(base);
  expectValid(lenient);
  ASSERT_EQ(lenient.resources.auth_policies_size(), 1);
  const auto& p = lenient.resources.auth_policies(0);
  EXPECT_EQ(p.name(), "s.key-auth+s.jwt");
  EXPECT_EQ(p.key_auth().key_names(0), "apikey");
  EXPECT_FALSE(p.key_auth().hide_credentials());  // Kong's default
  EXPECT_EQ(p.jwt().consumer_credentials().key_claim_name(), "iss");
  ASSERT_EQ(p.consumers_size(), 2);
  EXPECT_EQ(p.consumers(0).keyauth_credentials(0).key(), "k1");
  EXPECT_EQ(p.consumers(0).jwt_credentials(0).secret(), "sa");
  EXPECT_EQ(p.consumers(0).jwt_credentials(0).algorithm(), "HS256");
  EXPECT_EQ(p.consumers(1).keyauth_credentials(0).key(), "k2");
  EXPECT_EQ(p.consumers(1).groups(0), "g2");
  // Two auth plugins without anonymous: Kong wants both, Sluice either: said.
  EXPECT_TRUE(hasWarning(lenient, "services[0].routes[0]", 5, "Kong requires every one"))
      << diags(lenient);
  // acls without an acl plugin: Kong ignores them.
  EXPECT_TRUE(hasWarning(lenient, "consumers[0]", 8, "no acl plugin")) << diags(lenient);
}

TEST(KongAuth, JwtRefusalsAndOauth2NeedsJwks) {
  const std::string text = R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/]}]
  plugins:
  - name: jwt
    config:
      cookie_names: [token]
      secret_is_base64: true
      maximum_expiration: 60
  - name: oauth2
    config: {scopes: [read], mandatory_scope: true, enable_client_credentials: true}
consumers:
- username: c
  jwt_secrets: [{key: k, secret: s}]
)K";
  Result r = convertText(text);
  EXPECT_TRUE(hasError(r, "services[0].plugins[0].config.cookie_names", 9, "cookies")) << diags(r);
  EXPECT_TRUE(hasError(r, "services[0].plugins[0].config.secret_is_base64", 10, "HMAC key"));
  EXPECT_TRUE(hasError(r, "services[0].plugins[0].config.maximum_expiration", 11, "lifetime"));
  EXPECT_TRUE(hasError(r, "services[0].plugins[1]", 12, "--oauth2-jwks URL")) << diags(r);

  Result ok = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/]}]
  plugins:
  - name: oauth2
    config: {scopes: [read], mandatory_scope: true, enable_client_credentials: true}
)K",
                          false, "http://127.0.0.1:9999/jwks.json");
  expectValid(ok);
  const auto& p = ok.resources.auth_policies(0);
  EXPECT_EQ(p.jwt().providers(0).remote_jwks().uri(), "http://127.0.0.1:9999/jwks.json");
  EXPECT_EQ(p.required_scopes(0), "read");
}

// ---------------------------------------------------------------------------------------------
// Plugins: precedence, rate limiting, the chain.

TEST(KongPlugins, PrecedenceRouteOverServiceOverGlobal) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - {name: own, paths: [/own], plugins: [{name: rate-limiting, config: {second: 1}}]}
  - {name: inherits, paths: [/inherits]}
  plugins: [{name: rate-limiting, config: {minute: 2}}]
- name: t
  url: http://127.0.0.1:9001
  routes: [{name: global, paths: [/global]}]
plugins:
- {name: rate-limiting, config: {hour: 3, limit_by: ip}}
)K");
  expectValid(r);
  std::map<std::string, std::string> policy;
  for (const Route& x : vhost(r.resources, "*")->routes()) {
    if (x.name() == "kong-no-route") continue;
    policy[x.name()] = x.filter_config().at("rate_limit").fields().at("policy").string_value();
  }
  EXPECT_EQ(policy["own"], "own.rate-limiting");
  EXPECT_EQ(policy["inherits"], "s.rate-limiting");
  EXPECT_EQ(policy["global"], "rate-limiting");
  ASSERT_EQ(r.resources.rate_limit_policies_size(), 3);
  for (const auto& p : r.resources.rate_limit_policies()) {
    EXPECT_EQ(p.algorithm(), sluice::config::v1::RateLimitPolicy::FIXED_WINDOW);
    if (p.name() == "rate-limiting") {
      EXPECT_EQ(p.hour(), 3u);
      EXPECT_EQ(p.limit_by(), sluice::config::v1::RateLimitPolicy::IP);
    }
  }
}

TEST(KongPlugins, RateLimitingChecks) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/]}]
  plugins:
  - {name: rate-limiting, config: {second: 10, minute: 5}}
- name: t
  url: http://127.0.0.1:9000
  routes: [{name: u, paths: [/u]}]
  plugins:
  - {name: rate-limiting, config: {minute: 5, policy: redis}}
- name: v
  url: http://127.0.0.1:9000
  routes: [{name: w, paths: [/w]}]
  plugins:
  - {name: rate-limiting, config: {minute: 5, policy: cluster}}
)K");
  EXPECT_TRUE(hasError(r, "services[0].plugins[0].config.minute", 7,
                       "The limit for minute(5) cannot be lower than the limit for second(10)"))
      << diags(r);
  EXPECT_TRUE(
      hasError(r, "services[1].plugins[0].config.redis_host", 12, "is required with policy: redis"))
      << diags(r);
  EXPECT_TRUE(hasError(r, "services[2].plugins[0].config.policy", 17, "cluster: Kong keeps"))
      << diags(r);
}

TEST(KongPlugins, RedisRecordAndWindows) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/]}]
  plugins:
  - name: rate-limiting
    config:
      month: 10
      year: 100
      policy: redis
      redis: {host: 10.0.0.5, port: 6380, password: pw, database: 3, timeout: 250}
      limit_by: header
      header_name: x-tenant
      hide_client_headers: true
      fault_tolerant: false
)K");
  expectValid(r);
  const auto& p = r.resources.rate_limit_policies(0);
  EXPECT_EQ(p.month(), 10u);
  EXPECT_EQ(p.year(), 100u);
  EXPECT_EQ(p.policy(), sluice::config::v1::RateLimitPolicy::REDIS);
  EXPECT_EQ(p.redis().host(), "10.0.0.5");
  EXPECT_EQ(p.redis().port(), 6380u);
  EXPECT_EQ(p.redis().password(), "pw");
  EXPECT_EQ(p.redis().database(), 3u);
  EXPECT_EQ(p.redis().timeout().nanos(), 250000000);
  EXPECT_EQ(p.header_name(), "x-tenant");
  EXPECT_TRUE(p.hide_client_headers());
  EXPECT_FALSE(p.fault_tolerant());
}

TEST(KongPlugins, UnknownPluginFieldAndUnsupportedPlugin) {
  const std::string text = R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/]}]
plugins:
- name: cors
  config:
    origins: ["*"]
    orgins: [x]
- name: bot-detection
)K";
  Result r = convertText(text);
  EXPECT_TRUE(hasError(r, "plugins[0].config.orgins", 10,
                       "Kong has no such field (it takes origins, headers"))
      << diags(r);
  EXPECT_TRUE(hasError(r, "plugins[1].name", 11, "plugin \"bot-detection\" is not supported"))
      << diags(r);
  Result lenient = convertText(text, true);
  expectValid(lenient);
  // Both skipped: no cors filter.
  for (const auto& f : lenient.resources.listeners(0).http_filters()) {
    EXPECT_NE(f.name(), "cors");
  }
}

TEST(KongPlugins, ConsumerScopedPlugins) {
  const std::string text = R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes:
  - {name: r, paths: [/r]}
  - {name: q, paths: [/q]}
  plugins:
  - {name: key-auth}
  - {name: rate-limiting, config: {minute: 10}}
- name: t
  url: http://127.0.0.1:9001
  routes: [{name: u, paths: [/u]}]
  plugins: [{name: key-auth}]
consumers:
- username: alice
  keyauth_credentials: [{key: k}]
  plugins:
  - {name: rate-limiting, config: {second: 1}}
  - {name: cors}
- username: bob
  keyauth_credentials: [{key: k2}]
plugins:
- {name: rate-limiting, consumer: bob, route: q, config: {second: 2}}
- {name: rate-limiting, consumer: bob, service: s, config: {second: 3}}
)K";
  Result r = convertText(text);
  EXPECT_TRUE(hasError(r, "consumers[0].plugins[1]", 20, "only rate-limiting")) << diags(r);
  Result lenient = convertText(text, true);
  expectValid(lenient);
  std::map<std::string, std::string> configs;
  for (const Route& x : vhost(lenient.resources, "*")->routes()) {
    configs[x.name()] = canonicalJson(Config::toJson(x.filter_config().at("rate_limit")));
  }
  // Kong's order: route+consumer > service+consumer > consumer > route > service > global.
  EXPECT_EQ(configs["r"],
            R"K({"consumer_policies":{"alice":"alice.rate-limiting","bob":"s.bob.rate-limiting"},)K"
            R"K("policy":"s.rate-limiting"})K")
      << configs["r"];
  EXPECT_EQ(configs["q"],
            R"K({"consumer_policies":{"alice":"alice.rate-limiting","bob":"q.bob.rate-limiting"},)K"
            R"K("policy":"s.rate-limiting"})K")
      << configs["q"];
  EXPECT_EQ(configs["u"],
            R"K({"consumer_policies":{"alice":"alice.rate-limiting"},"disabled":true})K")
      << configs["u"];
}

TEST(KongPlugins, ChainOrderAndListenerSettings) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/]}]
consumers: [{username: a, keyauth_credentials: [{key: k}], acls: [{group: g}]}]
plugins:
- {name: http-log, config: {http_endpoint: "http://127.0.0.1:9/log"}}
- {name: response-transformer, config: {add: {headers: ["x-a:1"]}}}
- {name: proxy-cache}
- {name: request-transformer, config: {add: {headers: ["x-b:2"]}}}
- {name: rate-limiting, config: {second: 5}}
- {name: acl, config: {allow: [g]}}
- {name: ip-restriction, config: {deny: [10.0.0.1]}}
- {name: key-auth}
- {name: cors}
- {name: correlation-id, config: {header_name: X-Correlation-ID}}
- {name: request-size-limiting, config: {allowed_payload_size: 2, size_unit: kilobytes}}
- {name: prometheus, config: {per_consumer: true}}
)K",
                         false);
  expectValid(r);
  const auto& l = r.resources.listeners(0);
  std::vector<std::string> chain;
  for (const auto& f : l.http_filters()) chain.push_back(f.name());
  EXPECT_EQ(absl::StrJoin(chain, ","),
            "http_log,cors,auth,ip_restriction,acl,rate_limit,request_transformer,"
            "response_transformer,cache,router");
  EXPECT_EQ(l.address().host(), "0.0.0.0");
  EXPECT_EQ(l.address().port(), 8000u);
  EXPECT_TRUE(l.metrics().per_consumer());
  EXPECT_EQ(l.limits().max_request_body_bytes(), 2048u);
  // correlation-id: the header set from the request id when absent, with the transformer's.
  const std::string rt = Config::toJson(l.http_filters(6).config());
  EXPECT_EQ(rt, R"K({"add":{"headers":["x-b:2","X-Correlation-ID:$request_id"]}})K");
}

// What Sluice can't honour is refused at its field, with the reason.
TEST(KongPlugins, RefusalsNameTheFieldAndTheReason) {
  const std::string text = R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/r]}]
  plugins:
  - {name: key-auth, config: {key_in_body: true}}
  - {name: proxy-cache, config: {strategy: redis, request_method: [POST]}}
  - {name: http-log, config: {http_endpoint: "http://127.0.0.1:1/", custom_fields_by_lua: {a: b}}}
  - {name: request-size-limiting, config: {allowed_payload_size: 1}}
  - {name: canary, config: {percentage: 5, upstream_host: 127.0.0.1, upstream_uri: /v2, start: 1}}
  - {name: acl, config: {allow: [a], deny: [b]}}
  - {name: rate-limiting, config: {minute: 1, policy: redis, redis_host: 127.0.0.1, redis_ssl: true, error_code: 503}}
  - {name: cors, config: {allow_origin_absent: false}}
  - {name: correlation-id, config: {generator: random}}
)K";
  Result r = convertText(text);
  const std::string p = "services[0].plugins";
  EXPECT_TRUE(hasError(r, p + "[0].config.key_in_body", 7, "not bodies")) << diags(r);
  EXPECT_TRUE(hasError(r, p + "[1].config.strategy", 8, "in memory"));
  EXPECT_TRUE(hasError(r, p + "[1].config.request_method", 8, "GET and HEAD only"));
  EXPECT_TRUE(hasError(r, p + "[2].config.custom_fields_by_lua", 9, "no Lua"));
  EXPECT_TRUE(hasError(r, p + "[3].config", 10, "per listener"));
  EXPECT_TRUE(hasError(r, p + "[4].config.upstream_uri", 11, "every cluster of its split"));
  EXPECT_TRUE(hasError(r, p + "[4].config.start", 11, "fixed percentage"));
  EXPECT_TRUE(hasError(r, p + "[5].config", 12, "exactly one of allow and deny"));
  EXPECT_TRUE(hasError(r, p + "[6].config.redis_ssl", 13, "cleartext only"));
  EXPECT_TRUE(hasError(r, p + "[6].config.error_code", 13, "gateway_responses"));
  EXPECT_TRUE(hasError(r, p + "[7].config.allow_origin_absent", 14, "untouched"));
  EXPECT_TRUE(hasError(r, p + "[8].config.generator", 15, "Kong takes uuid"));
  // Lenient: each is skipped, the rest converts and validates.
  Result lenient = convertText(text, true);
  EXPECT_FALSE(lenient.ok()) << "acl and correlation-id's generator are errors in both modes";
  const std::string fixed = absl::StrReplaceAll(
      text, {{"allow: [a], deny: [b]", "allow: [a]"}, {"generator: random", "generator: uuid"}});
  Result ok = convertText(fixed, true);
  expectValid(ok);
  for (const auto& f : ok.resources.listeners(0).http_filters()) {
    EXPECT_NE(f.name(), "cache");
    EXPECT_NE(f.name(), "http_log");
  }
  EXPECT_EQ(ok.resources.listeners(0).limits().max_request_body_bytes(), 0u);
}

TEST(KongPlugins, CorrelationIdAsXRequestIdIsSluicesOwn) {
  Result r = convertText(R"K(_format_version: "3.0"
services: [{name: s, url: "http://127.0.0.1:9000", routes: [{paths: [/]}]}]
plugins: [{name: correlation-id, config: {header_name: X-Request-ID, generator: uuid}}]
)K");
  expectValid(r);
  for (const auto& f : r.resources.listeners(0).http_filters()) {
    EXPECT_EQ(f.name(), "router") << "no filter needed: Sluice sets and echoes x-request-id";
  }
}

TEST(KongPlugins, CanarySplit) {
  Result r = convertText(R"K(_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9000
  routes: [{name: r, paths: [/]}]
  plugins:
  - name: canary
    config: {percentage: 25, upstream_host: 127.0.0.1, upstream_port: 9100, hash: ip,
             canary_by_header_name: x-canary}
)K");
  expectValid(r);
  const auto& wc = vhost(r.resources, "*")->routes(0).route().weighted_clusters();
  ASSERT_EQ(wc.clusters_size(), 2);
  EXPECT_EQ(wc.clusters(0).name(), "s");
  EXPECT_EQ(wc.clusters(0).weight(), 75u);
  EXPECT_EQ(wc.clusters(1).name(), "s.canary.target");
  EXPECT_EQ(wc.clusters(1).weight(), 25u);
  EXPECT_EQ(wc.hash_on(), sluice::config::v1::WeightedClusters::IP);
  EXPECT_EQ(wc.canary_header(), "x-canary");
  EXPECT_EQ(cluster(r.resources, "s.canary.target")->endpoints(0).port(), 9100u);
}

TEST(KongPlugins, UnusedCredentialsWarned) {
  Result r = convertText(R"K(_format_version: "3.0"
services: [{name: s, url: "http://127.0.0.1:9000", routes: [{paths: [/]}]}]
consumers:
- username: a
  keyauth_credentials: [{key: k}]
  jwt_secrets: [{key: i, secret: s}]
)K");
  expectValid(r);
  EXPECT_TRUE(hasWarning(r, "consumers[0].keyauth_credentials[0]", 5, "no key-auth plugin"));
  EXPECT_TRUE(hasWarning(r, "consumers[0].jwt_secrets[0]", 6, "no jwt plugin"));
}

// ---------------------------------------------------------------------------------------------
// Hostile input: never a crash, whatever the bytes.

TEST(KongHostile, TruncationsAndMutationsNeverCrash) {
  const std::string full = readFile("test/config_import/testdata/full.kong.yml");
  ASSERT_FALSE(full.empty());
  for (size_t n = 0; n < full.size(); n += 37) {
    (void)convertText(full.substr(0, n), n % 2 == 0, "http://127.0.0.1:1/j");
  }
  for (size_t i = 0; i < full.size(); i += 53) {
    for (char c : {'\0', ':', '-', '[', '~', '9', '\n'}) {
      std::string mutated = full;
      mutated[i] = c;
      (void)convertText(mutated, true, "http://127.0.0.1:1/j");
    }
  }
  (void)convertText(std::string(100000, '['));
  // Numbers no cast survives: refused or clamped, never undefined.
  for (const char* n : {"1e300", "-1e300", ".nan", ".inf", "-0", "18446744073709551617"}) {
    const std::string text = absl::StrCat(R"K(_format_version: "3.0"
services:
- name: s
  host: up
  retries: )K",
                                          n, R"K(
  routes: [{name: r, paths: [/], regex_priority: )K",
                                          n, R"K(}]
  plugins:
  - {name: rate-limiting, config: {second: )K",
                                          n, R"K(}}
  - {name: proxy-cache, config: {cache_ttl: )K",
                                          n, R"K(}}
  - {name: cors, config: {max_age: )K",
                                          n, R"K(}}
  - {name: http-log, config: {http_endpoint: "http://127.0.0.1:1/", flush_timeout: )K",
                                          n, R"K(, queue: {max_coalescing_delay: )K", n, R"K(}}}
  - {name: canary, config: {percentage: )K",
                                          n, R"K(, upstream_host: x}}
upstreams:
- name: up
  healthchecks: {active: {timeout: )K",
                                          n, R"K(, healthy: {interval: )K", n,
                                          R"K(}}}
  targets: [{target: "10.0.0.1:80", weight: )K",
                                          n, R"K(}]
)K");
    (void)convertText(text);
    (void)convertText(text, true);
  }
  (void)convertText("_format_version: \"3.0\"\nservices:\n- routes: [{paths: [\"~(\"]}]\n");
  (void)convertText("_format_version: \"3.0\"\nplugins: [{name: canary, route: x}]\n", true);
}

// ---------------------------------------------------------------------------------------------
// Goldens: testdata/<name>.kong.yml -> <name>.golden.yaml (the diagnostics as comments, then
// the resources as sluicectl writes YAML). UPDATE_GOLDEN=1 with `bazel run` rewrites them.

void golden(const std::string& name, bool lenient) {
  const std::string dir = "test/config_import/testdata/";
  const std::string text = readFile(dir + name + ".kong.yml");
  ASSERT_FALSE(text.empty()) << name;
  Options options;
  options.lenient = lenient;
  options.oauth2_jwks = "http://127.0.0.1:9999/jwks.json";
  Result r = convertKong(text, options);
  expectValid(r);
  std::string out = absl::StrCat("# Generated by test/config_import/kong_test.cc from ", name,
                                 ".kong.yml", lenient ? " (--lenient)" : "", ".\n");
  for (absl::string_view line : absl::StrSplit(renderDiagnostics(r.diagnostics, name + ".kong.yml"),
                                               '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "# ", line, "\n");
  }
  absl::StatusOr<std::string> yaml =
      Cli::jsonToYaml({canonicalJson(Config::toJson(r.resources))}, true);
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  absl::StrAppend(&out, *yaml);
  if (out.back() != '\n') out += "\n";
  const char* update = std::getenv("UPDATE_GOLDEN");
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (update != nullptr && std::string(update) == "1" && workspace != nullptr) {
    std::ofstream(absl::StrCat(workspace, "/", dir, name, ".golden.yaml")) << out;
    return;
  }
  EXPECT_EQ(readFile(dir + name + ".golden.yaml"), out)
      << "regenerate with: UPDATE_GOLDEN=1 bazel run //test/config_import:kong_test";
}

TEST(KongGolden, Seed) { golden("seed", true); }
TEST(KongGolden, Full) { golden("full", false); }

TEST(KongGolden, SeedIsRefusedInStrictMode) {
  const std::string text = readFile("test/config_import/testdata/seed.kong.yml");
  Result r = convertText(text);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(hasError(r, "upstreams[0].healthchecks.active.unhealthy.successes", 0,
                       "Kong has no such field (it takes http_failures, tcp_failures, "
                       "timeouts, interval, http_statuses)"))
      << diags(r);
  EXPECT_TRUE(hasError(r, "services[0].plugins[1].config.policy", 0, "cluster")) << diags(r);
  EXPECT_EQ(r.diagnostics.errorCount(), 2u) << diags(r);
}

}  // namespace
}  // namespace ConfigImport
}  // namespace sluice
