#include "source/extensions/filters/http/auth/policy.h"

#include <openssl/sha.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "source/common/config/utility.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Extensions {
namespace Auth {

AuthStats AuthStats::create(Stats::Store& store, const std::string& policy) {
  AuthStats s;
  const Stats::Labels labels{{"policy", policy}};
  const std::string prefix = absl::StrCat("auth.", policy, ".");
  auto counter = [&](const char* name) {
    return &store.counter(prefix + name, absl::StrCat("auth_", name, "_total"), labels);
  };
  s.allowed = counter("allowed");
  s.anonymous = counter("anonymous");
  s.token_cache_hit = counter("token_cache_hit");
  s.token_cache_miss = counter("token_cache_miss");
  s.jwks_fetch = counter("jwks_fetch");
  s.jwks_fetch_failed = counter("jwks_fetch_failed");
  for (size_t r = 0; r < s.denied.size(); ++r) {
    const char* reason = reasonName(static_cast<Reason>(r));
    s.denied[r] = &store.counter(prefix + "denied_" + reason, "auth_denied_total",
                                 {{"policy", policy}, {"reason", reason}});
  }
  return s;
}

std::string keyDigest(absl::string_view key) {
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(key.data()), key.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

namespace {

std::atomic<uint64_t> g_next_policy_id{1};

std::string lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

bool sameLocation(const TokenLocation& a, const TokenLocation& b) {
  return a.header == b.header && a.name == b.name && absl::EqualsIgnoreCase(a.prefix, b.prefix);
}

// Headers the gateway owns on an authenticated request.
constexpr const char* kConsumerHeader = "x-consumer-username";
constexpr const char* kScopeHeader = "x-authenticated-scope";

namespace v1 = sluice::config::v1;

// Sizes, required scopes, stats and the headers the filter owns.
void compileSettings(const v1::AuthPolicy& config, const std::string& path,
                     const CompileOptions& options, Config::ErrorList& errors,
                     CompiledPolicy& policy) {
  policy.id = g_next_policy_id.fetch_add(1);
  policy.name = config.name();
  policy.allow_anonymous = config.allow_anonymous();
  policy.max_token_bytes = config.max_token_bytes() ? config.max_token_bytes() : 8192;
  policy.token_cache_entries =
      config.has_token_cache_entries() ? config.token_cache_entries() : 4096;
  if (config.max_token_bytes() > 1024 * 1024) {
    errors.add(path + ".max_token_bytes", "must be <= 1048576");
  }
  if (policy.token_cache_entries > 1000000) {
    errors.add(path + ".token_cache_entries", "must be <= 1000000");
  }
  if (options.stats != nullptr) policy.stats = AuthStats::create(*options.stats, config.name());
  policy.owned_headers = {kConsumerHeader, kScopeHeader};
  for (int i = 0; i < config.required_scopes_size(); ++i) {
    const std::string& s = config.required_scopes(i);
    if (s.empty() || s.find(' ') != std::string::npos) {
      errors.add(absl::StrCat(path, ".required_scopes[", i, "]"),
                 "must be a non-empty scope without spaces");
    }
    policy.required_scopes.push_back(s);
  }
  // "needs jwt, key_auth, mtls or allow_anonymous" and unique usernames: checked by the snapshot.
}

// Where a provider's tokens are looked for (default: `Authorization: Bearer`).
void compileTokenLocations(const v1::JwtProvider& pc, const std::string& ppath,
                           Config::ErrorList& errors, Provider& p) {
  for (int h = 0; h < pc.from_headers_size(); ++h) {
    const auto& fh = pc.from_headers(h);
    if (!Http::isValidToken(fh.name())) {
      errors.add(absl::StrCat(ppath, ".from_headers[", h, "].name"), "must be a header name");
      continue;
    }
    p.locations.push_back(TokenLocation{true, lower(fh.name()), fh.value_prefix()});
  }
  for (int q = 0; q < pc.from_params_size(); ++q) {
    if (pc.from_params(q).empty()) {
      errors.add(absl::StrCat(ppath, ".from_params[", q, "]"), "must not be empty");
      continue;
    }
    p.locations.push_back(TokenLocation{false, pc.from_params(q), ""});
  }
  if (pc.from_headers_size() == 0 && pc.from_params_size() == 0) {
    p.locations.push_back(TokenLocation{true, "authorization", "Bearer "});
  }
}

void compileClaimHeaders(const v1::JwtProvider& pc, const std::string& ppath,
                         Config::ErrorList& errors, Provider& p, CompiledPolicy& policy) {
  for (int c = 0; c < pc.claim_to_headers_size(); ++c) {
    const auto& ch = pc.claim_to_headers(c);
    const std::string cpath = absl::StrCat(ppath, ".claim_to_headers[", c, "]");
    if (ch.claim().empty()) errors.add(cpath + ".claim", "is required");
    if (!Http::isValidToken(ch.header())) {
      errors.add(cpath + ".header", "must be a header name");
      continue;
    }
    const std::string h = lower(ch.header());
    if (h == "host" || h == "authorization" || Http::isHopByHop(h) || h == "content-length") {
      errors.add(cpath + ".header", absl::StrCat("\"", h, "\" cannot be set from a claim"));
      continue;
    }
    p.claim_to_headers.push_back(ClaimHeader{ch.claim(), h});
    policy.owned_headers.push_back(h);
  }
}

// local_jwks: inline, or a file (read unless only validating).
void compileLocalJwks(const v1::DataSource& lj, const std::string& ppath,
                      const CompileOptions& options, Config::ErrorList& errors, Provider& p) {
  if (!lj.inline_().empty() && !lj.filename().empty()) {
    errors.add(ppath + ".local_jwks", "set inline or filename, not both");
  } else if (!lj.inline_().empty()) {
    auto keys = parseJwks(lj.inline_());
    if (!keys.ok()) {
      errors.add(ppath + ".local_jwks.inline", std::string(keys.status().message()));
    } else if ((*keys)->keys.empty()) {
      errors.add(ppath + ".local_jwks.inline", "no signing key");
    } else {
      p.local_keys = *keys;
    }
  } else if (options.read_files) {
    std::ifstream in(lj.filename(), std::ios::binary);
    std::stringstream text;
    if (in) text << in.rdbuf();
    if (!in) {
      errors.add(ppath + ".local_jwks.filename",
                 absl::StrCat("cannot read \"", lj.filename(), "\""));
    } else {
      auto keys = parseJwks(text.str());
      if (!keys.ok()) {
        errors.add(ppath + ".local_jwks.filename",
                   absl::StrCat(lj.filename(), ": ", keys.status().message()));
      } else if ((*keys)->keys.empty()) {
        errors.add(ppath + ".local_jwks.filename", absl::StrCat(lj.filename(), ": no key"));
      } else {
        p.local_keys = *keys;
      }
    }
  }
}

// remote_jwks: the URI and timings; with a dispatcher (and no error so far), the shared source
// that fetches the keys.
void compileRemoteJwks(const v1::RemoteJwks& rj, const std::string& ppath,
                       const std::string& policy_name, const CompileOptions& options,
                       Config::ErrorList& errors, Provider& p, CompiledPolicy& policy) {
  const std::string rpath = ppath + ".remote_jwks";
  auto uri = parseHttpUri(rj.uri());
  if (rj.uri().empty()) {
    errors.add(rpath + ".uri", "is required");
  } else if (!uri.ok()) {
    errors.add(rpath + ".uri", std::string(uri.status().message()));
  } else if (uri->has_userinfo) {
    errors.add(rpath + ".uri", "user info (user:password@) is not supported");
    uri = absl::InvalidArgumentError("user info");
  }
  RemoteJwks::Settings settings;
  auto duration = [&](bool has, const google::protobuf::Duration& d, const char* field,
                      std::chrono::milliseconds def) {
    if (!has) return def;
    auto v = Config::durationMs(d, absl::StrCat(rpath, ".", field));
    if (!v.ok()) {
      errors.add(v.status());
      return def;
    }
    if (v->count() == 0) {
      errors.add(absl::StrCat(rpath, ".", field), "must be > 0");
      return def;
    }
    return *v;
  };
  settings.cache_duration = duration(rj.has_cache_duration(), rj.cache_duration(), "cache_duration",
                                     std::chrono::milliseconds(300000));
  settings.min_refetch_interval =
      duration(rj.has_min_refetch_interval(), rj.min_refetch_interval(), "min_refetch_interval",
               std::chrono::milliseconds(10000));
  const auto timeout =
      duration(rj.has_timeout(), rj.timeout(), "timeout", std::chrono::milliseconds(5000));
  p.fetch_timeout = timeout;
  if (!rj.ca_file().empty() && (!uri.ok() || !uri->https)) {
    errors.add(rpath + ".ca_file", "is for https:// URIs only");
  }
  if (uri.ok() && uri->https && options.read_files) {
    std::string ca_pem;
    if (!rj.ca_file().empty()) {
      auto pem = Config::readConfigFile(rj.ca_file());
      if (!pem.ok()) {
        errors.add(rpath + ".ca_file", std::string(pem.status().message()));
      } else if (absl::Status s = Tls::checkCaBundle(*pem, rpath + ".ca_file"); !s.ok()) {
        errors.add(s);
      } else {
        ca_pem = std::move(*pem);
      }
    }
    if (errors.empty()) {
      auto ctx = Http::createUriTlsContext(*uri, ca_pem);
      if (!ctx.ok()) {
        errors.add(rpath, std::string(ctx.status().message()));
      } else {
        uri->tls = *ctx;
      }
    }
  }
  if (!uri.ok() || options.main_dispatcher == nullptr || options.singletons == nullptr ||
      !errors.empty()) {
    return;
  }
  // One source per (policy, URI), kept across config versions with its keys.
  const std::string key = absl::StrCat("auth.jwks|", policy_name, "|", rj.uri());
  Event::Dispatcher* main = options.main_dispatcher;
  const AuthStats& st = policy.stats;
  HttpUri u = *uri;
  p.remote = options.singletons->getOrCreate<RemoteJwks>(key, [&]() {
    return std::make_shared<RemoteJwks>(
        *main, createHttpJwksFetcher(*main, u, timeout, options.dns_resolver), rj.uri(),
        st.jwks_fetch, st.jwks_fetch_failed);
  });
  p.remote->configure(settings);
  policy.leases.push_back(p.remote->lease());
}

// jwt.providers[i], added to the policy (with its token locations, de-duplicated).
void compileProvider(const v1::JwtProvider& pc, int i, const std::string& path,
                     const std::string& policy_name, const CompileOptions& options,
                     Config::ErrorList& errors, CompiledPolicy& policy) {
  const std::string ppath = absl::StrCat(path, ".jwt.providers[", i, "]");
  Provider p;
  p.name = pc.name().empty() ? absl::StrCat("provider", i) : pc.name();
  p.issuer = pc.issuer();
  p.audiences.assign(pc.audiences().begin(), pc.audiences().end());
  p.require_expiration = pc.has_require_expiration() ? pc.require_expiration() : true;
  p.forward = pc.forward();
  if (pc.has_clock_skew()) {
    auto skew = Config::durationMs(pc.clock_skew(), ppath + ".clock_skew");
    if (!skew.ok()) {
      errors.add(skew.status());
    } else if (skew->count() > 24 * 3600 * 1000) {
      errors.add(ppath + ".clock_skew", "must be <= 24h");
    } else {
      p.clock_skew_s = (skew->count() + 999) / 1000;
    }
  }
  compileTokenLocations(pc, ppath, errors, p);
  compileClaimHeaders(pc, ppath, errors, p, policy);
  const bool has_local = !pc.local_jwks().inline_().empty() || !pc.local_jwks().filename().empty();
  const bool has_remote = !pc.remote_jwks().uri().empty() || pc.has_remote_jwks();
  if (has_local == has_remote) {
    errors.add(ppath, "needs exactly one of local_jwks and remote_jwks");
  }
  if (has_local) compileLocalJwks(pc.local_jwks(), ppath, options, errors, p);
  if (has_remote)
    compileRemoteJwks(pc.remote_jwks(), ppath, policy_name, options, errors, p, policy);
  for (const TokenLocation& loc : p.locations) {
    bool seen = false;
    for (const TokenLocation& l : policy.token_locations) seen = seen || sameLocation(l, loc);
    if (!seen) policy.token_locations.push_back(loc);
  }
  policy.providers.push_back(std::move(p));
}

void compileKeyAuth(const v1::KeyAuth& ka, const std::string& path, Config::ErrorList& errors,
                    CompiledPolicy& policy) {
  policy.key_auth = true;
  policy.key_in_header = ka.has_in_header() ? ka.in_header() : true;
  policy.key_in_query = ka.has_in_query() ? ka.in_query() : true;
  policy.hide_credentials = ka.has_hide_credentials() ? ka.hide_credentials() : true;
  if (!policy.key_in_header && !policy.key_in_query) {
    errors.add(path + ".key_auth", "in_header and in_query cannot both be false");
  }
  if (ka.key_names_size() == 0) {
    policy.key_names = {"apikey"};
  }
  for (int i = 0; i < ka.key_names_size(); ++i) {
    if (!Http::isValidToken(ka.key_names(i))) {
      errors.add(absl::StrCat(path, ".key_auth.key_names[", i, "]"),
                 "must be a valid header / parameter name");
      continue;
    }
    policy.key_names.push_back(ka.key_names(i));
  }
  for (const std::string& n : policy.key_names) policy.key_header_names.push_back(lower(n));
}

// One consumer's jwt_credentials[j] (its algorithm and key), or nullopt after an error.
absl::optional<ConsumerJwtCredential> compileJwtCredential(const v1::JwtCredential& jc,
                                                           const std::string& jpath,
                                                           const std::string& username,
                                                           Config::ErrorList& errors) {
  if (jc.key().empty()) {
    errors.add(jpath + ".key", "is required");
    return absl::nullopt;
  }
  const std::string alg_name = jc.algorithm().empty() ? "HS256" : jc.algorithm();
  absl::optional<Alg> alg = algFromName(alg_name);
  if (!alg) {
    errors.add(jpath + ".algorithm", absl::StrCat("unknown algorithm \"", alg_name,
                                                  "\" (HS256/384/512, RS256/384/512, "
                                                  "PS256/384/512, ES256/384/512, EdDSA)"));
    return absl::nullopt;
  }
  ConsumerJwtCredential cred;
  cred.username = username;
  cred.alg = *alg;
  if (isHmac(*alg)) {
    if (jc.secret().empty()) {
      errors.add(jpath + ".secret", absl::StrCat("is required for ", alg_name));
      return absl::nullopt;
    }
    if (!jc.rsa_public_key().empty()) {
      errors.add(jpath + ".rsa_public_key", absl::StrCat("not used with ", alg_name));
    }
    cred.key = Key::hmac(jc.secret(), *alg);
    return cred;
  }
  if (jc.rsa_public_key().empty()) {
    errors.add(jpath + ".rsa_public_key", absl::StrCat("is required for ", alg_name));
    return absl::nullopt;
  }
  if (!jc.secret().empty()) {
    errors.add(jpath + ".secret", absl::StrCat("not used with ", alg_name));
  }
  auto key = Key::fromPem(jc.rsa_public_key(), *alg);
  if (!key.ok()) {
    errors.add(jpath + ".rsa_public_key", std::string(key.status().message()));
    return absl::nullopt;
  }
  cred.key = *key;
  return cred;
}

// consumers[c]: its scopes, key-auth keys and JWT credentials.
void compileConsumer(const v1::Consumer& consumer, int c, const v1::AuthPolicy& config,
                     const std::string& path, Config::ErrorList& errors, CompiledPolicy& policy) {
  const std::string cpath = absl::StrCat(path, ".consumers[", c, "]");
  if (!Http::isValidHeaderValue(consumer.username())) {
    errors.add(cpath + ".username", "must be a valid header value");
  }
  policy.consumer_scopes[consumer.username()].assign(consumer.scopes().begin(),
                                                     consumer.scopes().end());
  for (int g = 0; g < consumer.groups_size(); ++g) {
    if (consumer.groups(g).empty() || !Http::isValidHeaderValue(consumer.groups(g)) ||
        consumer.groups(g).find(',') != std::string::npos) {
      errors.add(absl::StrCat(cpath, ".groups[", g, "]"),
                 "must be a non-empty header value without ','");
    }
  }
  if (consumer.groups_size() > 0) {
    policy.consumer_groups[consumer.username()] =
        std::make_shared<const Http::FilterState::StringListObject>(
            std::vector<std::string>(consumer.groups().begin(), consumer.groups().end()));
  }
  for (int k = 0; k < consumer.keyauth_credentials_size(); ++k) {
    const std::string& key = consumer.keyauth_credentials(k).key();
    const std::string kpath = absl::StrCat(cpath, ".keyauth_credentials[", k, "].key");
    if (key.empty()) {
      errors.add(kpath, "is required");
    } else if (!policy.keys_by_digest.emplace(keyDigest(key), consumer.username()).second) {
      errors.add(kpath, "duplicate key (keys must be unique within a policy)");
    }
  }
  if (consumer.keyauth_credentials_size() > 0 && !config.has_key_auth()) {
    errors.add(cpath + ".keyauth_credentials", "need key_auth in the policy");
  }
  for (int j = 0; j < consumer.jwt_credentials_size(); ++j) {
    const auto& jc = consumer.jwt_credentials(j);
    const std::string jpath = absl::StrCat(cpath, ".jwt_credentials[", j, "]");
    if (!config.has_jwt()) {
      errors.add(jpath, "needs jwt in the policy");
      continue;
    }
    absl::optional<ConsumerJwtCredential> cred =
        compileJwtCredential(jc, jpath, consumer.username(), errors);
    if (!cred) continue;
    if (!policy.jwt_credentials.emplace(jc.key(), std::move(*cred)).second) {
      errors.add(jpath + ".key", absl::StrCat("duplicate credential key \"", jc.key(), "\""));
    }
  }
}

}  // namespace

absl::StatusOr<CompiledPolicyConstSharedPtr> compilePolicy(const v1::AuthPolicy& config,
                                                           const std::string& path,
                                                           const CompileOptions& options) {
  Config::ErrorList errors;
  auto policy = std::make_shared<CompiledPolicy>();
  compileSettings(config, path, options, errors, *policy);
  const auto& jwt = config.jwt();
  for (int i = 0; i < jwt.providers_size(); ++i) {
    compileProvider(jwt.providers(i), i, path, config.name(), options, errors, *policy);
  }
  policy->key_claim_name = jwt.consumer_credentials().key_claim_name().empty()
                               ? "iss"
                               : jwt.consumer_credentials().key_claim_name();
  if (config.has_key_auth()) compileKeyAuth(config.key_auth(), path, errors, *policy);
  if (config.has_mtls()) {
    policy->mtls = true;
    for (const auto& [san, consumer] : config.mtls().consumers_by_san()) {
      const std::string spath = absl::StrCat(path, ".mtls.consumers_by_san[\"", san, "\"]");
      if (san.empty()) errors.add(spath, "the SAN must not be empty");
      if (consumer.empty() || !Http::isValidHeaderValue(consumer)) {
        errors.add(spath, "must be a consumer name (a valid header value)");
      }
      policy->consumers_by_san.emplace(san, consumer);
    }
    if (config.mtls().consumers_by_san().empty()) {
      errors.add(path + ".mtls.consumers_by_san", "needs at least one SAN");
    }
  }
  for (int c = 0; c < config.consumers_size(); ++c) {
    compileConsumer(config.consumers(c), c, config, path, errors, *policy);
  }
  if (config.has_jwt() && policy->providers.empty() && policy->jwt_credentials.empty()) {
    errors.add(path + ".jwt", "needs providers or consumers with jwt_credentials");
  }
  if (policy->providers.empty() && !policy->jwt_credentials.empty()) {
    policy->token_locations.push_back(TokenLocation{true, "authorization", "Bearer "});
  }
  RETURN_IF_ERRORS(errors);
  return CompiledPolicyConstSharedPtr(std::move(policy));
}

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
