#include "source/common/config/grpc_tls.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "source/common/config/utility.h"
#include "source/common/tls/context.h"

namespace sluice {
namespace Config {
namespace {

std::string where(const GrpcTlsFiles::File& f) { return absl::StrCat(f.name, " ", f.path); }

// The file's text into `out`; false (and an error naming the flag or field) when unreadable.
bool readPem(const GrpcTlsFiles::File& f, std::string& out, ErrorList& errors) {
  auto text = readConfigFile(f.path);
  if (!text.ok()) {
    errors.add(absl::InvalidArgumentError(absl::StrCat(f.name, ": ", text.status().message())));
    return false;
  }
  out = std::move(*text);
  return true;
}

}  // namespace

absl::StatusOr<GrpcTlsPem> loadGrpcTls(const GrpcTlsFiles& files) {
  GrpcTlsPem pem;
  ErrorList errors;
  if (files.cert_chain.path.empty() != files.private_key.path.empty()) {
    const auto& given = files.cert_chain.path.empty() ? files.private_key : files.cert_chain;
    const auto& missing = files.cert_chain.path.empty() ? files.cert_chain : files.private_key;
    errors.add(absl::InvalidArgumentError(
        absl::StrCat(given.name, " needs ", missing.name, " (a certificate and its key)")));
  }
  // The checks the proxy's own TLS makes (source/common/tls): certificates parse, the key is
  // RSA or ECDSA and matches the leaf, the leaf is valid now.
  if (!files.ca.path.empty() && readPem(files.ca, pem.ca, errors)) {
    errors.add(Tls::checkCaBundle(pem.ca, where(files.ca)));
  }
  if (!files.cert_chain.path.empty() && !files.private_key.path.empty()) {
    const bool chain = readPem(files.cert_chain, pem.cert_chain, errors);
    if (readPem(files.private_key, pem.private_key, errors) && chain) {
      errors.add(Tls::checkCertificate(
                     {pem.cert_chain, pem.private_key, "",
                      absl::StrCat(where(files.cert_chain), " and ", where(files.private_key))})
                     .status());
    }
  }
  RETURN_IF_ERRORS(errors);
  return pem;
}

std::shared_ptr<grpc::ChannelCredentials> grpcChannelCredentials(const GrpcTlsPem& pem) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = pem.ca;
  o.pem_cert_chain = pem.cert_chain;
  o.pem_private_key = pem.private_key;
  return grpc::SslCredentials(o);
}

std::shared_ptr<grpc::ServerCredentials> grpcServerCredentials(const GrpcTlsPem& pem) {
  grpc::SslServerCredentialsOptions o(
      pem.ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                     : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = pem.ca;
  o.pem_key_cert_pairs.push_back({pem.private_key, pem.cert_chain});
  return grpc::SslServerCredentials(o);
}

}  // namespace Config
}  // namespace sluice
