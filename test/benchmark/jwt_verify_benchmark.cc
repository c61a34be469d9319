// JWS signature verification per algorithm (what a request with a token the cache has not seen
// costs), the whole token check (split, base64url, JSON, verify, claims), and a token cache hit
// (what a request with a known token costs instead), and the parse step alone.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "source/extensions/filters/http/auth/jwt.h"
#include "source/extensions/filters/http/auth/keys.h"
#include "source/extensions/filters/http/auth/token_cache.h"
#include "test/extensions/filters/http/auth/test_keys.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace {

using Testing::TestKey;

constexpr char kPayload[] =
    R"({"iss":"https://issuer.example","aud":"api","sub":"user-1","scope":"orders read",)"
    R"("exp":4102444800,"iat":1700000000})";

struct Fixture {
  Fixture(TestKey::Kind kind, Alg alg) : alg(alg) {
    if (kind == TestKey::Kind::Rsa2048 && isHmac(alg)) {
      key = Key::hmac("0123456789abcdef0123456789abcdef", alg);
      token = Testing::signedToken(alg, nullptr, "0123456789abcdef0123456789abcdef", kPayload);
    } else {
      priv = std::make_unique<TestKey>(kind, "k1");
      key = *Key::fromJwk(priv->jwk());
      token = Testing::signedToken(alg, priv.get(), "", kPayload);
    }
    if (parseJwt(token, jwt)) std::abort();
  }
  Alg alg;
  std::unique_ptr<TestKey> priv;
  KeyConstSharedPtr key;
  std::string token;
  Jwt jwt;
};

Fixture& fixture(int index) {
  static Fixture* fixtures[] = {
      new Fixture(TestKey::Kind::Rsa2048, Alg::HS256),
      new Fixture(TestKey::Kind::Rsa2048, Alg::RS256),
      new Fixture(TestKey::Kind::Rsa2048, Alg::PS256),
      new Fixture(TestKey::Kind::P256, Alg::ES256),
      new Fixture(TestKey::Kind::P384, Alg::ES384),
      new Fixture(TestKey::Kind::Ed25519, Alg::EdDSA),
  };
  return *fixtures[index];
}

void BM_Verify(benchmark::State& state) {
  Fixture& f = fixture(state.range(0));
  state.SetLabel(algName(f.alg));
  for (auto _ : state) {
    bool ok = f.key->verify(f.alg, f.jwt.signing_input, f.jwt.signature);
    if (!ok) std::abort();
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_Verify)->DenseRange(0, 5);

void BM_ParseVerifyClaims(benchmark::State& state) {
  Fixture& f = fixture(state.range(0));
  state.SetLabel(algName(f.alg));
  const std::string iss = "https://issuer.example";
  const std::vector<std::string> auds = {"api"};
  ClaimRules rules;
  rules.issuer = &iss;
  rules.audiences = &auds;
  for (auto _ : state) {
    Jwt jwt;
    if (parseJwt(f.token, jwt)) std::abort();
    if (!f.key->verify(jwt.alg, jwt.signing_input, jwt.signature)) std::abort();
    int64_t exp;
    if (checkClaims(jwt, rules, 1700000000, exp)) std::abort();
    benchmark::DoNotOptimize(exp);
  }
}
BENCHMARK(BM_ParseVerifyClaims)->DenseRange(0, 5);

// Split, base64url and JSON only (no signature): the part a JSON or base64 change moves.
void BM_Parse(benchmark::State& state) {
  Fixture& f = fixture(state.range(0));
  state.SetLabel(algName(f.alg));
  for (auto _ : state) {
    Jwt jwt;
    if (parseJwt(f.token, jwt)) std::abort();
    benchmark::DoNotOptimize(jwt.alg);
  }
}
BENCHMARK(BM_Parse)->Arg(0)->Arg(1);

void BM_TokenCacheHit(benchmark::State& state) {
  Fixture& f = fixture(1);
  TokenCache cache(4096);
  for (int i = 0; i < 4000; ++i) {
    cache.insert(absl::StrCat(f.token, i), Identity{"x"});
  }
  cache.insert(f.token, Identity{"alice", {"orders", "read"}});
  for (auto _ : state) {
    const Identity* id = cache.find(f.token);
    if (id == nullptr) std::abort();
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_TokenCacheHit);

}  // namespace
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice

BENCHMARK_MAIN();
