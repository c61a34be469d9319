#include "source/common/tls/context.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "openssl/x509_vfy.h"

namespace sluice {
namespace Tls {
namespace {

// Test certificates (valid until 2076, except expired.*), made by tls_certs.py: a CA, and
// leaves for default.test (ECDSA), *.wild.test (RSA), exact.wild.test.
std::string read(const std::string& name) {
  std::ifstream f("test/common/tls/testdata/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CertificateMaterial material(const std::string& name) {
  return CertificateMaterial{read(name + ".crt"), read(name + ".key"), "", name};
}

TEST(CheckCertificate, AcceptsGoodOnes) {
  auto ec = checkCertificate(material("default"));
  ASSERT_TRUE(ec.ok()) << ec.status();
  EXPECT_EQ(ec->dns_names, std::vector<std::string>{"default.test"});
  EXPECT_EQ(ec->subject, "O=Sluice Tests,CN=default.test");
  auto rsa = checkCertificate(material("wild"));
  ASSERT_TRUE(rsa.ok()) << rsa.status();
  EXPECT_EQ(rsa->dns_names, std::vector<std::string>{"*.wild.test"});
}

TEST(CheckCertificate, RefusesWithReasons) {
  CertificateMaterial mismatch{read("default.crt"), read("wild.key"), "", "secret \"x\""};
  EXPECT_EQ(checkCertificate(mismatch).status().message(),
            "secret \"x\": the private key does not match the certificate");
  EXPECT_EQ(checkCertificate(material("expired")).status().message(),
            "expired: the certificate has expired");
  CertificateMaterial no_key{read("default.crt"), "", "", "k"};
  EXPECT_EQ(checkCertificate(no_key).status().message(),
            "k: the private key is not a PEM private key");
  CertificateMaterial no_cert{"garbage", read("default.key"), "", "c"};
  EXPECT_EQ(checkCertificate(no_cert).status().message(),
            "c: no PEM certificate found in the certificate chain");
  EXPECT_TRUE(checkCaBundle(read("unit-ca.crt"), "ca").ok());
  EXPECT_EQ(checkCaBundle("nope", "ca").message(), "ca: no PEM certificate found");
}

TEST(ServerContext, SelectsBySni) {
  ServerContextConfig config;
  config.certificates = {material("default"), material("wild"), material("exact")};
  auto ctx = ServerContext::create(config, nullptr);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  const ServerContext& c = **ctx;
  EXPECT_EQ(c.selectCertificate(""), 0u);
  EXPECT_EQ(c.selectCertificate("default.test"), 0u);
  EXPECT_EQ(c.selectCertificate("a.wild.test"), 1u);
  EXPECT_EQ(c.selectCertificate("exact.wild.test"), 2u);  // exact beats the wildcard
  EXPECT_EQ(c.selectCertificate("Exact.Wild.Test."), 2u);
  EXPECT_EQ(c.selectCertificate("a.b.wild.test"), 0u);  // one label deep only
  EXPECT_EQ(c.selectCertificate("wild.test"), 0u);
  EXPECT_EQ(c.selectCertificate("unknown"), 0u);
  EXPECT_NE(c.newSocket(), nullptr);
}

TEST(ServerContext, RefusesBadSettings) {
  ServerContextConfig config;
  EXPECT_FALSE(ServerContext::create(config, nullptr).ok());
  config.certificates = {material("default")};
  config.cipher_suites = {"NOT-A-CIPHER"};
  EXPECT_EQ(ServerContext::create(config, nullptr).status().message(),
            "cipher_suites: no usable cipher suite: no cipher match");
  config.cipher_suites.clear();
  config.client_ca_pem = "not pem";
  EXPECT_FALSE(ServerContext::create(config, nullptr).ok());
}

TEST(ClientContext, Creates) {
  ClientContextConfig config;
  config.ca_pem = read("unit-ca.crt");
  config.sni = "default.test";
  auto ctx = ClientContext::create(config);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_NE((*ctx)->newSocket(), nullptr);
  config.ca_pem.clear();  // the system bundle
  EXPECT_TRUE(ClientContext::create(config).ok());
}

TEST(DescribeVerifyFailure, NamesTheCause) {
  EXPECT_EQ(describeVerifyFailure(X509_V_ERR_CERT_HAS_EXPIRED), "certificate expired");
  EXPECT_EQ(describeVerifyFailure(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
            "unknown CA (unable to get local issuer certificate)");
  EXPECT_EQ(describeVerifyFailure(X509_V_ERR_HOSTNAME_MISMATCH), "wrong name (hostname mismatch)");
}

}  // namespace
}  // namespace Tls
}  // namespace sluice
