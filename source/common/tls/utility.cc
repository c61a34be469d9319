#include "source/common/tls/utility.h"

#include <arpa/inet.h>

#include <memory>

#include "openssl/bio.h"
#include "openssl/x509v3.h"

namespace sluice {
namespace Tls {
namespace {

std::string nameText(const GENERAL_NAME* n) {
  if (n->type == GEN_IPADD) {
    const ASN1_OCTET_STRING* ip = n->d.iPAddress;
    char buf[INET6_ADDRSTRLEN] = {0};
    const int len = ASN1_STRING_length(ip);
    if (len != 4 && len != 16) return "";
    inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), buf, sizeof(buf));
    return buf;
  }
  const ASN1_STRING* s = n->d.ia5;
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     ASN1_STRING_length(s));
}

template <class F>
void forEachSan(X509* cert, F&& f) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) f(sk_GENERAL_NAME_value(names, i));
  GENERAL_NAMES_free(names);
}

}  // namespace

std::vector<std::string> sansOf(X509* cert, int type) {
  std::vector<std::string> out;
  forEachSan(cert, [&](const GENERAL_NAME* n) {
    if (n->type == type) out.push_back(nameText(n));
  });
  return out;
}

std::vector<std::string> allSansOf(X509* cert) {
  std::vector<std::string> out;
  forEachSan(cert, [&](const GENERAL_NAME* n) {
    if (n->type == GEN_URI || n->type == GEN_DNS || n->type == GEN_EMAIL || n->type == GEN_IPADD) {
      out.push_back(nameText(n));
    }
  });
  return out;
}

std::string subjectOf(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

}  // namespace Tls
}  // namespace sluice
