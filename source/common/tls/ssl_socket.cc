#include "source/common/tls/ssl_socket.h"

#include <errno.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "openssl/err.h"
#include "openssl/pem.h"
#include "openssl/sha.h"
#include "openssl/x509v3.h"
#include "source/common/tls/utility.h"

namespace sluice {
namespace Tls {
namespace {

// One TLS record's worth: what a write coalesces small slices into.
constexpr size_t kRecordSize = 16 * 1024;

const std::vector<std::string>& emptyList() {
  static const auto* v = new std::vector<std::string>();
  return *v;
}

}  // namespace

SslSocket::SslSocket(SSL* ssl, ServerContextConstSharedPtr server,
                     ClientContextConstSharedPtr client)
    : ssl_(ssl), server_(std::move(server)), client_(std::move(client)) {}

SslSocket::~SslSocket() { SSL_free(ssl_); }

void SslSocket::setFd(int fd) { SSL_set_fd(ssl_, fd); }

Network::HandshakeStatus SslSocket::handshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    if (client_ != nullptr && !checkServerNames()) {
      failed_ = true;
      return Network::HandshakeStatus::Failed;
    }
    if (server_ != nullptr && server_->stats() != nullptr) {
      server_->stats()->handshake->inc();
      if (SSL_session_reused(ssl_)) server_->stats()->session_reused->inc();
    }
    return Network::HandshakeStatus::Done;
  }
  const int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ) return Network::HandshakeStatus::WantRead;
  if (err == SSL_ERROR_WANT_WRITE) return Network::HandshakeStatus::WantWrite;
  setFailureFromErrorQueue(err, "handshake");
  failed_ = true;
  if (server_ != nullptr && server_->stats() != nullptr) {
    const TlsStats& stats = *server_->stats();
    stats.connection_error->inc();
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      stats.fail_verify_error->inc();
    } else if (ERR_GET_REASON(first_error_) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      stats.no_certificate->inc();
    }
  }
  return Network::HandshakeStatus::Failed;
}

void SslSocket::setFailureFromErrorQueue(int ssl_error, const char* when) {
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK && client_ != nullptr) {
    failure_ = describeVerifyFailure(verify);
    ERR_clear_error();
    return;
  }
  std::string reason;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    if (!reason.empty()) continue;
    first_error_ = e;
    const char* r = ERR_reason_error_string(e);
    reason = r != nullptr ? r : absl::StrCat("error ", e);
  }
  if (reason.empty()) {
    if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
      reason = errno != 0 && ssl_error == SSL_ERROR_SYSCALL ? strerror(errno)
                                                            : "connection closed by peer";
    } else {
      reason = absl::StrCat("SSL error ", ssl_error);
    }
  }
  if (verify != X509_V_OK) absl::StrAppend(&reason, ": ", describeVerifyFailure(verify));
  failure_ = absl::StrCat("TLS ", when, " failed: ", reason);
}

bool SslSocket::checkServerNames() {
  const ClientContextConfig& c = client_->config();
  if (!c.verify) return true;
  const std::vector<std::string>& wanted =
      c.verify_names.empty() && !c.sni.empty() ? std::vector<std::string>{c.sni} : c.verify_names;
  if (wanted.empty()) return true;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) {
    failure_ = "no server certificate";
    return false;
  }
  const std::vector<std::string> uris = sansOf(cert, GEN_URI);
  for (const std::string& name : wanted) {
    if (name.find("://") != std::string::npos) {
      for (const std::string& u : uris) {
        if (u == name) return true;
      }
    } else if (X509_check_ip_asc(cert, name.c_str(), 0) == 1 ||
               X509_check_host(cert, name.data(), name.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                               nullptr) == 1) {
      return true;
    }
  }
  ERR_clear_error();
  failure_ = absl::StrCat("wrong name: the certificate (SANs ", absl::StrJoin(allSansOf(cert), ","),
                          ") has none of ", absl::StrJoin(wanted, ","));
  return false;
}

ssize_t SslSocket::read(Buffer::Instance& out, size_t max) {
  if (failed_) return -EPROTO;
  if (eof_) return 0;
  size_t total = 0;
  int err = SSL_ERROR_NONE;
  ERR_clear_error();
  while (total < max) {
    int rc = 0;
    size_t room = 0;
    const ssize_t n = out.appendWith(max - total, [this, &rc, &room](char* dst, size_t r) {
      room = r;
      rc = SSL_read(ssl_, dst, static_cast<int>(std::min<size_t>(r, INT32_MAX)));
      return static_cast<ssize_t>(rc);
    });
    if (n <= 0) {
      err = SSL_get_error(ssl_, rc);
      break;
    }
    total += n;
    // A short read with nothing buffered in OpenSSL (read-ahead): the socket is drained, and
    // the level-triggered loop says when more arrives. Saves the read that finds nothing.
    if (static_cast<size_t>(n) < room && !SSL_has_pending(ssl_)) break;
  }
  if (err == SSL_ERROR_ZERO_RETURN) {
    eof_ = true;
  } else if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) {
      eof_ = true;  // TCP closed without close_notify
    } else {
      setFailureFromErrorQueue(err, "read");
      failed_ = true;
    }
  }
  if (total > 0) return total;
  if (eof_) return 0;
  return failed_ ? -EPROTO : -EAGAIN;
}

// Decrypted bytes, or records read ahead from the socket and not yet decrypted.
bool SslSocket::hasPendingRead() const { return !eof_ && !failed_ && SSL_has_pending(ssl_); }

ssize_t SslSocket::write(Buffer::Instance& in) {
  if (failed_) return -EPIPE;
  // Coalesces small slices (headers, then a short body) into one record.
  thread_local char scratch[kRecordSize];
  size_t total = 0;
  ERR_clear_error();
  while (!in.empty()) {
    const size_t want = std::min(in.length(), kRecordSize);
    absl::string_view front = in.frontSlice();
    const char* data = front.data();
    size_t len = std::min(front.size(), kRecordSize);
    if (len < want) {
      in.copyOut(want, scratch);
      data = scratch;
      len = want;
    }
    const int rc = SSL_write(ssl_, data, static_cast<int>(len));
    if (rc > 0) {
      in.drain(rc);
      total += rc;
      continue;
    }
    const int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
    setFailureFromErrorQueue(err, "write");
    failed_ = true;
    return -EPIPE;
  }
  return total;
}

void SslSocket::shutdown() {
  if (failed_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // sends close_notify; does not wait for the peer's
  ERR_clear_error();
}

const SslSocket::PeerDetails& SslSocket::peer() const {
  if (peer_ != nullptr) return *peer_;
  peer_ = std::make_unique<PeerDetails>();
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert != nullptr) {
    peer_->validated = SSL_get_verify_result(ssl_) == X509_V_OK &&
                       (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0;
    peer_->uri_sans = sansOf(cert, GEN_URI);
    peer_->dns_sans = sansOf(cert, GEN_DNS);
    peer_->all_sans = allSansOf(cert);
    peer_->subject = subjectOf(cert);
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    if (len > 0) {
      unsigned char md[SHA256_DIGEST_LENGTH];
      SHA256(der, len, md);
      static const char kHex[] = "0123456789abcdef";
      for (unsigned char b : md) {
        peer_->sha256.push_back(kHex[b >> 4]);
        peer_->sha256.push_back(kHex[b & 15]);
      }
      OPENSSL_free(der);
    }
  }
  X509* local = SSL_get_certificate(ssl_);
  if (local != nullptr) peer_->local_uri_sans = sansOf(local, GEN_URI);
  return *peer_;
}

bool SslSocket::peerCertificateValidated() const { return peer().validated; }
const std::vector<std::string>& SslSocket::uriSansPeerCertificate() const {
  return peer().uri_sans;
}
const std::vector<std::string>& SslSocket::dnsSansPeerCertificate() const {
  return peer().dns_sans;
}
const std::vector<std::string>& SslSocket::sansPeerCertificate() const { return peer().all_sans; }
const std::string& SslSocket::subjectPeerCertificate() const { return peer().subject; }
const std::string& SslSocket::sha256PeerCertificateDigest() const { return peer().sha256; }
const std::vector<std::string>& SslSocket::uriSansLocalCertificate() const {
  return ssl_ == nullptr ? emptyList() : peer().local_uri_sans;
}

std::string SslSocket::urlEncodedPemPeerCertificate() const {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return "";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  std::string out;
  static const char kHex[] = "0123456789ABCDEF";
  for (long i = 0; i < len; ++i) {
    const unsigned char c = data[i];
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::string_view SslSocket::tlsVersion() const { return SSL_get_version(ssl_); }

absl::string_view SslSocket::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return absl::string_view(reinterpret_cast<const char*>(data), len);
}

absl::string_view SslSocket::sni() const {
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name == nullptr ? absl::string_view() : absl::string_view(name);
}

absl::string_view SslSocket::cipherSuite() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  return c == nullptr ? absl::string_view() : absl::string_view(SSL_CIPHER_standard_name(c));
}

bool SslSocket::sessionReused() const { return SSL_session_reused(ssl_) == 1; }

}  // namespace Tls
}  // namespace sluice
