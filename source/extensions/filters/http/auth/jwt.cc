#include "source/extensions/filters/http/auth/jwt.h"

#include <limits>

#include "absl/strings/str_split.h"

namespace sluice {
namespace Extensions {
namespace Auth {

const char* reasonName(Reason r) {
  switch (r) {
    case Reason::Missing:
      return "missing";
    case Reason::Malformed:
      return "malformed";
    case Reason::BadAlgorithm:
      return "bad_algorithm";
    case Reason::UnknownKey:
      return "unknown_key";
    case Reason::BadSignature:
      return "bad_signature";
    case Reason::Expired:
      return "expired";
    case Reason::NotYetValid:
      return "not_yet_valid";
    case Reason::MissingExpiration:
      return "missing_expiration";
    case Reason::BadIssuer:
      return "bad_issuer";
    case Reason::BadAudience:
      return "bad_audience";
    case Reason::BadClaims:
      return "bad_claims";
    case Reason::BadKey:
      return "bad_key";
    case Reason::InsufficientScope:
      return "insufficient_scope";
    case Reason::Count:
      break;
  }
  return "unknown";
}

const char* reasonMessage(Reason r) {
  switch (r) {
    case Reason::Missing:
      return "no credentials found in the request";
    case Reason::Malformed:
      return "malformed token";
    case Reason::BadAlgorithm:
      return "token algorithm not allowed";
    case Reason::UnknownKey:
      return "no key found for the token";
    case Reason::BadSignature:
      return "invalid token signature";
    case Reason::Expired:
      return "token expired";
    case Reason::NotYetValid:
      return "token not valid yet";
    case Reason::MissingExpiration:
      return "token has no expiration";
    case Reason::BadIssuer:
      return "token issuer not allowed";
    case Reason::BadAudience:
      return "token audience not allowed";
    case Reason::BadClaims:
      return "invalid token claims";
    case Reason::BadKey:
      return "invalid API key";
    case Reason::InsufficientScope:
      return "insufficient scope";
    case Reason::Count:
      break;
  }
  return "unauthorized";
}

absl::optional<Reason> parseJwt(absl::string_view token, Jwt& out) {
  const size_t d1 = token.find('.');
  if (d1 == absl::string_view::npos) return Reason::Malformed;
  const size_t d2 = token.find('.', d1 + 1);
  if (d2 == absl::string_view::npos || token.find('.', d2 + 1) != absl::string_view::npos) {
    return Reason::Malformed;
  }
  const absl::string_view h64 = token.substr(0, d1);
  const absl::string_view p64 = token.substr(d1 + 1, d2 - d1 - 1);
  const absl::string_view s64 = token.substr(d2 + 1);
  std::string header, payload;
  if (h64.empty() || p64.empty() || !base64UrlDecode(h64, header) ||
      !base64UrlDecode(p64, payload) || !base64UrlDecode(s64, out.signature)) {
    return Reason::Malformed;
  }
  auto h = parseJson(header);
  if (!h.ok() || !h->isObject()) return Reason::Malformed;
  out.header = std::move(*h);
  const std::string* alg = out.header.findString("alg");
  if (alg == nullptr) return Reason::BadAlgorithm;
  absl::optional<Alg> a = algFromName(*alg);
  if (!a) return Reason::BadAlgorithm;  // "none" and anything unknown
  if (out.header.find("crit") != nullptr) return Reason::Malformed;
  if (out.signature.empty()) return Reason::BadSignature;
  auto p = parseJson(payload);
  if (!p.ok() || !p->isObject()) return Reason::Malformed;
  out.payload = std::move(*p);
  out.alg = *a;
  out.kid = nullptr;
  if (const JsonValue* kid = out.header.find("kid"); kid != nullptr) {
    if (!kid->isString()) return Reason::Malformed;
    out.kid = &kid->str();
  }
  out.signing_input = token.substr(0, d2);
  return absl::nullopt;
}

absl::optional<Reason> checkClaims(const Jwt& jwt, const ClaimRules& rules, int64_t now_s,
                                   int64_t& exp_out) {
  const JsonValue& c = jwt.payload;
  exp_out = std::numeric_limits<int64_t>::max();
  if (const JsonValue* exp = c.find("exp"); exp != nullptr) {
    auto v = jsonNumericDate(*exp);
    if (!v.ok()) return Reason::BadClaims;
    if (now_s > *v + rules.clock_skew_s) return Reason::Expired;
    exp_out = *v;
  } else if (rules.require_expiration) {
    return Reason::MissingExpiration;
  }
  if (const JsonValue* nbf = c.find("nbf"); nbf != nullptr) {
    auto v = jsonNumericDate(*nbf);
    if (!v.ok()) return Reason::BadClaims;
    if (now_s + rules.clock_skew_s < *v) return Reason::NotYetValid;
  }
  if (rules.issuer != nullptr && !rules.issuer->empty()) {
    const JsonValue* iss = c.find("iss");
    if (iss == nullptr || !iss->isString() || iss->str() != *rules.issuer) {
      return Reason::BadIssuer;
    }
  }
  if (rules.audiences != nullptr && !rules.audiences->empty()) {
    const JsonValue* aud = c.find("aud");
    bool found = false;
    if (aud == nullptr) return Reason::BadAudience;
    auto matches = [&rules](const std::string& a) {
      for (const std::string& want : *rules.audiences) {
        if (a == want) return true;
      }
      return false;
    };
    if (aud->isString()) {
      found = matches(aud->str());
    } else if (aud->isArray()) {
      for (const JsonValue& a : aud->items()) {
        if (!a.isString()) return Reason::BadClaims;
        found = found || matches(a.str());
      }
    } else {
      return Reason::BadClaims;
    }
    if (!found) return Reason::BadAudience;
  }
  return absl::nullopt;
}

std::vector<absl::string_view> tokenScopes(const JsonValue& payload) {
  std::vector<absl::string_view> out;
  auto addSpaced = [&out](const std::string& s) {
    for (absl::string_view part : absl::StrSplit(s, ' ', absl::SkipEmpty())) out.push_back(part);
  };
  if (const std::string* scope = payload.findString("scope"); scope != nullptr) {
    addSpaced(*scope);
  }
  if (const JsonValue* scp = payload.find("scp"); scp != nullptr) {
    if (scp->isString()) {
      addSpaced(scp->str());
    } else if (scp->isArray()) {
      for (const JsonValue& s : scp->items()) {
        if (s.isString()) out.push_back(s.str());
      }
    }
  }
  return out;
}

const JsonValue* findClaim(const JsonValue& payload, absl::string_view name) {
  if (const JsonValue* v = payload.find(name); v != nullptr) return v;
  if (name.find('.') == absl::string_view::npos) return nullptr;
  const JsonValue* cur = &payload;
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    if (!cur->isObject()) return nullptr;
    cur = cur->find(part);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
