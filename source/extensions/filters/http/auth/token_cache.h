#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// What a verified token proved: enough to authorize the request again without parsing or
// verifying the token.
struct Identity {
  std::string consumer;  // empty: no consumer matched
  std::vector<std::string> scopes;
  std::string scope_header;  // scopes joined with spaces (X-Authenticated-Scope)
  std::vector<std::pair<std::string, std::string>> claim_headers;  // from claim_to_headers
  int provider = -1;        // index into the policy's providers; -1: a consumer credential
  int64_t exp = INT64_MAX;  // the token's exp (seconds since the epoch)
  int64_t clock_skew_s = 0;
  uint64_t key_generation = 0;  // of a remote JWKS when verified (a rotation re-verifies)
  // Id of the credential for StreamInfo::credential: "key:<SHA-256 prefix, hex>",
  // "jwt:<consumer credential key>" or "jwt:<iss>/<sub>"; empty when the token has no `sub`.
  std::string credential;
};

// Bounded LRU of verified tokens, keyed by the whole token. Worker-local: one per (worker
// thread, compiled policy), reached through forThisThread(); no locks.
class TokenCache {
 public:
  explicit TokenCache(size_t capacity) : capacity_(capacity) {}
  // The identity for `token`, moved to the front; nullptr when absent.
  const Identity* find(absl::string_view token);
  void insert(absl::string_view token, Identity identity);
  void erase(absl::string_view token);
  size_t size() const { return index_.size(); }

  // The calling thread's cache for the compiled policy `policy_id`, created on first use with
  // `capacity`. `owner` tells when the policy is gone: caches of dead policies are freed the
  // next time a cache is created on this thread (i.e. after config changes, not per request).
  static TokenCache& forThisThread(uint64_t policy_id, const std::weak_ptr<const void>& owner,
                                   size_t capacity);

 private:
  struct Entry {
    std::string token;
    Identity identity;
  };
  // Hashes the length and the last 64 bytes (the end of the signature, which differs between
  // tokens) instead of all ~700 bytes; equality still compares whole tokens. Only tokens that
  // verified are ever inserted, so a client cannot fill the table with colliding entries.
  struct TokenHash {
    size_t operator()(absl::string_view t) const {
      const absl::string_view tail = t.size() > 64 ? t.substr(t.size() - 64) : t;
      return absl::Hash<absl::string_view>{}(tail) ^ (t.size() * 0x9e3779b97f4a7c15ULL);
    }
  };
  const size_t capacity_;
  std::list<Entry> lru_;  // front = most recent
  // Views the tokens held in lru_.
  absl::flat_hash_map<absl::string_view, std::list<Entry>::iterator, TokenHash> index_;
};

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
