#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "source/common/event/dispatcher.h"
#include "source/common/network/connection.h"
#include "source/common/network/host_name.h"

namespace sluice {
namespace Network {

enum class DnsLookupFamily {
  // A records only.
  V4Only,
  // AAAA records only.
  V6Only,
  // AAAA first; A when the AAAA lookup fails or finds no address (Envoy's AUTO).
  Auto,
  // A first; AAAA when the A lookup fails or finds no address (Envoy's V4_PREFERRED).
  V4Preferred,
};

// One address of an answer: port 0, and the record's TTL (0 for the hosts file and literals).
struct DnsResponse {
  Address address;
  std::chrono::seconds ttl{0};
};

enum class DnsResolutionStatus {
  // The name resolved. The address list may still be empty (the name has no address of the
  // family asked for).
  Success,
  // No answer: NXDOMAIN, SERVFAIL, REFUSED, a timeout, a malformed name, the resolver going away.
  Failure,
};

// A resolution in flight. Destroying it cancels the resolution: its callback is then never
// called. Safe at any time on the resolver's thread, including from inside the callback itself
// and after the resolver is gone.
class DnsQuery {
 public:
  virtual ~DnsQuery() = default;
};
using DnsQueryPtr = std::unique_ptr<DnsQuery>;

struct DnsResolverOptions {
  // Servers asked, in order. Empty: the system's (/etc/resolv.conf). Names in the hosts file
  // are answered from it either way.
  std::vector<Address> servers;
  // Per-attempt timeout and attempts per server; 0 = resolv.conf's (or c-ares') default.
  std::chrono::milliseconds timeout{0};
  uint32_t tries = 0;
};
using DnsResolverOptionsConstSharedPtr = std::shared_ptr<const DnsResolverOptions>;

// An asynchronous resolver on one dispatcher: nothing it does blocks its thread. Everything,
// creation and destruction included, happens on the dispatcher's thread. One per dispatcher
// that needs it (the main thread for clusters and remote JWKS, a worker for its Redis clients).
class DnsResolver {
 public:
  // Called once per resolve() on the dispatcher's thread, never from inside resolve(). `details`
  // says why a resolution failed ("SERVFAIL", "timeout", ...). The callback must not destroy
  // the resolver.
  using ResolveCb = std::function<void(DnsResolutionStatus status, absl::string_view details,
                                       std::vector<DnsResponse>&& addresses)>;

  virtual ~DnsResolver() = default;

  // Resolves `name` (a host name, or an IP literal, which is answered without DNS whatever the
  // family). Addresses come in the order of the answer.
  virtual DnsQueryPtr resolve(const std::string& name, DnsLookupFamily family,
                              ResolveCb callback) = 0;
};
using DnsResolverPtr = std::unique_ptr<DnsResolver>;
using DnsResolverSharedPtr = std::shared_ptr<DnsResolver>;

// A c-ares resolver driven by `dispatcher` (its sockets are file events, its timeouts a timer).
// Fails when c-ares cannot start (no memory, a bad server list).
absl::StatusOr<DnsResolverPtr> createDnsResolver(Event::Dispatcher& dispatcher,
                                                 const DnsResolverOptions& options);

}  // namespace Network
}  // namespace sluice
