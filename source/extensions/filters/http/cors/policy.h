#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "re2/re2.h"
#include "source/common/config/utility.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Extensions {
namespace Cors {

// The settings of one CORS policy, as the listener's and a route's config messages both carry
// them (config.h copies either message into this).
struct CorsSettings {
  std::vector<std::string> origins;
  std::vector<std::string> methods;
  std::vector<std::string> headers;
  std::vector<std::string> exposed_headers;
  bool credentials = false;
  absl::optional<uint32_t> max_age;
  bool preflight_continue = false;
  bool private_network = false;
};

// An origin as Kong compares it: `domain` is scheme://host[:port] with the scheme and host
// lower-cased and the default port of http (80) and https (443) dropped; `host` is the host
// alone (an IPv6 literal without its brackets). A value without an authority ("null", a bare
// name) is both, unchanged.
struct NormalizedOrigin {
  std::string domain;
  std::string host;
};
NormalizedOrigin normalizeOrigin(absl::string_view origin);

// What a policy answers to one request Origin.
struct OriginDecision {
  // The origin may read the response: the CORS headers are sent.
  bool allowed = false;
  // The answer depends on the Origin: `Vary: Origin` goes on the response (allowed or not).
  bool vary = false;
  // Access-Control-Allow-Origin: "*", or the (normalised or echoed) request origin.
  std::string allow_origin;
};

// One compiled CORS policy (a listener's, a virtual host's or a route's). Immutable, shared by
// the streams of every worker. Built on the main thread; matching allocates only the
// normalised origin.
class CorsPolicy {
 public:
  // Validates and compiles `settings`; errors name fields under `path` (`path.origins[1]:
  // invalid regex: ...`). Null after an error.
  static std::shared_ptr<const CorsPolicy> create(const CorsSettings& settings,
                                                  const std::string& path,
                                                  Config::ErrorList& errors);

  // The answer to a request with this Origin header value.
  OriginDecision decide(absl::string_view origin) const;

  // Every origin is allowed (no origins, or "*" among them).
  bool allowsAll() const { return allow_all_; }
  bool credentials() const { return credentials_; }
  // The answer depends on the request's Origin (anything but every origin without
  // credentials): responses carry `Vary: Origin`, also to requests without one, so that a cache
  // never serves a response without CORS headers to a browser's CORS request (Fetch 3.2.5).
  bool variesByOrigin() const { return !allow_all_ || credentials_; }
  bool preflightContinue() const { return preflight_continue_; }
  bool privateNetwork() const { return private_network_; }
  // Access-Control-Allow-Methods (never empty).
  const std::string& allowMethods() const { return allow_methods_; }
  // Access-Control-Allow-Headers; empty: echo the preflight's Access-Control-Request-Headers.
  const std::string& allowHeaders() const { return allow_headers_; }
  // Access-Control-Expose-Headers; empty: not sent.
  const std::string& exposeHeaders() const { return expose_headers_; }
  // Access-Control-Max-Age; empty: not sent.
  const std::string& maxAge() const { return max_age_; }

 private:
  struct OriginRegex {
    std::unique_ptr<RE2> re;
    // The entry has no ':': it is matched against the origin's host only (Kong's rule).
    bool by_host = false;
  };

  CorsPolicy() = default;

  bool allow_all_ = false;
  bool credentials_ = false;
  bool preflight_continue_ = false;
  bool private_network_ = false;
  absl::flat_hash_set<std::string> exact_;  // normalised domains
  std::vector<OriginRegex> regexes_;
  std::string allow_methods_;
  std::string allow_headers_;
  std::string expose_headers_;
  std::string max_age_;
};
using CorsPolicyConstSharedPtr = std::shared_ptr<const CorsPolicy>;

// Adds `Origin` to the response's Vary: appended to an existing Vary field, nothing when a Vary
// already names Origin (any case) or is "*".
void addVaryOrigin(Http::HeaderMap& headers);

}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
