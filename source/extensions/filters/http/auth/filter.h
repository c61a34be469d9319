#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/auth/policy.h"
#include "source/extensions/filters/http/auth/token_cache.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// The `auth` filter's config: the snapshot's compiled policies by name. Immutable, shared by
// every stream of the listener (and kept alive by them across config swaps).
struct FilterConfig {
  absl::flat_hash_map<std::string, CompiledPolicyConstSharedPtr> policies;
  // The listener's policy for routes that configure none (empty: they pass).
  std::string default_policy;
  // Every header any policy can set (x-consumer-username, x-authenticated-scope and each
  // claim_to_headers name): removed from every request of the listener, with or without a
  // policy on its route, so a client can never hand the upstream one of them.
  std::vector<std::string> identity_headers;
  // Wall clock in seconds since the epoch (exp/nbf); replaceable in tests.
  std::function<int64_t()> now_s;
};
using FilterConfigConstSharedPtr = std::shared_ptr<const FilterConfig>;

// The gateway response type of a refusal: an expired token EXPIRED_TOKEN, an API key no
// consumer has INVALID_API_KEY, a missing scope ACCESS_DENIED (403), any other missing or
// invalid credential UNAUTHORIZED (401).
Http::GatewayResponseType gatewayResponseType(Reason reason);

// Authenticates requests whose route names an AuthPolicy (`auth: <name>`, filter_config.auth,
// or the listener's default `policy`); other routes pass through untouched. See
// docs/configuration.md (AuthPolicy) for the rules. Worker-local; at most one asynchronous wait (a
// JWKS refetch for an unknown `kid`) per stream.
class AuthFilter : public Http::StreamDecoderFilter {
 public:
  explicit AuthFilter(FilterConfigConstSharedPtr config) : config_(std::move(config)) {}
  ~AuthFilter() override;

  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;  // held by the connection manager while we wait
  }
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& cb) override {
    callbacks_ = &cb;
  }
  void onDestroy() override;

 private:
  enum class Outcome { Continue, Denied, Waiting };
  struct Credentials;
  // Shared with the JWKS source's completion callback; `filter` is cleared when the stream
  // goes away (both touched on this worker only).
  struct Wait {
    AuthFilter* filter;
  };

  Outcome authenticate();
  // Verifies a token (no cache). Waiting: a refetch was requested.
  Outcome verifyToken(absl::string_view token, int location, Identity& out, Reason& reason);
  Outcome waitForKeys(const Provider& provider);
  void onKeysRefreshed();
  // `location`: where the token was found (-1: none), for forward: false.
  Outcome allow(const Identity& id, bool key_credential, int location);
  Outcome deny(Reason reason, bool key_credential);
  void removeCredentials(int token_location);

  const FilterConfigConstSharedPtr config_;
  const CompiledPolicy* policy_ = nullptr;
  const CompiledPolicyConstSharedPtr* policy_owner_ = nullptr;  // in config_
  Http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  Http::RequestHeaderMap* headers_ = nullptr;
  std::shared_ptr<Wait> wait_;
  Event::TimerPtr wait_timer_;
  bool refetched_ = false;  // one refetch per request
};

// Helpers shared with the tests.
// The value of query parameter `name` (percent-decoded, '+' as space), if present.
bool findQueryParam(absl::string_view query, absl::string_view name, std::string& value);
// `path` without any parameter named in `names`.
std::string removeQueryParams(absl::string_view path, const std::vector<std::string>& names);

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
