// Feeds arbitrary bytes to the certificate and key loading that Secret resources and listener
// and cluster `tls` files go through: PEM chains, private keys, CA bundles, and a server context
// built from whatever passed the checks. Nothing may crash, hang, leak or take long; a refused
// input must be refused with an error, not an abort. The input is split at the first "\n--\n"
// into the chain and the key (the whole input is also tried as a CA bundle). The default (gcc)
// build replays files given on the command line.
#include <cstdint>
#include <string>

#include "source/common/tls/context.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n--\n");
  sluice::Tls::CertificateMaterial m;
  m.chain_pem = input.substr(0, split);
  m.key_pem = split == std::string::npos ? input : input.substr(split + 4);
  m.origin = "fuzz";
  (void)sluice::Tls::checkCaBundle(input, "fuzz");
  auto summary = sluice::Tls::checkCertificate(m);
  if (summary.ok()) {
    sluice::Tls::ServerContextConfig config;
    config.certificates.push_back(m);
    config.client_ca_pem = m.chain_pem;
    auto ctx = sluice::Tls::ServerContext::create(config, nullptr);
    if (ctx.ok()) (void)(*ctx)->selectCertificate("a.example.com");
  }
  sluice::Tls::ClientContextConfig client;
  client.ca_pem = m.chain_pem;
  (void)sluice::Tls::ClientContext::create(client);
  return 0;
}
