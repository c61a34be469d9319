#include "source/extensions/filters/http/auth/filter.h"

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/router/config.h"
#include "source/common/stats/stats.h"
#include "test/extensions/filters/http/auth/test_keys.h"
#include "test/test_common/network_utility.h"
#include "test/test_common/route_table.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace {

using testing::HasSubstr;
using Testing::TestKey;

constexpr int64_t kNow = 1700000000;

// Filter callbacks that record what the filter did.
class FakeCallbacks : public Http::StreamDecoderFilterCallbacks {
 public:
  explicit FakeCallbacks(Event::Dispatcher& d) : dispatcher_(d) {}
  Event::Dispatcher& dispatcher() override { return dispatcher_; }
  Http::StreamInfo& streamInfo() override { return info_; }
  const Router::RouteEntry* route() override { return route_; }
  Upstream::ClusterManager& clusterManager() override { abort(); }
  absl::string_view downstreamAddress() override { return "127.0.0.1"; }
  void resetStream() override {}
  uint32_t bufferLimit() override { return 65536; }
  void continueDecoding() override { ++continued; }
  void sendLocalReply(uint32_t status, absl::string_view message,
                      absl::optional<Http::ResponseFlag>,
                      std::function<void(Http::ResponseHeaderMap&)> modify,
                      absl::optional<Http::GatewayResponseType> type) override {
    reply_status = status;
    reply_type = type;
    reply_message = std::string(message);
    reply_headers = Http::ResponseHeaderMap();
    if (modify) modify(reply_headers);
  }
  void encodeHeaders(Http::ResponseHeaderMapPtr&&, bool) override {}
  void encodeData(Buffer::Instance&, bool) override {}
  void encodeTrailers(Http::HeaderMapPtr&&) override {}
  bool responseStarted() const override { return false; }
  void onDecoderFilterAboveWriteBufferHighWatermark() override {}
  void onDecoderFilterBelowWriteBufferLowWatermark() override {}
  void addDownstreamWatermarkCallbacks(Http::DownstreamWatermarkCallbacks&) override {}
  void removeDownstreamWatermarkCallbacks(Http::DownstreamWatermarkCallbacks&) override {}
  Http::RequestHeaderMap& requestHeaders() override { abort(); }
  void sendContinueIfExpected() override {}

  const Router::RouteEntry* route_ = nullptr;
  int continued = 0;
  uint32_t reply_status = 0;
  std::string reply_message;
  absl::optional<Http::GatewayResponseType> reply_type;
  Http::ResponseHeaderMap reply_headers;
  Http::StreamInfo info_;

 private:
  Event::Dispatcher& dispatcher_;
};

class FakeFetcher : public JwksFetcher {
 public:
  void fetch(Callback cb) override {
    ++fetches;
    pending = std::move(cb);
  }
  void complete(absl::StatusOr<std::string> body) {
    Callback cb = std::move(pending);
    pending = nullptr;
    cb(std::move(body));
  }
  int fetches = 0;
  Callback pending;
};

class AuthFilterTest : public testing::Test {
 protected:
  AuthFilterTest() : rsa_(TestKey::Kind::Rsa2048, "rsa1"), ec_(TestKey::Kind::P256, "ec1") {
    sluice::config::v1::RouteTable rt;
    EXPECT_TRUE(Config::loadFromYaml(R"(
name: t
virtual_hosts:
- domains: ["*"]
  routes:
  - {match: {prefix: /open}, route: {cluster: c}}
  - {match: {prefix: /missing}, route: {cluster: c}, auth: nope}
  - {match: {prefix: /}, route: {cluster: c}, auth: p}
)",
                                     rt)
                    .ok());
    table_ = *::sluice::Testing::compileRouteTable(rt);
  }

  void usePolicy(const std::string& yaml) {
    sluice::config::v1::AuthPolicy proto;
    auto s = Config::loadFromYaml(yaml, proto);
    ASSERT_TRUE(s.ok()) << s;
    proto.set_name("p");
    CompileOptions o;
    o.stats = &store_;
    auto compiled = compilePolicy(proto, "p", o);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    policy_ = std::const_pointer_cast<CompiledPolicy>(*compiled);
    auto fc = std::make_shared<FilterConfig>();
    fc->policies["p"] = policy_;
    fc->identity_headers = policy_->owned_headers;
    fc->now_s = [this]() { return now_; };
    config_ = fc;
  }

  std::string localJwksPolicy(const std::string& extra = "") {
    return absl::StrCat(R"(
jwt:
  providers:
  - name: a
    issuer: https://issuer.example
    audiences: [api]
    local_jwks: {inline: ')",
                        Testing::jwks({rsa_.jwk(), ec_.jwk()}), R"('}
    claim_to_headers: [{claim: sub, header: x-user-id}, {claim: realm.role, header: x-role}]
)",
                        extra);
  }

  std::string payload(int64_t exp_delta = 600, const std::string& extra = "") {
    return absl::StrCat(R"({"iss":"https://issuer.example","aud":"api","sub":"user-1","exp":)",
                        kNow + exp_delta, extra, "}");
  }

  // Runs one request; returns true if it continued past the filter at once.
  struct Result {
    bool continued;
    Http::RequestHeaderMap headers;
    uint32_t status;
    std::string message;
    std::vector<std::string> challenges;
    std::string logged_path;
    std::string consumer;  // StreamInfo, for later filters
    std::string credential;
    absl::optional<Http::GatewayResponseType> type;  // of the refusal
  };
  Result run(Http::RequestHeaderMap headers) {
    FakeCallbacks cb(*dispatcher_);
    headers.method = headers.method.empty() ? "GET" : headers.method;
    if (headers.path.empty()) headers.path = "/api";
    if (!headers.has("host")) headers.add("host", "example.com");
    cb.route_ = table_->route(headers);
    cb.info_.original_path = headers.path;
    AuthFilter filter(config_);
    filter.setDecoderFilterCallbacks(cb);
    const bool cont = filter.decodeHeaders(headers, true) == Http::FilterHeadersStatus::Continue;
    filter.onDestroy();
    Result r{cont,
             headers,
             cb.reply_status,
             cb.reply_message,
             {},
             cb.info_.original_path,
             std::string(cb.info_.filter_state.getString(Http::FilterStateNames::kConsumer)),
             std::string(cb.info_.filter_state.getString(Http::FilterStateNames::kCredential)),
             cb.reply_type};
    for (const auto& e : cb.reply_headers.entries()) {
      if (e.key == "www-authenticate") r.challenges.push_back(e.value);
    }
    return r;
  }
  Result bearer(const std::string& token, const std::string& path = "/api") {
    Http::RequestHeaderMap h;
    h.path = path;
    h.add("authorization", "Bearer " + token);
    return run(std::move(h));
  }
  int64_t stat(const std::string& name) { return store_.valueOf("auth.p." + name); }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{1};
  TestKey rsa_;
  TestKey ec_;
  Router::RouteTableConstSharedPtr table_;
  std::shared_ptr<CompiledPolicy> policy_;
  FilterConfigConstSharedPtr config_;
  int64_t now_ = kNow;
};

TEST_F(AuthFilterTest, ValidTokensPassWithClaimsAndWithoutTheToken) {
  usePolicy(localJwksPolicy());
  for (auto [key, alg] : {std::make_pair(&rsa_, Alg::RS256), std::make_pair(&rsa_, Alg::PS384),
                          std::make_pair(&ec_, Alg::ES256)}) {
    Http::RequestHeaderMap h;
    h.add("authorization",
          "Bearer " + Testing::signedToken(
                          alg, key, "",
                          payload(600, R"(,"scope":"orders read","realm":{"role":"admin"})")));
    h.add("x-consumer-username", "spoofed");
    h.add("x-user-id", "spoofed");
    h.add("x-authenticated-scope", "admin");
    Result r = run(std::move(h));
    ASSERT_TRUE(r.continued) << r.status << " " << r.message;
    EXPECT_EQ(r.consumer, "");
    EXPECT_EQ(r.credential, "jwt:https://issuer.example/user-1");
    EXPECT_FALSE(r.headers.has("authorization"));
    EXPECT_FALSE(r.headers.has("x-consumer-username"));  // no consumer matched
    EXPECT_EQ(r.headers.get("x-user-id"), "user-1");
    EXPECT_EQ(r.headers.count("x-user-id"), 1u);
    EXPECT_EQ(r.headers.get("x-role"), "admin");
    EXPECT_EQ(r.headers.get("x-authenticated-scope"), "orders read");
  }
  EXPECT_EQ(stat("allowed"), 3);
}

TEST_F(AuthFilterTest, RoutesWithoutPolicyPassWithoutSpoofedIdentity) {
  usePolicy(localJwksPolicy());
  Http::RequestHeaderMap h;
  h.path = "/open";
  h.add("x-consumer-username", "whoever");
  h.add("x-authenticated-scope", "admin");
  h.add("x-user-id", "root");  // a claim_to_headers header of the policy
  h.add("x-other", "kept");
  Result r = run(std::move(h));
  EXPECT_TRUE(r.continued);
  EXPECT_FALSE(r.headers.has("x-consumer-username"));
  EXPECT_FALSE(r.headers.has("x-authenticated-scope"));
  EXPECT_FALSE(r.headers.has("x-user-id"));
  EXPECT_EQ(r.headers.get("x-other"), "kept");
  Http::RequestHeaderMap m;
  m.path = "/missing";
  Result r2 = run(std::move(m));
  EXPECT_FALSE(r2.continued);
  EXPECT_EQ(r2.status, 503u);
}

TEST_F(AuthFilterTest, ForwardKeepsTheToken) {
  usePolicy(localJwksPolicy("    forward: true\n"));
  Result r = bearer(Testing::signedToken(Alg::RS256, &rsa_, "", payload()));
  ASSERT_TRUE(r.continued);
  EXPECT_TRUE(r.headers.has("authorization"));
}

TEST_F(AuthFilterTest, Denials) {
  usePolicy(localJwksPolicy());
  const std::string invalid = "Bearer realm=\"sluice\", error=\"invalid_token\"";
  struct Case {
    std::string token;
    const char* reason;
  };
  std::string good = Testing::signedToken(Alg::RS256, &rsa_, "", payload());
  // A valid token's header and payload with another token's signature.
  const std::string other = Testing::signedToken(Alg::RS256, &rsa_, "", payload(601));
  const std::string tampered = good.substr(0, good.rfind('.')) + other.substr(other.rfind('.'));
  std::vector<Case> cases = {
      {Testing::signedToken(Alg::RS256, &rsa_, "", payload(-31)), "expired"},
      {Testing::signedToken(Alg::RS256, &rsa_, "", payload(600, R"(,"nbf":1700000100)")),
       "not_yet_valid"},
      {Testing::signedToken(Alg::RS256, &rsa_, "",
                            R"({"iss":"https://issuer.example","aud":"api"})"),
       "missing_expiration"},
      {Testing::signedToken(
           Alg::RS256, &rsa_, "",
           absl::StrCat(R"({"iss":"https://other","aud":"api","exp":)", kNow + 60, "}")),
       "bad_issuer"},
      {Testing::signedToken(
           Alg::RS256, &rsa_, "",
           absl::StrCat(R"({"iss":"https://issuer.example","aud":["x"],"exp":)", kNow + 60, "}")),
       "bad_audience"},
      {tampered, "bad_signature"},
      // HS256 signed with the RSA public key as the secret (alg confusion).
      {Testing::signedToken(Alg::HS256, nullptr, rsa_.publicPem(), payload()), "bad_algorithm"},
      {Testing::makeToken(R"({"alg":"none"})", payload(), [](absl::string_view) { return ""; }),
       "bad_algorithm"},
      // ES256 header on the RSA key's kid.
      {Testing::makeToken(R"({"alg":"ES256","kid":"rsa1"})", payload(),
                          [this](absl::string_view in) { return ec_.sign(Alg::ES256, in); }),
       "bad_algorithm"},
      {Testing::makeToken(R"({"alg":"RS256","kid":"nope"})", payload(),
                          [this](absl::string_view in) { return rsa_.sign(Alg::RS256, in); }),
       "unknown_key"},
      {"a.b", "malformed"},
      {good + ".x", "malformed"},
      {good.substr(0, good.size() - 1) + "=", "malformed"},
      {Testing::signedToken(
           Alg::RS256, &rsa_, "",
           payload(600, absl::StrCat(",\"pad\":\"", std::string(9000, 'x'), "\""))),
       "malformed"},
  };
  for (const Case& c : cases) {
    const int64_t before = stat(absl::StrCat("denied_", c.reason));
    Result r = bearer(c.token);
    EXPECT_FALSE(r.continued) << c.reason;
    EXPECT_EQ(r.status, 401u) << c.reason;
    EXPECT_THAT(r.challenges, testing::ElementsAre(invalid)) << c.reason;
    EXPECT_EQ(stat(absl::StrCat("denied_", c.reason)), before + 1) << c.reason << " " << r.message;
    // Gateway responses: an expired token has its own type, other bad tokens are UNAUTHORIZED.
    EXPECT_EQ(r.type, std::string(c.reason) == "expired" ? Http::GatewayResponseType::ExpiredToken
                                                         : Http::GatewayResponseType::Unauthorized)
        << c.reason;
  }
  // No credential at all: a challenge without an error code.
  Result missing = run(Http::RequestHeaderMap());
  EXPECT_EQ(missing.status, 401u);
  EXPECT_THAT(missing.challenges, testing::ElementsAre("Bearer realm=\"sluice\""));
  EXPECT_EQ(stat("denied_missing"), 1);
  EXPECT_EQ(missing.message, "no credentials found in the request");
  EXPECT_EQ(missing.type, Http::GatewayResponseType::Unauthorized);
  // "Basic ..." is not a bearer token.
  Http::RequestHeaderMap basic;
  basic.add("authorization", "Basic YTpi");
  EXPECT_EQ(run(std::move(basic)).status, 401u);
  EXPECT_EQ(stat("allowed"), 0);
}

TEST_F(AuthFilterTest, ClockSkewAndQueryParams) {
  usePolicy(localJwksPolicy("    clock_skew: 5s\n    from_params: [access_token]\n"));
  Result r = bearer(Testing::signedToken(Alg::RS256, &rsa_, "", payload(-6)));
  EXPECT_EQ(r.status, 401u);
  // from_params replaces the default header location.
  Http::RequestHeaderMap h;
  h.path =
      "/api?x=1&access_token=" + Testing::signedToken(Alg::RS256, &rsa_, "", payload(-4)) + "&y=2";
  Result q = run(std::move(h));
  ASSERT_TRUE(q.continued) << q.message;
  EXPECT_EQ(q.headers.path, "/api?x=1&y=2");
  EXPECT_EQ(q.logged_path, "/api?x=1&y=2");  // no credential in the access log either
}

TEST_F(AuthFilterTest, RequiredScopes) {
  usePolicy(localJwksPolicy() + "required_scopes: [orders, write]\n");
  Result ok = bearer(
      Testing::signedToken(Alg::RS256, &rsa_, "", payload(600, R"(,"scp":["orders","write"])")));
  EXPECT_TRUE(ok.continued) << ok.message;
  Result no =
      bearer(Testing::signedToken(Alg::RS256, &rsa_, "", payload(600, R"(,"scope":"orders")")));
  EXPECT_FALSE(no.continued);
  EXPECT_EQ(no.status, 403u);
  EXPECT_THAT(no.challenges,
              testing::ElementsAre(
                  "Bearer realm=\"sluice\", error=\"insufficient_scope\", scope=\"orders write\""));
  EXPECT_EQ(stat("denied_insufficient_scope"), 1);
  EXPECT_EQ(no.type, Http::GatewayResponseType::AccessDenied);
}

TEST_F(AuthFilterTest, KeyAuthInHeaderAndQuery) {
  usePolicy(R"(
key_auth: {key_names: [apikey, X-Api-Key]}
consumers:
- {username: alice, keyauth_credentials: [{key: alice-key}], scopes: [orders]}
- {username: bob, keyauth_credentials: [{key: "bob key"}]}
)");
  Http::RequestHeaderMap h;
  h.add("x-api-key", "alice-key");
  h.add("x-consumer-username", "admin");
  Result r = run(std::move(h));
  ASSERT_TRUE(r.continued) << r.message;
  EXPECT_EQ(r.headers.get("x-consumer-username"), "alice");
  EXPECT_EQ(r.headers.count("x-consumer-username"), 1u);
  EXPECT_EQ(r.headers.get("x-authenticated-scope"), "orders");
  EXPECT_FALSE(r.headers.has("x-api-key"));
  EXPECT_EQ(r.consumer, "alice");
  // An id of the key for rate_limit's CREDENTIAL, never the key itself.
  EXPECT_EQ(r.credential, "key:" + absl::BytesToHexString(keyDigest("alice-key").substr(0, 12)));

  Http::RequestHeaderMap q;
  q.path = "/api?apikey=bob+key&keep=1";
  Result rq = run(std::move(q));
  ASSERT_TRUE(rq.continued) << rq.message;
  EXPECT_EQ(rq.headers.get("x-consumer-username"), "bob");
  EXPECT_EQ(rq.headers.path, "/api?keep=1");
  EXPECT_EQ(rq.logged_path, "/api?keep=1");

  Http::RequestHeaderMap bad;
  bad.add("apikey", "alice-kez");
  Result rb = run(std::move(bad));
  EXPECT_EQ(rb.status, 401u);
  EXPECT_THAT(rb.challenges, testing::ElementsAre("Key realm=\"sluice\""));
  EXPECT_EQ(stat("denied_bad_key"), 1);
  EXPECT_EQ(rb.type, Http::GatewayResponseType::InvalidApiKey);
  Result none = run(Http::RequestHeaderMap());
  EXPECT_THAT(none.challenges, testing::ElementsAre("Key realm=\"sluice\""));
  EXPECT_EQ(none.type, Http::GatewayResponseType::Unauthorized);  // missing, not invalid
}

TEST_F(AuthFilterTest, KeyAuthVisibleWhenNotHidden) {
  usePolicy(R"(
key_auth: {hide_credentials: false, in_query: false}
consumers: [{username: alice, keyauth_credentials: [{key: k}]}]
)");
  Http::RequestHeaderMap h;
  h.add("apikey", "k");
  Result r = run(std::move(h));
  ASSERT_TRUE(r.continued);
  EXPECT_TRUE(r.headers.has("apikey"));
  Http::RequestHeaderMap q;
  q.path = "/api?apikey=k";
  EXPECT_EQ(run(std::move(q)).status, 401u);  // in_query: false
}

TEST_F(AuthFilterTest, Anonymous) {
  usePolicy(R"(
key_auth: {}
allow_anonymous: true
consumers: [{username: alice, keyauth_credentials: [{key: k}]}]
)");
  Http::RequestHeaderMap h;
  h.add("x-consumer-username", "alice");
  Result r = run(std::move(h));
  ASSERT_TRUE(r.continued);
  EXPECT_EQ(r.headers.get("x-consumer-username"), "anonymous");
  EXPECT_EQ(r.consumer, "anonymous");
  EXPECT_EQ(r.credential, "");
  EXPECT_EQ(stat("anonymous"), 1);
  Http::RequestHeaderMap bad;
  bad.add("apikey", "wrong");
  EXPECT_EQ(run(std::move(bad)).status, 401u);  // bad credentials are not anonymous
}

TEST_F(AuthFilterTest, ConsumerJwtCredentials) {
  usePolicy(absl::StrCat(R"(
jwt: {consumer_credentials: {}}
consumers:
- username: alice
  jwt_credentials: [{key: alice-iss, algorithm: HS256, secret: s3cr3t}]
- username: carol
  jwt_credentials: [{key: carol-iss, algorithm: ES256, rsa_public_key: ")",
                         absl::StrReplaceAll(ec_.publicPem(), {{"\n", "\\n"}}), R"("}]
)"));
  const std::string p_alice = absl::StrCat(R"({"iss":"alice-iss","exp":)", kNow + 60, "}");
  Result r = bearer(Testing::signedToken(Alg::HS256, nullptr, "s3cr3t", p_alice));
  ASSERT_TRUE(r.continued) << r.message;
  EXPECT_EQ(r.headers.get("x-consumer-username"), "alice");
  EXPECT_EQ(r.consumer, "alice");
  EXPECT_EQ(r.credential, "jwt:alice-iss");
  // The credential's algorithm is pinned.
  EXPECT_EQ(bearer(Testing::signedToken(Alg::HS512, nullptr, "s3cr3t", p_alice)).status, 401u);
  EXPECT_EQ(stat("denied_bad_algorithm"), 1);
  EXPECT_EQ(bearer(Testing::signedToken(Alg::HS256, nullptr, "wrong", p_alice)).status, 401u);
  const std::string p_carol = absl::StrCat(R"({"iss":"carol-iss","exp":)", kNow + 60, "}");
  Result c = bearer(Testing::signedToken(Alg::ES256, &ec_, "", p_carol));
  ASSERT_TRUE(c.continued) << c.message;
  EXPECT_EQ(c.headers.get("x-consumer-username"), "carol");
  EXPECT_EQ(bearer(Testing::signedToken(Alg::HS256, nullptr, "s3cr3t",
                                        R"({"iss":"nobody","exp":1800000000})"))
                .status,
            401u);
  EXPECT_EQ(stat("denied_unknown_key"), 1);
}

TEST_F(AuthFilterTest, TokenCacheSkipsVerificationAndHonoursExp) {
  usePolicy(localJwksPolicy());
  const std::string t = Testing::signedToken(Alg::RS256, &rsa_, "", payload(100));
  EXPECT_TRUE(bearer(t).continued);
  EXPECT_EQ(stat("token_cache_miss"), 1);
  for (int i = 0; i < 5; ++i) {
    Result r = bearer(t);
    EXPECT_TRUE(r.continued);
    EXPECT_EQ(r.credential, "jwt:https://issuer.example/user-1");  // from the cache too
    EXPECT_EQ(r.headers.get("x-user-id"), "user-1");
    EXPECT_FALSE(r.headers.has("authorization"));
  }
  EXPECT_EQ(stat("token_cache_hit"), 5);
  now_ = kNow + 131;  // past exp + 30s skew
  Result late = bearer(t);
  EXPECT_FALSE(late.continued);
  EXPECT_EQ(stat("denied_expired"), 1);
  EXPECT_EQ(stat("token_cache_hit"), 5);
}

TEST_F(AuthFilterTest, TokenCacheOff) {
  usePolicy(localJwksPolicy() + "token_cache_entries: 0\n");
  const std::string t = Testing::signedToken(Alg::RS256, &rsa_, "", payload());
  EXPECT_TRUE(bearer(t).continued);
  EXPECT_TRUE(bearer(t).continued);
  EXPECT_EQ(stat("token_cache_hit"), 0);
}

TEST(TokenCacheTest, BoundedLru) {
  TokenCache cache(2);
  cache.insert("a", Identity{"alice"});
  cache.insert("b", Identity{"bob"});
  ASSERT_NE(cache.find("a"), nullptr);  // a is now the most recent
  cache.insert("c", Identity{"carol"});
  EXPECT_EQ(cache.find("b"), nullptr);
  EXPECT_EQ(cache.find("a")->consumer, "alice");
  EXPECT_EQ(cache.find("c")->consumer, "carol");
  EXPECT_EQ(cache.size(), 2u);
  cache.erase("a");
  EXPECT_EQ(cache.find("a"), nullptr);
}

class RemoteJwksFilterTest : public AuthFilterTest {
 protected:
  void SetUp() override {
    usePolicy(R"(
jwt:
  providers:
  - issuer: https://issuer.example
    remote_jwks: {uri: "http://127.0.0.1:1/jwks", timeout: 1s}
)");
    auto fetcher = std::make_unique<FakeFetcher>();
    fetcher_ = fetcher.get();
    remote_ =
        std::make_shared<RemoteJwks>(*dispatcher_, std::move(fetcher), "test",
                                     policy_->stats.jwks_fetch, policy_->stats.jwks_fetch_failed);
    RemoteJwks::Settings s;
    s.min_refetch_interval = std::chrono::milliseconds(1000);
    remote_->configure(s);  // first fetch starts
    lease_ = remote_->lease();
    policy_->providers[0].remote = remote_;
  }
  std::string tokenFor(const TestKey& k) {
    return Testing::signedToken(
        Alg::RS256, &k, "",
        absl::StrCat(R"({"iss":"https://issuer.example","exp":)", kNow + 600, "}"));
  }

  FakeFetcher* fetcher_ = nullptr;
  RemoteJwksSharedPtr remote_;
  std::shared_ptr<void> lease_;
};

TEST_F(RemoteJwksFilterTest, RequestWaitsForTheFirstFetchThenRotation) {
  FakeCallbacks cb(*dispatcher_);
  Http::RequestHeaderMap h;
  h.method = "GET";
  h.path = "/api";
  h.add("authorization", "Bearer " + tokenFor(rsa_));
  cb.route_ = table_->route(h);
  auto filter = std::make_unique<AuthFilter>(config_);
  filter->setDecoderFilterCallbacks(cb);
  EXPECT_EQ(filter->decodeHeaders(h, true), Http::FilterHeadersStatus::StopIteration);
  EXPECT_EQ(cb.reply_status, 0u);
  EXPECT_EQ(fetcher_->fetches, 1);  // joins the initial fetch
  fetcher_->complete(Testing::jwks({rsa_.jwk()}));
  EXPECT_TRUE(sluice::Testing::runUntil(*dispatcher_, [&] { return cb.continued == 1; }));
  EXPECT_FALSE(h.has("authorization"));
  filter->onDestroy();
  EXPECT_EQ(stat("jwks_fetch"), 1);

  // A token signed by a new key: the request waits for a refetch (once the interval passed).
  TestKey rotated(TestKey::Kind::Rsa2048, "rsa2");
  TestKey other(TestKey::Kind::Rsa2048, "rsa3");
  EXPECT_FALSE(sluice::Testing::runUntil(
      *dispatcher_, [] { return false; }, std::chrono::milliseconds(1050)));
  FakeCallbacks cb2(*dispatcher_);
  Http::RequestHeaderMap h2;
  h2.method = "GET";
  h2.path = "/api";
  h2.add("authorization", "Bearer " + tokenFor(rotated));
  cb2.route_ = table_->route(h2);
  AuthFilter f2(config_);
  f2.setDecoderFilterCallbacks(cb2);
  EXPECT_EQ(f2.decodeHeaders(h2, true), Http::FilterHeadersStatus::StopIteration);
  EXPECT_TRUE(sluice::Testing::runUntil(*dispatcher_, [&] { return fetcher_->fetches == 2; }));
  fetcher_->complete(Testing::jwks({rotated.jwk()}));
  EXPECT_TRUE(sluice::Testing::runUntil(*dispatcher_, [&] { return cb2.continued == 1; }));
  f2.onDestroy();

  // Another unknown kid right away: rate-limited, denied without a fetch.
  FakeCallbacks cb3(*dispatcher_);
  Http::RequestHeaderMap h3;
  h3.method = "GET";
  h3.path = "/api";
  h3.add("authorization", "Bearer " + tokenFor(other));
  cb3.route_ = table_->route(h3);
  AuthFilter f3(config_);
  f3.setDecoderFilterCallbacks(cb3);
  EXPECT_EQ(f3.decodeHeaders(h3, true), Http::FilterHeadersStatus::StopIteration);
  EXPECT_TRUE(sluice::Testing::runUntil(*dispatcher_, [&] { return cb3.reply_status != 0; }));
  EXPECT_EQ(cb3.reply_status, 401u);
  EXPECT_EQ(fetcher_->fetches, 2);
  EXPECT_EQ(stat("denied_unknown_key"), 1);
  f3.onDestroy();
}

TEST_F(RemoteJwksFilterTest, FailedFetchKeepsCachedKeysAndStreamResetWhileWaiting) {
  fetcher_->complete(Testing::jwks({rsa_.jwk()}));
  EXPECT_TRUE(bearer(tokenFor(rsa_)).continued);

  // A stream that goes away while it waits is never called back.
  TestKey rotated(TestKey::Kind::Rsa2048, "rsa2");
  EXPECT_FALSE(sluice::Testing::runUntil(
      *dispatcher_, [] { return false; }, std::chrono::milliseconds(1050)));
  {
    FakeCallbacks cb(*dispatcher_);
    Http::RequestHeaderMap h;
    h.method = "GET";
    h.path = "/api";
    h.add("authorization", "Bearer " + tokenFor(rotated));
    cb.route_ = table_->route(h);
    AuthFilter f(config_);
    f.setDecoderFilterCallbacks(cb);
    EXPECT_EQ(f.decodeHeaders(h, true), Http::FilterHeadersStatus::StopIteration);
    EXPECT_TRUE(
        sluice::Testing::runUntil(*dispatcher_, [&] { return fetcher_->pending != nullptr; }));
    f.onDestroy();
  }
  fetcher_->complete(absl::UnavailableError("down"));
  sluice::Testing::runPending(*dispatcher_);
  EXPECT_EQ(stat("jwks_fetch_failed"), 1);
  // The old keys still work.
  EXPECT_TRUE(bearer(Testing::signedToken(Alg::RS256, &rsa_, "",
                                          absl::StrCat(R"({"iss":"https://issuer.example","exp":)",
                                                       kNow + 700, "}")))
                  .continued);
}

TEST(QueryTest, FindAndRemove) {
  std::string v;
  EXPECT_TRUE(findQueryParam("a=1&b=x%20y+z&c", "b", v));
  EXPECT_EQ(v, "x y z");
  EXPECT_TRUE(findQueryParam("a=1&b=x%20y+z&c", "c", v));
  EXPECT_EQ(v, "");
  EXPECT_FALSE(findQueryParam("a=1", "ab", v));
  EXPECT_EQ(removeQueryParams("/p?a=1&b=2&a=3", {"a"}), "/p?b=2");
  EXPECT_EQ(removeQueryParams("/p?a=1", {"a"}), "/p");
  EXPECT_EQ(removeQueryParams("/p", {"a"}), "/p");
}

}  // namespace
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
