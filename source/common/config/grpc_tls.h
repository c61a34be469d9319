#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace sluice {
namespace Config {

// TLS of Sluice's own gRPC connections (sluice and sluicectl to sluice-cp, sluice-cp's port):
// PEM files read once at start, checked, and turned into gRPC credentials. Not the proxy's TLS
// (source/common/tls), though it checks the files the same way.

// PEM text. Empty `ca`: the system's CA bundle (client) or no client certificates (server).
// `cert_chain` and `private_key` are both set or both empty.
struct GrpcTlsPem {
  std::string ca;
  std::string cert_chain;
  std::string private_key;
};

// The files to read, each with the name errors give it (a bootstrap field or a flag, e.g.
// "control_plane.tls.ca_file" or "--tls-cert"). An empty path is not read.
struct GrpcTlsFiles {
  struct File {
    std::string path;
    std::string name;
  };
  File ca;
  File cert_chain;
  File private_key;
};

// Reads and checks the files with the proxy's TLS checks (source/common/tls): each readable,
// `ca` and `cert_chain` hold PEM certificates, `private_key` a PEM RSA or ECDSA key matching the
// first certificate of `cert_chain`, which is valid now; the chain and the key given together.
// Every error, one per line, each naming the flag or field and the file, e.g.
// `--tls-cert /etc/cp/cert.pem and --tls-key /etc/cp/key.pem: the private key does not match
// the certificate`.
absl::StatusOr<GrpcTlsPem> loadGrpcTls(const GrpcTlsFiles& files);

// Client credentials: the server certificate verified against `pem.ca` (else the system's
// CAs), with the client certificate when there is one. The name verified is the host of the
// target, or the channel's GRPC_SSL_TARGET_NAME_OVERRIDE_ARG.
std::shared_ptr<grpc::ChannelCredentials> grpcChannelCredentials(const GrpcTlsPem& pem);

// Server credentials with `pem.cert_chain` and `pem.private_key` (required). With `pem.ca`,
// every client must present a certificate that chains to it
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
std::shared_ptr<grpc::ServerCredentials> grpcServerCredentials(const GrpcTlsPem& pem);

}  // namespace Config
}  // namespace sluice
