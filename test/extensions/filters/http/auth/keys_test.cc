#include "source/extensions/filters/http/auth/keys.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/extensions/filters/http/auth/jwt.h"
#include "test/extensions/filters/http/auth/test_keys.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace {

using Testing::TestKey;

struct Case {
  TestKey::Kind kind;
  Alg alg;
};

class SignVerifyTest : public testing::TestWithParam<Case> {};

TEST_P(SignVerifyTest, JwkAndPemKeysVerifyTheirAlgorithmOnly) {
  const Case c = GetParam();
  TestKey priv(c.kind, "k1");
  auto jwk = Key::fromJwk(priv.jwk());
  ASSERT_TRUE(jwk.ok()) << jwk.status();
  auto pem = Key::fromPem(priv.publicPem(), c.alg);
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_EQ((*jwk)->kid(), "k1");
  const std::string input = "header.payload";
  const std::string sig = priv.sign(c.alg, input);
  for (const KeyConstSharedPtr& key : {*jwk, *pem}) {
    EXPECT_TRUE(key->verify(c.alg, input, sig));
    EXPECT_FALSE(key->verify(c.alg, "header.payloaD", sig));
    std::string flipped = sig;
    flipped[flipped.size() / 2] ^= 1;
    EXPECT_FALSE(key->verify(c.alg, input, flipped));
    EXPECT_FALSE(key->verify(c.alg, input, sig.substr(1)));
    EXPECT_FALSE(key->verify(c.alg, input, ""));
    // Never an HMAC with the public key's bytes, whatever secret an attacker guessed.
    for (Alg hs : {Alg::HS256, Alg::HS384, Alg::HS512}) {
      EXPECT_FALSE(key->allows(hs));
      EXPECT_FALSE(key->verify(hs, input, Testing::hmacSign(hs, priv.publicPem(), input)));
    }
  }
  // The PEM key is pinned to exactly its algorithm.
  for (int a = 0; a <= static_cast<int>(Alg::EdDSA); ++a) {
    EXPECT_EQ((*pem)->allows(static_cast<Alg>(a)), static_cast<Alg>(a) == c.alg) << a;
  }
  // A JWK with "alg" is pinned to it.
  auto pinned = Key::fromJwk(priv.jwk(algName(c.alg)));
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  for (int a = 0; a <= static_cast<int>(Alg::EdDSA); ++a) {
    EXPECT_EQ((*pinned)->allows(static_cast<Alg>(a)), static_cast<Alg>(a) == c.alg) << a;
  }
}

INSTANTIATE_TEST_SUITE_P(Algorithms, SignVerifyTest,
                         testing::Values(Case{TestKey::Kind::Rsa2048, Alg::RS256},
                                         Case{TestKey::Kind::Rsa2048, Alg::RS384},
                                         Case{TestKey::Kind::Rsa2048, Alg::RS512},
                                         Case{TestKey::Kind::Rsa2048, Alg::PS256},
                                         Case{TestKey::Kind::Rsa2048, Alg::PS384},
                                         Case{TestKey::Kind::Rsa2048, Alg::PS512},
                                         Case{TestKey::Kind::P256, Alg::ES256},
                                         Case{TestKey::Kind::P384, Alg::ES384},
                                         Case{TestKey::Kind::P521, Alg::ES512},
                                         Case{TestKey::Kind::Ed25519, Alg::EdDSA}));

TEST(KeyTest, FamiliesAreSeparate) {
  TestKey rsa(TestKey::Kind::Rsa2048);
  TestKey p256(TestKey::Kind::P256);
  auto rk = *Key::fromJwk(rsa.jwk());
  auto ek = *Key::fromJwk(p256.jwk());
  EXPECT_TRUE(rk->allows(Alg::RS256));
  EXPECT_TRUE(rk->allows(Alg::PS512));
  EXPECT_FALSE(rk->allows(Alg::ES256));
  EXPECT_TRUE(ek->allows(Alg::ES256));
  EXPECT_FALSE(ek->allows(Alg::ES384));
  EXPECT_FALSE(ek->allows(Alg::RS256));
  // An RSA signature is not an ECDSA one and vice versa.
  EXPECT_FALSE(ek->verify(Alg::ES256, "x", rsa.sign(Alg::RS256, "x")));
  EXPECT_FALSE(Key::fromPem(p256.publicPem(), Alg::ES384).ok());
  EXPECT_FALSE(Key::fromPem(rsa.publicPem(), Alg::ES256).ok());
  EXPECT_FALSE(Key::fromPem(rsa.publicPem(), Alg::HS256).ok());
  EXPECT_FALSE(
      Key::fromPem("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", Alg::RS256)
          .ok());
}

TEST(KeyTest, Hmac) {
  auto any = Key::hmac("s3cr3t", absl::nullopt);
  auto hs384 = Key::hmac("s3cr3t", Alg::HS384);
  for (Alg a : {Alg::HS256, Alg::HS384, Alg::HS512}) {
    const std::string sig = Testing::hmacSign(a, "s3cr3t", "in");
    EXPECT_TRUE(any->verify(a, "in", sig));
    EXPECT_FALSE(any->verify(a, "in", Testing::hmacSign(a, "other", "in")));
    EXPECT_EQ(hs384->verify(a, "in", sig), a == Alg::HS384);
  }
  EXPECT_FALSE(any->allows(Alg::RS256));
  auto oct = Key::fromJwk(R"({"kty":"oct","k":"czNjcjN0","alg":"HS256"})");
  ASSERT_TRUE(oct.ok()) << oct.status();
  EXPECT_TRUE((*oct)->verify(Alg::HS256, "in", Testing::hmacSign(Alg::HS256, "s3cr3t", "in")));
  EXPECT_FALSE((*oct)->allows(Alg::HS512));
}

TEST(KeyTest, BadJwks) {
  TestKey rsa(TestKey::Kind::Rsa2048, "r");
  for (const char* bad : {
           R"({"kty":"RSA","e":"AQAB"})",
           R"({"kty":"RSA","n":"AQAB","e":"AQAB"})",  // 17-bit modulus
           R"({"kty":"RSA","n":"!!","e":"AQAB"})",
           R"({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"})",
           R"({"kty":"EC","crv":"secp256k1","x":"AAAA","y":"AAAA"})",
           R"({"kty":"OKP","crv":"X25519","x":"AAAA"})",
           R"({"kty":"oct","k":"czNjcjN0","alg":"RS256"})",
           R"({"kty":"RSA","n":"AQAB","e":"AQAB","alg":"none"})",
           R"({"kty":"XYZ"})",
           R"({"n":"AQAB"})",
           R"([1])",
       }) {
    EXPECT_FALSE(Key::fromJwk(bad).ok()) << bad;
  }
  // A valid-looking point that is not on the curve.
  const std::string off_curve =
      absl::StrCat(R"({"kty":"EC","crv":"P-256","x":")", base64UrlEncode(std::string(32, '\x01')),
                   R"(","y":")", base64UrlEncode(std::string(32, '\x02')), R"("})");
  EXPECT_FALSE(Key::fromJwk(off_curve).ok());

  auto set = parseJwks(Testing::jwks({rsa.jwk(), R"({"kty":"oct","k":"YQ","use":"enc"})"}));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->keys.size(), 1u);  // the encryption key is skipped

  auto strict = parseJwks(Testing::jwks({rsa.jwk(), R"({"kty":"RSA"})"}));
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().message(), "keys[1].n: missing");
  std::vector<std::string> skipped;
  auto lenient = parseJwks(Testing::jwks({rsa.jwk(), R"({"kty":"RSA"})"}), true, &skipped);
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ((*lenient)->keys.size(), 1u);
  EXPECT_EQ(skipped.size(), 1u);
  EXPECT_FALSE(parseJwks("{}").ok());
  EXPECT_FALSE(parseJwks("not json").ok());
}

}  // namespace
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
