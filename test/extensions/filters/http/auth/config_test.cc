#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/server/config/snapshot.h"
#include "test/extensions/filters/http/auth/test_keys.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace {

using testing::HasSubstr;
using testing::Not;

std::string buildError(const std::string& yaml, bool validate_only = false) {
  sluice::config::v1::Bootstrap b;
  auto s = Config::loadFromYaml(yaml, b);
  EXPECT_TRUE(s.ok()) << s;
  if (validate_only) {
    absl::Status v = Server::validateResources(b.static_resources());
    return v.ok() ? "" : std::string(v.message());
  }
  auto snap = Server::buildSnapshot(b, nullptr, Server::BuildOptions{});
  return snap.ok() ? "" : std::string(snap.status().message());
}

std::string config(const std::string& policies,
                   const std::string& filters = "[{name: auth}, {name: router}]") {
  return absl::StrCat(R"(
static_resources:
  clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 9000}]}]
  route_tables:
  - name: main
    virtual_hosts:
    - domains: ["*"]
      routes:
      - {name: users, match: {prefix: /users}, route: {cluster: c}, auth: p}
      - {match: {prefix: /}, route: {cluster: c}}
  listeners:
  - {name: public, route_table: main, http_filters: )",
                      filters, R"(}
  auth_policies:
)",
                      policies);
}

TEST(AuthConfigTest, ValidPolicies) {
  Testing::TestKey rsa(Testing::TestKey::Kind::Rsa2048, "k");
  const std::string yaml = config(absl::StrCat(R"(
  - name: p
    jwt:
      providers:
      - {issuer: a, local_jwks: {inline: ')",
                                               Testing::jwks({rsa.jwk()}), R"('}}
      - {issuer: b, remote_jwks: {uri: "http://127.0.0.1:9000/jwks.json", cache_duration: 60s}}
      - {issuer: c, remote_jwks: {uri: "http://localhost/.well-known/jwks.json"}}
    key_auth: {}
    consumers: [{username: alice, keyauth_credentials: [{key: k1}],
                 jwt_credentials: [{key: alice-iss, secret: s}]}]
)"));
  EXPECT_EQ(buildError(yaml), "");
  EXPECT_EQ(buildError(yaml, true), "");
}

TEST(AuthConfigTest, ErrorsNameTheirFields) {
  const std::string e = buildError(config(R"(
  - name: p
    max_token_bytes: 2000000
    required_scopes: ["a b"]
    jwt:
      providers:
      - {local_jwks: {inline: '{"keys": [{"kty": "RSA", "e": "AQAB"}]}'}}
      - {local_jwks: {inline: 'not json'}}
      - {remote_jwks: {uri: "ftp://idp.example/jwks"}}
      - {remote_jwks: {uri: "http://idp_example/jwks"}}
      - {remote_jwks: {uri: "http://127.0.0.1:99999/jwks"}}
      - {}
      - local_jwks: {inline: '{"keys":[]}'}
        remote_jwks: {uri: "http://127.0.0.1/"}
      - {local_jwks: {filename: /nonexistent/jwks.json}}
      - {local_jwks: {inline: '{"keys":[{"kty":"oct","k":"YQ"}]}'},
         claim_to_headers: [{claim: sub, header: "bad header"}, {claim: sub, header: host}]}
    key_auth: {in_header: false, in_query: false}
    consumers:
    - username: alice
      keyauth_credentials: [{key: k1}, {key: k1}]
      jwt_credentials:
      - {key: a, algorithm: HS257, secret: s}
      - {key: b, algorithm: RS256, rsa_public_key: "nope"}
      - {key: c, algorithm: HS256}
      - {key: d, algorithm: ES256, secret: s}
)"));
  const std::string p = "static_resources.auth_policies[0]";
  EXPECT_THAT(e, HasSubstr(p + ".max_token_bytes: must be <= 1048576"));
  EXPECT_THAT(e, HasSubstr(p + ".required_scopes[0]: must be a non-empty scope"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[0].local_jwks.inline: keys[0].n: missing"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[1].local_jwks.inline: invalid JSON"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[2].remote_jwks.uri: must start with http://"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[3].remote_jwks.uri: host \"idp_example\" is not an "
                               "IP address or a valid host name"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[4].remote_jwks.uri: invalid port"));
  EXPECT_THAT(e,
              HasSubstr(p + ".jwt.providers[5]: needs exactly one of local_jwks and remote_jwks"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[6]: needs exactly one of"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[7].local_jwks.filename: cannot read"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[8].claim_to_headers[0].header: must be a header"));
  EXPECT_THAT(e, HasSubstr(p + ".jwt.providers[8].claim_to_headers[1].header: \"host\" cannot"));
  EXPECT_THAT(e, HasSubstr(p + ".key_auth: in_header and in_query cannot both be false"));
  EXPECT_THAT(e, HasSubstr(p + ".consumers[0].keyauth_credentials[1].key: duplicate key"));
  EXPECT_THAT(e, HasSubstr(p + ".consumers[0].jwt_credentials[0].algorithm: unknown algorithm"));
  EXPECT_THAT(e, HasSubstr(p + ".consumers[0].jwt_credentials[1].rsa_public_key: not a PEM"));
  EXPECT_THAT(e, HasSubstr(p + ".consumers[0].jwt_credentials[2].secret: is required for HS256"));
  EXPECT_THAT(e, HasSubstr(p + ".consumers[0].jwt_credentials[3].rsa_public_key: is required"));
}

// Every error compilePolicy reports, in order, byte for byte (as before it was split up).
TEST(AuthConfigTest, ErrorTextIsStable) {
  const std::string e = buildError(config(R"(
  - name: p
    max_token_bytes: 2000000
    token_cache_entries: 2000000
    required_scopes: ["a b", ""]
    jwt:
      providers:
      - {local_jwks: {inline: '{"keys": [{"kty": "RSA", "e": "AQAB"}]}'}, clock_skew: 25h}
      - {local_jwks: {inline: '{"keys": [1e400, {"kty":"oct","k":"YQ=="}]}'}, clock_skew: -1s}
      - {local_jwks: {inline: '{"keys":[{"kty":"oct","k":"YQ","use":"enc"}]}'},
         from_headers: [{name: "a b"}, {name: x-token, value_prefix: "T "}], from_params: [""]}
      - remote_jwks: {uri: "ftp://idp.example/jwks", cache_duration: 0s, timeout: -1s}
      - {}
      - {local_jwks: {inline: 'x', filename: y}}
      - {local_jwks: {filename: /nonexistent/jwks.json}}
      - {local_jwks: {inline: '{"keys":[{"kty":"oct","k":"YQ"}]}'},
         claim_to_headers: [{header: x-sub}, {claim: sub, header: connection}]}
      consumer_credentials: {key_claim_name: kid}
    key_auth: {in_header: false, in_query: false, key_names: ["a b", ok]}
    consumers:
    - username: "bad\nname"
      keyauth_credentials: [{key: k1}, {key: k1}, {}]
      jwt_credentials:
      - {key: a, algorithm: HS257, secret: s}
      - {key: b, algorithm: RS256, rsa_public_key: "nope", secret: s}
      - {key: c, algorithm: HS256}
      - {key: d, algorithm: ES256, secret: s}
      - {secret: s}
      - {key: e, secret: s, rsa_public_key: k}
      - {key: e, secret: s}
)"));
  const std::string p = "static_resources.auth_policies[0]";
  const std::vector<std::string> want = {
      ".max_token_bytes: must be <= 1048576",
      ".token_cache_entries: must be <= 1000000",
      ".required_scopes[0]: must be a non-empty scope without spaces",
      ".required_scopes[1]: must be a non-empty scope without spaces",
      ".jwt.providers[0].clock_skew: must be <= 24h",
      ".jwt.providers[0].local_jwks.inline: keys[0].n: missing",
      ".jwt.providers[1].clock_skew: must not be negative",
      ".jwt.providers[1].local_jwks.inline: keys[0].a JWK must be a JSON object",
      ".jwt.providers[2].from_headers[0].name: must be a header name",
      ".jwt.providers[2].from_params[0]: must not be empty",
      ".jwt.providers[2].local_jwks.inline: no signing key",
      ".jwt.providers[3].remote_jwks.uri: must start with http:// or https://",
      ".jwt.providers[3].remote_jwks.cache_duration: must be > 0",
      ".jwt.providers[3].remote_jwks.timeout: must not be negative",
      ".jwt.providers[4]: needs exactly one of local_jwks and remote_jwks",
      ".jwt.providers[5].local_jwks: set inline or filename, not both",
      ".jwt.providers[6].local_jwks.filename: cannot read \"/nonexistent/jwks.json\"",
      ".jwt.providers[7].claim_to_headers[0].claim: is required",
      ".jwt.providers[7].claim_to_headers[1].header: \"connection\" cannot be set from a claim",
      ".key_auth: in_header and in_query cannot both be false",
      ".key_auth.key_names[0]: must be a valid header / parameter name",
      ".consumers[0].username: must be a valid header value",
      ".consumers[0].keyauth_credentials[1].key: duplicate key (keys must be unique within a "
      "policy)",
      ".consumers[0].keyauth_credentials[2].key: is required",
      ".consumers[0].jwt_credentials[0].algorithm: unknown algorithm \"HS257\" (HS256/384/512, "
      "RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)",
      ".consumers[0].jwt_credentials[1].secret: not used with RS256",
      ".consumers[0].jwt_credentials[1].rsa_public_key: not a PEM public key",
      ".consumers[0].jwt_credentials[2].secret: is required for HS256",
      ".consumers[0].jwt_credentials[3].rsa_public_key: is required for ES256",
      ".consumers[0].jwt_credentials[4].key: is required",
      ".consumers[0].jwt_credentials[5].rsa_public_key: not used with HS256",
      ".consumers[0].jwt_credentials[6].key: duplicate credential key \"e\"",
  };
  std::string expected;
  for (const std::string& line : want) {
    absl::StrAppend(&expected, expected.empty() ? "" : "\n", p, line);
  }
  EXPECT_EQ(e, expected);
}

TEST(AuthConfigTest, ControlPlaneValidationReadsNoFiles) {
  const std::string yaml = config(R"(
  - name: p
    jwt: {providers: [{local_jwks: {filename: /nonexistent/jwks.json}}]}
)");
  EXPECT_THAT(buildError(yaml), HasSubstr("cannot read"));
  EXPECT_EQ(buildError(yaml, true), "");
}

TEST(AuthConfigTest, RouteWithPolicyNeedsTheAuthFilter) {
  const std::string policy = "  - {name: p, key_auth: {}}\n";
  const std::string e = buildError(config(policy, "[{name: router}]"));
  EXPECT_THAT(e, HasSubstr("static_resources.listeners[0].http_filters: route \"users\" "
                           "(static_resources.route_tables[0].virtual_hosts[0].routes[0]) requires "
                           "auth policy \"p\" but listener \"public\" has no auth filter"));
  // The default chain ([router]) is no better.
  std::string no_filters = config(policy);
  no_filters.replace(no_filters.find(", http_filters: [{name: auth}, {name: router}]"),
                     strlen(", http_filters: [{name: auth}, {name: router}]"), "");
  EXPECT_THAT(buildError(no_filters), HasSubstr("has no auth filter"));
  EXPECT_THAT(buildError(no_filters, true),
              HasSubstr("listeners[0].http_filters: route \"users\""));
  EXPECT_EQ(buildError(config(policy)), "");
}

TEST(AuthConfigTest, FilterConfigIsTyped) {
  const std::string policy = "  - {name: p, key_auth: {}}\n";
  // Unknown fields of the filter's own message are refused at their path.
  EXPECT_THAT(buildError(config(policy, "[{name: auth, config: {x: 1}}, {name: router}]")),
              HasSubstr("http_filters[0].config.x: unknown field"));
  // The listener's default policy must exist.
  EXPECT_THAT(buildError(config(policy, "[{name: auth, config: {policy: nope}}, {name: router}]")),
              HasSubstr("http_filters[0].config.policy: unknown auth policy \"nope\""));
  EXPECT_EQ(buildError(config(policy, "[{name: auth, config: {policy: p}}, {name: router}]")), "");
}

// Per-route config: filter_config on routes and virtual hosts, validated by the filter.
std::string perRoute(const std::string& vhost_extra, const std::string& route_extra,
                     const std::string& filters = "[{name: auth}, {name: router}]") {
  return absl::StrCat(R"(
static_resources:
  clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 9000}]}]
  route_tables:
  - name: main
    virtual_hosts:
    - domains: ["*"]
)",
                      vhost_extra, R"(
      routes:
      - {name: users, match: {prefix: /users}, route: {cluster: c})",
                      route_extra, R"(}
  listeners:
  - {name: public, route_table: main, http_filters: )",
                      filters, R"(}
  auth_policies: [{name: p, key_auth: {}}]
)");
}

TEST(AuthConfigTest, PerRouteFilterConfig) {
  EXPECT_EQ(buildError(perRoute("", ", filter_config: {auth: {policy: p}}")), "");
  EXPECT_EQ(buildError(perRoute("      filter_config: {auth: {policy: p}}", "")), "");
  EXPECT_EQ(buildError(perRoute("", ", filter_config: {auth: {disabled: true}}")), "");
  const std::string r = "static_resources.route_tables[0].virtual_hosts[0].routes[0]";
  EXPECT_THAT(buildError(perRoute("", ", filter_config: {auth: {policy: q}}")),
              HasSubstr(r + ".filter_config.auth.policy: unknown auth policy \"q\""));
  EXPECT_THAT(buildError(perRoute("", ", filter_config: {auth: {}}")),
              HasSubstr(r + ".filter_config.auth.policy: set either policy or disabled: true"));
  EXPECT_THAT(buildError(perRoute("", ", filter_config: {auth: {policy: p, extra: 1}}")),
              HasSubstr(r + ".filter_config.auth.extra: unknown field"));
  EXPECT_THAT(buildError(perRoute("", ", auth: p, filter_config: {auth: {policy: p}}")),
              HasSubstr(r + ".auth: set either auth or filter_config.auth, not both"));
  EXPECT_THAT(buildError(perRoute("", ", filter_config: {nosuch: {}}")),
              HasSubstr(r + ".filter_config.nosuch: unknown filter \"nosuch\""));
  EXPECT_THAT(buildError(perRoute("", ", filter_config: {router: {}}")),
              HasSubstr(r + ".filter_config.router: the router filter takes no per-route config"));
  // A listener serving a route or virtual host that configures a filter it lacks is refused.
  EXPECT_THAT(buildError(perRoute("", ", filter_config: {auth: {policy: p}}", "[{name: router}]")),
              HasSubstr("listeners[0].http_filters: route \"users\" (" + r +
                        ") requires auth policy \"p\" but listener \"public\" has no auth "
                        "filter"));
  EXPECT_THAT(
      buildError(perRoute("      filter_config: {auth: {policy: p}}", "", "[{name: router}]")),
      HasSubstr("requires auth policy \"p\" but listener \"public\" has no auth"));
  // Disabling a filter asks nothing of the listener.
  EXPECT_EQ(
      buildError(perRoute("", ", filter_config: {auth: {disabled: true}}", "[{name: router}]")),
      "");
}

}  // namespace
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
