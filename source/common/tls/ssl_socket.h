#pragma once

#include <memory>
#include <string>
#include <vector>

#include "openssl/ssl.h"
#include "source/common/network/connection.h"
#include "source/common/tls/connection_info.h"
#include "source/common/tls/context.h"

namespace sluice {
namespace Tls {

// TLS over a connection's socket (OpenSSL's socket BIO: records go straight to the fd, no
// intermediate copy). Server sockets keep their ServerContext alive, client sockets their
// ClientContext. Worker-local.
class SslSocket : public Network::TransportSocket, public ConnectionInfo {
 public:
  // Takes ownership of `ssl`. One of the contexts is set.
  SslSocket(SSL* ssl, ServerContextConstSharedPtr server, ClientContextConstSharedPtr client);
  ~SslSocket() override;

  // Network::TransportSocket
  void setFd(int fd) override;
  Network::HandshakeStatus handshake() override;
  const std::string& failureReason() const override { return failure_; }
  ssize_t read(Buffer::Instance& out, size_t max) override;
  bool hasPendingRead() const override;
  ssize_t write(Buffer::Instance& in) override;
  void shutdown() override;
  const ConnectionInfo* ssl() const override { return this; }

  // ConnectionInfo
  bool peerCertificateValidated() const override;
  const std::vector<std::string>& uriSansPeerCertificate() const override;
  const std::vector<std::string>& dnsSansPeerCertificate() const override;
  const std::vector<std::string>& sansPeerCertificate() const override;
  const std::string& subjectPeerCertificate() const override;
  const std::string& sha256PeerCertificateDigest() const override;
  std::string urlEncodedPemPeerCertificate() const override;
  const std::vector<std::string>& uriSansLocalCertificate() const override;
  absl::string_view tlsVersion() const override;
  absl::string_view alpn() const override;
  absl::string_view sni() const override;
  absl::string_view cipherSuite() const override;
  bool sessionReused() const override;

 private:
  // Peer certificate details, read once on first use.
  struct PeerDetails {
    bool validated = false;
    std::vector<std::string> uri_sans;
    std::vector<std::string> dns_sans;
    std::vector<std::string> all_sans;
    std::vector<std::string> local_uri_sans;
    std::string subject;
    std::string sha256;
  };
  const PeerDetails& peer() const;
  // The verified server certificate carries one of the names the cluster asks for.
  bool checkServerNames();
  void setFailureFromErrorQueue(int ssl_error, const char* when);

  SSL* ssl_;
  ServerContextConstSharedPtr server_;
  ClientContextConstSharedPtr client_;
  std::string failure_;
  // The first OpenSSL error of the failure (its reason names the cause for the stats).
  unsigned long first_error_ = 0;
  mutable std::unique_ptr<PeerDetails> peer_;
  bool eof_ = false;
  bool failed_ = false;
};

}  // namespace Tls
}  // namespace sluice
