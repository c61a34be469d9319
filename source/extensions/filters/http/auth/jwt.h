#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "source/extensions/filters/http/auth/json.h"
#include "source/extensions/filters/http/auth/keys.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// Why a request was denied: the suffix of the `auth.<policy>.denied_<reason>` counters.
enum class Reason : uint8_t {
  Missing,            // no credential at all
  Malformed,          // not a JWS compact token: segments, base64url, JSON, size, `crit`
  BadAlgorithm,       // `alg: none`, unknown, or not the key's/credential's algorithm
  UnknownKey,         // no provider/credential for the token, or no key with its `kid`
  BadSignature,       // the signature does not verify
  Expired,            // `exp` + clock skew is past
  NotYetValid,        // `nbf` - clock skew is in the future
  MissingExpiration,  // no `exp` while require_expiration
  BadIssuer,          // `iss` differs from the provider's issuer
  BadAudience,        // none of the provider's audiences is in `aud`
  BadClaims,          // `exp`/`nbf` not a number in range, `aud` not a string/array, ...
  BadKey,             // key-auth: unknown key
  InsufficientScope,  // authenticated, but a required scope is missing (403)
  Count,
};
const char* reasonName(Reason r);
// Text for the local reply's message.
const char* reasonMessage(Reason r);

// A JWS compact token, split and decoded but not verified.
struct Jwt {
  absl::string_view signing_input;  // "<header>.<payload>" as received
  std::string signature;            // decoded
  JsonValue header;
  JsonValue payload;
  Alg alg = Alg::HS256;
  const std::string* kid = nullptr;  // into header, or nullptr
};

// Splits and decodes `token` (which must outlive `out`). Rejects: not exactly three segments,
// empty segments, bad base64url, JSON that is not an object, a missing/unknown `alg` or
// `none` (BadAlgorithm), and any `crit` header (no extension is understood, RFC 7515 4.1.11).
absl::optional<Reason> parseJwt(absl::string_view token, Jwt& out);

struct ClaimRules {
  const std::string* issuer = nullptr;  // nullptr or empty: any
  const std::vector<std::string>* audiences = nullptr;
  int64_t clock_skew_s = 30;
  bool require_expiration = true;
};

// Checks exp/nbf (with skew), iss, aud at `now_s` (seconds since the epoch). On success
// `exp_out` is the token's exp (INT64_MAX without one).
absl::optional<Reason> checkClaims(const Jwt& jwt, const ClaimRules& rules, int64_t now_s,
                                   int64_t& exp_out);

// The scopes a token grants: `scope` (space-separated string) or `scp` (array of strings, or a
// space-separated string).
std::vector<absl::string_view> tokenScopes(const JsonValue& payload);

// A claim by name, then by dotted path into nested objects ("realm.role"), or nullptr.
const JsonValue* findClaim(const JsonValue& payload, absl::string_view name);

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
