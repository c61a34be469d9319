#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "source/common/network/connection.h"
#include "source/common/network/dns_resolver.h"

namespace sluice {
namespace Testing {

// test/integration/dns_server.py as a child process: an authoritative DNS server on
// 127.0.0.1:<free port> (UDP) whose answers a test sets and changes while it runs (see the
// script's docstring). Killed when destroyed. The test target lists the script as data.
class DnsServer {
 public:
  DnsServer();
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // The server answers (false: the script or python3 could not be started).
  bool running() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  Network::Address address() const;
  // A resolver's options for asking this server only, with a short timeout (200 ms, one try) so
  // a test of silence does not wait for c-ares' defaults.
  Network::DnsResolverOptions resolverOptions() const;

  // Answers A/AAAA queries for `name` with these addresses and TTL (empty lists: NODATA).
  void set(const std::string& name, const std::vector<std::string>& a,
           const std::vector<std::string>& aaaa = {}, uint32_t ttl = 30);
  // "answer" | "servfail" | "refused" | "nxdomain" | "silent" (drop the queries).
  void mode(const std::string& name, const std::string& mode);
  // Queries received for `name` of `type` ("A", "AAAA").
  int queries(const std::string& name, const std::string& type = "A");

 private:
  std::string command(const std::string& json);

  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  uint16_t port_ = 0;
};

}  // namespace Testing
}  // namespace sluice
