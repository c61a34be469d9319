#include "source/extensions/filters/http/auth/filter.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "source/common/router/config.h"
#include "source/common/tls/connection_info.h"
#include "source/extensions/filters/http/auth/config.h"

namespace sluice {
namespace Extensions {
namespace Auth {

namespace {

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < in.size() && hexDigit(in[i + 1]) >= 0 &&
               hexDigit(in[i + 2]) >= 0) {
      out += static_cast<char>(hexDigit(in[i + 1]) * 16 + hexDigit(in[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

constexpr absl::string_view kConsumerHeader = "x-consumer-username";
constexpr absl::string_view kScopeHeader = "x-authenticated-scope";

}  // namespace

bool findQueryParam(absl::string_view query, absl::string_view name, std::string& value) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    const size_t eq = pair.find('=');
    const absl::string_view k = pair.substr(0, eq);
    if (k != name) continue;
    value = eq == absl::string_view::npos ? std::string() : percentDecode(pair.substr(eq + 1));
    return true;
  }
  return false;
}

std::string removeQueryParams(absl::string_view path, const std::vector<std::string>& names) {
  const size_t q = path.find('?');
  if (q == absl::string_view::npos) return std::string(path);
  std::string out(path.substr(0, q));
  bool first = true;
  for (absl::string_view pair : absl::StrSplit(path.substr(q + 1), '&')) {
    const absl::string_view k = pair.substr(0, pair.find('='));
    if (std::find(names.begin(), names.end(), k) != names.end()) continue;
    out += first ? '?' : '&';
    out.append(pair.data(), pair.size());
    first = false;
  }
  return out;
}

Http::GatewayResponseType gatewayResponseType(Reason reason) {
  switch (reason) {
    case Reason::Expired:
      return Http::GatewayResponseType::ExpiredToken;
    case Reason::BadKey:
      return Http::GatewayResponseType::InvalidApiKey;
    case Reason::InsufficientScope:
      return Http::GatewayResponseType::AccessDenied;
    default:
      // No credential, or a token that is malformed, signed by no known key, not valid yet,
      // for another issuer or audience, ...
      return Http::GatewayResponseType::Unauthorized;
  }
}

AuthFilter::~AuthFilter() { onDestroy(); }

void AuthFilter::onDestroy() {
  if (wait_ != nullptr) {
    wait_->filter = nullptr;  // a completion posted later finds nobody
    wait_.reset();
  }
  wait_timer_.reset();
}

Http::FilterHeadersStatus AuthFilter::decodeHeaders(Http::RequestHeaderMap& headers, bool) {
  // Anti-spoofing: the upstream must only see identity headers we set, on every route.
  const auto& identity = config_->identity_headers;
  headers.removeIf([&identity](const Http::HeaderEntry& e) {
    return std::find(identity.begin(), identity.end(), e.key) != identity.end();
  });
  const Router::RouteEntry* route = callbacks_->route();
  if (route == nullptr) return Http::FilterHeadersStatus::Continue;
  // The most specific config wins: route, virtual host, then the listener's.
  const RouteConfig* per_route = route->perFilterConfig<RouteConfig>(kFilterName);
  const std::string& name = per_route != nullptr ? per_route->policy : config_->default_policy;
  if (name.empty()) return Http::FilterHeadersStatus::Continue;
  auto it = config_->policies.find(name);
  if (it == config_->policies.end()) {
    // A static route naming a policy the control plane has not sent yet: fail closed.
    callbacks_->sendLocalReply(503, absl::StrCat("auth policy \"", name, "\" is not available"),
                               Http::ResponseFlag::UnauthorizedExternalService);
    return Http::FilterHeadersStatus::StopIteration;
  }
  policy_ = it->second.get();
  policy_owner_ = &it->second;
  headers_ = &headers;
  return authenticate() == Outcome::Continue ? Http::FilterHeadersStatus::Continue
                                             : Http::FilterHeadersStatus::StopIteration;
}

AuthFilter::Outcome AuthFilter::authenticate() {
  const CompiledPolicy& p = *policy_;
  Http::RequestHeaderMap& h = *headers_;

  // mTLS: the connection's verified client certificate names the consumer (its first SAN
  // that is listed). A certificate that names none falls through to the other credentials.
  if (p.mtls) {
    const Tls::ConnectionInfo* ssl = callbacks_->downstreamSsl();
    if (ssl != nullptr && ssl->peerCertificateValidated()) {
      for (const std::string& san : ssl->sansPeerCertificate()) {
        auto it = p.consumers_by_san.find(san);
        if (it == p.consumers_by_san.end()) continue;
        Identity id;
        id.consumer = it->second;
        id.credential = absl::StrCat("mtls:", san);
        auto scopes = p.consumer_scopes.find(id.consumer);
        if (scopes != p.consumer_scopes.end()) {
          id.scopes = scopes->second;
          id.scope_header = absl::StrJoin(id.scopes, " ");
        }
        return allow(id, false, -1);
      }
    }
  }

  // Key-auth credential.
  bool has_key = false;
  std::string key;
  if (p.key_auth) {
    if (p.key_in_header) {
      for (const std::string& name : p.key_header_names) {
        if (const Http::HeaderEntry* e = h.find(name); e != nullptr) {
          key = e->value;
          has_key = true;
          break;
        }
      }
    }
    if (!has_key && p.key_in_query) {
      const absl::string_view query = h.query();
      for (const std::string& name : p.key_names) {
        if (!query.empty() && findQueryParam(query, name, key)) {
          has_key = true;
          break;
        }
      }
    }
  }

  // JWT credential: the first configured location that holds one.
  absl::string_view token;
  std::string token_storage;
  int location = -1;
  if (p.hasJwt()) {
    for (size_t i = 0; i < p.token_locations.size() && location < 0; ++i) {
      const TokenLocation& loc = p.token_locations[i];
      if (loc.header) {
        const Http::HeaderEntry* e = h.find(loc.name);
        if (e == nullptr) continue;
        absl::string_view v = e->value;
        if (v.size() < loc.prefix.size() ||
            !absl::EqualsIgnoreCase(v.substr(0, loc.prefix.size()), loc.prefix)) {
          continue;
        }
        token = absl::StripAsciiWhitespace(v.substr(loc.prefix.size()));
        location = static_cast<int>(i);
      } else {
        const absl::string_view query = h.query();
        if (!query.empty() && findQueryParam(query, loc.name, token_storage)) {
          token = token_storage;
          location = static_cast<int>(i);
        }
      }
    }
  }

  if (!has_key && location < 0) {
    if (p.allow_anonymous) {
      if (p.stats.anonymous) p.stats.anonymous->inc();
      Identity anon;
      anon.consumer = "anonymous";
      return allow(anon, false, -1);
    }
    return deny(Reason::Missing, p.key_auth && !p.hasJwt());
  }

  if (has_key) {
    const std::string digest = keyDigest(key);
    auto it = p.keys_by_digest.find(digest);
    if (it != p.keys_by_digest.end() &&
        CRYPTO_memcmp(it->first.data(), digest.data(), digest.size()) == 0) {
      Identity id;
      id.consumer = it->second;
      // Never the key itself (rate_limit may use it as a Redis key): a prefix of its digest.
      id.credential = absl::StrCat("key:", absl::BytesToHexString(digest.substr(0, 12)));
      auto scopes = p.consumer_scopes.find(id.consumer);
      if (scopes != p.consumer_scopes.end()) {
        id.scopes = scopes->second;
        id.scope_header = absl::StrJoin(id.scopes, " ");
      }
      return allow(id, true, location);
    }
    if (location < 0) return deny(Reason::BadKey, true);
    // Either credential is accepted: try the token.
  }

  if (token.empty()) return deny(Reason::Malformed, false);
  if (token.size() > p.max_token_bytes) return deny(Reason::Malformed, false);

  TokenCache* cache = nullptr;
  const int64_t now = config_->now_s();
  if (p.token_cache_entries > 0) {
    cache = &TokenCache::forThisThread(p.id, *policy_owner_, p.token_cache_entries);
    const Identity* hit = cache->find(token);
    if (hit != nullptr) {
      const bool fresh = hit->exp == INT64_MAX || now <= hit->exp + hit->clock_skew_s;
      const bool keys_same = hit->provider < 0 || p.providers[hit->provider].remote == nullptr ||
                             p.providers[hit->provider].remote->generation() == hit->key_generation;
      if (fresh && keys_same) {
        if (p.stats.token_cache_hit) p.stats.token_cache_hit->inc();
        return allow(*hit, false, location);  // no copy: the hot path allocates only headers
      }
      cache->erase(token);
    }
    if (p.stats.token_cache_miss) p.stats.token_cache_miss->inc();
  }

  Identity id;
  Reason reason = Reason::Malformed;
  Outcome o = verifyToken(token, location, id, reason);
  if (o == Outcome::Waiting) return o;
  if (o == Outcome::Denied) return deny(reason, false);
  if (cache != nullptr) cache->insert(token, id);
  return allow(id, false, location);
}

AuthFilter::Outcome AuthFilter::verifyToken(absl::string_view token, int location, Identity& id,
                                            Reason& reason) {
  const CompiledPolicy& p = *policy_;
  Jwt jwt;
  if (auto r = parseJwt(token, jwt)) {
    reason = *r;
    return Outcome::Denied;
  }
  const int64_t now = config_->now_s();
  ClaimRules rules;

  // Kong-style consumer credential, chosen by the key claim (then the same header parameter).
  if (!p.jwt_credentials.empty()) {
    const std::string* kc = jwt.payload.findString(p.key_claim_name);
    if (kc == nullptr) kc = jwt.header.findString(p.key_claim_name);
    auto cred = kc != nullptr ? p.jwt_credentials.find(*kc) : p.jwt_credentials.end();
    if (cred != p.jwt_credentials.end()) {
      if (jwt.alg != cred->second.alg || !cred->second.key->allows(jwt.alg)) {
        reason = Reason::BadAlgorithm;
        return Outcome::Denied;
      }
      if (!cred->second.key->verify(jwt.alg, jwt.signing_input, jwt.signature)) {
        reason = Reason::BadSignature;
        return Outcome::Denied;
      }
      if (auto r = checkClaims(jwt, rules, now, id.exp)) {
        reason = *r;
        return Outcome::Denied;
      }
      id.consumer = cred->second.username;
      id.credential = absl::StrCat("jwt:", cred->first);
      id.clock_skew_s = rules.clock_skew_s;
      for (absl::string_view s : tokenScopes(jwt.payload)) id.scopes.emplace_back(s);
      id.scope_header = absl::StrJoin(id.scopes, " ");
      return Outcome::Continue;
    }
    if (p.providers.empty()) {
      reason = Reason::UnknownKey;
      return Outcome::Denied;
    }
  }

  // Providers: the one whose issuer is the token's, else one that accepts any issuer.
  const std::string* iss = jwt.payload.findString("iss");
  int chosen = -1;
  for (size_t i = 0; i < p.providers.size() && chosen < 0; ++i) {
    if (!p.providers[i].issuer.empty() && iss != nullptr && *iss == p.providers[i].issuer) {
      chosen = static_cast<int>(i);
    }
  }
  for (size_t i = 0; i < p.providers.size() && chosen < 0; ++i) {
    if (p.providers[i].issuer.empty()) chosen = static_cast<int>(i);
  }
  if (chosen < 0) {
    reason = Reason::BadIssuer;
    return Outcome::Denied;
  }
  const Provider& prov = p.providers[chosen];
  id.provider = chosen;
  const KeySet* keys = prov.local_keys.get();
  if (prov.remote != nullptr) {
    id.key_generation = prov.remote->generation();
    keys = prov.remote->keysForThisThread().get();
  }
  // Candidate keys: the token's kid (when it has one) and an algorithm the key is pinned to.
  const Key* candidates[16];
  size_t n = 0;
  bool kid_seen = false;
  if (keys != nullptr) {
    for (const KeyConstSharedPtr& k : keys->keys) {
      if (jwt.kid != nullptr && k->kid() != *jwt.kid) continue;
      kid_seen = true;
      if (k->allows(jwt.alg) && n < 16) candidates[n++] = k.get();
    }
  }
  if (n == 0) {
    if (kid_seen) {
      reason = Reason::BadAlgorithm;  // e.g. an HS256 token against RSA keys
      return Outcome::Denied;
    }
    if (prov.remote != nullptr && !refetched_) return waitForKeys(prov);
    reason = Reason::UnknownKey;
    return Outcome::Denied;
  }
  bool verified = false;
  for (size_t i = 0; i < n && !verified; ++i) {
    verified = candidates[i]->verify(jwt.alg, jwt.signing_input, jwt.signature);
  }
  if (!verified) {
    reason = Reason::BadSignature;
    return Outcome::Denied;
  }
  rules.issuer = &prov.issuer;
  rules.audiences = &prov.audiences;
  rules.clock_skew_s = prov.clock_skew_s;
  rules.require_expiration = prov.require_expiration;
  if (auto r = checkClaims(jwt, rules, now, id.exp)) {
    reason = *r;
    return Outcome::Denied;
  }
  id.clock_skew_s = prov.clock_skew_s;
  if (const std::string* sub = jwt.payload.findString("sub"); sub != nullptr) {
    id.credential =
        absl::StrCat("jwt:", iss != nullptr ? absl::string_view(*iss) : prov.name, "/", *sub);
  }
  for (absl::string_view s : tokenScopes(jwt.payload)) id.scopes.emplace_back(s);
  id.scope_header = absl::StrJoin(id.scopes, " ");
  for (const ClaimHeader& ch : prov.claim_to_headers) {
    const JsonValue* v = findClaim(jwt.payload, ch.claim);
    if (v == nullptr) continue;
    std::string value = v->toHeaderValue();
    // A claim is attacker-influenced text: never let it break the header block.
    if (Http::isValidHeaderValue(value)) id.claim_headers.emplace_back(ch.header, std::move(value));
  }
  return Outcome::Continue;
}

AuthFilter::Outcome AuthFilter::waitForKeys(const Provider& provider) {
  refetched_ = true;
  wait_ = std::make_shared<Wait>(Wait{this});
  std::shared_ptr<Wait> wait = wait_;
  provider.remote->requestRefetch(callbacks_->dispatcher(), [wait]() {
    if (wait->filter != nullptr) wait->filter->onKeysRefreshed();
  });
  // Never wait forever, whatever happens on the main thread.
  wait_timer_ = callbacks_->dispatcher().createTimer([wait]() {
    if (wait->filter != nullptr) wait->filter->onKeysRefreshed();
  });
  wait_timer_->enableTimer(provider.fetch_timeout + std::chrono::milliseconds(1000));
  return Outcome::Waiting;
}

void AuthFilter::onKeysRefreshed() {
  if (wait_ != nullptr) {
    wait_->filter = nullptr;
    wait_.reset();
  }
  if (wait_timer_ != nullptr) wait_timer_->disableTimer();
  if (authenticate() == Outcome::Continue) callbacks_->continueDecoding();
}

AuthFilter::Outcome AuthFilter::allow(const Identity& id, bool key_credential, int location) {
  const CompiledPolicy& p = *policy_;
  for (const std::string& want : p.required_scopes) {
    if (std::find(id.scopes.begin(), id.scopes.end(), want) == id.scopes.end()) {
      return deny(Reason::InsufficientScope, key_credential);
    }
  }
  Http::RequestHeaderMap& h = *headers_;
  // For later filters (rate_limit keys limit_by CONSUMER on it).
  Http::FilterState& state = callbacks_->streamInfo().filter_state;
  if (!id.consumer.empty()) {
    state.set(Http::FilterStateNames::kConsumer,
              std::make_shared<Http::FilterState::StringObject>(id.consumer));
    if (auto g = p.consumer_groups.find(id.consumer); g != p.consumer_groups.end()) {
      state.set(Http::FilterStateNames::kConsumerGroups, g->second);
    }
  }
  if (!id.credential.empty()) {
    state.set(Http::FilterStateNames::kCredential,
              std::make_shared<Http::FilterState::StringObject>(id.credential));
  }
  if (!id.consumer.empty()) h.add(kConsumerHeader, id.consumer);
  if (!id.scope_header.empty()) h.add(kScopeHeader, id.scope_header);
  for (const auto& [name, value] : id.claim_headers) h.add(name, value);
  removeCredentials(id.provider >= 0 && p.providers[id.provider].forward ? -1 : location);
  if (p.stats.allowed) p.stats.allowed->inc();
  return Outcome::Continue;
}

void AuthFilter::removeCredentials(int token_location) {
  const CompiledPolicy& p = *policy_;
  Http::RequestHeaderMap& h = *headers_;
  std::vector<std::string> params;
  if (p.key_auth && p.hide_credentials) {
    if (p.key_in_header) {
      for (const std::string& name : p.key_header_names) h.remove(name);
    }
    if (p.key_in_query) params = p.key_names;
  }
  if (token_location >= 0) {
    const TokenLocation& loc = p.token_locations[token_location];
    if (loc.header) {
      h.remove(loc.name);
    } else {
      params.push_back(loc.name);
    }
  }
  if (!params.empty() && h.path.find('?') != std::string::npos) {
    h.path = removeQueryParams(h.path, params);
    // Nor does the access log get the credential.
    std::string& logged = callbacks_->streamInfo().original_path;
    if (logged.find('?') != std::string::npos) logged = removeQueryParams(logged, params);
  }
}

AuthFilter::Outcome AuthFilter::deny(Reason reason, bool key_credential) {
  const CompiledPolicy& p = *policy_;
  if (p.stats.denied[static_cast<size_t>(reason)] != nullptr) {
    p.stats.denied[static_cast<size_t>(reason)]->inc();
  }
  std::vector<std::string> challenges;
  if (reason == Reason::InsufficientScope) {
    challenges.push_back(absl::StrCat(key_credential ? "Key" : "Bearer",
                                      " realm=\"sluice\", error=\"insufficient_scope\", scope=\"",
                                      absl::StrJoin(p.required_scopes, " "), "\""));
  } else if (reason == Reason::Missing) {
    // RFC 6750 3.1: no error code when the request had no credentials.
    if (p.hasJwt()) challenges.push_back("Bearer realm=\"sluice\"");
    if (p.key_auth) challenges.push_back("Key realm=\"sluice\"");
  } else if (key_credential) {
    challenges.push_back("Key realm=\"sluice\"");
  } else {
    challenges.push_back("Bearer realm=\"sluice\", error=\"invalid_token\"");
  }
  const uint32_t status = reason == Reason::InsufficientScope ? 403 : 401;
  callbacks_->sendLocalReply(
      status, reasonMessage(reason), Http::ResponseFlag::UnauthorizedExternalService,
      [challenges](Http::ResponseHeaderMap& rh) {
        for (const std::string& c : challenges) {
          rh.add("www-authenticate", c);
        }
      },
      gatewayResponseType(reason));
  return Outcome::Denied;
}

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
