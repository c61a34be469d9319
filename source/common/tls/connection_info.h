#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sluice {
namespace Tls {

// What a finished TLS handshake established, for filters, headers and the access log. Values
// about the peer certificate are read from it on first use and kept. Worker-local.
class ConnectionInfo {
 public:
  virtual ~ConnectionInfo() = default;
  // The peer sent a certificate and it was verified.
  virtual bool peerCertificateValidated() const = 0;
  // Subject alternative names of the peer certificate, in certificate order, as text: URIs,
  // DNS names, e-mail addresses and IP addresses.
  virtual const std::vector<std::string>& uriSansPeerCertificate() const = 0;
  virtual const std::vector<std::string>& dnsSansPeerCertificate() const = 0;
  // Every SAN of the peer certificate (URI, DNS, e-mail, IP), in certificate order.
  virtual const std::vector<std::string>& sansPeerCertificate() const = 0;
  // RFC 2253 subject of the peer certificate ("CN=client,O=Example"), "" without one.
  virtual const std::string& subjectPeerCertificate() const = 0;
  // Lowercase hex SHA-256 of the peer certificate's DER, "" without one.
  virtual const std::string& sha256PeerCertificateDigest() const = 0;
  // The peer certificate as URL-encoded PEM (for x-forwarded-client-cert `Cert=`).
  virtual std::string urlEncodedPemPeerCertificate() const = 0;
  // URI SANs of our own certificate (x-forwarded-client-cert `By=`).
  virtual const std::vector<std::string>& uriSansLocalCertificate() const = 0;
  // "TLSv1.3", the negotiated ALPN protocol ("" for none), the SNI the client sent, the
  // cipher's standard name, and whether the session was resumed.
  virtual absl::string_view tlsVersion() const = 0;
  virtual absl::string_view alpn() const = 0;
  virtual absl::string_view sni() const = 0;
  virtual absl::string_view cipherSuite() const = 0;
  virtual bool sessionReused() const = 0;
};

}  // namespace Tls
}  // namespace sluice
