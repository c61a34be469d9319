#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sluice/config/v1/policy.pb.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/filter.h"
#include "source/common/stats/stats.h"
#include "source/extensions/filters/http/auth/jwks.h"
#include "source/extensions/filters/http/auth/jwt.h"
#include "source/extensions/filters/http/auth/keys.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// Per-policy counters: auth.<policy>.allowed, auth.<policy>.denied_<reason>, ...
// (Prometheus: sluice_auth_allowed_total{policy="..."}, sluice_auth_denied_total{policy,reason}).
struct AuthStats {
  Stats::Counter* allowed = nullptr;
  Stats::Counter* anonymous = nullptr;
  Stats::Counter* token_cache_hit = nullptr;
  Stats::Counter* token_cache_miss = nullptr;
  Stats::Counter* jwks_fetch = nullptr;
  Stats::Counter* jwks_fetch_failed = nullptr;
  std::array<Stats::Counter*, static_cast<size_t>(Reason::Count)> denied{};
  static AuthStats create(Stats::Store& store, const std::string& policy);
};

struct TokenLocation {
  bool header = true;
  std::string name;    // lower-case header name, or query parameter name
  std::string prefix;  // header value prefix (matched case-insensitively), e.g. "Bearer "
};

struct ClaimHeader {
  std::string claim;
  std::string header;  // lower case
};

struct Provider {
  std::string name;
  std::string issuer;
  std::vector<std::string> audiences;
  std::vector<TokenLocation> locations;
  int64_t clock_skew_s = 30;
  bool require_expiration = true;
  bool forward = false;
  std::vector<ClaimHeader> claim_to_headers;
  KeySetConstSharedPtr local_keys;  // local_jwks
  RemoteJwksSharedPtr remote;       // remote_jwks (nullptr when only validating)
  std::chrono::milliseconds fetch_timeout{5000};
};

struct ConsumerJwtCredential {
  std::string username;
  Alg alg = Alg::HS256;
  KeyConstSharedPtr key;
};

// One AuthPolicy, validated and compiled once per config; immutable and shared by every worker.
struct CompiledPolicy {
  uint64_t id = 0;  // unique per compiled object (token caches are per policy object)
  std::string name;
  std::vector<Provider> providers;
  // Kong-style per-consumer JWT credentials, by the value of `key_claim_name`.
  std::string key_claim_name = "iss";
  absl::flat_hash_map<std::string, ConsumerJwtCredential> jwt_credentials;
  // Where tokens are looked for: every provider's locations, de-duplicated (the default
  // `Authorization: Bearer` when only consumer credentials are configured).
  std::vector<TokenLocation> token_locations;

  bool key_auth = false;
  std::vector<std::string> key_names;         // query parameter names as configured
  std::vector<std::string> key_header_names;  // lower case
  bool key_in_header = true;
  bool key_in_query = true;
  bool hide_credentials = true;
  // SHA-256 of each key-auth key -> consumer. Looking up a digest leaks nothing useful about the
  // key through timing; the digest itself is then compared with CRYPTO_memcmp.
  absl::flat_hash_map<std::string, std::string> keys_by_digest;
  absl::flat_hash_map<std::string, std::vector<std::string>> consumer_scopes;
  // Consumer -> its groups (Kong's acls), set as filter state for the acl filter; consumers
  // without groups are absent.
  absl::flat_hash_map<std::string, std::shared_ptr<const Http::FilterState::StringListObject>>
      consumer_groups;

  // mTLS: a verified client certificate's SAN -> consumer.
  bool mtls = false;
  absl::flat_hash_map<std::string, std::string> consumers_by_san;

  std::vector<std::string> required_scopes;
  bool allow_anonymous = false;
  uint32_t max_token_bytes = 8192;
  uint32_t token_cache_entries = 4096;
  // Headers the filter sets; client-sent copies are removed first.
  std::vector<std::string> owned_headers;
  AuthStats stats;
  // Keeps the remote JWKS sources refreshing while this policy is in use.
  std::vector<std::shared_ptr<void>> leases;

  bool hasJwt() const { return !providers.empty() || !jwt_credentials.empty(); }
};
using CompiledPolicyConstSharedPtr = std::shared_ptr<const CompiledPolicy>;

struct CompileOptions {
  // Read local_jwks.filename (false: only check the field, e.g. in sluice-cp).
  bool read_files = true;
  Stats::Store* stats = nullptr;
  // Null: only validating; remote JWKS URIs are checked but nothing is fetched.
  Event::Dispatcher* main_dispatcher = nullptr;
  Http::SingletonManager* singletons = nullptr;
  // Resolves remote JWKS host names (on main_dispatcher).
  Network::DnsResolver* dns_resolver = nullptr;
};

// Validates and compiles `policy`. Every error is reported, each naming its field under `path`
// (e.g. `static_resources.auth_policies[0].jwt.providers[1].remote_jwks.uri: ...`), one per line.
absl::StatusOr<CompiledPolicyConstSharedPtr> compilePolicy(
    const sluice::config::v1::AuthPolicy& policy, const std::string& path,
    const CompileOptions& options);

// SHA-256 of `key` (key-auth lookups).
std::string keyDigest(absl::string_view key);

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
