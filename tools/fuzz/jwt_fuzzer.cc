// Feeds arbitrary bytes to what the auth filter parses from requests and JWKS servers: the JWS
// compact parser and claim checks (as a token), the JWKS parser (as a document), and signature
// verification against a fixed key set (RSA, EC P-256, Ed25519, HMAC). Nothing may crash, hang,
// leak or take long. The default (gcc) build replays files given on the command line.
#include <cstdint>
#include <string>
#include <vector>

#include "source/extensions/filters/http/auth/jwt.h"
#include "source/extensions/filters/http/auth/keys.h"

namespace {

using namespace sluice::Extensions::Auth;

const KeySet& keys() {
  // Public keys only (RFC 7517 / RFC 8037 examples and a fixed P-256 point).
  static const KeySet* set = [] {
    auto s = parseJwks(R"({"keys":[
      {"kty":"RSA","kid":"r","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"},
      {"kty":"EC","kid":"e","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
      {"kty":"OKP","kid":"d","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
      {"kty":"oct","kid":"h","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}
    ]})");
    if (!s.ok()) abort();
    return new KeySet(**s);
  }();
  return *set;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  // As a token.
  Jwt jwt;
  if (!parseJwt(input, jwt)) {
    for (const KeyConstSharedPtr& k : keys().keys) {
      if (jwt.kid != nullptr && *jwt.kid != k->kid()) continue;
      (void)k->verify(jwt.alg, jwt.signing_input, jwt.signature);
    }
    const std::string iss = "https://issuer.example";
    const std::vector<std::string> auds = {"api"};
    ClaimRules rules;
    rules.issuer = &iss;
    rules.audiences = &auds;
    int64_t exp;
    (void)checkClaims(jwt, rules, 1700000000, exp);
    (void)tokenScopes(jwt.payload);
    (void)findClaim(jwt.payload, "a.b.c");
  }
  // As a JWKS document and a single JWK.
  std::vector<std::string> skipped;
  (void)parseJwks(input, true, &skipped);
  (void)Key::fromJwk(input);
  // As base64url.
  std::string out;
  (void)base64UrlDecode(input, out);
  return 0;
}
