#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"
#include "source/extensions/filters/http/auth/keys.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace sluice {
namespace Extensions {
namespace Auth {
namespace Testing {

// A private key made with OpenSSL for tests and benchmarks: signs JWS tokens and exports its
// public half as a JWK or PEM.
class TestKey {
 public:
  enum class Kind { Rsa2048, P256, P384, P521, Ed25519 };
  explicit TestKey(Kind kind, std::string kid = "");
  ~TestKey();
  TestKey(const TestKey&) = delete;
  TestKey& operator=(const TestKey&) = delete;

  // The public JWK as JSON text (with "kid" when set, and "alg" when given).
  std::string jwk(absl::string_view alg = "") const;
  std::string publicPem() const;
  // Raw JWS signature over `input` (R||S for ECDSA).
  std::string sign(Alg alg, absl::string_view input) const;
  const std::string& kid() const { return kid_; }

 private:
  Kind kind_;
  std::string kid_;
  EVP_PKEY* pkey_ = nullptr;
};

// `{"keys":[...]}` from JWK texts.
std::string jwks(std::initializer_list<std::string> jwks);

// A compact JWS: base64url(header).base64url(payload).base64url(signature). `header_json` and
// `payload_json` are used as given; `sign` produces the signature from the signing input.
std::string makeToken(absl::string_view header_json, absl::string_view payload_json,
                      const std::function<std::string(absl::string_view)>& sign);
// Signed with `key` (or an HMAC `secret` when key is null), header {"alg","kid"?,"typ":"JWT"}.
std::string signedToken(Alg alg, const TestKey* key, absl::string_view secret,
                        absl::string_view payload_json);
std::string hmacSign(Alg alg, absl::string_view secret, absl::string_view input);

}  // namespace Testing
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
