// Kong plugins -> Sluice filter configs and policies (docs/imports.md#plugins). Each plugin's
// config is checked against Kong's schema (unknown fields are problems) and converted; what
// Sluice can't honour is a problem naming the field and the reason.

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/config_import/kong_model.h"

namespace sluice {
namespace ConfigImport {
namespace Kong {
namespace {

using google::protobuf::Struct;
using sluice::config::v1::RateLimitPolicy;

class PluginConverter {
 public:
  PluginConverter(Model& model, size_t index, const Options& options,
                  sluice::config::v1::StaticResources& out, Diagnostics& diags)
      : m_(model),
        p_(model.plugins[index]),
        r_(model.results[index]),
        options_(options),
        out_(out),
        d_(diags),
        path_(p_.config_path) {
    if (p_.config != nullptr) cfg_ = *p_.config;
  }

  void run() {
    r_.ok = true;
    const std::string& n = p_.name;
    if (n == "key-auth") return keyAuth();
    if (n == "jwt") return jwt();
    if (n == "oauth2") return oauth2();
    if (n == "rate-limiting") return rateLimiting();
    if (n == "request-transformer") return requestTransformer();
    if (n == "response-transformer") return responseTransformer();
    if (n == "cors") return cors();
    if (n == "proxy-cache") return proxyCache();
    if (n == "http-log") return httpLog();
    if (n == "prometheus") return prometheus();
    if (n == "correlation-id") return correlationId();
    if (n == "request-size-limiting") return requestSizeLimiting();
    if (n == "ip-restriction") return ipRestriction();
    if (n == "acl") return acl();
    if (n == "canary") return canary();
    d_.problem(pathField(p_.path, "name"), p_.line,
               absl::StrCat("plugin \"", n,
                            "\" is not supported by the importer (it takes key-auth, jwt, "
                            "oauth2, rate-limiting, request-transformer, response-transformer, "
                            "cors, proxy-cache, http-log, prometheus, correlation-id, "
                            "request-size-limiting, ip-restriction, acl, canary)"));
    r_.ok = false;
  }

 private:
  // Checks the config's fields; false (and the plugin refused) when one is unknown.
  bool fields(const std::vector<absl::string_view>& known) {
    if (!checkKongFields(cfg_, path_, known, d_)) {
      r_.ok = false;
      return false;
    }
    return true;
  }
  void refuse(absl::string_view field, const std::string& why) {
    const Node* n = cfg_.get(field);
    d_.problem(field.empty() ? path_ : pathField(path_, field), n != nullptr ? n->line() : p_.line,
               why);
    r_.ok = false;
  }
  void invalid(absl::string_view field, const std::string& why) {
    const Node* n = cfg_.get(field);
    d_.error(field.empty() ? path_ : pathField(path_, field), n != nullptr ? n->line() : p_.line,
             why);
    r_.ok = false;
  }
  void warn(absl::string_view field, const std::string& why) {
    const Node* n = cfg_.get(field);
    d_.warning(field.empty() ? path_ : pathField(path_, field), n != nullptr ? n->line() : p_.line,
               why);
  }
  std::optional<std::string> str(absl::string_view f) { return getString(cfg_, f, path_, d_); }
  std::optional<int64_t> integer(absl::string_view f) { return getInt(cfg_, f, path_, d_); }
  std::optional<double> number(absl::string_view f) { return getNumber(cfg_, f, path_, d_); }
  std::optional<bool> boolean(absl::string_view f) { return getBool(cfg_, f, path_, d_); }
  std::optional<std::vector<std::string>> list(absl::string_view f) {
    return getStringList(cfg_, f, path_, d_);
  }
  void set(Struct& s, const std::string& k, google::protobuf::Value v) {
    (*s.mutable_fields())[k] = std::move(v);
  }
  // The `anonymous` consumer: Sluice's allow_anonymous (its consumer is named "anonymous").
  bool anonymous() {
    std::optional<std::string> a = str("anonymous");
    if (!a || a->empty()) return false;
    int found = -1;
    for (size_t i = 0; i < m_.consumers.size(); ++i) {
      const Consumer& c = m_.consumers[i];
      if (c.username == *a || c.id == *a || c.custom_id == *a) found = static_cast<int>(i);
    }
    if (found < 0) {
      refuse("anonymous", absl::StrCat("no consumer \"", *a, "\" in this file"));
      return false;
    }
    if (m_.consumers[found].username != "anonymous") {
      warn("anonymous",
           absl::StrCat("requests without credentials pass as consumer \"anonymous\" in Sluice "
                        "(Kong: \"",
                        m_.consumers[found].username, "\")"));
    }
    return true;
  }
  void runOnPreflight() {
    std::optional<bool> b = boolean("run_on_preflight");
    if (b.has_value() && !*b && !m_.any_cors) {
      refuse("run_on_preflight",
             "false: Sluice does not exempt OPTIONS preflights from auth; with a cors plugin "
             "they are answered before auth, as Kong does (add cors)");
    }
  }

  void keyAuth() {
    if (!fields({"key_names", "hide_credentials", "anonymous", "key_in_header", "key_in_query",
                 "key_in_body", "run_on_preflight", "realm"})) {
      return;
    }
    auto* ka = r_.auth.mutable_key_auth();
    for (const std::string& k : list("key_names").value_or(std::vector<std::string>{"apikey"})) {
      ka->add_key_names(k);
    }
    ka->set_hide_credentials(boolean("hide_credentials").value_or(false));
    ka->set_in_header(boolean("key_in_header").value_or(true));
    ka->set_in_query(boolean("key_in_query").value_or(true));
    if (boolean("key_in_body").value_or(false)) {
      refuse("key_in_body", "Sluice reads keys from headers and the query string, not bodies");
    }
    if (cfg_.get("realm") != nullptr) {
      warn("realm", "Sluice's WWW-Authenticate realm is \"sluice\"");
    }
    runOnPreflight();
    r_.auth_anonymous = anonymous();
    r_.filter = "auth";
  }

  void jwt() {
    if (!fields({"uri_param_names", "cookie_names", "header_names", "key_claim_name",
                 "secret_is_base64", "claims_to_verify", "anonymous", "run_on_preflight",
                 "maximum_expiration", "realm"})) {
      return;
    }
    auto* jwt = r_.auth.mutable_jwt();
    jwt->mutable_consumer_credentials()->set_key_claim_name(str("key_claim_name").value_or("iss"));
    {
      // Kong's default is [jwt]: a warning; other names: refused.
      std::optional<std::vector<std::string>> u = list("uri_param_names");
      if (!u || (u->size() == 1 && (*u)[0] == "jwt")) {
        warn("uri_param_names",
             "Sluice reads consumers' JWTs from Authorization: Bearer only, not from the "
             "query parameter jwt (Kong's default uri_param_names)");
      } else if (!u->empty()) {
        refuse("uri_param_names", "Sluice reads consumers' JWTs from Authorization: Bearer only");
      }
    }
    if (std::optional<std::vector<std::string>> c = list("cookie_names"); c && !c->empty()) {
      refuse("cookie_names", "Sluice does not read JWTs from cookies");
    }
    if (std::optional<std::vector<std::string>> h = list("header_names")) {
      if (!(h->size() == 1 && absl::EqualsIgnoreCase((*h)[0], "authorization"))) {
        refuse("header_names", "Sluice reads consumers' JWTs from the Authorization header only");
      }
    }
    if (boolean("secret_is_base64").value_or(false)) {
      refuse("secret_is_base64",
             "Sluice uses the secret's text as the HMAC key; decode the secrets and set "
             "secret_is_base64: false");
    }
    if (std::optional<std::vector<std::string>> claims = list("claims_to_verify")) {
      for (const std::string& c : *claims) {
        if (c != "exp" && c != "nbf") {
          invalid("claims_to_verify", absl::StrCat("\"", c, "\": Kong takes exp and nbf"));
        }
      }
      if (std::find(claims->begin(), claims->end(), "exp") != claims->end()) {
        // Kong then requires exp; Sluice checks it when present.
        warn("claims_to_verify",
             "exp is checked when present; a token without exp is accepted by Sluice's "
             "consumer credentials (Kong refuses it)");
      }
    } else {
      warn("claims_to_verify",
           "Kong checks no claim by default; Sluice always refuses a token whose exp or nbf "
           "(when present) says it is not valid now");
    }
    if (integer("maximum_expiration").value_or(0) > 0) {
      refuse("maximum_expiration", "Sluice does not bound a token's lifetime");
    }
    if (cfg_.get("realm") != nullptr) {
      warn("realm", "Sluice's WWW-Authenticate realm is \"sluice\"");
    }
    runOnPreflight();
    r_.auth_anonymous = anonymous();
    r_.filter = "auth";
  }

  void oauth2() {
    if (!fields({"scopes", "mandatory_scope", "provision_key", "token_expiration",
                 "enable_authorization_code", "enable_implicit_grant", "enable_client_credentials",
                 "enable_password_grant", "hide_credentials", "accept_http_if_already_terminated",
                 "anonymous", "global_credentials", "auth_header_name", "refresh_token_ttl",
                 "reuse_refresh_token", "pkce", "persistent_refresh_token", "realm"})) {
      return;
    }
    if (options_.oauth2_jwks.empty()) {
      d_.error(p_.path, p_.line,
               "oauth2: Sluice does not issue tokens as Kong's oauth2 plugin does; it checks "
               "them as a resource server. Give the JWKS URL of the authorization server that "
               "issues them with --oauth2-jwks URL");
      r_.ok = false;
      return;
    }
    if (!absl::StartsWith(options_.oauth2_jwks, "http://") &&
        !absl::StartsWith(options_.oauth2_jwks, "https://")) {
      d_.error(p_.path, p_.line,
               absl::StrCat("--oauth2-jwks \"", options_.oauth2_jwks,
                            "\": must be an http:// or https:// URL"));
      r_.ok = false;
      return;
    }
    auto* provider = r_.auth.mutable_jwt()->add_providers();
    provider->set_name("oauth2");
    provider->mutable_remote_jwks()->set_uri(options_.oauth2_jwks);
    provider->set_forward(!boolean("hide_credentials").value_or(false));
    if (std::optional<std::string> h = str("auth_header_name");
        h && !absl::EqualsIgnoreCase(*h, "authorization")) {
      auto* fh = provider->add_from_headers();
      fh->set_name(*h);
      fh->set_value_prefix("Bearer ");
    }
    std::vector<std::string> scopes = list("scopes").value_or(std::vector<std::string>{});
    if (boolean("mandatory_scope").value_or(false)) {
      if (scopes.size() == 1) {
        r_.auth.add_required_scopes(scopes[0]);
      } else if (!scopes.empty()) {
        refuse("mandatory_scope",
               "Kong wants one of several scopes; Sluice's required_scopes wants every one "
               "(only one scope can be required)");
      }
    }
    warn("",
         "oauth2 becomes a resource server: tokens from the --oauth2-jwks issuer are "
         "verified; Kong's token endpoints, grants and oauth2_credentials are not "
         "imported");
    r_.auth_anonymous = anonymous();
    r_.filter = "auth";
  }

  void rateLimiting() {
    if (!fields({"second",
                 "minute",
                 "hour",
                 "day",
                 "month",
                 "year",
                 "limit_by",
                 "header_name",
                 "path",
                 "policy",
                 "fault_tolerant",
                 "redis_host",
                 "redis_port",
                 "redis_password",
                 "redis_username",
                 "redis_ssl",
                 "redis_ssl_verify",
                 "redis_server_name",
                 "redis_timeout",
                 "redis_database",
                 "redis",
                 "hide_client_headers",
                 "error_code",
                 "error_message",
                 "sync_rate"})) {
      return;
    }
    RateLimitPolicy policy;
    policy.set_name(p_.label);
    int64_t previous = 0;
    std::string previous_name;
    bool any = false;
    for (absl::string_view w : {"second", "minute", "hour", "day", "month", "year"}) {
      std::optional<double> v = number(w);
      if (!v) continue;
      if (!(*v > 0 && *v <= 1e9) || *v != static_cast<double>(static_cast<int64_t>(*v))) {
        invalid(w, "must be a whole number above 0 (Sluice: at most 1000000000)");
        continue;
      }
      const int64_t n = static_cast<int64_t>(*v);
      if (n < previous) {
        // Kong's schema: each window's limit at least the shorter window's.
        invalid(w,
                absl::StrCat("The limit for ", w, "(", n, ") cannot be lower than the limit for ",
                             previous_name, "(", previous, ") (as Kong)"));
      }
      previous = n;
      previous_name = std::string(w);
      any = true;
      const google::protobuf::FieldDescriptor* f =
          policy.GetDescriptor()->FindFieldByName(std::string(w));
      policy.GetReflection()->SetUInt64(&policy, f, static_cast<uint64_t>(n));
    }
    if (!any) {
      invalid("",
              "at least one of second, minute, hour, day, month, year is required (as "
              "Kong)");
      return;
    }
    const std::string limit_by = str("limit_by").value_or("consumer");
    static const std::map<std::string, RateLimitPolicy::LimitBy> kLimitBy = {
        {"consumer", RateLimitPolicy::CONSUMER},
        {"credential", RateLimitPolicy::CREDENTIAL},
        {"ip", RateLimitPolicy::IP},
        {"service", RateLimitPolicy::SERVICE},
        {"header", RateLimitPolicy::HEADER},
        {"path", RateLimitPolicy::PATH}};
    auto lb = kLimitBy.find(limit_by);
    if (lb == kLimitBy.end()) {
      invalid("limit_by", absl::StrCat("\"", limit_by,
                                       "\": Kong takes consumer, credential, ip, service, "
                                       "header, path"));
      return;
    }
    policy.set_limit_by(lb->second);
    if (limit_by == "header") {
      std::optional<std::string> h = str("header_name");
      if (!h || h->empty()) {
        invalid("header_name", "is required with limit_by: header (as Kong)");
        return;
      }
      policy.set_header_name(*h);
    }
    if (limit_by == "path") {
      if (std::optional<std::string> path = str("path"); path && !path->empty()) {
        warn("path",
             "Sluice keeps a budget per request path; Kong's `path` (one path to count) is "
             "not imported");
      }
    }
    // Kong counts calendar windows.
    policy.set_algorithm(RateLimitPolicy::FIXED_WINDOW);
    const std::string kind = str("policy").value_or("local");
    if (kind == "cluster") {
      refuse("policy",
             "cluster: Kong keeps these counters in its database, which Sluice has not (and "
             "Kong refuses it without one); use local, or redis to share counters between "
             "gateways");
      return;
    }
    if (kind == "redis") {
      policy.set_policy(RateLimitPolicy::REDIS);
      redis(policy);
    } else if (kind != "local") {
      invalid("policy", absl::StrCat("\"", kind, "\": Kong takes local, cluster, redis"));
      return;
    } else if (cfg_.get("redis") != nullptr || cfg_.get("redis_host") != nullptr) {
      warn("policy", "policy local: the redis settings are not used");
    }
    policy.set_fault_tolerant(boolean("fault_tolerant").value_or(true));
    policy.set_hide_client_headers(boolean("hide_client_headers").value_or(false));
    if (std::optional<int64_t> code = integer("error_code"); code && *code != 429) {
      refuse("error_code",
             "Sluice refuses with 429 (reshape it with the listener's gateway_responses, type "
             "THROTTLED)");
    }
    if (std::optional<std::string> msg = str("error_message");
        msg && *msg != "API rate limit exceeded") {
      refuse("error_message",
             "Sluice's message is its own (reshape it with the listener's gateway_responses, "
             "type THROTTLED)");
    }
    if (std::optional<double> sync = number("sync_rate"); sync && *sync != -1) {
      warn("sync_rate", "Sluice counts every request in Redis at once (sync_rate -1)");
    }
    if (!r_.ok) return;
    *out_.add_rate_limit_policies() = policy;
    r_.rate_limit_policy = policy.name();
    r_.filter = "rate_limit";
  }

  void redis(RateLimitPolicy& policy) {
    auto* rc = policy.mutable_redis();
    std::string host = str("redis_host").value_or("");
    int64_t port = integer("redis_port").value_or(6379);
    std::string password = str("redis_password").value_or("");
    int64_t database = integer("redis_database").value_or(0);
    int64_t timeout = integer("redis_timeout").value_or(2000);
    bool ssl = boolean("redis_ssl").value_or(false);
    std::string username = str("redis_username").value_or("");
    // Kong 3.x's `redis` record (the redis_* fields are its deprecated shorthands).
    if (const Node* r = getMap(cfg_, "redis", path_, d_)) {
      const std::string rpath = pathField(path_, "redis");
      if (!checkKongFields(*r, rpath,
                           {"host",
                            "port",
                            "password",
                            "username",
                            "database",
                            "timeout",
                            "ssl",
                            "ssl_verify",
                            "server_name",
                            "connect_timeout",
                            "send_timeout",
                            "read_timeout",
                            "keepalive_pool_size",
                            "keepalive_backlog",
                            "sentinel_master",
                            "sentinel_role",
                            "sentinel_nodes",
                            "sentinel_username",
                            "sentinel_password",
                            "cluster_nodes",
                            "cluster_max_redirections",
                            "connection_is_proxied"},
                           d_)) {
        r_.ok = false;
      }
      host = getString(*r, "host", rpath, d_).value_or(host);
      port = getInt(*r, "port", rpath, d_).value_or(port);
      password = getString(*r, "password", rpath, d_).value_or(password);
      username = getString(*r, "username", rpath, d_).value_or(username);
      database = getInt(*r, "database", rpath, d_).value_or(database);
      timeout = getInt(*r, "timeout", rpath, d_).value_or(timeout);
      ssl = getBool(*r, "ssl", rpath, d_).value_or(ssl);
      for (absl::string_view f : {"sentinel_master", "sentinel_nodes", "cluster_nodes"}) {
        const Node* n = r->get(f);
        if (n != nullptr && n->size() + (n->isScalar() ? 1 : 0) > 0) {
          d_.problem(pathField(rpath, f), *n,
                     "Sluice talks to one Redis node (Sentinel and Redis Cluster are not "
                     "supported)");
          r_.ok = false;
        }
      }
    }
    if (host.empty()) {
      invalid("redis_host", "is required with policy: redis (as Kong)");
      return;
    }
    if (ssl) refuse("redis_ssl", "Sluice connects to Redis in cleartext only");
    if (!username.empty()) {
      refuse("redis_username", "Sluice authenticates to Redis with a password only (AUTH)");
    }
    if (port < 1 || port > 65535) invalid("redis_port", "must be 1-65535");
    rc->set_host(host);
    rc->set_port(static_cast<uint32_t>(port));
    rc->set_password(password);
    rc->set_database(static_cast<uint32_t>(std::max<int64_t>(0, database)));
    if (timeout > 10000) {
      warn("redis_timeout",
           absl::StrCat(timeout, "ms: Sluice waits at most 10s for Redis; 10s used"));
      timeout = 10000;
    }
    setMilliseconds(rc->mutable_timeout(), std::max<int64_t>(1, timeout));
  }

  // A Kong record of string lists ({headers: [...], ...}) -> the same Struct, checked.
  bool rules(const Node& parent, absl::string_view key, const std::string& path,
             const std::vector<absl::string_view>& known, Struct& out) {
    const Node* n = getMap(parent, key, path, d_);
    if (n == nullptr) return true;
    const std::string rpath = pathField(path, key);
    if (!checkKongFields(*n, rpath, known, d_)) {
      r_.ok = false;
      return false;
    }
    Struct s;
    for (const auto& [k, v] : n->entries()) {
      if (k == "uri") {
        if (std::optional<std::string> uri = getString(*n, "uri", rpath, d_)) {
          set(s, "uri", stringValue(*uri));
        }
        continue;
      }
      std::optional<std::vector<std::string>> items = getStringList(*n, k, rpath, d_);
      if (items && !items->empty()) set(s, k, listValue(*items));
    }
    if (!s.fields().empty()) {
      google::protobuf::Value v;
      *v.mutable_struct_value() = s;
      set(out, std::string(key), v);
    }
    return true;
  }

  void requestTransformer() {
    if (!fields({"http_method", "remove", "rename", "replace", "add", "append"})) return;
    Struct s;
    if (std::optional<std::string> m = str("http_method")) {
      set(s, "http_method", stringValue(*m));
    }
    const std::vector<absl::string_view> three = {"body", "headers", "querystring"};
    rules(cfg_, "remove", path_, three, s);
    rules(cfg_, "rename", path_, three, s);
    rules(cfg_, "replace", path_, {"body", "headers", "querystring", "uri"}, s);
    rules(cfg_, "add", path_, three, s);
    rules(cfg_, "append", path_, three, s);
    r_.config = s;
    r_.filter = "request_transformer";
  }

  void responseTransformer() {
    if (!fields({"remove", "rename", "replace", "add", "append"})) return;
    Struct s;
    rules(cfg_, "remove", path_, {"json", "headers"}, s);
    rules(cfg_, "rename", path_, {"headers", "json"}, s);
    for (absl::string_view k : {"replace", "add", "append"}) {
      rules(cfg_, k, path_, {"json", "json_types", "headers"}, s);
    }
    r_.config = s;
    r_.filter = "response_transformer";
  }

  void cors() {
    if (!fields({"origins", "headers", "exposed_headers", "methods", "max_age", "credentials",
                 "preflight_continue", "private_network", "allow_origin_absent"})) {
      return;
    }
    Struct s;
    for (absl::string_view k : {"origins", "headers", "exposed_headers", "methods"}) {
      std::optional<std::vector<std::string>> v = list(k);
      if (v && !v->empty()) set(s, std::string(k), listValue(*v));
    }
    if (std::optional<double> age = number("max_age")) {
      if (!(*age >= 0 && *age <= 4294967295.0)) {
        invalid("max_age", "must be a number of seconds >= 0");
      } else {
        set(s, "max_age", numberValue(static_cast<double>(static_cast<int64_t>(*age))));
      }
    }
    for (absl::string_view k : {"credentials", "preflight_continue", "private_network"}) {
      if (boolean(k).value_or(false)) set(s, std::string(k), boolValue(true));
    }
    if (std::optional<bool> absent = boolean("allow_origin_absent"); absent && !*absent) {
      refuse("allow_origin_absent",
             "false: Sluice passes requests without Origin untouched (Kong's default, true)");
    }
    r_.config = s;
    r_.filter = "cors";
  }

  void proxyCache() {
    if (!fields({"response_code", "request_method", "content_type", "cache_ttl", "strategy",
                 "cache_control", "ignore_uri_case", "storage_ttl", "memory", "vary_headers",
                 "vary_query_params", "response_headers", "redis"})) {
      return;
    }
    Struct s;
    const std::string strategy = str("strategy").value_or("memory");
    if (strategy != "memory") {
      refuse("strategy", absl::StrCat("\"", strategy,
                                      "\": Sluice's cache is in memory (one store per process)"));
    }
    if (const Node* codes = getSequence(cfg_, "response_code", path_, d_)) {
      google::protobuf::Value v;
      for (const Node& c : codes->items()) {
        std::optional<int64_t> code = c.asInt();
        if (!code || *code < 100 || *code > 900) {
          d_.error(pathField(path_, "response_code"), c, "each must be a status 100-900");
          r_.ok = false;
          continue;
        }
        v.mutable_list_value()->add_values()->set_number_value(static_cast<double>(*code));
      }
      set(s, "response_code", v);
    }
    if (std::optional<std::vector<std::string>> m = list("request_method")) {
      for (const std::string& method : *m) {
        if (method != "GET" && method != "HEAD") {
          refuse("request_method",
                 absl::StrCat(method,
                              ": Sluice caches GET and HEAD only (a request with a body is "
                              "not a cache key)"));
        }
      }
      set(s, "request_method", listValue(*m));
    }
    for (absl::string_view k : {"content_type", "vary_headers", "vary_query_params"}) {
      std::optional<std::vector<std::string>> v = list(k);
      if (v && !v->empty()) set(s, std::string(k), listValue(*v));
    }
    if (std::optional<double> ttl = number("cache_ttl")) {
      if (!(*ttl > 0)) {
        invalid("cache_ttl", "must be above 0");
      } else {
        set(s, "cache_ttl", stringValue(durationText(secondsToMs(*ttl))));
      }
    }
    if (boolean("cache_control").value_or(false)) set(s, "cache_control", boolValue(true));
    if (boolean("ignore_uri_case").value_or(false)) set(s, "ignore_uri_case", boolValue(true));
    if (cfg_.get("storage_ttl") != nullptr) {
      warn("storage_ttl", "Sluice keeps entries until they are evicted (LRU, max_bytes)");
    }
    if (const Node* rh = getMap(cfg_, "response_headers", path_, d_)) {
      if (const Node* key = rh->get("X-Cache-Key"); key && key->asBool().value_or(false)) {
        set(s, "expose_cache_key", boolValue(true));
      }
    }
    r_.config = s;
    r_.filter = "cache";
  }

  void httpLog() {
    if (!fields({"http_endpoint", "method", "content_type", "timeout", "keepalive", "retry_count",
                 "queue_size", "flush_timeout", "headers", "custom_fields_by_lua", "queue"})) {
      return;
    }
    Struct s;
    std::optional<std::string> endpoint = str("http_endpoint");
    if (!endpoint || endpoint->empty()) {
      invalid("http_endpoint", "is required (as Kong)");
      return;
    }
    set(s, "http_endpoint", stringValue(*endpoint));
    if (std::optional<std::string> m = str("method")) set(s, "method", stringValue(*m));
    if (std::optional<std::string> ct = str("content_type"); ct && *ct != "application/json") {
      refuse("content_type", "Sluice sends application/json only");
    }
    if (std::optional<int64_t> t = integer("timeout")) {
      set(s, "timeout", stringValue(durationText(std::max<int64_t>(1, *t))));
    }
    if (std::optional<int64_t> t = integer("keepalive")) {
      set(s, "keepalive", stringValue(durationText(std::max<int64_t>(0, *t))));
    }
    if (std::optional<int64_t> n = integer("retry_count")) {
      set(s, "retry_count", numberValue(static_cast<double>(std::max<int64_t>(0, *n))));
    }
    if (std::optional<int64_t> n = integer("queue_size")) {
      set(s, "queue_size", numberValue(static_cast<double>(std::max<int64_t>(1, *n))));
    }
    if (std::optional<double> f = number("flush_timeout")) {
      set(s, "flush_timeout", stringValue(durationText(secondsToMs(*f))));
    }
    if (const Node* q = getMap(cfg_, "queue", path_, d_)) {
      const std::string qpath = pathField(path_, "queue");
      if (!checkKongFields(
              *q, qpath,
              {"max_batch_size", "max_coalescing_delay", "max_entries", "max_bytes",
               "max_retry_time", "initial_retry_delay", "max_retry_delay", "concurrency_limit"},
              d_)) {
        r_.ok = false;
      }
      if (std::optional<int64_t> n = getInt(*q, "max_batch_size", qpath, d_)) {
        set(s, "queue_size", numberValue(static_cast<double>(std::max<int64_t>(1, *n))));
      }
      if (std::optional<double> f = getNumber(*q, "max_coalescing_delay", qpath, d_)) {
        set(s, "flush_timeout", stringValue(durationText(secondsToMs(*f))));
      }
      if (std::optional<int64_t> n = getInt(*q, "max_entries", qpath, d_)) {
        set(s, "max_queued_entries", numberValue(static_cast<double>(*n)));
      }
      if (std::optional<int64_t> n = getInt(*q, "max_bytes", qpath, d_)) {
        set(s, "max_queued_bytes", numberValue(static_cast<double>(*n)));
      }
      if (std::optional<double> f = getNumber(*q, "initial_retry_delay", qpath, d_)) {
        set(s, "initial_retry_delay",
            stringValue(durationText(std::max<int64_t>(1, secondsToMs(*f)))));
      }
      if (std::optional<double> f = getNumber(*q, "max_retry_delay", qpath, d_)) {
        set(s, "max_retry_delay", stringValue(durationText(std::max<int64_t>(1, secondsToMs(*f)))));
      }
      if (q->get("max_retry_time") != nullptr) {
        d_.warning(pathField(qpath, "max_retry_time"), *q->get("max_retry_time"),
                   "Sluice bounds retries by retry_count, not by time");
      }
    }
    if (const Node* h = getMap(cfg_, "headers", path_, d_)) {
      Struct headers;
      for (const auto& [k, v] : h->entries()) {
        if (v.isScalar()) {
          set(headers, k, stringValue(v.scalar()));
        } else if (v.isSequence() && v.size() == 1 && v.items()[0].isScalar()) {
          set(headers, k, stringValue(v.items()[0].scalar()));
        } else {
          d_.problem(pathField(pathField(path_, "headers"), k), v,
                     "Sluice sends one value per header");
          r_.ok = false;
        }
      }
      if (!headers.fields().empty()) {
        google::protobuf::Value v;
        *v.mutable_struct_value() = headers;
        set(s, "headers", v);
      }
    }
    if (const Node* lua = cfg_.get("custom_fields_by_lua"); lua && lua->size() > 0) {
      refuse("custom_fields_by_lua", "Sluice runs no Lua");
    }
    r_.config = s;
    r_.filter = "http_log";
  }

  void prometheus() {
    if (!fields({"per_consumer", "status_code_metrics", "latency_metrics", "bandwidth_metrics",
                 "upstream_health_metrics", "ai_metrics"})) {
      return;
    }
    r_.per_consumer = boolean("per_consumer").value_or(false);
    if (p_.route >= 0 || p_.service >= 0) {
      warn("",
           "Sluice's metrics are per listener: this plugin's settings apply to every "
           "route");
    }
    for (absl::string_view k : {"status_code_metrics", "latency_metrics", "bandwidth_metrics",
                                "upstream_health_metrics"}) {
      (void)boolean(k);
    }
    // Sluice always exports status, latency and byte counters per route and cluster.
  }

  void correlationId() {
    if (!fields({"header_name", "generator", "echo_downstream"})) return;
    const std::string header = str("header_name").value_or("Kong-Request-ID");
    const std::string generator = str("generator").value_or("uuid#counter");
    if (generator != "uuid" && generator != "uuid#counter" && generator != "tracker") {
      invalid("generator",
              absl::StrCat("\"", generator, "\": Kong takes uuid, uuid#counter, tracker"));
      return;
    }
    if (generator != "uuid") {
      warn("generator",
           absl::StrCat(generator, ": Sluice's ids are random UUIDs (generator uuid)"));
    }
    if (boolean("echo_downstream").value_or(false) &&
        !absl::EqualsIgnoreCase(header, "x-request-id")) {
      warn(
          "echo_downstream",
          absl::StrCat("Sluice returns the id as X-Request-Id on every response, not as ", header));
    }
    if (absl::EqualsIgnoreCase(header, "x-request-id")) {
      // Sluice's own: the client's id when valid, else a new UUID, sent up and echoed down.
      return;
    }
    // Kong keeps a client's header and sets one when absent: request_transformer's add.
    r_.correlation_header = header;
    r_.filter = "request_transformer";
  }

  void requestSizeLimiting() {
    if (!fields({"allowed_payload_size", "size_unit", "require_content_length"})) return;
    const int64_t size = integer("allowed_payload_size").value_or(128);
    const std::string unit = str("size_unit").value_or("megabytes");
    uint64_t factor = 0;
    if (unit == "megabytes")
      factor = 1024 * 1024;
    else if (unit == "kilobytes")
      factor = 1024;
    else if (unit == "bytes")
      factor = 1;
    if (factor == 0) {
      invalid("size_unit", absl::StrCat("\"", unit, "\": Kong takes megabytes, kilobytes, bytes"));
      return;
    }
    if (size < 0) {
      invalid("allowed_payload_size", "must be >= 0");
      return;
    }
    if (boolean("require_content_length").value_or(false)) {
      refuse("require_content_length",
             "Sluice limits chunked bodies as they arrive; it does not require a length");
    }
    if (p_.route >= 0 || p_.service >= 0) {
      refuse("",
             "Sluice limits request bodies per listener (limits.max_request_body_bytes), "
             "not per route: make the plugin global");
      return;
    }
    r_.max_body_bytes = static_cast<uint64_t>(size) * factor;
  }

  void ipRestriction() {
    if (!fields({"allow", "deny", "status", "message"})) return;
    Struct s;
    std::vector<std::string> allow = list("allow").value_or(std::vector<std::string>{});
    std::vector<std::string> deny = list("deny").value_or(std::vector<std::string>{});
    if (allow.empty() && deny.empty()) {
      invalid("", "at least one of allow and deny is required (as Kong)");
      return;
    }
    if (!allow.empty()) set(s, "allow", listValue(allow));
    if (!deny.empty()) set(s, "deny", listValue(deny));
    if (std::optional<int64_t> st = integer("status")) {
      set(s, "status", numberValue(static_cast<double>(*st)));
    }
    if (std::optional<std::string> msg = str("message")) set(s, "message", stringValue(*msg));
    r_.config = s;
    r_.filter = "ip_restriction";
  }

  void acl() {
    if (!fields({"allow", "deny", "hide_groups_header", "include_consumer_groups",
                 "always_use_authenticated_groups"})) {
      return;
    }
    Struct s;
    std::vector<std::string> allow = list("allow").value_or(std::vector<std::string>{});
    std::vector<std::string> deny = list("deny").value_or(std::vector<std::string>{});
    if (allow.empty() == deny.empty()) {
      invalid("", "exactly one of allow and deny is required (as Kong)");
      return;
    }
    if (!allow.empty()) set(s, "allow", listValue(allow));
    if (!deny.empty()) set(s, "deny", listValue(deny));
    if (boolean("hide_groups_header").value_or(false)) {
      set(s, "hide_groups_header", boolValue(true));
    }
    if (boolean("include_consumer_groups").value_or(false) ||
        boolean("always_use_authenticated_groups").value_or(false)) {
      refuse("",
             "consumer groups and authenticated groups are Kong Enterprise features "
             "Sluice does not have");
    }
    r_.config = s;
    r_.filter = "acl";
  }

  void canary() {
    if (!fields({"start", "duration", "steps", "percentage", "upstream_host", "upstream_port",
                 "upstream_uri", "upstream_fallback", "hash", "hash_header", "groups",
                 "canary_by_header_name"})) {
      return;
    }
    if (p_.route < 0 && p_.service < 0) {
      refuse("", "canary applies to a route or a service");
      return;
    }
    for (absl::string_view f : {"start", "duration", "steps"}) {
      if (cfg_.get(f) != nullptr) {
        refuse(f,
               "Sluice's split is a fixed percentage; a rollout over time is not "
               "imported (set percentage, then raise it with new configs)");
      }
    }
    std::optional<double> pct = number("percentage");
    if (!pct || !(*pct >= 0 && *pct <= 100)) {
      invalid("percentage", "is required here, 0-100");
      return;
    }
    std::optional<std::string> host = str("upstream_host");
    if (!host || host->empty()) {
      invalid("upstream_host", "is required: the canary's target");
      return;
    }
    if (cfg_.get("upstream_uri") != nullptr) {
      refuse("upstream_uri", "Sluice rewrites a route's path for every cluster of its split alike");
    }
    if (boolean("upstream_fallback").value_or(false)) {
      refuse("upstream_fallback", "Sluice does not fall back from an unhealthy canary");
    }
    PluginResult::Canary c;
    c.percentage = static_cast<uint32_t>(*pct);
    const std::string hash = str("hash").value_or("consumer");
    using WC = sluice::config::v1::WeightedClusters;
    if (hash == "consumer") {
      c.hash_on = WC::CONSUMER;
    } else if (hash == "ip") {
      c.hash_on = WC::IP;
    } else if (hash == "header") {
      std::optional<std::string> h = str("hash_header");
      if (!h || h->empty()) {
        invalid("hash_header", "is required with hash: header");
        return;
      }
      c.hash_on = WC::HEADER;
      c.hash_key = *h;
    } else if (hash == "none") {
      c.hash_on = WC::RANDOM;
    } else {
      refuse("hash", absl::StrCat(hash, ": Sluice splits by weight, not by ACL groups"));
      return;
    }
    c.canary_header = str("canary_by_header_name").value_or("");
    if (!r_.ok) return;
    // The canary's cluster: an upstream of the file, or host:port.
    sluice::config::v1::Cluster cluster;
    cluster.set_name(absl::StrCat(p_.label, ".target"));
    const uint32_t port = static_cast<uint32_t>(integer("upstream_port").value_or(80));
    bool upstream = false;
    for (Upstream& u : m_.upstreams) {
      if (u.name != *host) continue;
      upstream = true;
      u.used = true;
      for (const Target& t : u.targets) {
        if (t.weight == 0) continue;
        auto* e = cluster.add_endpoints();
        e->set_address(t.host);
        e->set_port(t.port);
        e->set_weight(t.weight);
        if (!isIpAddress(t.host)) cluster.set_type(sluice::config::v1::Cluster::STRICT_DNS);
      }
    }
    if (!upstream) {
      auto* e = cluster.add_endpoints();
      e->set_address(*host);
      e->set_port(port);
      if (!isIpAddress(*host)) cluster.set_type(sluice::config::v1::Cluster::STRICT_DNS);
    }
    if (cluster.endpoints_size() == 0) {
      invalid("upstream_host", absl::StrCat("upstream \"", *host, "\" has no target"));
      return;
    }
    c.cluster = cluster.name();
    *out_.add_clusters() = cluster;
    r_.canary = c;
  }

  Model& m_;
  const Plugin& p_;
  PluginResult& r_;
  const Options& options_;
  sluice::config::v1::StaticResources& out_;
  Diagnostics& d_;
  std::string path_;
  Node cfg_;  // the config (an empty map when absent)
};

}  // namespace

void convertPlugin(Model& model, size_t index, const Options& options,
                   sluice::config::v1::StaticResources& out, Diagnostics& diags) {
  PluginConverter(model, index, options, out, diags).run();
}

}  // namespace Kong
}  // namespace ConfigImport
}  // namespace sluice
