#include "source/extensions/filters/http/cors/policy.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice {
namespace Extensions {
namespace Cors {
namespace {

using testing::HasSubstr;

CorsPolicyConstSharedPtr compile(const CorsSettings& s) {
  Config::ErrorList errors;
  CorsPolicyConstSharedPtr p = CorsPolicy::create(s, "cfg", errors);
  EXPECT_TRUE(errors.empty()) << errors.status();
  EXPECT_NE(p, nullptr);
  return p;
}

CorsPolicyConstSharedPtr withOrigins(std::vector<std::string> origins, bool credentials = false) {
  CorsSettings s;
  s.origins = std::move(origins);
  s.credentials = credentials;
  return compile(s);
}

std::string errorsOf(const CorsSettings& s) {
  Config::ErrorList errors;
  CorsPolicyConstSharedPtr p = CorsPolicy::create(s, "cfg", errors);
  EXPECT_EQ(p == nullptr, !errors.empty());
  return std::string(errors.status().message());
}

// The Access-Control-Allow-Origin sent for `origin`, or "-" for none.
std::string allowed(const CorsPolicy& p, absl::string_view origin) {
  OriginDecision d = p.decide(origin);
  return d.allowed ? d.allow_origin : "-";
}

TEST(NormalizeOriginTest, SchemeHostAndDefaultPorts) {
  EXPECT_EQ(normalizeOrigin("https://app.example").domain, "https://app.example");
  EXPECT_EQ(normalizeOrigin("https://app.example:443").domain, "https://app.example");
  EXPECT_EQ(normalizeOrigin("http://app.example:80").domain, "http://app.example");
  // A default port only for its own scheme.
  EXPECT_EQ(normalizeOrigin("http://app.example:443").domain, "http://app.example:443");
  EXPECT_EQ(normalizeOrigin("https://app.example:80").domain, "https://app.example:80");
  EXPECT_EQ(normalizeOrigin("https://app.example:8443").domain, "https://app.example:8443");
  // Scheme and host compare without case; a path, query, fragment or user part is no part of
  // an origin.
  EXPECT_EQ(normalizeOrigin("HTTPS://App.Example:443/x?y#z").domain, "https://app.example");
  EXPECT_EQ(normalizeOrigin("https://user:pw@app.example").domain, "https://app.example");
  NormalizedOrigin v6 = normalizeOrigin("http://[::1]:8080");
  EXPECT_EQ(v6.domain, "http://[::1]:8080");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(normalizeOrigin("http://[::1]").domain, "http://[::1]");
  EXPECT_EQ(normalizeOrigin("https://app.example:8443").host, "app.example");
}

TEST(NormalizeOriginTest, ValuesWithoutAnAuthorityStayAsTheyAre) {
  for (const char* v : {"null", "", "app.example", "https:", "https://", "https://:443", "://x",
                        "\xff\xfe", "a.b:c"}) {
    NormalizedOrigin n = normalizeOrigin(v);
    EXPECT_EQ(n.domain, v);
    EXPECT_EQ(n.host, v);
  }
}

TEST(CorsPolicyTest, NoOriginsOrAStarAllowsEveryOriginWithoutVary) {
  for (auto origins : {std::vector<std::string>{}, std::vector<std::string>{"*"},
                       std::vector<std::string>{"https://a.example", "*"}}) {
    CorsPolicyConstSharedPtr p = withOrigins(origins);
    EXPECT_TRUE(p->allowsAll());
    OriginDecision d = p->decide("https://any.example");
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.allow_origin, "*");
    EXPECT_FALSE(d.vary);
  }
}

TEST(CorsPolicyTest, CredentialsWithEveryOriginEchoTheOrigin) {
  CorsPolicyConstSharedPtr p = withOrigins({"*"}, true);
  OriginDecision d = p->decide("https://Any.example:443");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.allow_origin, "https://Any.example:443") << "echoed as sent, as Kong does";
  EXPECT_TRUE(d.vary);
}

TEST(CorsPolicyTest, ExactOriginsCompareNormalised) {
  CorsPolicyConstSharedPtr p =
      withOrigins({"https://app.example", "http://api.example:8080", "HTTPS://Upper.Example:443"});
  EXPECT_EQ(allowed(*p, "https://app.example"), "https://app.example");
  EXPECT_EQ(allowed(*p, "https://app.example:443"), "https://app.example");
  EXPECT_EQ(allowed(*p, "http://api.example:8080"), "http://api.example:8080");
  EXPECT_EQ(allowed(*p, "https://upper.example"), "https://upper.example");
  // Another scheme, port or host is another origin.
  EXPECT_EQ(allowed(*p, "http://app.example"), "-");
  EXPECT_EQ(allowed(*p, "https://app.example:8443"), "-");
  EXPECT_EQ(allowed(*p, "http://api.example"), "-");
  EXPECT_EQ(allowed(*p, "https://app.example.evil"), "-");
  EXPECT_EQ(allowed(*p, "https://evil.app.example"), "-");
  EXPECT_EQ(allowed(*p, "null"), "-");
  EXPECT_EQ(allowed(*p, ""), "-");
  // Refused or not, the answer depends on the Origin.
  EXPECT_TRUE(p->decide("https://app.example").vary);
  EXPECT_TRUE(p->decide("https://other.example").vary);
}

TEST(CorsPolicyTest, OneExactOriginIsNotSentToOtherOrigins) {
  // Kong sends a lone plain origin to every request; we compare it like any other.
  CorsPolicyConstSharedPtr p = withOrigins({"https://app.example"});
  EXPECT_EQ(allowed(*p, "https://other.example"), "-");
  EXPECT_EQ(allowed(*p, "https://app.example"), "https://app.example");
}

TEST(CorsPolicyTest, RegexesMatchTheWholeOriginOrTheHost) {
  CorsPolicyConstSharedPtr p = withOrigins({
      R"(https://.*\.partner\.example)",  // has ':': the whole origin
      R"([a-z]+\.internal\.example)",     // no ':': the host alone, any scheme and port
  });
  EXPECT_EQ(allowed(*p, "https://a.partner.example"), "https://a.partner.example");
  EXPECT_EQ(allowed(*p, "https://a.partner.example:443"), "https://a.partner.example");
  EXPECT_EQ(allowed(*p, "http://a.partner.example"), "-");
  EXPECT_EQ(allowed(*p, "https://a.partner.example:8443"), "-") << "anchored at the end";
  EXPECT_EQ(allowed(*p, "https://a.partner.example.evil"), "-");
  EXPECT_EQ(allowed(*p, "https://x.https://a.partner.example"), "-");
  EXPECT_EQ(allowed(*p, "http://ops.internal.example:9000"), "http://ops.internal.example:9000");
  EXPECT_EQ(allowed(*p, "https://ops.internal.example"), "https://ops.internal.example");
  EXPECT_EQ(allowed(*p, "https://ops1.internal.example"), "-");
  EXPECT_EQ(allowed(*p, "https://ops.internal.example.evil"), "-");
  EXPECT_EQ(allowed(*p, "https://evil.example/ops.internal.example"), "-");
}

TEST(CorsPolicyTest, RegexesAreAnchoredAtBothEnds) {
  // Users anchor their own regexes too (Kong strips a leading ^ and keeps a trailing $).
  CorsPolicyConstSharedPtr p = withOrigins({R"(^https://a\.example$)", R"(https://b\.example)"});
  EXPECT_EQ(allowed(*p, "https://a.example"), "https://a.example");
  EXPECT_EQ(allowed(*p, "https://b.example"), "https://b.example");
  EXPECT_EQ(allowed(*p, "https://b.example.evil"), "-");
  EXPECT_EQ(allowed(*p, "evil-https://b.example"), "-");
  // A top-level alternation is matched whole: no prefix match of the first branch.
  CorsPolicyConstSharedPtr alt = withOrigins({R"(https://c\.example|https://d\.example)"});
  EXPECT_EQ(allowed(*alt, "https://c.example"), "https://c.example");
  EXPECT_EQ(allowed(*alt, "https://c.example.evil"), "-");
}

TEST(CorsPolicyTest, HostileOriginsAreRefusedWithoutHarm) {
  CorsPolicyConstSharedPtr p = withOrigins({"https://app.example", R"(.*\.partner\.example)"});
  std::string big(100000, 'a');
  for (const std::string& v :
       {std::string("https://app.example@evil.example"), std::string("\x00\x01", 2),
        std::string("https://[::1"), std::string("https://]:1"), std::string("//app.example"),
        std::string("https://app.example:"), "https://" + big, std::string("\xc3\x28")}) {
    OriginDecision d = p->decide(v);
    EXPECT_FALSE(d.allowed) << v.substr(0, 40);
    EXPECT_TRUE(d.vary);
  }
}

TEST(CorsPolicyTest, HeaderValuesJoinedAndDefaults) {
  CorsPolicyConstSharedPtr d = compile(CorsSettings{});
  EXPECT_EQ(d->allowMethods(), "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT");
  EXPECT_EQ(d->allowHeaders(), "");
  EXPECT_EQ(d->exposeHeaders(), "");
  EXPECT_EQ(d->maxAge(), "");
  EXPECT_FALSE(d->credentials());
  EXPECT_FALSE(d->preflightContinue());
  EXPECT_FALSE(d->privateNetwork());

  CorsSettings s;
  s.methods = {"GET", "POST"};
  s.headers = {"Authorization", "X-Api-Key"};
  s.exposed_headers = {"X-Request-Id", "X-Total"};
  s.max_age = 0;
  CorsPolicyConstSharedPtr p = compile(s);
  EXPECT_EQ(p->allowMethods(), "GET,POST");
  EXPECT_EQ(p->allowHeaders(), "Authorization,X-Api-Key");
  EXPECT_EQ(p->exposeHeaders(), "X-Request-Id,X-Total");
  EXPECT_EQ(p->maxAge(), "0") << "max_age 0 is sent: browsers then don't cache the preflight";
}

TEST(CorsPolicyTest, ErrorsNameTheirFields) {
  CorsSettings s;
  s.origins = {"https://ok.example", "(", "", R"(a{2,1})", "*"};
  s.methods = {"GET", "get", "PROPFIND"};
  s.headers = {"X-Ok", "bad header"};
  s.exposed_headers = {"x\r\ny"};
  const std::string e = errorsOf(s);
  EXPECT_THAT(e, HasSubstr("cfg.origins[1]: invalid regex: missing ): ("));
  EXPECT_THAT(e, HasSubstr("cfg.origins[2]: must not be empty"));
  EXPECT_THAT(e, HasSubstr("cfg.origins[3]: invalid regex: "));
  EXPECT_THAT(e, HasSubstr("cfg.methods[1]: \"get\" is not one of GET, HEAD, PUT, PATCH, POST, "
                           "DELETE, OPTIONS, TRACE, CONNECT"));
  EXPECT_THAT(e, HasSubstr("cfg.methods[2]: \"PROPFIND\" is not one of"));
  EXPECT_THAT(e, HasSubstr("cfg.headers[1]: \"bad header\" is not a header name"));
  EXPECT_THAT(e, HasSubstr("cfg.exposed_headers[0]: \"x\\r\\ny\" is not a header name"));
  EXPECT_THAT(e, testing::Not(HasSubstr("origins[0]")));
  EXPECT_THAT(e, testing::Not(HasSubstr("origins[4]")));
  EXPECT_THAT(e, testing::Not(HasSubstr("methods[0]")));
}

TEST(AddVaryOriginTest, AppendsOnceToAnExistingVary) {
  Http::ResponseHeaderMap none;
  addVaryOrigin(none);
  EXPECT_EQ(none.get("vary"), "Origin");

  Http::ResponseHeaderMap existing;
  existing.add("vary", "Accept-Encoding");
  addVaryOrigin(existing);
  EXPECT_EQ(existing.count("vary"), 1u);
  EXPECT_EQ(existing.get("vary"), "Accept-Encoding, Origin");
  addVaryOrigin(existing);
  EXPECT_EQ(existing.get("vary"), "Accept-Encoding, Origin") << "not twice";

  for (const char* v : {"origin", "Accept, ORIGIN", " Origin ", "*"}) {
    Http::ResponseHeaderMap h;
    h.add("vary", v);
    addVaryOrigin(h);
    EXPECT_EQ(h.get("vary"), v);
    EXPECT_EQ(h.count("vary"), 1u);
  }
  // Several Vary fields: one naming Origin is enough; otherwise the last one grows.
  Http::ResponseHeaderMap two;
  two.add("vary", "Accept");
  two.add("vary", "Origin");
  addVaryOrigin(two);
  EXPECT_EQ(two.entries()[0].value, "Accept");
  EXPECT_EQ(two.entries()[1].value, "Origin");
  Http::ResponseHeaderMap split;
  split.add("vary", "Accept");
  split.add("vary", "Accept-Language");
  addVaryOrigin(split);
  EXPECT_EQ(split.entries()[1].value, "Accept-Language, Origin");
  Http::ResponseHeaderMap empty;
  empty.add("vary", "");
  addVaryOrigin(empty);
  EXPECT_EQ(empty.get("vary"), "Origin");
}

}  // namespace
}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
