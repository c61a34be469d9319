// The ticket key callback uses HMAC_CTX, deprecated in OpenSSL 3 but the API BoringSSL has.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "source/common/tls/context.h"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "openssl/err.h"
#include "openssl/hmac.h"
#include "openssl/pem.h"
#include "openssl/rand.h"
#include "openssl/x509v3.h"
#include "source/common/tls/ssl_socket.h"
#include "source/common/tls/utility.h"

namespace sluice {
namespace Tls {
namespace {

// Default TLS 1.2 suites (Envoy's list, without its BoringSSL-only equal-preference groups).
constexpr char kDefaultCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
constexpr char kCurves[] = "X25519:P-256";

std::string opensslError(const char* what) {
  std::string detail;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    if (!detail.empty()) continue;  // the first error is the cause
    const char* reason = ERR_reason_error_string(e);
    detail = reason != nullptr ? reason : absl::StrCat("error ", e);
  }
  return detail.empty() ? std::string(what) : absl::StrCat(what, ": ", detail);
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

BioPtr memBio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Every certificate in a PEM text.
std::vector<X509Ptr> readCertificates(const std::string& pem) {
  std::vector<X509Ptr> out;
  BioPtr bio = memBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(x);
  }
  ERR_clear_error();  // the read that ends the loop leaves "no start line"
  return out;
}

struct ParsedCertificate {
  std::vector<X509Ptr> chain;
  PkeyPtr key;
  CertificateSummary summary;
};

absl::StatusOr<ParsedCertificate> parseCertificate(const CertificateMaterial& m) {
  auto fail = [&m](const std::string& why) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(m.origin, ": ", why));
  };
  ParsedCertificate out;
  out.chain = readCertificates(m.chain_pem);
  if (out.chain.empty()) return fail("no PEM certificate found in the certificate chain");
  BioPtr bio = memBio(m.key_pem);
  out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (out.key == nullptr) return fail("the private key is not a PEM private key");
  const int type = EVP_PKEY_base_id(out.key.get());
  if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
    return fail("the private key must be RSA or ECDSA");
  }
  X509* leaf = out.chain.front().get();
  if (X509_check_private_key(leaf, out.key.get()) != 1) {
    return fail("the private key does not match the certificate");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
    return fail("the certificate has expired");
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
    return fail("the certificate is not valid yet");
  }
  out.summary.subject = subjectOf(leaf);
  for (std::string& n : sansOf(leaf, GEN_DNS)) {
    out.summary.dns_names.push_back(absl::AsciiStrToLower(n));
  }
  if (out.summary.dns_names.empty()) {
    const int idx = X509_NAME_get_index_by_NID(X509_get_subject_name(leaf), NID_commonName, -1);
    if (idx >= 0) {
      const ASN1_STRING* cn =
          X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_subject_name(leaf), idx));
      out.summary.dns_names.push_back(absl::AsciiStrToLower(absl::string_view(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)), ASN1_STRING_length(cn))));
    }
  }
  return out;
}

// Session ticket keys, one ring for the process: every worker and every listener (and every
// config version of it) encrypts with the newest key and decrypts with any kept one, so a
// ticket resumes on any worker and across certificate rotations. A new key every hour; a key is
// kept while tickets it sealed may still be valid (the longest session_timeout in use + 1h).
class TicketKeyRing {
 public:
  struct Key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
    std::chrono::steady_clock::time_point created;
  };
  static TicketKeyRing& get() {
    static auto* ring = new TicketKeyRing();
    return *ring;
  }
  void noteSessionTimeout(std::chrono::seconds t) {
    absl::MutexLock l(&mu_);
    max_timeout_ = std::max(max_timeout_, t);
  }
  // Copies the key to encrypt with.
  Key current() {
    const auto now = std::chrono::steady_clock::now();
    {
      absl::ReaderMutexLock l(&mu_);
      if (!keys_.empty() && now - keys_.front().created < kRotation) return keys_.front();
    }
    absl::MutexLock l(&mu_);
    if (keys_.empty() || now - keys_.front().created >= kRotation) {
      Key k;
      RAND_bytes(k.name, sizeof(k.name));
      RAND_bytes(k.hmac, sizeof(k.hmac));
      RAND_bytes(k.aes, sizeof(k.aes));
      k.created = now;
      keys_.push_front(k);
      while (keys_.size() > 1 && now - keys_.back().created > max_timeout_ + kRotation) {
        keys_.pop_back();
      }
    }
    return keys_.front();
  }
  // The key named `name`, and whether it is the newest.
  bool find(const unsigned char* name, Key& out, bool& newest) {
    absl::ReaderMutexLock l(&mu_);
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (memcmp(keys_[i].name, name, sizeof(keys_[i].name)) == 0) {
        out = keys_[i];
        newest = i == 0;
        return true;
      }
    }
    return false;
  }

 private:
  static constexpr std::chrono::hours kRotation{1};
  absl::Mutex mu_;
  std::deque<Key> keys_ ABSL_GUARDED_BY(mu_);
  std::chrono::seconds max_timeout_ ABSL_GUARDED_BY(mu_){0};
};

int onTicketKey(SSL*, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                EVP_CIPHER_CTX* cipher, HMAC_CTX* hmac, int encrypt) {
  TicketKeyRing::Key key;
  if (encrypt == 1) {
    key = TicketKeyRing::get().current();
    memcpy(key_name, key.name, sizeof(key.name));
    if (RAND_bytes(iv, 16) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) return -1;
    if (HMAC_Init_ex(hmac, key.hmac, sizeof(key.hmac), EVP_sha256(), nullptr) != 1) return -1;
    return 1;
  }
  bool newest = false;
  if (!TicketKeyRing::get().find(key_name, key, newest)) return 0;  // unknown: full handshake
  if (HMAC_Init_ex(hmac, key.hmac, sizeof(key.hmac), EVP_sha256(), nullptr) != 1) return -1;
  if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) return -1;
  return newest ? 1 : 2;  // 2: valid, but issue a new ticket under the newest key
}

std::string alpnWire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) continue;
    wire.push_back(static_cast<char>(p.size()));
    wire.append(p);
  }
  return wire;
}

// Settings every context shares, server or client.
absl::Status configureCommon(SSL_CTX* ctx, const VersionRange& v) {
  if (SSL_CTX_set_min_proto_version(ctx, v.min) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, v.max) != 1) {
    return absl::InvalidArgumentError(opensslError("unsupported TLS version range"));
  }
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  // OpenSSL 3 only: a peer closing TCP without close_notify is an end of stream (HTTP frames
  // its own messages), as in BoringSSL and nginx.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
  // Idle connections give their record buffers back; partial writes from a chained buffer.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read whole socket buffers, not a record header then its body (one read per request, as
  // nginx does); SslSocket::hasPendingRead() covers what is buffered.
  SSL_CTX_set_read_ahead(ctx, 1);
  if (SSL_CTX_set1_curves_list(ctx, kCurves) != 1) {
    return absl::InternalError(opensslError("setting curves"));
  }
  return absl::OkStatus();
}

absl::Status useCertificate(SSL_CTX* ctx, const ParsedCertificate& cert) {
  if (SSL_CTX_use_certificate(ctx, cert.chain.front().get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, cert.key.get()) != 1) {
    return absl::InvalidArgumentError(opensslError("loading the certificate"));
  }
  for (size_t i = 1; i < cert.chain.size(); ++i) {
    // add0 takes a reference of its own.
    X509_up_ref(cert.chain[i].get());
    if (SSL_CTX_add0_chain_cert(ctx, cert.chain[i].get()) != 1) {
      X509_free(cert.chain[i].get());
      return absl::InvalidArgumentError(opensslError("loading the certificate chain"));
    }
  }
  return absl::OkStatus();
}

absl::Status trustCas(SSL_CTX* ctx, const std::string& pem, bool client_ca_list) {
  std::vector<X509Ptr> cas = readCertificates(pem);
  if (cas.empty()) return absl::InvalidArgumentError("no PEM certificate in the CA bundle");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  STACK_OF(X509_NAME)* names = client_ca_list ? sk_X509_NAME_new_null() : nullptr;
  for (const X509Ptr& ca : cas) {
    if (X509_STORE_add_cert(store, ca.get()) != 1) ERR_clear_error();  // duplicates are fine
    if (names != nullptr) sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca.get())));
  }
  if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CertificateSummary> checkCertificate(const CertificateMaterial& material) {
  auto parsed = parseCertificate(material);
  if (!parsed.ok()) return parsed.status();
  return std::move(parsed->summary);
}

absl::Status checkCaBundle(const std::string& pem, const std::string& origin) {
  if (readCertificates(pem).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": no PEM certificate found"));
  }
  return absl::OkStatus();
}

TlsStats TlsStats::create(Stats::Store& store, const std::string& listener) {
  auto c = [&](const char* name) {
    return &store.counter(absl::StrCat("listener.", listener, ".ssl.", name),
                          absl::StrCat("listener_ssl_", name, "_total"), {{"listener", listener}});
  };
  return TlsStats{c("handshake"), c("session_reused"), c("connection_error"), c("no_certificate"),
                  c("fail_verify_error")};
}

absl::StatusOr<ServerContextConstSharedPtr> ServerContext::create(const ServerContextConfig& config,
                                                                  const TlsStats* stats) {
  if (config.certificates.empty()) {
    return absl::InvalidArgumentError("at least one certificate is required");
  }
  std::shared_ptr<ServerContext> out(new ServerContext());
  if (stats != nullptr) {
    out->stats_ = *stats;
    out->has_stats_ = true;
  }
  out->alpn_wire_ = alpnWire(config.alpn);
  std::string sid = config.session_id_context.substr(0, SSL_MAX_SID_CTX_LENGTH);
  if (config.session_timeout.count() > 0) {
    TicketKeyRing::get().noteSessionTimeout(config.session_timeout);
  }
  // Callbacks hold pointers into certs_: no reallocation.
  out->certs_.reserve(config.certificates.size());
  for (const CertificateMaterial& m : config.certificates) {
    auto parsed = parseCertificate(m);
    if (!parsed.ok()) return parsed.status();
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) return absl::InternalError(opensslError("SSL_CTX_new"));
    out->certs_.push_back(Cert{ctx, m.ocsp_der});
    absl::Status s = configureCommon(ctx, config.versions);
    if (s.ok()) s = useCertificate(ctx, *parsed);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(m.origin, ": ", s.message()));
    const std::string ciphers = config.cipher_suites.empty()
                                    ? std::string(kDefaultCiphers)
                                    : absl::StrJoin(config.cipher_suites, ":");
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
      return absl::InvalidArgumentError(opensslError("cipher_suites: no usable cipher suite"));
    }
    if (!config.client_ca_pem.empty()) {
      s = trustCas(ctx, config.client_ca_pem, true);
      if (!s.ok()) return s;
      SSL_CTX_set_verify(
          ctx,
          SSL_VERIFY_PEER |
              (config.require_client_certificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
          nullptr);
    }
    SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>(sid.data()),
                                   sid.size());
    // Stateless resumption only (tickets): no per-process session cache to share or lock.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (config.session_timeout.count() > 0) {
      SSL_CTX_set_timeout(ctx, config.session_timeout.count());
      SSL_CTX_set_tlsext_ticket_key_cb(ctx, onTicketKey);
      SSL_CTX_set_num_tickets(ctx, 1);
    } else {
      SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
      SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, &ServerContext::onServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx, out.get());
    if (!out->alpn_wire_.empty()) {
      SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::onAlpnSelect, out.get());
    }
    if (!m.ocsp_der.empty()) {
      // OpenSSL's API (BoringSSL: SSL_CTX_set_ocsp_response).
      SSL_CTX_set_tlsext_status_cb(ctx, &ServerContext::onOcspStatus);
      SSL_CTX_set_tlsext_status_arg(ctx, &out->certs_.back());
    }
    const size_t index = out->certs_.size() - 1;
    for (const std::string& name : parsed->summary.dns_names) {
      if (absl::StartsWith(name, "*.")) {
        out->wildcard_.emplace(name.substr(2), index);
      } else {
        out->exact_.emplace(name, index);
      }
    }
  }
  return ServerContextConstSharedPtr(std::move(out));
}

ServerContext::~ServerContext() {
  for (Cert& c : certs_) SSL_CTX_free(c.ctx);
}

size_t ServerContext::selectCertificate(absl::string_view sni) const {
  if (sni.empty() || certs_.size() == 1) return 0;
  std::string name = absl::AsciiStrToLower(sni);
  if (!name.empty() && name.back() == '.') name.pop_back();
  auto it = exact_.find(name);
  if (it != exact_.end()) return it->second;
  const size_t dot = name.find('.');
  if (dot != std::string::npos) {
    auto w = wildcard_.find(absl::string_view(name).substr(dot + 1));
    if (w != wildcard_.end()) return w->second;
  }
  return 0;
}

int ServerContext::onServerName(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sni == nullptr) return SSL_TLSEXT_ERR_NOACK;
  const size_t i = self->selectCertificate(sni);
  if (i != 0) SSL_set_SSL_CTX(ssl, self->certs_[i].ctx);
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::onAlpnSelect(SSL*, const unsigned char** out, unsigned char* outlen,
                                const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen,
                            reinterpret_cast<const unsigned char*>(self->alpn_wire_.data()),
                            self->alpn_wire_.size(), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    // Nothing in common: go on without ALPN (HTTP/1.1), as nginx does.
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::onOcspStatus(SSL* ssl, void* arg) {
  const auto* cert = static_cast<const Cert*>(arg);
  if (cert->ocsp_der.empty()) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(cert->ocsp_der.size()));
  if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
  memcpy(copy, cert->ocsp_der.data(), cert->ocsp_der.size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, cert->ocsp_der.size());
  return SSL_TLSEXT_ERR_OK;
}

Network::TransportSocketPtr ServerContext::newSocket() const {
  SSL* ssl = SSL_new(certs_.front().ctx);
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  auto self = shared_from_this();
  return std::make_unique<SslSocket>(ssl, std::move(self), nullptr);
}

absl::StatusOr<ClientContextConstSharedPtr> ClientContext::create(
    const ClientContextConfig& config) {
  std::shared_ptr<ClientContext> out(new ClientContext());
  out->config_ = config;
  out->ctx_ = SSL_CTX_new(TLS_client_method());
  if (out->ctx_ == nullptr) return absl::InternalError(opensslError("SSL_CTX_new"));
  absl::Status s = configureCommon(out->ctx_, config.versions);
  if (!s.ok()) return s;
  if (SSL_CTX_set_cipher_list(out->ctx_, kDefaultCiphers) != 1) {
    return absl::InternalError(opensslError("cipher list"));
  }
  if (config.verify) {
    if (config.ca_pem.empty()) {
      if (SSL_CTX_set_default_verify_paths(out->ctx_) != 1) {
        return absl::InternalError(opensslError("loading the system CA bundle"));
      }
    } else {
      s = trustCas(out->ctx_, config.ca_pem, false);
      if (!s.ok()) return s;
    }
    // The chain is checked by OpenSSL; the names by SslSocket once the handshake is done, so a
    // failure can say which names were expected.
    SSL_CTX_set_verify(out->ctx_, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(out->ctx_, SSL_VERIFY_NONE, nullptr);
  }
  if (config.has_certificate) {
    auto parsed = parseCertificate(config.certificate);
    if (!parsed.ok()) return parsed.status();
    s = useCertificate(out->ctx_, *parsed);
    if (!s.ok()) return s;
  }
  const std::string wire = alpnWire(config.alpn);
  // Note: SSL_CTX_set_alpn_protos returns 0 on success.
  if (!wire.empty() &&
      SSL_CTX_set_alpn_protos(out->ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                              wire.size()) != 0) {
    return absl::InvalidArgumentError(opensslError("alpn"));
  }
  SSL_CTX_set_session_cache_mode(out->ctx_, SSL_SESS_CACHE_OFF);
  return ClientContextConstSharedPtr(std::move(out));
}

ClientContext::~ClientContext() { SSL_CTX_free(ctx_); }

Network::TransportSocketPtr ClientContext::newSocket() const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  if (!config_.sni.empty()) SSL_set_tlsext_host_name(ssl, config_.sni.c_str());
  return std::make_unique<SslSocket>(ssl, nullptr, shared_from_this());
}

std::string describeVerifyFailure(long result) {
  const char* text = X509_verify_cert_error_string(result);
  switch (result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate not yet valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return absl::StrCat("unknown CA (", text, ")");
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return absl::StrCat("wrong name (", text, ")");
    default:
      return absl::StrCat("certificate verify failed (", text, ")");
  }
}

}  // namespace Tls
}  // namespace sluice
