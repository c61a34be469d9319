#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "openssl/ssl.h"
#include "source/common/network/connection.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Tls {

// OpenSSL 3, restricted to what BoringSSL also offers (DESIGN.md), with two OpenSSL-only
// places marked where they are (OCSP stapling's status callback, SSL_OP_IGNORE_UNEXPECTED_EOF).

// A certificate and key as PEM text, with where they came from for error messages
// ("cert_chain_file /etc/x.pem", "secret \"edge\"").
struct CertificateMaterial {
  std::string chain_pem;
  std::string key_pem;
  // DER OCSP response to staple (server certificates), optional.
  std::string ocsp_der;
  std::string origin;
};

// What a certificate says, once parsed and checked.
struct CertificateSummary {
  std::string subject;
  std::vector<std::string> dns_names;  // DNS SANs (the CN when there are none), lowercase
};

// Parses and checks a certificate chain and key: both parse, the key matches the leaf, the leaf
// is neither expired nor not yet valid. Errors name the origin and the problem.
absl::StatusOr<CertificateSummary> checkCertificate(const CertificateMaterial& material);
// Checks a PEM CA bundle: at least one certificate, all parse.
absl::Status checkCaBundle(const std::string& pem, const std::string& origin);

// Protocol versions as OpenSSL numbers (TLS1_2_VERSION ...).
struct VersionRange {
  int min = TLS1_2_VERSION;
  int max = TLS1_3_VERSION;
};

// Per-listener TLS counters (listener.<name>.ssl.*).
struct TlsStats {
  Stats::Counter* handshake;
  Stats::Counter* session_reused;
  Stats::Counter* connection_error;
  Stats::Counter* no_certificate;
  Stats::Counter* fail_verify_error;
  static TlsStats create(Stats::Store& store, const std::string& listener);
};

struct ServerContextConfig {
  std::vector<CertificateMaterial> certificates;
  // Server preference order; only protocols the listener serves.
  std::vector<std::string> alpn;
  VersionRange versions;
  // TLS 1.2 suites, OpenSSL names; empty = the default list.
  std::vector<std::string> cipher_suites;
  // Client CAs (PEM); empty = no client certificate is requested.
  std::string client_ca_pem;
  bool require_client_certificate = false;
  // 0 = no resumption.
  std::chrono::seconds session_timeout{7200};
  // Distinguishes this listener's sessions from another's (its name).
  std::string session_id_context;
};

class ServerContext;
using ServerContextConstSharedPtr = std::shared_ptr<const ServerContext>;

// The TLS side of a listener: one SSL_CTX per certificate (SNI picks one during the handshake),
// shared read-only by every worker. Built on the main thread when config is compiled; a new
// config builds a new one, and connections keep the one they started with.
class ServerContext : public std::enable_shared_from_this<ServerContext> {
 public:
  // `stats`: the listener's counters; null counts nothing.
  static absl::StatusOr<ServerContextConstSharedPtr> create(const ServerContextConfig& config,
                                                            const TlsStats* stats);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // A TLS layer for an accepted connection.
  Network::TransportSocketPtr newSocket() const;
  // Index of the certificate for `sni` ("" = none sent): exact DNS name, then a `*.` wildcard
  // one label deep, else 0.
  size_t selectCertificate(absl::string_view sni) const;
  const TlsStats* stats() const { return has_stats_ ? &stats_ : nullptr; }

 private:
  struct Cert {
    SSL_CTX* ctx = nullptr;
    std::string ocsp_der;
  };
  ServerContext() = default;
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onAlpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                          const unsigned char* in, unsigned int inlen, void* arg);
  static int onOcspStatus(SSL* ssl, void* arg);

  std::vector<Cert> certs_;
  absl::flat_hash_map<std::string, size_t> exact_;
  // "example.com" for "*.example.com".
  absl::flat_hash_map<std::string, size_t> wildcard_;
  std::string alpn_wire_;
  TlsStats stats_{};
  bool has_stats_ = false;
};

struct ClientContextConfig {
  // SNI; also the name verified when verify_names is empty.
  std::string sni;
  // Trusted CAs (PEM); empty = the system's bundle.
  std::string ca_pem;
  // The server certificate must carry one of these SANs (DNS with wildcards, URI, IP).
  std::vector<std::string> verify_names;
  bool verify = true;
  // Client certificate (mTLS to the upstream), optional.
  bool has_certificate = false;
  CertificateMaterial certificate;
  std::vector<std::string> alpn;
  VersionRange versions;
};

class ClientContext;
using ClientContextConstSharedPtr = std::shared_ptr<const ClientContext>;

// The TLS side of a cluster, shared by every worker's connection pools.
class ClientContext : public std::enable_shared_from_this<ClientContext> {
 public:
  static absl::StatusOr<ClientContextConstSharedPtr> create(const ClientContextConfig& config);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  // A TLS layer for a new upstream connection.
  Network::TransportSocketPtr newSocket() const;
  const ClientContextConfig& config() const { return config_; }

 private:
  ClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
  ClientContextConfig config_;
};

// Why the verification of a peer certificate failed, named the way operators think of it:
// "certificate expired", "unknown CA (unable to get local issuer certificate)", ...
std::string describeVerifyFailure(long verify_result);

}  // namespace Tls
}  // namespace sluice
