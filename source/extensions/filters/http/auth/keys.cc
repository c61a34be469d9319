// Only OpenSSL APIs that BoringSSL also has (RSA_set0_key, EC_KEY_*, ECDSA_SIG_*, HMAC,
// EVP_DigestVerify*): some are deprecated in OpenSSL 3 in favour of OSSL_PARAM builders that
// BoringSSL lacks.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "source/extensions/filters/http/auth/keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "source/extensions/filters/http/auth/json.h"

namespace sluice {
namespace Extensions {
namespace Auth {

namespace {

struct AlgInfo {
  const char* name;
  Alg alg;
};
constexpr AlgInfo kAlgs[] = {
    {"HS256", Alg::HS256}, {"HS384", Alg::HS384}, {"HS512", Alg::HS512}, {"RS256", Alg::RS256},
    {"RS384", Alg::RS384}, {"RS512", Alg::RS512}, {"PS256", Alg::PS256}, {"PS384", Alg::PS384},
    {"PS512", Alg::PS512}, {"ES256", Alg::ES256}, {"ES384", Alg::ES384}, {"ES512", Alg::ES512},
    {"EdDSA", Alg::EdDSA},
};

constexpr uint32_t bit(Alg a) { return 1u << static_cast<uint32_t>(a); }
constexpr uint32_t kHmacAlgs = bit(Alg::HS256) | bit(Alg::HS384) | bit(Alg::HS512);
constexpr uint32_t kRsaAlgs = bit(Alg::RS256) | bit(Alg::RS384) | bit(Alg::RS512) |
                              bit(Alg::PS256) | bit(Alg::PS384) | bit(Alg::PS512);

const EVP_MD* digestFor(Alg a) {
  switch (a) {
    case Alg::HS256:
    case Alg::RS256:
    case Alg::PS256:
    case Alg::ES256:
      return EVP_sha256();
    case Alg::HS384:
    case Alg::RS384:
    case Alg::PS384:
    case Alg::ES384:
      return EVP_sha384();
    case Alg::HS512:
    case Alg::RS512:
    case Alg::PS512:
    case Alg::ES512:
      return EVP_sha512();
    case Alg::EdDSA:
      return nullptr;
  }
  return nullptr;
}

// Smallest and largest RSA moduli accepted (RFC 7518 3.3: >= 2048 bits; the cap bounds the CPU a
// hostile JWKS can make each verification cost).
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

BnPtr bnFromB64(absl::string_view b64, std::string& raw) {
  if (!base64UrlDecode(b64, raw) || raw.empty()) return nullptr;
  return BnPtr(BN_bin2bn(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), nullptr));
}

}  // namespace

absl::optional<Alg> algFromName(absl::string_view name) {
  for (const AlgInfo& a : kAlgs) {
    if (name == a.name) return a.alg;
  }
  return absl::nullopt;
}

const char* algName(Alg alg) { return kAlgs[static_cast<int>(alg)].name; }

bool isHmac(Alg alg) { return (bit(alg) & kHmacAlgs) != 0; }

bool base64UrlDecode(absl::string_view in, std::string& out) {
  // Abseil also takes padding, whitespace and non-zero unused bits; one canonical encoding per
  // byte string means the input must be exactly what encoding the result gives back.
  out.clear();
  return absl::WebSafeBase64Unescape(in, &out) && absl::WebSafeBase64Escape(out) == in;
}

std::string base64UrlEncode(absl::string_view in) { return absl::WebSafeBase64Escape(in); }

// Builds keys (friend of Key).
class KeyBuilder {
 public:
  static std::shared_ptr<Key> make() { return std::shared_ptr<Key>(new Key()); }

  // Takes ownership of `pkey`; checks it fits `allowed` and sets the type.
  static absl::StatusOr<std::shared_ptr<const Key>> fromPkey(EVP_PKEY* pkey, uint32_t allowed,
                                                             std::string kid) {
    auto key = make();
    key->pkey_ = pkey;
    key->kid_ = std::move(kid);
    switch (EVP_PKEY_id(pkey)) {
      case EVP_PKEY_RSA: {
        key->type_ = Key::Type::Rsa;
        const int bits = EVP_PKEY_bits(pkey);
        if (bits < kMinRsaBits || bits > kMaxRsaBits) {
          return absl::InvalidArgumentError(absl::StrCat("RSA key of ", bits, " bits (must be ",
                                                         kMinRsaBits, " to ", kMaxRsaBits, ")"));
        }
        key->allowed_ = allowed & kRsaAlgs;
        break;
      }
      case EVP_PKEY_EC: {
        key->type_ = Key::Type::Ec;
        const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey);
        const int nid = ec ? EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) : 0;
        uint32_t curve_alg = 0;
        if (nid == NID_X9_62_prime256v1) {
          curve_alg = bit(Alg::ES256);
          key->ec_coord_bytes_ = 32;
        } else if (nid == NID_secp384r1) {
          curve_alg = bit(Alg::ES384);
          key->ec_coord_bytes_ = 48;
        } else if (nid == NID_secp521r1) {
          curve_alg = bit(Alg::ES512);
          key->ec_coord_bytes_ = 66;
        } else {
          return absl::InvalidArgumentError("EC key on an unsupported curve (P-256, P-384, P-521)");
        }
        key->allowed_ = allowed & curve_alg;
        break;
      }
      case EVP_PKEY_ED25519:
        key->type_ = Key::Type::Ed25519;
        key->allowed_ = allowed & bit(Alg::EdDSA);
        break;
      default:
        return absl::InvalidArgumentError("unsupported key type (RSA, EC or Ed25519)");
    }
    if (key->allowed_ == 0) {
      return absl::InvalidArgumentError("the key type does not match the algorithm");
    }
    return std::shared_ptr<const Key>(std::move(key));
  }
};

Key::~Key() {
  if (pkey_ != nullptr) EVP_PKEY_free(pkey_);
  if (!secret_.empty()) OPENSSL_cleanse(secret_.data(), secret_.size());
}

bool Key::allows(Alg alg) const { return (allowed_ & bit(alg)) != 0; }

std::shared_ptr<const Key> Key::hmac(std::string secret, absl::optional<Alg> alg, std::string kid) {
  auto key = KeyBuilder::make();
  key->type_ = Type::Hmac;
  key->secret_ = std::move(secret);
  key->kid_ = std::move(kid);
  key->allowed_ = alg ? bit(*alg) & kHmacAlgs : kHmacAlgs;
  return key;
}

absl::StatusOr<std::shared_ptr<const Key>> Key::fromPem(absl::string_view pem, Alg alg) {
  if (isHmac(alg)) return absl::InvalidArgumentError("an HMAC algorithm takes a secret, not a key");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::InternalError("out of memory");
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  if (pkey == nullptr) {
    // PKCS#1 "BEGIN RSA PUBLIC KEY".
    BIO_free(bio);
    bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    RSA* rsa = bio ? PEM_read_bio_RSAPublicKey(bio, nullptr, nullptr, nullptr) : nullptr;
    if (rsa != nullptr) {
      pkey = EVP_PKEY_new();
      EVP_PKEY_assign_RSA(pkey, rsa);
    }
  }
  if (bio != nullptr) BIO_free(bio);
  if (pkey == nullptr) {
    return absl::InvalidArgumentError("not a PEM public key");
  }
  return KeyBuilder::fromPkey(pkey, bit(alg), "");
}

absl::StatusOr<std::shared_ptr<const Key>> Key::fromJwk(absl::string_view text) {
  auto parsed = parseJson(text);
  if (!parsed.ok()) return parsed.status();
  const JsonValue& jwk = *parsed;
  if (!jwk.isObject()) return absl::InvalidArgumentError("a JWK must be a JSON object");
  const std::string* kty = jwk.findString("kty");
  if (kty == nullptr) return absl::InvalidArgumentError("kty: missing");
  std::string kid;
  if (const JsonValue* k = jwk.find("kid"); k != nullptr) {
    if (!k->isString()) return absl::InvalidArgumentError("kid: must be a string");
    kid = k->str();
  }
  uint32_t allowed = ~0u;
  if (const JsonValue* a = jwk.find("alg"); a != nullptr) {
    absl::optional<Alg> alg = a->isString() ? algFromName(a->str()) : absl::nullopt;
    if (!alg) {
      return absl::InvalidArgumentError(
          absl::StrCat("alg: unsupported algorithm ", a->isString() ? a->str() : "(not a string)"));
    }
    allowed = bit(*alg);
  }
  auto field = [&jwk](const char* name, std::string& raw) -> absl::Status {
    const std::string* v = jwk.findString(name);
    if (v == nullptr) return absl::InvalidArgumentError(absl::StrCat(name, ": missing"));
    if (!base64UrlDecode(*v, raw) || raw.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": not base64url"));
    }
    return absl::OkStatus();
  };

  if (*kty == "oct") {
    std::string k;
    absl::Status s = field("k", k);
    if (!s.ok()) return s;
    if ((allowed & kHmacAlgs) == 0) {
      return absl::InvalidArgumentError("alg: an oct key is for HS256/HS384/HS512 only");
    }
    auto key = KeyBuilder::make();
    key->type_ = Type::Hmac;
    key->secret_ = std::move(k);
    key->kid_ = std::move(kid);
    key->allowed_ = allowed & kHmacAlgs;
    return std::shared_ptr<const Key>(std::move(key));
  }
  if (*kty == "RSA") {
    std::string n_raw, e_raw;
    const std::string* n = jwk.findString("n");
    const std::string* e = jwk.findString("e");
    if (n == nullptr) return absl::InvalidArgumentError("n: missing");
    if (e == nullptr) return absl::InvalidArgumentError("e: missing");
    BnPtr bn_n = bnFromB64(*n, n_raw);
    if (!bn_n) return absl::InvalidArgumentError("n: not base64url");
    BnPtr bn_e = bnFromB64(*e, e_raw);
    if (!bn_e) return absl::InvalidArgumentError("e: not base64url");
    if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get()) || BN_num_bits(bn_e.get()) > 33) {
      return absl::InvalidArgumentError("e: not a valid RSA public exponent");
    }
    RSA* rsa = RSA_new();
    if (rsa == nullptr || RSA_set0_key(rsa, bn_n.get(), bn_e.get(), nullptr) != 1) {
      RSA_free(rsa);
      return absl::InternalError("RSA_set0_key failed");
    }
    bn_n.release();
    bn_e.release();
    EVP_PKEY* pkey = EVP_PKEY_new();
    EVP_PKEY_assign_RSA(pkey, rsa);
    auto key = KeyBuilder::fromPkey(pkey, allowed, std::move(kid));
    if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("n: ", key.status().message()));
    return key;
  }
  if (*kty == "EC") {
    const std::string* crv = jwk.findString("crv");
    if (crv == nullptr) return absl::InvalidArgumentError("crv: missing");
    int nid;
    size_t coord;
    if (*crv == "P-256") {
      nid = NID_X9_62_prime256v1;
      coord = 32;
    } else if (*crv == "P-384") {
      nid = NID_secp384r1;
      coord = 48;
    } else if (*crv == "P-521") {
      nid = NID_secp521r1;
      coord = 66;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("crv: unsupported curve ", *crv));
    }
    std::string x_raw, y_raw;
    absl::Status s = field("x", x_raw);
    if (!s.ok()) return s;
    s = field("y", y_raw);
    if (!s.ok()) return s;
    if (x_raw.size() != coord || y_raw.size() != coord) {
      return absl::InvalidArgumentError(
          absl::StrCat("x, y: must be ", coord, " bytes each for ", *crv));
    }
    BnPtr x(BN_bin2bn(reinterpret_cast<const uint8_t*>(x_raw.data()), coord, nullptr));
    BnPtr y(BN_bin2bn(reinterpret_cast<const uint8_t*>(y_raw.data()), coord, nullptr));
    EC_KEY* ec = EC_KEY_new_by_curve_name(nid);
    if (ec == nullptr || !x || !y ||
        EC_KEY_set_public_key_affine_coordinates(ec, x.get(), y.get()) != 1) {
      EC_KEY_free(ec);
      return absl::InvalidArgumentError("x, y: not a point on the curve");
    }
    EVP_PKEY* pkey = EVP_PKEY_new();
    EVP_PKEY_assign_EC_KEY(pkey, ec);
    return KeyBuilder::fromPkey(pkey, allowed, std::move(kid));
  }
  if (*kty == "OKP") {
    const std::string* crv = jwk.findString("crv");
    if (crv == nullptr || *crv != "Ed25519") {
      return absl::InvalidArgumentError("crv: only Ed25519 is supported for OKP keys");
    }
    std::string x_raw;
    absl::Status s = field("x", x_raw);
    if (!s.ok()) return s;
    if (x_raw.size() != 32) return absl::InvalidArgumentError("x: must be 32 bytes for Ed25519");
    EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const uint8_t*>(x_raw.data()), x_raw.size());
    if (pkey == nullptr) return absl::InvalidArgumentError("x: not an Ed25519 public key");
    return KeyBuilder::fromPkey(pkey, allowed, std::move(kid));
  }
  return absl::InvalidArgumentError(absl::StrCat("kty: unsupported key type ", *kty));
}

bool Key::verify(Alg alg, absl::string_view input, absl::string_view sig) const {
  if (!allows(alg)) return false;
  const EVP_MD* md = digestFor(alg);
  if (type_ == Type::Hmac) {
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(md, secret_.data(), static_cast<int>(secret_.size()),
             reinterpret_cast<const uint8_t*>(input.data()), input.size(), mac, &len) == nullptr) {
      return false;
    }
    return sig.size() == len && CRYPTO_memcmp(mac, sig.data(), len) == 0;
  }
  std::string der;
  if (type_ == Type::Ec) {
    // JWS carries R||S (RFC 7518 3.4); OpenSSL wants a DER ECDSA-Sig-Value.
    if (sig.size() != 2 * ec_coord_bytes_) return false;
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const uint8_t*>(sig.data()), ec_coord_bytes_, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const uint8_t*>(sig.data()) + ec_coord_bytes_,
                          ec_coord_bytes_, nullptr);
    if (es == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(es, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(es);
      return false;
    }
    uint8_t* out = nullptr;
    const int n = i2d_ECDSA_SIG(es, &out);
    ECDSA_SIG_free(es);
    if (n <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), n);
    OPENSSL_free(out);
    sig = der;
  }
  // RFC 8017 8.2.2 / 8.1.2: an RSA signature is exactly as long as the modulus. OpenSSL's PSS
  // path would accept one with a leading zero byte dropped.
  if (type_ == Type::Rsa && sig.size() != static_cast<size_t>(EVP_PKEY_size(pkey_))) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return false;
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, pkey_) == 1;
  if (ok && (alg == Alg::PS256 || alg == Alg::PS384 || alg == Alg::PS512)) {
    // RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash.
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1 /* RSA_PSS_SALTLEN_DIGEST */) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1;
  } else if (ok && type_ == Type::Rsa) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  }
  ok = ok && EVP_DigestVerify(ctx, reinterpret_cast<const uint8_t*>(sig.data()), sig.size(),
                              reinterpret_cast<const uint8_t*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

absl::StatusOr<KeySetConstSharedPtr> parseJwks(absl::string_view json, bool skip_bad_keys,
                                               std::vector<std::string>* skipped) {
  auto parsed = parseJson(json);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", parsed.status().message()));
  }
  const JsonValue* keys = parsed->isObject() ? parsed->find("keys") : nullptr;
  if (keys == nullptr || !keys->isArray()) {
    return absl::InvalidArgumentError("a JWKS is an object with a \"keys\" array");
  }
  auto set = std::make_shared<KeySet>();
  for (size_t i = 0; i < keys->items().size(); ++i) {
    const JsonValue& k = keys->items()[i];
    if (k.isObject()) {
      const std::string* use = k.findString("use");
      if (use != nullptr && *use != "sig") continue;
    }
    auto key = Key::fromJwk(k.toHeaderValue());
    if (!key.ok()) {
      std::string err = absl::StrCat("keys[", i, "].", key.status().message());
      if (!skip_bad_keys) return absl::InvalidArgumentError(err);
      if (skipped != nullptr) skipped->push_back(std::move(err));
      continue;
    }
    set->keys.push_back(std::move(*key));
  }
  return KeySetConstSharedPtr(std::move(set));
}

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
