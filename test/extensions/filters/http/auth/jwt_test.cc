#include "source/extensions/filters/http/auth/jwt.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/extensions/filters/http/auth/json.h"
#include "source/extensions/filters/http/auth/keys.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace {

TEST(JsonTest, ParsesWhatJwtsCarry) {
  auto v = parseJson(R"( {"a": "x\u00e9\ud83d\ude00", "n": -1.5e3, "b": [true, false, null],
                          "o": {"k": "v"}} )");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v->findString("a"), "x\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v->find("n")->str(), "-1.5e3");
  EXPECT_EQ(v->find("b")->items().size(), 3u);
  EXPECT_EQ(v->find("o")->toHeaderValue(), R"({"k":"v"})");
}

TEST(JsonTest, RejectsAmbiguousOrHostileInput) {
  for (const char* bad : {
           R"({"a":1,"a":2})",          // duplicate member
           R"({"a":1,})",               // trailing comma
           R"({"a":01})",               // leading zero
           R"({"a":"\ud800"})",         // lone surrogate
           R"({"a":"\udc00"})",         // lone low surrogate
           R"({"a":"\ud800\u0041"})",   // high surrogate without its pair
           "{\"a\":\"\x01\"}",          // control character
           "{\"a\":\"\xc0\xaf\"}",      // overlong UTF-8
           "{\"a\":\"\xed\xa0\x80\"}",  // UTF-8 surrogate
           R"({"a":1} x)",              // trailing text
           R"({"a":NaN})",
           R"({"a":.5})",
           R"({"a":1.})",
           R"({"a":tru})",
           "",
           "{",
           "\"abc",
           R"({"a":1}/**/)",  // no comments
           R"([1,])",         // no trailing commas
           R"(-Infinity)",
       }) {
    EXPECT_FALSE(parseJson(bad).ok()) << bad;
  }
  // NUL is never valid JSON, wherever it is (not an end of input).
  for (const std::string& bad : {std::string("{\"a\":1}\0", 8), std::string("{\"a\":\"\0\"}", 8),
                                 std::string("[1,\0]", 5)}) {
    EXPECT_FALSE(parseJson(bad).ok());
  }
  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  EXPECT_FALSE(parseJson(deep).ok());
  std::string ok_depth(kMaxJsonDepth, '[');
  ok_depth += std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(parseJson(ok_depth).ok());
}

TEST(JsonTest, ErrorsNameTheFirstFault) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "unexpected end of JSON"},
      {"[1,", "unexpected end of JSON"},
      {R"({"a":1} x)", "trailing characters after the JSON value"},
      {R"({"a":1,"a":2})", "duplicate member name"},
      {R"({"a":tru})", "invalid literal"},
      {R"({"a":x})", "invalid value"},
      {"-", "invalid number"},
      {"1.", "invalid number"},
      {R"({"a" 1})", "expected ':'"},
      {R"({"a":1,})", "expected a member name"},
      {R"({"a":1 "b":2})", "expected ',' or '}'"},
      {"[1 2]", "expected ',' or ']'"},
      {R"(["\x"])", "bad escape in string"},
      {R"(["\u12"])", "bad \\u escape"},
      {"[\"\x01\"]", "control character in string"},
      {"[\"\xc0\xaf\"]", "invalid UTF-8 in string"},
      {"[\"abc", "unterminated string"},
      {R"(["\ud800x"])", "lone surrogate"},
      // The builder sees a string when it ends: a fault later in the same string comes second.
      {"[\"\\udc00\x01\"]", "lone surrogate"},
      {std::string(kMaxJsonDepth + 1, '['), "JSON nested too deeply"},
  };
  for (const auto& [text, message] : cases) {
    auto v = parseJson(text);
    ASSERT_FALSE(v.ok()) << text;
    EXPECT_EQ(v.status().message(), message) << text;
  }
}

TEST(JsonTest, NumbersKeepTheirTextWhateverTheirSize) {
  // Too big for a double (RapidJSON alone refuses these): still numbers, as JSON says.
  const std::string digits(400, '9');
  auto v =
      parseJson(absl::StrCat(R"({"e":1e400,"d":)", digits, R"(,"z":-0,"f":0.5e-3,"s":"1e400"})"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->find("e")->str(), "1e400");
  EXPECT_EQ(v->find("d")->str(), digits);
  EXPECT_EQ(v->find("z")->str(), "-0");
  EXPECT_EQ(v->find("f")->str(), "0.5e-3");
  EXPECT_TRUE(v->find("s")->isString());
  EXPECT_EQ(v->toHeaderValue(),
            absl::StrCat(R"({"e":1e400,"d":)", digits, R"(,"z":-0,"f":0.5e-3,"s":"1e400"})"));
  // And what follows a big number is still checked as before.
  EXPECT_EQ(parseJson("1e400.5").status().message(), "trailing characters after the JSON value");
  EXPECT_EQ(parseJson("[1e400,0.-3]").status().message(), "invalid number");
  EXPECT_EQ(parseJson(R"([1e400,"a","a\udc00"])").status().message(), "lone surrogate");
}

TEST(JsonTest, NumericDates) {
  auto num = [](const char* t) { return jsonNumericDate(*parseJson(t)); };
  EXPECT_EQ(*num("1700000000"), 1700000000);
  EXPECT_EQ(*num("1700000000.9"), 1700000000);
  EXPECT_EQ(*num("1.7e9"), 1700000000);
  EXPECT_FALSE(num("1e400").ok());
  EXPECT_FALSE(num(std::string(400, '9').c_str()).ok());
  EXPECT_EQ(*num("-0"), 0);
  EXPECT_EQ(*num("-1.5"), -2);  // toward negative infinity
  EXPECT_FALSE(num("1e13").ok());
  EXPECT_FALSE(num("99999999999999999999999").ok());
  EXPECT_FALSE(num("\"1700000000\"").ok());
  EXPECT_FALSE(num("true").ok());
}

TEST(Base64UrlTest, Strict) {
  std::string out;
  EXPECT_TRUE(base64UrlDecode("aGVsbG8", out));
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(base64UrlDecode("", out));
  EXPECT_FALSE(base64UrlDecode("aGVsbG8=", out));  // padding
  EXPECT_FALSE(base64UrlDecode("aGVs+G8", out));   // standard alphabet
  EXPECT_FALSE(base64UrlDecode("aGVs/G8", out));
  EXPECT_FALSE(base64UrlDecode("aGVsb", out));     // length % 4 == 1
  EXPECT_FALSE(base64UrlDecode("aGVsbG9", out));   // non-zero trailing bits
  EXPECT_FALSE(base64UrlDecode("aGV sbG8", out));  // whitespace
  EXPECT_FALSE(base64UrlDecode("aGVsbG8\n", out));
  EXPECT_FALSE(base64UrlDecode("aGVsbG8.", out));  // Abseil's other padding character
  EXPECT_FALSE(base64UrlDecode("aGVsbA==", out));
  EXPECT_FALSE(base64UrlDecode("aGVsbB", out));  // non-zero trailing bits (4 unused)
  EXPECT_TRUE(base64UrlDecode("aGVsbA", out));
  EXPECT_EQ(out, "hell");
  EXPECT_FALSE(base64UrlDecode(std::string("aGVs\0G8", 7), out));
  for (int n = 0; n < 40; ++n) {
    std::string raw;
    for (int i = 0; i < n; ++i) raw += static_cast<char>(i * 37 + n);
    ASSERT_TRUE(base64UrlDecode(base64UrlEncode(raw), out));
    EXPECT_EQ(out, raw);
  }
}

std::string b64(absl::string_view s) { return base64UrlEncode(s); }

std::string token(absl::string_view header, absl::string_view payload, absl::string_view sig) {
  return absl::StrCat(b64(header), ".", b64(payload), ".", b64(sig));
}

TEST(ParseJwtTest, Structure) {
  Jwt jwt;
  const std::string good = token(R"({"alg":"RS256","kid":"k1"})", R"({"sub":"a"})", "sig");
  ASSERT_FALSE(parseJwt(good, jwt));
  EXPECT_EQ(jwt.alg, Alg::RS256);
  EXPECT_EQ(*jwt.kid, "k1");
  EXPECT_EQ(jwt.signature, "sig");
  EXPECT_EQ(jwt.signing_input, good.substr(0, good.rfind('.')));

  EXPECT_EQ(parseJwt("a.b", jwt), Reason::Malformed);
  EXPECT_EQ(parseJwt(good + ".x", jwt), Reason::Malformed);
  EXPECT_EQ(parseJwt("..", jwt), Reason::Malformed);
  EXPECT_EQ(parseJwt(absl::StrCat(b64(R"({"alg":"RS256"})"), "=.", b64("{}"), ".", b64("s")), jwt),
            Reason::Malformed);
  EXPECT_EQ(parseJwt(token("not json", "{}", "s"), jwt), Reason::Malformed);
  EXPECT_EQ(parseJwt(token(R"({"alg":"RS256"})", "[1]", "s"), jwt), Reason::Malformed);
  EXPECT_EQ(parseJwt(token(R"({"alg":"RS256","alg":"HS256"})", "{}", "s"), jwt), Reason::Malformed);
  EXPECT_EQ(parseJwt(token(R"({"alg":"none"})", "{}", ""), jwt), Reason::BadAlgorithm);
  EXPECT_EQ(parseJwt(token(R"({"alg":"none"})", "{}", "x"), jwt), Reason::BadAlgorithm);
  EXPECT_EQ(parseJwt(token(R"({"alg":"HS1"})", "{}", "x"), jwt), Reason::BadAlgorithm);
  EXPECT_EQ(parseJwt(token(R"({"typ":"JWT"})", "{}", "x"), jwt), Reason::BadAlgorithm);
  EXPECT_EQ(parseJwt(token(R"({"alg":"RS256","crit":["exp"]})", "{}", "x"), jwt),
            Reason::Malformed);
  EXPECT_EQ(parseJwt(token(R"({"alg":"RS256"})", "{}", ""), jwt), Reason::BadSignature);
  EXPECT_EQ(parseJwt(token(R"({"alg":"RS256","kid":5})", "{}", "x"), jwt), Reason::Malformed);
}

absl::optional<Reason> claims(const std::string& payload, const ClaimRules& rules,
                              int64_t now = 1000) {
  Jwt jwt;
  const std::string t = token(R"({"alg":"HS256"})", payload, "s");
  EXPECT_FALSE(parseJwt(t, jwt));
  int64_t exp;
  return checkClaims(jwt, rules, now, exp);
}

TEST(CheckClaimsTest, TimeWithSkew) {
  ClaimRules r;
  r.clock_skew_s = 30;
  EXPECT_FALSE(claims(R"({"exp":1000})", r));
  EXPECT_FALSE(claims(R"({"exp":970})", r));
  EXPECT_EQ(claims(R"({"exp":969})", r), Reason::Expired);
  EXPECT_FALSE(claims(R"({"exp":2000,"nbf":1030})", r));
  EXPECT_EQ(claims(R"({"exp":2000,"nbf":1031})", r), Reason::NotYetValid);
  EXPECT_EQ(claims(R"({"sub":"x"})", r), Reason::MissingExpiration);
  r.require_expiration = false;
  EXPECT_FALSE(claims(R"({"sub":"x"})", r));
  EXPECT_EQ(claims(R"({"exp":"2000"})", r), Reason::BadClaims);
  EXPECT_EQ(claims(R"({"exp":1e400})", r), Reason::BadClaims);
  EXPECT_EQ(claims(R"({"exp":2000,"big":1e400})", r), absl::nullopt);  // not a claim we read
  EXPECT_EQ(claims(R"({"exp":2000,"nbf":[1]})", r), Reason::BadClaims);
}

TEST(CheckClaimsTest, IssuerAndAudience) {
  const std::string iss = "https://issuer.example";
  const std::vector<std::string> auds = {"api", "web"};
  ClaimRules r;
  r.require_expiration = false;
  r.issuer = &iss;
  r.audiences = &auds;
  EXPECT_FALSE(claims(R"({"iss":"https://issuer.example","aud":"api"})", r));
  EXPECT_FALSE(claims(R"({"iss":"https://issuer.example","aud":["x","web"]})", r));
  EXPECT_EQ(claims(R"({"iss":"https://issuer.example","aud":["x"]})", r), Reason::BadAudience);
  EXPECT_EQ(claims(R"({"iss":"https://issuer.example"})", r), Reason::BadAudience);
  EXPECT_EQ(claims(R"({"iss":"https://issuer.example","aud":[1]})", r), Reason::BadClaims);
  EXPECT_EQ(claims(R"({"iss":"https://evil.example","aud":"api"})", r), Reason::BadIssuer);
  EXPECT_EQ(claims(R"({"aud":"api"})", r), Reason::BadIssuer);
}

TEST(ScopesTest, ScopeAndScp) {
  auto p = parseJson(R"({"scope":"a  b","scp":["c", 1, "d"]})");
  std::vector<absl::string_view> s = tokenScopes(*p);
  EXPECT_EQ(s, (std::vector<absl::string_view>{"a", "b", "c", "d"}));
  auto nested = parseJson(R"({"realm":{"role":"admin"},"a.b":"flat"})");
  EXPECT_EQ(findClaim(*nested, "realm.role")->str(), "admin");
  EXPECT_EQ(findClaim(*nested, "a.b")->str(), "flat");
  EXPECT_EQ(findClaim(*nested, "realm.none"), nullptr);
}

}  // namespace
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
