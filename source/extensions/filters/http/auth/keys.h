#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace sluice {
namespace Extensions {
namespace Auth {

// JWS algorithms (RFC 7518 3.1). `none` is not one of them: it is never accepted.
enum class Alg : uint8_t {
  HS256,
  HS384,
  HS512,
  RS256,
  RS384,
  RS512,
  PS256,
  PS384,
  PS512,
  ES256,
  ES384,
  ES512,
  EdDSA,
};
absl::optional<Alg> algFromName(absl::string_view name);
const char* algName(Alg alg);
bool isHmac(Alg alg);

// A verification key. The algorithms it may verify are pinned when it is built (RFC 8725 3.1):
// an RSA key verifies RS*/PS* only (or just its JWK `alg`), an EC key only the ES* of its curve,
// an Ed25519 key only EdDSA, a secret only HS* (or its one configured algorithm). So `alg: none`,
// an HMAC token checked against a public key, and every other alg/key mix-up fail here.
class Key {
 public:
  enum class Type : uint8_t { Hmac, Rsa, Ec, Ed25519 };
  ~Key();
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  // HMAC secret; `alg` pins one algorithm (nullopt: any HS*).
  static std::shared_ptr<const Key> hmac(std::string secret, absl::optional<Alg> alg,
                                         std::string kid = "");
  // A PEM public key (SubjectPublicKeyInfo, or PKCS#1 "RSA PUBLIC KEY") pinned to `alg`.
  static absl::StatusOr<std::shared_ptr<const Key>> fromPem(absl::string_view pem, Alg alg);
  // One JWK object (RFC 7517) given as JSON text.
  static absl::StatusOr<std::shared_ptr<const Key>> fromJwk(absl::string_view json);

  Type type() const { return type_; }
  const std::string& kid() const { return kid_; }
  bool allows(Alg alg) const;
  // Constant-time for HMAC. `signature` is the raw JWS signature (R||S for ECDSA).
  bool verify(Alg alg, absl::string_view signing_input, absl::string_view signature) const;

 private:
  friend class KeyBuilder;
  Key() = default;
  Type type_ = Type::Hmac;
  std::string kid_;
  uint32_t allowed_ = 0;  // bit per Alg
  std::string secret_;
  EVP_PKEY* pkey_ = nullptr;
  size_t ec_coord_bytes_ = 0;
};
using KeyConstSharedPtr = std::shared_ptr<const Key>;

struct KeySet {
  std::vector<KeyConstSharedPtr> keys;
};
using KeySetConstSharedPtr = std::shared_ptr<const KeySet>;

// Parses a JWKS document ({"keys": [...]}). Keys that are not for signatures (`use` other than
// "sig") are skipped. With `skip_bad_keys` a key that fails to parse is left out and its error
// appended to `skipped` (a remote JWKS with one odd key still serves the others); otherwise the
// first bad key is an error naming it (`keys[2].n: ...`).
absl::StatusOr<KeySetConstSharedPtr> parseJwks(absl::string_view json, bool skip_bad_keys = false,
                                               std::vector<std::string>* skipped = nullptr);

// Base64url without padding (RFC 7515 2), strict: no '=', no other characters, no non-zero
// trailing bits. Returns false on anything else.
bool base64UrlDecode(absl::string_view in, std::string& out);
std::string base64UrlEncode(absl::string_view in);

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
