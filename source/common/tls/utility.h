#pragma once

#include <string>
#include <vector>

#include "openssl/x509.h"

namespace sluice {
namespace Tls {

// Subject alternative names of `cert` of one GENERAL_NAME type (GEN_DNS, GEN_URI, GEN_EMAIL,
// GEN_IPADD; IP addresses as text), in certificate order.
std::vector<std::string> sansOf(X509* cert, int type);
// Every URI, DNS, e-mail and IP SAN, in certificate order.
std::vector<std::string> allSansOf(X509* cert);
// RFC 2253 subject ("CN=client,O=Example").
std::string subjectOf(X509* cert);

}  // namespace Tls
}  // namespace sluice
