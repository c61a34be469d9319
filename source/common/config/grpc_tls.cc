#include "source/common/config/grpc_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Config {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

BioPtr memBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Refuses to prompt for a passphrase (OpenSSL's default callback reads the terminal).
int noPassphrase(char*, int, int, void*) { return 0; }

std::string where(const GrpcTlsFiles::File& f) { return absl::StrCat(f.name, " ", f.path); }

// The file's text; `what` says what it must hold, for errors.
absl::StatusOr<std::string> readPem(const GrpcTlsFiles::File& f) {
  auto text = readConfigFile(f.path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(f.name, ": ", text.status().message()));
  }
  return *text;
}

// The first certificate of a PEM bundle; null when there is none. `count`: how many.
X509Ptr certificates(const std::string& pem, int* count) {
  BioPtr bio = memBio(pem);
  X509Ptr first;
  *count = 0;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr)) {
    if (first == nullptr) {
      first.reset(x);
    } else {
      X509_free(x);
    }
    ++*count;
  }
  ERR_clear_error();  // the end of the bundle reads as an error
  return first;
}

absl::StatusOr<X509Ptr> loadCertificates(const GrpcTlsFiles::File& f, std::string& out) {
  auto text = readPem(f);
  if (!text.ok()) {
    return text.status();
  }
  int count = 0;
  X509Ptr first = certificates(*text, &count);
  if (first == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(where(f), ": no PEM certificate in it (-----BEGIN CERTIFICATE-----)"));
  }
  out = std::move(*text);
  return first;
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
  if (!files.ca.path.empty()) {
    errors.add(loadCertificates(files.ca, pem.ca).status());
  }
  X509Ptr leaf;
  if (!files.cert_chain.path.empty()) {
    auto loaded = loadCertificates(files.cert_chain, pem.cert_chain);
    errors.add(loaded.status());
    if (loaded.ok()) {
      leaf = std::move(*loaded);
    }
  }
  if (!files.private_key.path.empty()) {
    auto key_text = readPem(files.private_key);
    errors.add(key_text.status());
    if (key_text.ok()) {
      BioPtr bio = memBio(*key_text);
      PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
      ERR_clear_error();
      if (key == nullptr) {
        errors.add(where(files.private_key),
                   "not a PEM private key (unencrypted PKCS#8, RSA or EC)");
      } else if (leaf != nullptr && X509_check_private_key(leaf.get(), key.get()) != 1) {
        ERR_clear_error();
        errors.add(where(files.private_key),
                   absl::StrCat("does not match the certificate in ", where(files.cert_chain)));
      } else {
        pem.private_key = std::move(*key_text);
      }
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
