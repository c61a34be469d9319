#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "test/extensions/filters/http/auth/test_keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/common/json.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace Testing {

namespace {

const EVP_MD* mdFor(Alg a) {
  switch (a) {
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
    default:
      return EVP_sha256();
  }
}

std::string bnBytes(const BIGNUM* bn, int pad = 0) {
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  if (pad > 0) {
    BN_bn2binpad(bn, reinterpret_cast<uint8_t*>(out.data()), pad);
  } else {
    BN_bn2bin(bn, reinterpret_cast<uint8_t*>(out.data()));
  }
  return out;
}

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);
}

}  // namespace

TestKey::TestKey(Kind kind, std::string kid) : kind_(kind), kid_(std::move(kid)) {
  switch (kind) {
    case Kind::Rsa2048: {
      EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nullptr);
      check(ctx && EVP_PKEY_keygen_init(ctx) == 1 &&
                EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) == 1 &&
                EVP_PKEY_keygen(ctx, &pkey_) == 1,
            "RSA keygen");
      EVP_PKEY_CTX_free(ctx);
      break;
    }
    case Kind::P256:
    case Kind::P384:
    case Kind::P521: {
      const int nid = kind == Kind::P256   ? NID_X9_62_prime256v1
                      : kind == Kind::P384 ? NID_secp384r1
                                           : NID_secp521r1;
      EC_KEY* ec = EC_KEY_new_by_curve_name(nid);
      check(ec && EC_KEY_generate_key(ec) == 1, "EC keygen");
      pkey_ = EVP_PKEY_new();
      EVP_PKEY_assign_EC_KEY(pkey_, ec);
      break;
    }
    case Kind::Ed25519: {
      EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
      check(ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &pkey_) == 1,
            "Ed25519 keygen");
      EVP_PKEY_CTX_free(ctx);
      break;
    }
  }
}

TestKey::~TestKey() { EVP_PKEY_free(pkey_); }

std::string TestKey::jwk(absl::string_view alg) const {
  std::vector<std::string> fields;
  auto add = [&fields](absl::string_view k, absl::string_view v) {
    fields.push_back(absl::StrCat(Json::quote(k), ":", Json::quote(v)));
  };
  switch (kind_) {
    case Kind::Rsa2048: {
      const RSA* rsa = EVP_PKEY_get0_RSA(pkey_);
      const BIGNUM *n, *e;
      RSA_get0_key(rsa, &n, &e, nullptr);
      add("kty", "RSA");
      add("n", base64UrlEncode(bnBytes(n)));
      add("e", base64UrlEncode(bnBytes(e)));
      break;
    }
    case Kind::P256:
    case Kind::P384:
    case Kind::P521: {
      const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey_);
      BIGNUM* x = BN_new();
      BIGNUM* y = BN_new();
      EC_POINT_get_affine_coordinates(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec), x, y,
                                      nullptr);
      const int coord = kind_ == Kind::P256 ? 32 : kind_ == Kind::P384 ? 48 : 66;
      add("kty", "EC");
      add("crv", kind_ == Kind::P256 ? "P-256" : kind_ == Kind::P384 ? "P-384" : "P-521");
      add("x", base64UrlEncode(bnBytes(x, coord)));
      add("y", base64UrlEncode(bnBytes(y, coord)));
      BN_free(x);
      BN_free(y);
      break;
    }
    case Kind::Ed25519: {
      uint8_t raw[32];
      size_t len = sizeof(raw);
      EVP_PKEY_get_raw_public_key(pkey_, raw, &len);
      add("kty", "OKP");
      add("crv", "Ed25519");
      add("x", base64UrlEncode(absl::string_view(reinterpret_cast<char*>(raw), len)));
      break;
    }
  }
  if (!kid_.empty()) add("kid", kid_);
  if (!alg.empty()) add("alg", alg);
  add("use", "sig");
  return absl::StrCat("{", absl::StrJoin(fields, ","), "}");
}

std::string TestKey::publicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey_);
  char* data;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n);
  BIO_free(bio);
  return out;
}

std::string TestKey::sign(Alg alg, absl::string_view input) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  check(EVP_DigestSignInit(ctx, &pctx, mdFor(alg), nullptr, pkey_) == 1, "sign init");
  if (alg == Alg::PS256 || alg == Alg::PS384 || alg == Alg::PS512) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1);
  }
  size_t len = 0;
  check(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const uint8_t*>(input.data()),
                       input.size()) == 1,
        "sign size");
  std::string sig(len, '\0');
  check(EVP_DigestSign(ctx, reinterpret_cast<uint8_t*>(sig.data()), &len,
                       reinterpret_cast<const uint8_t*>(input.data()), input.size()) == 1,
        "sign");
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (kind_ == Kind::P256 || kind_ == Kind::P384 || kind_ == Kind::P521) {
    const int coord = kind_ == Kind::P256 ? 32 : kind_ == Kind::P384 ? 48 : 66;
    const uint8_t* p = reinterpret_cast<const uint8_t*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, sig.size());
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    std::string raw = bnBytes(r, coord) + bnBytes(s, coord);
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

std::string jwks(std::initializer_list<std::string> keys) {
  return absl::StrCat("{\"keys\":[", absl::StrJoin(keys, ","), "]}");
}

std::string makeToken(absl::string_view header_json, absl::string_view payload_json,
                      const std::function<std::string(absl::string_view)>& sign) {
  const std::string input =
      absl::StrCat(base64UrlEncode(header_json), ".", base64UrlEncode(payload_json));
  return absl::StrCat(input, ".", base64UrlEncode(sign(input)));
}

std::string hmacSign(Alg alg, absl::string_view secret, absl::string_view input) {
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(mdFor(alg), secret.data(), secret.size(), reinterpret_cast<const uint8_t*>(input.data()),
       input.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

std::string signedToken(Alg alg, const TestKey* key, absl::string_view secret,
                        absl::string_view payload_json) {
  std::string header = absl::StrCat("{\"alg\":\"", algName(alg), "\"");
  if (key != nullptr && !key->kid().empty()) {
    absl::StrAppend(&header, ",\"kid\":", Json::quote(key->kid()));
  }
  header += ",\"typ\":\"JWT\"}";
  return makeToken(header, payload_json, [&](absl::string_view input) {
    return key != nullptr ? key->sign(alg, input) : hmacSign(alg, secret, input);
  });
}

}  // namespace Testing
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
