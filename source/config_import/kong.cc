// Kong declarative config -> Sluice resources (docs/imports.md#kong-declarative-config): the
// entities (services, routes, upstreams and targets, consumers and their credentials), Kong's
// route order and upstream-path rules. The plugins' configs are in kong_plugins.cc.

#include "source/config_import/kong.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"
#include "source/config_import/kong_model.h"

namespace sluice {
namespace ConfigImport {
namespace Kong {

using sluice::config::v1::Cluster;
using sluice::config::v1::StaticResources;

std::string Plugin::scope() const {
  if (route >= 0 && consumer >= 0) return "route and consumer";
  if (route >= 0) return "route";
  if (service >= 0 && consumer >= 0) return "service and consumer";
  if (service >= 0) return "service";
  if (consumer >= 0) return "consumer";
  return "global";
}

bool checkKongFields(const Node& node, const std::string& path,
                     const std::vector<absl::string_view>& known, Diagnostics& diags) {
  bool ok = true;
  for (const auto& [key, value] : node.entries()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    ok = false;
    diags.problem(
        pathField(path, key), value.line(),
        absl::StrCat("Kong has no such field (it takes ", absl::StrJoin(known, ", "), ")"));
  }
  return ok;
}

bool isIpAddress(absl::string_view host) {
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

google::protobuf::Value stringValue(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}
google::protobuf::Value numberValue(double n) {
  google::protobuf::Value v;
  v.set_number_value(n);
  return v;
}
google::protobuf::Value boolValue(bool b) {
  google::protobuf::Value v;
  v.set_bool_value(b);
  return v;
}
google::protobuf::Value listValue(const std::vector<std::string>& items) {
  google::protobuf::Value v;
  auto* list = v.mutable_list_value();
  for (const std::string& s : items) list->add_values()->set_string_value(s);
  return v;
}
void setMilliseconds(google::protobuf::Duration* d, int64_t ms) {
  if (ms < 0) ms = 0;
  d->set_seconds(ms / 1000);
  d->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}
int64_t secondsToMs(double seconds) {
  if (!(seconds > 0)) return 0;
  if (seconds > 1e9) return 1000000000000;
  return static_cast<int64_t>(seconds * 1000);
}
std::string durationText(int64_t ms) {
  if (ms % 1000 == 0) return absl::StrCat(ms / 1000, "s");
  return absl::StrCat(ms, "ms");
}

namespace {

// ---------------------------------------------------------------------------------------------
// Reading entities.

const std::vector<absl::string_view> kTopFields = {"_format_version",
                                                   "_transform",
                                                   "_comment",
                                                   "_workspace",
                                                   "_info",
                                                   "services",
                                                   "routes",
                                                   "upstreams",
                                                   "targets",
                                                   "consumers",
                                                   "plugins",
                                                   "keyauth_credentials",
                                                   "jwt_secrets",
                                                   "acls",
                                                   "certificates",
                                                   "ca_certificates",
                                                   "snis",
                                                   "basicauth_credentials",
                                                   "hmacauth_credentials",
                                                   "oauth2_credentials",
                                                   "vaults"};
const std::vector<absl::string_view> kServiceFields = {"id",
                                                       "name",
                                                       "url",
                                                       "protocol",
                                                       "host",
                                                       "port",
                                                       "path",
                                                       "retries",
                                                       "connect_timeout",
                                                       "write_timeout",
                                                       "read_timeout",
                                                       "tags",
                                                       "client_certificate",
                                                       "tls_verify",
                                                       "tls_verify_depth",
                                                       "ca_certificates",
                                                       "enabled",
                                                       "routes",
                                                       "plugins",
                                                       "created_at",
                                                       "updated_at"};
const std::vector<absl::string_view> kRouteFields = {"id",
                                                     "name",
                                                     "protocols",
                                                     "methods",
                                                     "hosts",
                                                     "paths",
                                                     "headers",
                                                     "https_redirect_status_code",
                                                     "regex_priority",
                                                     "strip_path",
                                                     "path_handling",
                                                     "preserve_host",
                                                     "request_buffering",
                                                     "response_buffering",
                                                     "snis",
                                                     "sources",
                                                     "destinations",
                                                     "tags",
                                                     "service",
                                                     "plugins",
                                                     "created_at",
                                                     "updated_at"};
const std::vector<absl::string_view> kUpstreamFields = {"id",
                                                        "name",
                                                        "algorithm",
                                                        "hash_on",
                                                        "hash_fallback",
                                                        "hash_on_header",
                                                        "hash_fallback_header",
                                                        "hash_on_cookie",
                                                        "hash_on_cookie_path",
                                                        "hash_on_query_arg",
                                                        "hash_fallback_query_arg",
                                                        "hash_on_uri_capture",
                                                        "hash_fallback_uri_capture",
                                                        "slots",
                                                        "healthchecks",
                                                        "tags",
                                                        "host_header",
                                                        "client_certificate",
                                                        "use_srv_name",
                                                        "targets",
                                                        "created_at",
                                                        "updated_at"};
const std::vector<absl::string_view> kTargetFields = {"id",       "target",     "weight",    "tags",
                                                      "upstream", "created_at", "updated_at"};
const std::vector<absl::string_view> kConsumerFields = {"id",
                                                        "username",
                                                        "custom_id",
                                                        "tags",
                                                        "keyauth_credentials",
                                                        "jwt_secrets",
                                                        "acls",
                                                        "basicauth_credentials",
                                                        "hmacauth_credentials",
                                                        "oauth2_credentials",
                                                        "plugins",
                                                        "created_at",
                                                        "updated_at"};
const std::vector<absl::string_view> kKeyAuthFields = {"id",  "key",      "tags",
                                                       "ttl", "consumer", "created_at"};
const std::vector<absl::string_view> kJwtFields = {
    "id", "key", "secret", "rsa_public_key", "algorithm", "tags", "consumer", "created_at"};
const std::vector<absl::string_view> kAclFields = {"id", "group", "tags", "consumer", "created_at"};
const std::vector<absl::string_view> kPluginFields = {
    "id",    "name",     "config",        "enabled",    "protocols",  "tags",    "service",
    "route", "consumer", "instance_name", "created_at", "updated_at", "ordering"};

// A foreign key as the file writes it: "name-or-id" or {id: ...} / {name: ...}.
std::optional<std::string> foreignKey(const Node& map, absl::string_view key,
                                      const std::string& path, Diagnostics& diags) {
  const Node* node = map.get(key);
  if (node == nullptr) return std::nullopt;
  if (node->isScalar()) return node->scalar();
  if (node->isMap()) {
    for (absl::string_view k : {"id", "name", "username"}) {
      const Node* v = node->get(k);
      if (v != nullptr && v->isScalar()) return v->scalar();
    }
  }
  diags.error(pathField(path, key), *node,
              absl::StrCat("must be the name or id of a ", key, ", or {id: ...}"));
  return std::nullopt;
}

template <class T>
int findByKey(const std::vector<T>& items, const std::string& key) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].name == key || (!items[i].id.empty() && items[i].id == key)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

int findConsumer(const std::vector<Consumer>& items, const std::string& key) {
  for (size_t i = 0; i < items.size(); ++i) {
    const Consumer& c = items[i];
    if (c.username == key || (!c.id.empty() && c.id == key) ||
        (!c.custom_id.empty() && c.custom_id == key)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

struct UrlParts {
  std::string protocol, host, path;
  std::optional<uint32_t> port;
};

std::optional<UrlParts> parseUrl(const std::string& url) {
  UrlParts u;
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0) return std::nullopt;
  u.protocol = absl::AsciiStrToLower(url.substr(0, scheme_end));
  std::string rest = url.substr(scheme_end + 3);
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash);
  if (authority.empty() || authority.find('@') != std::string::npos) return std::nullopt;
  size_t colon = std::string::npos;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return std::nullopt;
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      colon = close + 1;
    }
  } else {
    colon = authority.rfind(':');
  }
  if (colon != std::string::npos) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(authority.substr(colon + 1), &port) || port == 0 || port > 65535) {
      return std::nullopt;
    }
    u.port = port;
    authority = authority.substr(0, colon);
  }
  u.host = authority;
  if (u.host.empty()) return std::nullopt;
  return u;
}

bool validHostName(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (isIpAddress(host)) return true;
  for (char c : host) {
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_')) return false;
  }
  return true;
}

class Reader {
 public:
  Reader(Model& model, Diagnostics& diags, bool pre30)
      : model_(model), diags_(diags), pre30_(pre30) {}

  void read(const Node& root) {
    // Consumers first: plugins and credentials refer to them.
    if (const Node* seq = getSequence(root, "consumers", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readConsumer(seq->items()[i], pathIndex("consumers", i));
      }
    }
    if (const Node* seq = getSequence(root, "upstreams", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readUpstream(seq->items()[i], pathIndex("upstreams", i));
      }
    }
    if (const Node* seq = getSequence(root, "services", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readService(seq->items()[i], pathIndex("services", i));
      }
    }
    if (const Node* seq = getSequence(root, "routes", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readRoute(seq->items()[i], pathIndex("routes", i), -1);
      }
    }
    if (const Node* seq = getSequence(root, "targets", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readTarget(seq->items()[i], pathIndex("targets", i), -1);
      }
    }
    if (const Node* seq = getSequence(root, "keyauth_credentials", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readKeyAuth(seq->items()[i], pathIndex("keyauth_credentials", i), -1);
      }
    }
    if (const Node* seq = getSequence(root, "jwt_secrets", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readJwt(seq->items()[i], pathIndex("jwt_secrets", i), -1);
      }
    }
    if (const Node* seq = getSequence(root, "acls", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readAcl(seq->items()[i], pathIndex("acls", i), -1);
      }
    }
    for (absl::string_view unsupported :
         {"certificates", "ca_certificates", "snis", "basicauth_credentials",
          "hmacauth_credentials", "oauth2_credentials", "vaults"}) {
      const Node* n = root.get(unsupported);
      if (n != nullptr && n->size() > 0) {
        diags_.problem(std::string(unsupported), *n,
                       absl::StrCat("not imported: Sluice has no equivalent of Kong's ",
                                    unsupported, " (see docs/imports.md)"));
      }
    }
    // Plugins last: they refer to services, routes and consumers.
    for (const PendingPlugins& p : pending_plugins_) {
      for (size_t i = 0; i < p.seq->items().size(); ++i) {
        readPlugin(p.seq->items()[i], pathIndex(p.path, i), p.service, p.route, p.consumer);
      }
    }
    if (const Node* seq = getSequence(root, "plugins", "", diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readPlugin(seq->items()[i], pathIndex("plugins", i), -1, -1, -1);
      }
    }
  }

 private:
  struct PendingPlugins {
    const Node* seq;
    std::string path;
    int service, route, consumer;
  };

  bool isMapItem(const Node& node, const std::string& path) {
    if (!node.isMap()) {
      diags_.error(path, node, absl::StrCat("must be a map, not ", node.describe()));
      return false;
    }
    return true;
  }

  void deferPlugins(const Node& parent, const std::string& path, int service, int route,
                    int consumer) {
    if (const Node* seq = getSequence(parent, "plugins", path, diags_)) {
      pending_plugins_.push_back({seq, pathField(path, "plugins"), service, route, consumer});
    }
  }

  void readConsumer(const Node& node, const std::string& path) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kConsumerFields, diags_);
    Consumer c;
    c.path = path;
    c.line = node.line();
    c.id = getString(node, "id", path, diags_).value_or("");
    c.custom_id = getString(node, "custom_id", path, diags_).value_or("");
    c.username = getString(node, "username", path, diags_).value_or(c.custom_id);
    if (c.username.empty()) {
      diags_.error(path, node, "a consumer needs a username or a custom_id");
      return;
    }
    if (findConsumer(model_.consumers, c.username) >= 0) {
      diags_.error(pathField(path, "username"), node,
                   absl::StrCat("consumer \"", c.username, "\" is defined twice"));
      return;
    }
    c.proto.set_username(c.username);
    model_.consumers.push_back(std::move(c));
    const int index = static_cast<int>(model_.consumers.size()) - 1;
    if (const Node* seq = getSequence(node, "keyauth_credentials", path, diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readKeyAuth(seq->items()[i], pathIndex(pathField(path, "keyauth_credentials"), i), index);
      }
    }
    if (const Node* seq = getSequence(node, "jwt_secrets", path, diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readJwt(seq->items()[i], pathIndex(pathField(path, "jwt_secrets"), i), index);
      }
    }
    if (const Node* seq = getSequence(node, "acls", path, diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readAcl(seq->items()[i], pathIndex(pathField(path, "acls"), i), index);
      }
    }
    for (absl::string_view unsupported :
         {"basicauth_credentials", "hmacauth_credentials", "oauth2_credentials"}) {
      const Node* n = node.get(unsupported);
      if (n != nullptr && n->size() > 0) {
        diags_.problem(
            pathField(path, unsupported), *n,
            absl::StrCat("not imported: Sluice has no equivalent of Kong's ", unsupported));
      }
    }
    deferPlugins(node, path, -1, -1, index);
  }

  // The consumer a credential belongs to: its parent, or its `consumer` field.
  int credentialOwner(const Node& node, const std::string& path, int parent) {
    if (parent >= 0) return parent;
    std::optional<std::string> key = foreignKey(node, "consumer", path, diags_);
    if (!key) {
      diags_.error(path, node, "a credential outside a consumer needs `consumer`");
      return -1;
    }
    const int index = findConsumer(model_.consumers, *key);
    if (index < 0) {
      diags_.problem(pathField(path, "consumer"), *node.get("consumer"),
                     absl::StrCat("no consumer \"", *key, "\" in this file"));
    }
    return index;
  }

  void readKeyAuth(const Node& node, const std::string& path, int parent) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kKeyAuthFields, diags_);
    const int owner = credentialOwner(node, path, parent);
    std::optional<std::string> key = getString(node, "key", path, diags_);
    if (!key || key->empty()) {
      // Kong generates a random key; a file that relies on it can't be imported faithfully.
      diags_.problem(path, node,
                     "a key-auth credential without `key` (Kong would generate a random one "
                     "nobody knows): write the key");
      return;
    }
    if (node.get("ttl") != nullptr) {
      diags_.problem(pathField(path, "ttl"), *node.get("ttl"),
                     "credentials that expire are not supported by Sluice");
    }
    if (owner < 0) return;
    for (const Consumer& c : model_.consumers) {
      for (const auto& k : c.proto.keyauth_credentials()) {
        if (k.key() == *key) {
          diags_.error(pathField(path, "key"), node,
                       absl::StrCat("the same key is already a credential of consumer \"",
                                    c.username, "\""));
          return;
        }
      }
    }
    Consumer& c = model_.consumers[owner];
    c.proto.add_keyauth_credentials()->set_key(*key);
    c.key_lines.push_back(node.line());
    c.key_paths.push_back(path);
  }

  void readJwt(const Node& node, const std::string& path, int parent) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kJwtFields, diags_);
    const int owner = credentialOwner(node, path, parent);
    std::optional<std::string> key = getString(node, "key", path, diags_);
    if (!key || key->empty()) {
      diags_.problem(path, node,
                     "a jwt secret without `key` (Kong would generate a random one that no "
                     "token's iss carries): write the key");
      return;
    }
    std::string algorithm = getString(node, "algorithm", path, diags_).value_or("HS256");
    static const std::set<std::string> kAlgorithms = {"HS256", "HS384", "HS512", "RS256",
                                                      "RS384", "RS512", "ES256", "ES384"};
    if (kAlgorithms.count(algorithm) == 0) {
      diags_.error(pathField(path, "algorithm"), *node.get("algorithm"),
                   absl::StrCat("\"", algorithm,
                                "\": Kong takes HS256, HS384, HS512, RS256, RS384, RS512, ES256, "
                                "ES384"));
      return;
    }
    sluice::config::v1::JwtCredential cred;
    cred.set_key(*key);
    cred.set_algorithm(algorithm);
    if (algorithm[0] == 'H') {
      std::optional<std::string> secret = getString(node, "secret", path, diags_);
      if (!secret || secret->empty()) {
        diags_.problem(path, node,
                       absl::StrCat("an ", algorithm,
                                    " secret without `secret` (Kong would generate one): write "
                                    "the secret"));
        return;
      }
      cred.set_secret(*secret);
    } else {
      std::optional<std::string> pem = getString(node, "rsa_public_key", path, diags_);
      if (!pem || pem->empty()) {
        diags_.error(pathField(path, "rsa_public_key"), node,
                     absl::StrCat("is required with algorithm ", algorithm));
        return;
      }
      cred.set_rsa_public_key(*pem);
    }
    if (owner < 0) return;
    Consumer& c = model_.consumers[owner];
    *c.proto.add_jwt_credentials() = cred;
    c.jwt_lines.push_back(node.line());
    c.jwt_paths.push_back(path);
  }

  void readAcl(const Node& node, const std::string& path, int parent) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kAclFields, diags_);
    const int owner = credentialOwner(node, path, parent);
    std::optional<std::string> group = getString(node, "group", path, diags_);
    if (!group || group->empty()) {
      diags_.error(pathField(path, "group"), node, "is required");
      return;
    }
    if (group->find(',') != std::string::npos) {
      diags_.error(pathField(path, "group"), *node.get("group"),
                   "Sluice sends groups upstream as one comma-separated header: a group name "
                   "can't contain ','");
      return;
    }
    if (owner < 0) return;
    auto* groups = model_.consumers[owner].proto.mutable_groups();
    if (std::find(groups->begin(), groups->end(), *group) == groups->end()) {
      groups->Add(std::string(*group));
    }
  }

  void readUpstream(const Node& node, const std::string& path) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kUpstreamFields, diags_);
    Upstream u;
    u.path = path;
    u.line = node.line();
    u.node = &node;
    u.id = getString(node, "id", path, diags_).value_or("");
    u.name = getString(node, "name", path, diags_).value_or("");
    if (u.name.empty()) {
      diags_.error(pathField(path, "name"), node, "is required (services name upstreams by it)");
      return;
    }
    if (findByKey(model_.upstreams, u.name) >= 0) {
      diags_.error(pathField(path, "name"), node,
                   absl::StrCat("upstream \"", u.name, "\" is defined twice"));
      return;
    }
    model_.upstreams.push_back(std::move(u));
    const int index = static_cast<int>(model_.upstreams.size()) - 1;
    if (const Node* seq = getSequence(node, "targets", path, diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readTarget(seq->items()[i], pathIndex(pathField(path, "targets"), i), index);
      }
    }
  }

  void readTarget(const Node& node, const std::string& path, int parent) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kTargetFields, diags_);
    int owner = parent;
    if (owner < 0) {
      std::optional<std::string> key = foreignKey(node, "upstream", path, diags_);
      if (!key) {
        diags_.error(path, node, "a target outside an upstream needs `upstream`");
        return;
      }
      owner = findByKey(model_.upstreams, *key);
      if (owner < 0) {
        diags_.problem(pathField(path, "upstream"), *node.get("upstream"),
                       absl::StrCat("no upstream \"", *key, "\" in this file"));
        return;
      }
    }
    std::optional<std::string> target = getString(node, "target", path, diags_);
    if (!target || target->empty()) {
      diags_.error(pathField(path, "target"), node, "is required");
      return;
    }
    Target t;
    t.path = path;
    t.line = node.line();
    std::string host = *target;
    // host[:port], [v6][:port]; Kong's default port is 8000.
    if (!host.empty() && host.front() == '[') {
      const size_t close = host.find(']');
      if (close == std::string::npos) {
        diags_.error(pathField(path, "target"), *node.get("target"), "not host[:port]");
        return;
      }
      std::string rest = host.substr(close + 1);
      host = host.substr(1, close - 1);
      if (!rest.empty()) {
        if (rest[0] != ':' || !absl::SimpleAtoi(rest.substr(1), &t.port)) {
          diags_.error(pathField(path, "target"), *node.get("target"), "not host[:port]");
          return;
        }
      }
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
      const size_t colon = host.find(':');
      if (!absl::SimpleAtoi(host.substr(colon + 1), &t.port)) {
        diags_.error(pathField(path, "target"), *node.get("target"), "not host[:port]");
        return;
      }
      host = host.substr(0, colon);
    }
    if (t.port == 0 || t.port > 65535 || !validHostName(host)) {
      diags_.error(pathField(path, "target"), *node.get("target"),
                   absl::StrCat("\"", *target, "\" is not host[:port] with a port 1-65535"));
      return;
    }
    t.host = host;
    if (std::optional<int64_t> w = getInt(node, "weight", path, diags_)) {
      if (*w < 0 || *w > 65535) {
        diags_.error(pathField(path, "weight"), *node.get("weight"), "must be 0-65535");
        return;
      }
      t.weight = static_cast<uint32_t>(*w);
    }
    model_.upstreams[owner].targets.push_back(t);
  }

  void readService(const Node& node, const std::string& path) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kServiceFields, diags_);
    Service s;
    s.path = path;
    s.line = node.line();
    s.id = getString(node, "id", path, diags_).value_or("");
    s.name = getString(node, "name", path, diags_).value_or(s.id);
    if (s.name.empty()) s.name = absl::StrCat("service", model_.services.size());
    if (findByKey(model_.services, s.name) >= 0) {
      diags_.error(pathField(path, "name"), node,
                   absl::StrCat("service \"", s.name, "\" is defined twice"));
      s.ok = false;
    }
    std::optional<uint32_t> port;
    if (std::optional<std::string> url = getString(node, "url", path, diags_)) {
      for (absl::string_view f : {"protocol", "host", "port", "path"}) {
        if (node.get(f) != nullptr) {
          diags_.error(pathField(path, f), *node.get(f),
                       "set either url or protocol/host/port/path, not both (as Kong)");
          s.ok = false;
        }
      }
      std::optional<UrlParts> u = parseUrl(*url);
      if (!u) {
        diags_.error(pathField(path, "url"), *node.get("url"),
                     absl::StrCat("\"", *url, "\" is not a URL (scheme://host[:port][/path])"));
        s.ok = false;
      } else {
        s.protocol = u->protocol;
        s.host = u->host;
        port = u->port;
        if (!u->path.empty()) s.base = u->path;
      }
    } else {
      s.protocol = getString(node, "protocol", path, diags_).value_or("http");
      s.host = getString(node, "host", path, diags_).value_or("");
      if (std::optional<int64_t> p = getInt(node, "port", path, diags_)) {
        if (*p < 1 || *p > 65535) {
          diags_.error(pathField(path, "port"), *node.get("port"), "must be 1-65535");
          s.ok = false;
        } else {
          port = static_cast<uint32_t>(*p);
        }
      }
      if (std::optional<std::string> p = getString(node, "path", path, diags_)) {
        if (p->empty() || (*p)[0] != '/' || p->find("//") != std::string::npos) {
          diags_.error(pathField(path, "path"), *node.get("path"),
                       "must start with / and have no empty segment (as Kong)");
          s.ok = false;
        } else {
          s.base = *p;
        }
      }
      if (s.host.empty()) {
        diags_.error(pathField(path, "host"), node, "is required (or url)");
        s.ok = false;
      }
    }
    s.protocol = absl::AsciiStrToLower(s.protocol);
    if (s.protocol != "http" && s.protocol != "https" && s.protocol != "grpc" &&
        s.protocol != "grpcs") {
      diags_.problem(pathField(path, node.get("url") ? "url" : "protocol"), node,
                     absl::StrCat("protocol \"", s.protocol,
                                  "\" is not supported: Sluice proxies http, https, grpc and "
                                  "grpcs services"));
      s.ok = false;
    }
    if (!s.host.empty() && !validHostName(s.host)) {
      diags_.error(pathField(path, "host"), node, absl::StrCat("\"", s.host, "\" is not a host"));
      s.ok = false;
    }
    if ((s.protocol == "grpc" || s.protocol == "grpcs") && s.base != "/") {
      diags_.error(pathField(path, "path"), node, "a grpc(s) service takes no path (as Kong)");
      s.ok = false;
    }
    s.port = port.value_or(s.protocol == "https" || s.protocol == "grpcs" ? 443 : 80);
    auto readTimeout = [&](absl::string_view key, int64_t& out) {
      if (std::optional<int64_t> v = getInt(node, key, path, diags_)) {
        if (*v < 1 || *v > 2147483646) {
          diags_.error(pathField(path, key), *node.get(key), "must be 1-2147483646 (ms)");
          s.ok = false;
        } else {
          out = *v;
        }
      }
    };
    readTimeout("connect_timeout", s.connect_timeout);
    readTimeout("read_timeout", s.read_timeout);
    readTimeout("write_timeout", s.write_timeout);
    if (std::optional<int64_t> r = getInt(node, "retries", path, diags_)) {
      if (*r < 0 || *r > 32767) {
        diags_.error(pathField(path, "retries"), *node.get("retries"), "must be 0-32767");
        s.ok = false;
      } else {
        s.retries = *r;
      }
    }
    s.enabled = getBool(node, "enabled", path, diags_).value_or(true);
    s.tls_verify = getBool(node, "tls_verify", path, diags_);
    for (absl::string_view f : {"client_certificate", "ca_certificates", "tls_verify_depth"}) {
      if (node.get(f) != nullptr) {
        diags_.problem(pathField(path, f), *node.get(f),
                       "not imported: Kong certificates are entities of their own, which this "
                       "importer does not read; set the cluster's tls (ca_file, certificate) "
                       "after converting");
      }
    }
    model_.services.push_back(std::move(s));
    const int index = static_cast<int>(model_.services.size()) - 1;
    if (const Node* seq = getSequence(node, "routes", path, diags_)) {
      for (size_t i = 0; i < seq->items().size(); ++i) {
        readRoute(seq->items()[i], pathIndex(pathField(path, "routes"), i), index);
      }
    }
    deferPlugins(node, path, index, -1, -1);
  }

  // Kong's pre-3.0 migration (kong/db/migrations/migrate_path_280_300.lua): a path with any
  // character outside [a-zA-Z0-9.-_~/%] was a regex, and gets "~".
  static bool looksLikeRegex(absl::string_view p) {
    for (char c : p) {
      if (!(absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_' || c == '~' || c == '/' ||
            c == '%')) {
        return true;
      }
    }
    return false;
  }

  void readRoute(const Node& node, const std::string& path, int parent) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kRouteFields, diags_);
    Route r;
    r.path = path;
    r.line = node.line();
    r.order = model_.routes.size();
    r.id = getString(node, "id", path, diags_).value_or("");
    r.name = getString(node, "name", path, diags_).value_or(r.id);
    r.service = parent;
    if (parent < 0) {
      if (std::optional<std::string> key = foreignKey(node, "service", path, diags_)) {
        r.service = findByKey(model_.services, *key);
        if (r.service < 0) {
          diags_.problem(pathField(path, "service"), *node.get("service"),
                         absl::StrCat("no service \"", *key, "\" in this file"));
          r.ok = false;
        }
      } else {
        diags_.problem(path, node,
                       "a route without a service: Kong answers its requests 503; Sluice "
                       "routes need somewhere to go");
        r.ok = false;
      }
    }
    if (r.name.empty()) {
      r.name = absl::StrCat(r.service >= 0 ? model_.services[r.service].name : "route", ".",
                            model_.routes.size());
    }
    for (const Route& other : model_.routes) {
      if (other.name == r.name) {
        diags_.error(pathField(path, "name"), node,
                     absl::StrCat("route \"", r.name, "\" is defined twice"));
        r.ok = false;
      }
    }
    if (std::optional<std::vector<std::string>> protocols =
            getStringList(node, "protocols", path, diags_)) {
      r.http = false;
      bool https = false;
      for (size_t i = 0; i < protocols->size(); ++i) {
        const std::string& p = (*protocols)[i];
        if (p == "http") {
          r.http = true;
        } else if (p == "https") {
          https = true;
        } else if (p == "grpc" || p == "grpcs") {
          r.grpc = true;
          r.http = r.http || p == "grpc";
          https = https || p == "grpcs";
        } else {
          diags_.problem(pathIndex(pathField(path, "protocols"), i), node,
                         absl::StrCat("protocol \"", p,
                                      "\" is not supported: Sluice imports HTTP and gRPC "
                                      "routes"));
          r.ok = false;
        }
      }
      if (!r.http && !https) r.ok = false;
    }
    if (std::optional<int64_t> code = getInt(node, "https_redirect_status_code", path, diags_)) {
      static const std::set<int64_t> kCodes = {426, 301, 302, 307, 308};
      if (kCodes.count(*code) == 0) {
        diags_.error(pathField(path, "https_redirect_status_code"), node,
                     "must be 426, 301, 302, 307 or 308");
      } else {
        r.https_redirect_status_code = *code;
      }
    }
    r.methods = getStringList(node, "methods", path, diags_).value_or(std::vector<std::string>{});
    for (std::string& m : r.methods) m = absl::AsciiStrToUpper(m);
    r.hosts = getStringList(node, "hosts", path, diags_).value_or(std::vector<std::string>{});
    for (size_t i = 0; i < r.hosts.size(); ++i) {
      std::string& h = r.hosts[i];
      h = absl::AsciiStrToLower(h);
      const std::string hpath = pathIndex(pathField(path, "hosts"), i);
      if (absl::EndsWith(h, ".*")) {
        diags_.problem(hpath, node,
                       absl::StrCat("\"", h,
                                    "\": Sluice matches suffix wildcards (*.example.com) only, "
                                    "not Kong's prefix wildcards"));
        r.ok = false;
      } else if (h.find(':') != std::string::npos && h[0] != '[') {
        diags_.problem(hpath, node,
                       absl::StrCat("\"", h,
                                    "\": Sluice ignores the Host header's port and can't match "
                                    "on it"));
        r.ok = false;
      } else if (h.empty() || (h != "*" && !validHostName(absl::StartsWith(h, "*.")
                                                              ? absl::string_view(h).substr(2)
                                                              : absl::string_view(h)))) {
        diags_.error(hpath, node, absl::StrCat("\"", h, "\" is not a host"));
        r.ok = false;
      }
    }
    if (const Node* headers = getMap(node, "headers", path, diags_)) {
      for (const auto& [name, values] : headers->entries()) {
        const std::string hpath = pathField(pathField(path, "headers"), name);
        if (absl::EqualsIgnoreCase(name, "host")) {
          diags_.error(hpath, values, "Kong does not take Host here: use hosts");
          r.ok = false;
          continue;
        }
        std::vector<std::string> list;
        if (values.isSequence()) {
          for (const Node& v : values.items()) {
            if (v.isScalar()) list.push_back(v.scalar());
          }
        } else if (values.isScalar()) {
          list.push_back(values.scalar());
        }
        if (list.empty()) {
          diags_.error(hpath, values, "must be a list of values");
          r.ok = false;
          continue;
        }
        r.headers.emplace_back(absl::AsciiStrToLower(name), std::move(list));
      }
    }
    if (const Node* paths = getSequence(node, "paths", path, diags_)) {
      for (size_t i = 0; i < paths->items().size(); ++i) {
        const Node& p = paths->items()[i];
        const std::string ppath = pathIndex(pathField(path, "paths"), i);
        if (!p.isScalar() || p.scalar().empty()) {
          diags_.error(ppath, p, "must be a path string");
          r.ok = false;
          continue;
        }
        std::string value = p.scalar();
        if (pre30_ && value[0] == '/' && looksLikeRegex(value)) value = "~" + value;
        if (!(value[0] == '/' || absl::StartsWith(value, "~/"))) {
          diags_.error(ppath, p, "must start with / or ~/ (as Kong)");
          r.ok = false;
          continue;
        }
        if (value[0] == '/' && value.find("//") != std::string::npos) {
          diags_.error(ppath, p, "must not contain // (as Kong)");
          r.ok = false;
          continue;
        }
        r.paths.push_back(value);
        r.path_paths.push_back(ppath);
        r.path_lines.push_back(p.line());
      }
    }
    if (std::optional<int64_t> pri = getInt(node, "regex_priority", path, diags_)) {
      r.regex_priority = *pri;
    }
    r.strip_path = getBool(node, "strip_path", path, diags_).value_or(true);
    r.preserve_host = getBool(node, "preserve_host", path, diags_).value_or(false);
    if (std::optional<std::string> ph = getString(node, "path_handling", path, diags_)) {
      if (*ph != "v0") {
        diags_.problem(
            pathField(path, "path_handling"), *node.get("path_handling"),
            absl::StrCat("\"", *ph, "\": only Kong's default path_handling v0 is imported"));
        r.ok = false;
      }
    }
    for (absl::string_view f : {"snis", "sources", "destinations"}) {
      const Node* n = node.get(f);
      if (n != nullptr && n->size() > 0) {
        diags_.problem(pathField(path, f), *n, absl::StrCat("Sluice routes don't match on ", f));
        r.ok = false;
      }
    }
    for (absl::string_view f : {"request_buffering", "response_buffering"}) {
      std::optional<bool> b = getBool(node, f, path, diags_);
      if (b.has_value() && !*b) {
        diags_.warning(
            pathField(path, f), *node.get(f),
            absl::StrCat("Sluice buffers per listener, not per route: ", f, ": false is ignored"));
      }
    }
    if (r.methods.empty() && r.hosts.empty() && r.paths.empty() && r.headers.empty() && r.ok) {
      diags_.error(path, node,
                   "a route needs at least one of methods, hosts, headers, paths (as Kong)");
      r.ok = false;
    }
    model_.routes.push_back(std::move(r));
    const int index = static_cast<int>(model_.routes.size()) - 1;
    deferPlugins(node, path, -1, index, -1);
  }

  void readPlugin(const Node& node, const std::string& path, int service, int route, int consumer) {
    if (!isMapItem(node, path)) return;
    checkKongFields(node, path, kPluginFields, diags_);
    Plugin p;
    p.path = path;
    p.line = node.line();
    p.node = &node;
    p.name = getString(node, "name", path, diags_).value_or("");
    if (p.name.empty()) {
      diags_.error(pathField(path, "name"), node, "is required");
      return;
    }
    p.enabled = getBool(node, "enabled", path, diags_).value_or(true);
    p.config = getMap(node, "config", path, diags_);
    p.config_path = pathField(path, "config");
    p.service = service;
    p.route = route;
    p.consumer = consumer;
    auto resolve = [&](absl::string_view key, int& out, auto find, absl::string_view what) {
      if (out >= 0) return;
      std::optional<std::string> k = foreignKey(node, key, path, diags_);
      if (!k) return;
      out = find(*k);
      if (out < 0) {
        diags_.problem(pathField(path, key), *node.get(key),
                       absl::StrCat("no ", what, " \"", *k, "\" in this file"));
        p.ok = false;
      }
    };
    resolve(
        "service", p.service, [&](const std::string& k) { return findByKey(model_.services, k); },
        "service");
    resolve(
        "route", p.route,
        [&](const std::string& k) {
          for (size_t i = 0; i < model_.routes.size(); ++i) {
            if (model_.routes[i].name == k || model_.routes[i].id == k) {
              return static_cast<int>(i);
            }
          }
          return -1;
        },
        "route");
    resolve(
        "consumer", p.consumer,
        [&](const std::string& k) { return findConsumer(model_.consumers, k); }, "consumer");
    // "web.rate-limiting", "users.cors", "alice.rate-limiting", "rate-limiting".
    std::string owner;
    if (p.route >= 0)
      owner = model_.routes[p.route].name;
    else if (p.service >= 0)
      owner = model_.services[p.service].name;
    if (p.consumer >= 0) {
      owner = owner.empty() ? model_.consumers[p.consumer].username
                            : absl::StrCat(owner, ".", model_.consumers[p.consumer].username);
    }
    p.label = owner.empty() ? p.name : absl::StrCat(owner, ".", p.name);
    // Kong's unique key: one plugin of a name per scope.
    for (const Plugin& other : model_.plugins) {
      if (other.name == p.name && other.service == p.service && other.route == p.route &&
          other.consumer == p.consumer) {
        diags_.error(path, node,
                     absl::StrCat("a second ", p.name, " plugin on the same ", p.scope(),
                                  " (first at ", other.path, ", line ", other.line, ")"));
        p.ok = false;
      }
    }
    model_.plugins.push_back(std::move(p));
  }

  Model& model_;
  Diagnostics& diags_;
  bool pre30_;
  std::vector<PendingPlugins> pending_plugins_;
};

// ---------------------------------------------------------------------------------------------
// Upstream paths (kong/router/utils.lua get_upstream_uri_v0).

std::string kongUpstreamUri(bool strip_path, const std::string& base, const std::string& prefix,
                            const std::string& req_uri) {
  std::string postfix;
  if (strip_path) {
    postfix = req_uri.substr(std::min(prefix.size(), req_uri.size()));
  } else {
    postfix = req_uri.substr(1);
  }
  if (base.back() == '/') {
    if (strip_path) {
      if (postfix.empty()) {
        if (base == "/") return "/";
        if (req_uri.back() == '/') return base;
        return base.substr(0, base.size() - 1);
      }
      if (postfix[0] == '/') return base.substr(0, base.size() - 1) + postfix;
      return base + postfix;
    }
    return base + req_uri.substr(1);
  }
  if (strip_path) {
    if (postfix.empty()) {
      if (req_uri.size() > 1 && req_uri.back() == '/') return base + "/";
      return base;
    }
    if (postfix[0] == '/') return base + postfix;
    return base + "/" + postfix;
  }
  if (req_uri == "/") return base;
  return base + req_uri;
}

// One Sluice route of a Kong prefix path: `exact` (RouteMatch.path) or a prefix, and the
// prefix_rewrite that gives Kong's upstream path for every request it matches.
struct PathRoute {
  bool exact = false;
  std::string match;
  std::string rewrite;  // empty: none needed
};

// Kong's prefix P becomes: the exact path P; P + "/" as a prefix (P not ending in "/"); P as a
// prefix. Each has a constant rewrite (checked with sample suffixes), so Sluice's "replace the
// matched prefix" gives Kong's v0 join exactly.
std::optional<std::vector<PathRoute>> prefixRoutes(const std::string& p, bool strip,
                                                   const std::string& base) {
  std::vector<PathRoute> out;
  auto add = [&](bool exact, const std::string& match) -> bool {
    PathRoute r;
    r.exact = exact;
    r.match = match;
    if (exact) {
      r.rewrite = kongUpstreamUri(strip, base, p, match);
    } else {
      // A suffix that does not start with "/" (merge_slashes collapses "//").
      const std::string sample = "x";
      std::string up = kongUpstreamUri(strip, base, p, match + sample);
      if (!absl::EndsWith(up, sample)) return false;
      r.rewrite = up.substr(0, up.size() - sample.size());
      for (const std::string s : {"ab/c", "a/", "a.b"}) {
        if (kongUpstreamUri(strip, base, p, match + s) != r.rewrite + s) return false;
      }
    }
    if (r.rewrite == match || r.rewrite.empty() || r.rewrite[0] != '/') {
      if (r.rewrite.empty() || r.rewrite[0] != '/') return false;
      r.rewrite.clear();
    }
    out.push_back(r);
    return true;
  };
  if (!add(true, p)) return std::nullopt;
  if (p.back() != '/' && !add(false, p + "/")) return std::nullopt;
  if (!add(false, p)) return std::nullopt;
  // The P/ route is needed only when the P route would rewrite P/x otherwise.
  if (out.size() == 3) {
    const PathRoute& slash = out[1];
    const PathRoute& plain = out[2];
    const std::string slash_to = slash.rewrite.empty() ? p + "/" : slash.rewrite;
    const std::string plain_to = plain.rewrite.empty() ? p : plain.rewrite;
    if (slash_to == plain_to + "/") out.erase(out.begin() + 1);
  }
  // The exact route is needed only when the prefix route would send P itself elsewhere.
  const PathRoute& prefix = out.back();
  if ((prefix.rewrite.empty() ? p : prefix.rewrite) ==
      (out[0].rewrite.empty() ? p : out[0].rewrite)) {
    out.erase(out.begin());
  }
  return out;
}

// Kong 3.0's route priority (kong/router/atc_compat.lua route_priority), as a tuple compared
// in order, larger first.
using Priority = std::tuple<int, int, int, int, int64_t, size_t>;

Priority routePriority(const Route& r) {
  int weight = 0;
  if (!r.methods.empty()) ++weight;
  if (!r.hosts.empty()) ++weight;
  if (!r.paths.empty()) ++weight;
  if (!r.headers.empty()) ++weight;
  bool plain_host_only = !r.hosts.empty();
  for (const std::string& h : r.hosts) {
    if (h.find('*') != std::string::npos) plain_host_only = false;
  }
  bool regex = false;
  size_t max_len = 0;
  for (const std::string& p : r.paths) {
    if (p[0] == '~') {
      regex = true;
    } else {
      max_len = std::max(max_len, p.size());
    }
  }
  return {weight,
          plain_host_only ? 1 : 0,
          regex ? 1 : 0,
          static_cast<int>(std::min<size_t>(r.headers.size(), 255)),
          regex ? r.regex_priority : 0,
          max_len};
}

// Kong's regexes are PCRE; Sluice's RE2. Kong's named groups `(?<n>` become `(?P<n>`; what RE2
// can't do (lookaround, backreferences, possessive quantifiers, atomic groups) is an error.
std::optional<std::string> translateRegex(const std::string& pcre, std::string& error) {
  std::string out;
  for (size_t i = 0; i < pcre.size(); ++i) {
    if (pcre[i] == '\\' && i + 1 < pcre.size()) {
      out += pcre.substr(i, 2);
      ++i;
      continue;
    }
    if (pcre.compare(i, 3, "(?<") == 0 && i + 3 < pcre.size() && pcre[i + 3] != '=' &&
        pcre[i + 3] != '!') {
      out += "(?P<";
      i += 2;
      continue;
    }
    out += pcre[i];
  }
  RE2::Options opts;
  opts.set_log_errors(false);
  RE2 re(out, opts);
  if (!re.ok()) {
    error = re.error();
    return std::nullopt;
  }
  return out;
}

std::string quoteMeta(const std::string& s) { return RE2::QuoteMeta(s); }

// ---------------------------------------------------------------------------------------------
// The conversion.

class Converter {
 public:
  Converter(Model& model, const Options& options, StaticResources& out, Diagnostics& diags)
      : m_(model), options_(options), out_(out), diags_(diags) {}

  void run() {
    for (Service& s : m_.services) convertService(s);
    for (const Plugin& p : m_.plugins) {
      if (p.name == "cors" && p.enabled && p.ok) m_.any_cors = true;
    }
    m_.results.resize(m_.plugins.size());
    for (size_t i = 0; i < m_.plugins.size(); ++i) {
      if (!m_.plugins[i].ok || !m_.plugins[i].enabled) continue;
      convertPlugin(m_, i, options_, out_, diags_);
    }
    warnUnusedUpstreams();  // after the plugins: a canary may balance over one
    checkConsumerScopes();
    buildRoutes();
    buildListener();
    warnUnusedCredentials();
  }

 private:
  void convertService(Service& s) {
    // A disabled service gets no cluster (its routes are not imported, with a warning).
    if (!s.ok || !s.enabled) return;
    Cluster c;
    c.set_name(s.name);
    s.cluster = s.name;
    setMilliseconds(c.mutable_connect_timeout(), s.connect_timeout);
    const int upstream = findByKey(m_.upstreams, s.host);
    bool dns = false;
    if (upstream >= 0) {
      Upstream& u = m_.upstreams[upstream];
      u.used = true;
      for (const Target& t : u.targets) {
        if (t.weight == 0) continue;  // Kong: a target of weight 0 is disabled
        auto* e = c.add_endpoints();
        e->set_address(t.host);
        e->set_port(t.port);
        e->set_weight(t.weight);
        if (!isIpAddress(t.host)) dns = true;
      }
      if (c.endpoints_size() == 0) {
        diags_.problem(pathField(u.path, "targets"), u.line,
                       absl::StrCat("upstream \"", u.name, "\" (service \"", s.name,
                                    "\") has no target with a weight above 0: Kong answers "
                                    "503; Sluice needs an endpoint"));
        s.ok = false;
        return;
      }
      convertUpstreamSettings(u, c);
      // Without preserve_host Kong sends the upstream's host_header, else the chosen target's
      // host (and port when not the protocol's); Sluice sends one Host per route.
      const uint32_t default_port = s.protocol == "https" || s.protocol == "grpcs" ? 443u : 80u;
      std::set<std::string> hosts;
      for (const auto& e : c.endpoints()) {
        hosts.insert(e.port() == default_port ? e.address()
                                              : absl::StrCat(e.address(), ":", e.port()));
      }
      std::optional<std::string> host_header = getString(*u.node, "host_header", u.path, diags_);
      if (host_header && !host_header->empty()) {
        s.upstream_host = *host_header;
      } else {
        const auto& e = c.endpoints(0);
        s.upstream_host =
            e.port() == default_port ? e.address() : absl::StrCat(e.address(), ":", e.port());
        if (hosts.size() > 1) {
          diags_.warning(
              u.path, u.line,
              absl::StrCat("without preserve_host Kong sends the chosen target's "
                           "host as Host; Sluice sends one Host for every target: \"",
                           s.upstream_host, "\" (set the upstream's host_header to choose it)"));
        }
      }
    } else {
      auto* e = c.add_endpoints();
      e->set_address(s.host);
      e->set_port(s.port);
      dns = !isIpAddress(s.host);
    }
    if (dns) c.set_type(Cluster::STRICT_DNS);
    if (s.protocol == "grpc" || s.protocol == "grpcs") c.set_protocol(Cluster::HTTP2);
    if (s.protocol == "https" || s.protocol == "grpcs") {
      auto* tls = c.mutable_tls();
      if (!isIpAddress(s.host)) tls->set_sni(s.host);
      if (!s.tls_verify.value_or(false)) {
        diags_.warning(s.path, s.line,
                       absl::StrCat("Kong does not verify the certificate of an https upstream "
                                    "unless tls_verify is true; Sluice does (against the "
                                    "system's CAs",
                                    isIpAddress(s.host) ? ")" : absl::StrCat(", for ", s.host, ")"),
                                    ": set the cluster's tls.ca_file for a private CA"));
      }
    }
    if (s.retries > 10) {
      diags_.warning(pathField(s.path, "retries"), s.line,
                     absl::StrCat(s.retries, " retries: Sluice retries at most 10 times"));
    }
    *out_.add_clusters() = std::move(c);
  }

  void convertUpstreamSettings(const Upstream& u, Cluster& c) {
    const Node& node = *u.node;
    const std::string& path = u.path;
    std::string algorithm = getString(node, "algorithm", path, diags_).value_or("");
    std::string hash_on = getString(node, "hash_on", path, diags_).value_or("none");
    if (algorithm.empty()) algorithm = hash_on != "none" ? "consistent-hashing" : "round-robin";
    if (algorithm == "round-robin") {
      c.set_lb_policy(Cluster::ROUND_ROBIN);
    } else if (algorithm == "least-connections") {
      c.set_lb_policy(Cluster::LEAST_REQUEST);
    } else if (algorithm == "consistent-hashing") {
      c.set_lb_policy(Cluster::RING_HASH);
      auto* ring = c.mutable_ring_hash();
      if (hash_on == "ip" || hash_on == "none") {
        ring->set_hash_on(sluice::config::v1::RingHash::SOURCE_IP);
        if (hash_on == "none") {
          diags_.warning(pathField(path, "hash_on"), u.line,
                         "consistent-hashing with hash_on none: Kong hashes nothing (every "
                         "request goes to one target); Sluice hashes the client IP");
        }
      } else if (hash_on == "header") {
        std::optional<std::string> h = getString(node, "hash_on_header", path, diags_);
        if (!h || h->empty()) {
          diags_.error(pathField(path, "hash_on_header"), u.line,
                       "is required with hash_on: header");
        } else {
          ring->set_hash_on(sluice::config::v1::RingHash::HEADER);
          ring->set_header_name(*h);
        }
      } else {
        diags_.problem(pathField(path, "hash_on"), *node.get("hash_on"),
                       absl::StrCat("hash_on: ", hash_on,
                                    ": Sluice's ring hash keys on the client IP or a header "
                                    "only"));
      }
      const Node* fb = node.get("hash_fallback");
      if (fb != nullptr && fb->scalar() != "none") {
        diags_.warning(pathField(path, "hash_fallback"), *fb,
                       "Sluice falls back to the client IP when the hashed header is missing");
      }
    } else {
      diags_.error(pathField(path, "algorithm"), *node.get("algorithm"),
                   absl::StrCat("\"", algorithm,
                                "\": Kong takes round-robin, consistent-hashing, "
                                "least-connections"));
    }

    if (const Node* hc = getMap(node, "healthchecks", path, diags_)) {
      convertHealthchecks(*hc, pathField(path, "healthchecks"), c);
    }
  }

  void convertHealthchecks(const Node& hc, const std::string& path, Cluster& c) {
    checkKongFields(hc, path, {"active", "passive", "threshold"}, diags_);
    if (const Node* t = hc.get("threshold")) {
      std::optional<double> v = t->asDouble();
      if (v && *v != 0) {
        diags_.warning(pathField(path, "threshold"), *t,
                       "Sluice has no health threshold for a whole upstream (it has a panic "
                       "mode): ignored");
      }
    }
    if (const Node* active = getMap(hc, "active", path, diags_)) {
      const std::string apath = pathField(path, "active");
      checkKongFields(*active, apath,
                      {"type", "timeout", "concurrency", "http_path", "https_verify_certificate",
                       "https_sni", "headers", "healthy", "unhealthy"},
                      diags_);
      const Node* healthy = getMap(*active, "healthy", apath, diags_);
      const Node* unhealthy = getMap(*active, "unhealthy", apath, diags_);
      int64_t hinterval = 0, uinterval = 0, successes = 0, failures = 0;
      std::vector<uint32_t> statuses;
      if (healthy != nullptr) {
        const std::string hpath = pathField(apath, "healthy");
        checkKongFields(*healthy, hpath, {"interval", "http_statuses", "successes"}, diags_);
        hinterval = secondsToMs(getNumber(*healthy, "interval", hpath, diags_).value_or(0));
        successes = getInt(*healthy, "successes", hpath, diags_).value_or(0);
        if (const Node* st = getSequence(*healthy, "http_statuses", hpath, diags_)) {
          for (const Node& s : st->items()) {
            if (std::optional<int64_t> v = s.asInt(); v && *v >= 100 && *v <= 999) {
              statuses.push_back(static_cast<uint32_t>(*v));
            }
          }
        }
      }
      if (unhealthy != nullptr) {
        const std::string upath = pathField(apath, "unhealthy");
        checkKongFields(*unhealthy, upath,
                        {"http_failures", "tcp_failures", "timeouts", "interval", "http_statuses"},
                        diags_);
        uinterval = secondsToMs(getNumber(*unhealthy, "interval", upath, diags_).value_or(0));
        for (absl::string_view f : {"http_failures", "tcp_failures", "timeouts"}) {
          failures = std::max(failures, getInt(*unhealthy, f, upath, diags_).value_or(0));
        }
        if (const Node* st = unhealthy->get("http_statuses")) {
          diags_.warning(pathField(upath, "http_statuses"), *st,
                         "Sluice counts every status outside healthy.http_statuses as a "
                         "failure");
        }
      }
      // Kong runs active checks when an interval is above 0.
      if (hinterval > 0 || uinterval > 0) {
        auto* h = c.mutable_health_check();
        const std::string type = getString(*active, "type", apath, diags_).value_or("http");
        if (type == "tcp") {
          h->set_type(sluice::config::v1::HealthCheck::TCP);
        } else if (type == "http" || type == "https") {
          h->set_http_path(getString(*active, "http_path", apath, diags_).value_or("/"));
          if (type == "https" && !c.has_tls()) {
            diags_.warning(pathField(apath, "type"), *active,
                           "https checks of a cleartext service: Sluice checks with the "
                           "cluster's own protocol (cleartext)");
          }
        } else {
          diags_.problem(pathField(apath, "type"), *active,
                         absl::StrCat("type ", type, ": Sluice checks with HTTP or TCP"));
        }
        if (hinterval > 0 && uinterval > 0 && hinterval != uinterval) {
          diags_.warning(
              apath, *active,
              absl::StrCat("Sluice checks every endpoint at one interval: ",
                           durationText(std::min(hinterval, uinterval)), " (Kong: healthy ",
                           durationText(hinterval), ", unhealthy ", durationText(uinterval), ")"));
        }
        const int64_t interval = hinterval > 0 && uinterval > 0 ? std::min(hinterval, uinterval)
                                                                : std::max(hinterval, uinterval);
        setMilliseconds(h->mutable_interval(), interval);
        const double timeout = getNumber(*active, "timeout", apath, diags_).value_or(1);
        setMilliseconds(h->mutable_timeout(), std::max<int64_t>(1, secondsToMs(timeout)));
        if (successes > 0)
          h->set_healthy_threshold(static_cast<uint32_t>(std::min<int64_t>(successes, 1000)));
        if (failures > 0)
          h->set_unhealthy_threshold(static_cast<uint32_t>(std::min<int64_t>(failures, 1000)));
        if (type != "tcp") {
          if (statuses.empty()) statuses = {200, 302};  // Kong's default
          for (uint32_t s : statuses) h->add_expected_statuses(s);
        }
        if (const Node* sni = active->get("https_sni")) {
          diags_.warning(pathField(apath, "https_sni"), *sni, "checks use the cluster's tls.sni");
        }
        if (const Node* headers = active->get("headers")) {
          diags_.problem(pathField(apath, "headers"), *headers,
                         "Sluice's health checks send no custom headers");
        }
      }
    }
    if (const Node* passive = getMap(hc, "passive", path, diags_)) {
      const std::string ppath = pathField(path, "passive");
      checkKongFields(*passive, ppath, {"type", "healthy", "unhealthy"}, diags_);
      if (const Node* healthy = getMap(*passive, "healthy", ppath, diags_)) {
        checkKongFields(*healthy, pathField(ppath, "healthy"), {"http_statuses", "successes"},
                        diags_);
      }
      if (const Node* unhealthy = getMap(*passive, "unhealthy", ppath, diags_)) {
        const std::string upath = pathField(ppath, "unhealthy");
        checkKongFields(*unhealthy, upath,
                        {"http_failures", "tcp_failures", "timeouts", "http_statuses"}, diags_);
        int64_t failures = 0;
        for (absl::string_view f : {"http_failures", "tcp_failures", "timeouts"}) {
          failures = std::max(failures, getInt(*unhealthy, f, upath, diags_).value_or(0));
        }
        if (failures > 0) {
          auto* od = c.mutable_outlier_detection();
          od->set_consecutive_5xx(static_cast<uint32_t>(std::min<int64_t>(failures, 1000)));
          diags_.warning(ppath, *passive,
                         absl::StrCat("passive checks become outlier detection: an endpoint "
                                      "with ",
                                      failures,
                                      " consecutive failures (5xx, connect failures, timeouts) "
                                      "is ejected for 30s and more (Kong keeps it out until an "
                                      "active check or an operator brings it back)"));
        }
      }
    }
  }

  void warnUnusedUpstreams() {
    for (const Upstream& u : m_.upstreams) {
      if (!u.used) {
        diags_.warning(u.path, u.line,
                       absl::StrCat("no service has host \"", u.name,
                                    "\": Kong never balances over this upstream; not imported"));
      }
    }
  }

  // Plugins scoped to a consumer: Sluice picks filter configs per route, not per consumer.
  void checkConsumerScopes() {
    for (size_t i = 0; i < m_.plugins.size(); ++i) {
      const Plugin& p = m_.plugins[i];
      // rate-limiting: the rate_limit filter's consumer_policies.
      if (p.consumer < 0 || !m_.results[i].ok || p.name == "rate-limiting") continue;
      diags_.problem(p.path, p.line,
                     absl::StrCat(p.name,
                                  " on a consumer: Sluice applies this plugin per route, not "
                                  "per consumer (only rate-limiting can be scoped to a "
                                  "consumer)"));
      m_.results[i].ok = false;
    }
  }

  // The plugin of `name` that applies to route `r`: route > service > global (consumer scopes
  // are refused above). -1: none.
  int effective(const std::string& name, size_t r) const {
    int by_service = -1, global = -1;
    const Route& route = m_.routes[r];
    for (size_t i = 0; i < m_.plugins.size(); ++i) {
      const Plugin& p = m_.plugins[i];
      if (p.name != name || !p.enabled || !m_.results[i].ok || p.consumer >= 0) continue;
      if (p.route >= 0) {
        if (p.route == static_cast<int>(r) && (p.service < 0 || p.service == route.service)) {
          return static_cast<int>(i);
        }
      } else if (p.service >= 0) {
        if (p.service == route.service) by_service = static_cast<int>(i);
      } else {
        global = static_cast<int>(i);
      }
    }
    return by_service >= 0 ? by_service : global;
  }

  int globalPlugin(const std::string& name) const {
    for (size_t i = 0; i < m_.plugins.size(); ++i) {
      const Plugin& p = m_.plugins[i];
      if (p.name == name && p.enabled && m_.results[i].ok && p.route < 0 && p.service < 0 &&
          p.consumer < 0) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  // The AuthPolicy for a set of auth plugins (made once per distinct set).
  std::string authPolicy(const std::vector<int>& plugins, const Route& route) {
    std::string key = absl::StrJoin(plugins, ",");
    auto it = auth_policies_.find(key);
    if (it != auth_policies_.end()) return it->second;
    sluice::config::v1::AuthPolicy policy;
    std::vector<std::string> labels;
    bool anonymous_all = true;
    for (int i : plugins) {
      const PluginResult& r = m_.results[i];
      policy.MergeFrom(r.auth);
      labels.push_back(m_.plugins[i].label);
      anonymous_all = anonymous_all && r.auth_anonymous;
    }
    if (plugins.size() > 1 && !anonymous_all) {
      diags_.warning(route.path, route.line,
                     absl::StrCat("route \"", route.name, "\" has ", plugins.size(),
                                  " auth plugins without `anonymous`: Kong requires every one "
                                  "of their credentials; Sluice accepts any one of them"));
    }
    policy.set_allow_anonymous(anonymous_all);
    std::string name = absl::StrJoin(labels, "+");
    policy.set_name(name);
    const bool keys = policy.has_key_auth();
    const bool jwt_consumers = policy.has_jwt() && policy.jwt().has_consumer_credentials();
    for (const Consumer& c : m_.consumers) {
      sluice::config::v1::Consumer consumer = c.proto;
      if (!keys) consumer.clear_keyauth_credentials();
      if (!jwt_consumers) consumer.clear_jwt_credentials();
      *policy.add_consumers() = std::move(consumer);
    }
    if (policy.has_jwt() && policy.jwt().providers_size() == 0) {
      bool any = false;
      for (const auto& c : policy.consumers()) any = any || c.jwt_credentials_size() > 0;
      if (!any) {
        // Sluice's jwt needs a credential to check tokens against; Kong would refuse every
        // token.
        policy.clear_jwt();
        diags_.warning(route.path, route.line,
                       absl::StrCat("route \"", route.name,
                                    "\": jwt with no consumer jwt_secrets: Kong refuses every "
                                    "token; so does Sluice"));
        if (!policy.has_key_auth() && !policy.allow_anonymous()) {
          policy.mutable_key_auth()->add_key_names("x-kong-jwt-unusable");
        }
      }
    }
    *out_.add_auth_policies() = policy;
    auth_policies_[key] = name;
    return name;
  }

  void setFilterConfig(sluice::config::v1::Route& route, const std::string& filter,
                       const google::protobuf::Struct& config) {
    (*route.mutable_filter_config())[filter] = config;
  }

  google::protobuf::Struct disabled() {
    google::protobuf::Struct s;
    (*s.mutable_fields())["disabled"] = boolValue(true);
    return s;
  }

  // Per-route settings of one Kong route, shared by each Sluice route made from it.
  struct RouteSettings {
    std::map<std::string, google::protobuf::Struct> filter_config;
    std::optional<PluginResult::Canary> canary;
    bool ok = true;
  };

  RouteSettings routeSettings(size_t r) {
    RouteSettings s;
    const Route& route = m_.routes[r];
    // Filters configured by one plugin each (listener config = the global plugin's).
    static const std::vector<std::pair<std::string, std::string>> kSimple = {
        {"cors", "cors"},         {"ip-restriction", "ip_restriction"},
        {"acl", "acl"},           {"response-transformer", "response_transformer"},
        {"proxy-cache", "cache"}, {"http-log", "http_log"}};
    for (const auto& [plugin, filter] : kSimple) {
      if (!filters_.count(filter)) continue;
      const int e = effective(plugin, r);
      const int g = globalPlugin(plugin);
      if (e >= 0 && e == g) continue;  // the listener's config
      if (e >= 0) {
        s.filter_config[filter] = m_.results[e].config;
      } else {
        // response_transformer's "off" is a config without rules.
        s.filter_config[filter] =
            filter == "response_transformer" ? google::protobuf::Struct() : disabled();
      }
    }
    // request_transformer: the plugin's config, plus correlation-id's header.
    if (filters_.count("request_transformer")) {
      const int e = effective("request-transformer", r);
      const int c = effective("correlation-id", r);
      const int ge = globalPlugin("request-transformer");
      const int gc = globalPlugin("correlation-id");
      if (!(e == ge && c == gc && listener_rt_set_)) {
        s.filter_config["request_transformer"] = requestTransformer(e, c);
      }
    }
    // auth: the effective key-auth, jwt and oauth2 plugins, as one policy.
    if (filters_.count("auth")) {
      std::vector<int> auth;
      for (const char* name : {"key-auth", "jwt", "oauth2"}) {
        const int e = effective(name, r);
        if (e >= 0) auth.push_back(e);
      }
      google::protobuf::Struct cfg;
      if (auth.empty()) {
        cfg = disabled();
      } else {
        (*cfg.mutable_fields())["policy"] = stringValue(authPolicy(auth, route));
      }
      s.filter_config["auth"] = cfg;
    }
    if (filters_.count("rate_limit")) {
      const int e = effective("rate-limiting", r);
      google::protobuf::Struct cfg;
      if (e < 0) {
        cfg = disabled();
      } else {
        (*cfg.mutable_fields())["policy"] = stringValue(m_.results[e].rate_limit_policy);
      }
      // Kong's consumer scopes: route+consumer > service+consumer > consumer > the above.
      google::protobuf::Struct consumers;
      for (size_t c = 0; c < m_.consumers.size(); ++c) {
        int best = -1, rank = 0;
        for (size_t i = 0; i < m_.plugins.size(); ++i) {
          const Plugin& p = m_.plugins[i];
          if (p.name != "rate-limiting" || p.consumer != static_cast<int>(c) || !p.enabled ||
              !m_.results[i].ok) {
            continue;
          }
          int k = 0;
          if (p.route >= 0) {
            k = p.route == static_cast<int>(r) ? 3 : 0;
          } else if (p.service >= 0) {
            k = p.service == route.service ? 2 : 0;
          } else {
            k = 1;
          }
          if (k > rank) {
            rank = k;
            best = static_cast<int>(i);
          }
        }
        if (best >= 0) {
          (*consumers.mutable_fields())[m_.consumers[c].username] =
              stringValue(m_.results[best].rate_limit_policy);
        }
      }
      if (!consumers.fields().empty()) {
        *(*cfg.mutable_fields())["consumer_policies"].mutable_struct_value() = consumers;
      }
      s.filter_config["rate_limit"] = cfg;
    }
    const int canary = effective("canary", r);
    if (canary >= 0) s.canary = m_.results[canary].canary;
    return s;
  }

  google::protobuf::Struct requestTransformer(int rt, int correlation) {
    google::protobuf::Struct cfg;
    if (rt >= 0) cfg = m_.results[rt].config;
    if (correlation >= 0 && !m_.results[correlation].correlation_header.empty()) {
      auto& add = *(*cfg.mutable_fields())["add"].mutable_struct_value();
      auto* headers = (*add.mutable_fields())["headers"].mutable_list_value();
      headers->add_values()->set_string_value(
          absl::StrCat(m_.results[correlation].correlation_header, ":$request_id"));
    }
    return cfg;
  }

  // Which filters the chain needs, in Kong's plugin order.
  void chooseFilters() {
    for (size_t i = 0; i < m_.plugins.size(); ++i) {
      if (!m_.plugins[i].enabled || !m_.results[i].ok) continue;
      const std::string& f = m_.results[i].filter;
      if (!f.empty()) filters_.insert(f);
    }
  }

  void buildRoutes() {
    chooseFilters();
    // Regex paths whose upstream path Sluice builds with request_transformer (emitRegex).
    for (const Route& r : m_.routes) {
      if (!r.ok || r.service < 0 || !r.http) continue;
      const bool rewritten = r.strip_path || m_.services[r.service].base != "/";
      for (const std::string& p : r.paths) {
        if (p[0] == '~' && rewritten) filters_.insert("request_transformer");
      }
    }
    const int ge = globalPlugin("request-transformer");
    const int gc = globalPlugin("correlation-id");
    listener_rt_set_ = ge >= 0 || gc >= 0;

    // The routes of each virtual host: Kong matches every route against every request; Sluice
    // picks a virtual host by Host first. So each host's virtual host holds the routes of that
    // host, of the wildcards that cover it, and the routes without hosts, in Kong's order.
    std::vector<size_t> order;
    for (size_t i = 0; i < m_.routes.size(); ++i) {
      const Route& r = m_.routes[i];
      if (!r.ok || r.service < 0 || !m_.services[r.service].ok) continue;
      if (!m_.services[r.service].enabled) {
        diags_.warning(r.path, r.line,
                       absl::StrCat("service \"", m_.services[r.service].name,
                                    "\" is disabled (enabled: false): Kong does not route to "
                                    "it; route not imported"));
        continue;
      }
      order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return routePriority(m_.routes[a]) > routePriority(m_.routes[b]);
    });
    std::vector<std::string> domains;
    for (size_t i : order) {
      for (const std::string& h : m_.routes[i].hosts) {
        if (h == "*") continue;
        if (std::find(domains.begin(), domains.end(), h) == domains.end()) domains.push_back(h);
      }
    }
    auto covers = [](const std::string& pattern, const std::string& domain) {
      if (pattern == domain || pattern == "*") return true;
      if (absl::StartsWith(pattern, "*.")) {
        const std::string suffix = pattern.substr(1);  // ".example.com"
        if (absl::StartsWith(domain, "*.")) {
          return absl::EndsWith(domain.substr(1), suffix);
        }
        return domain.size() > suffix.size() && absl::EndsWith(domain, suffix);
      }
      return false;
    };
    auto* table = out_.add_route_tables();
    table->set_name("kong");
    std::map<size_t, RouteSettings> settings;
    for (size_t i : order) settings[i] = routeSettings(i);
    auto fill = [&](sluice::config::v1::VirtualHost* vh, const std::string& domain) {
      for (size_t i : order) {
        const Route& r = m_.routes[i];
        bool applies = r.hosts.empty();
        for (const std::string& h : r.hosts) applies = applies || covers(h, domain);
        if (!applies) continue;
        emitRoute(vh, i, settings[i]);
      }
    };
    for (const std::string& d : domains) {
      auto* vh = table->add_virtual_hosts();
      vh->set_name(d);
      vh->add_domains(d);
      fill(vh, d);
      addNoRoute(vh);
    }
    auto* any = table->add_virtual_hosts();
    any->set_name("default");
    any->add_domains("*");
    for (size_t i : order) {
      const Route& r = m_.routes[i];
      bool star = r.hosts.empty();
      for (const std::string& h : r.hosts) star = star || h == "*";
      if (star) emitRoute(any, i, settings[i]);
    }
    addNoRoute(any);
  }

  // Kong's answer to a request no route matches, as the last route of each virtual host: a
  // 404 that no plugin touches (the listener's filter configs stand in for routes and must not
  // refuse or cache it), except http-log, which logs every request in Kong.
  void addNoRoute(sluice::config::v1::VirtualHost* vh) {
    auto* route = vh->add_routes();
    route->set_name("kong-no-route");
    route->mutable_match()->set_prefix("/");
    auto* d = route->mutable_direct_response();
    d->set_status(404);
    d->set_body("{\"message\":\"no Route matched with those values\"}");
    d->set_content_type("application/json");
    disableFilters(*route);
  }

  // Every filter off on `route` (a reply Kong makes before its plugins run), except a global
  // http-log: Kong logs every request.
  void disableFilters(sluice::config::v1::Route& route) {
    route.clear_filter_config();
    for (const std::string& f : filters_) {
      if (f == "http_log" && globalPlugin("http-log") >= 0) continue;
      (*route.mutable_filter_config())[f] =
          f == "request_transformer" || f == "response_transformer" ? google::protobuf::Struct()
                                                                    : disabled();
    }
  }

  void emitRoute(sluice::config::v1::VirtualHost* vh, size_t index, const RouteSettings& s) {
    const Route& r = m_.routes[index];
    const Service& svc = m_.services[r.service];
    auto base = [&]() {
      sluice::config::v1::Route out;
      out.set_name(r.name);
      auto* match = out.mutable_match();
      for (const std::string& m : r.methods) match->add_methods(m);
      for (const auto& [name, values] : r.headers) {
        auto* h = match->add_headers();
        h->set_name(name);
        // Kong compares lower-cased values: exact, or `~*` regexes.
        std::vector<std::string> alternatives;
        for (const std::string& v : values) {
          if (absl::StartsWith(v, "~*")) {
            // Kong searches the value (not anchored); Sluice's regex must match all of it.
            alternatives.push_back(absl::StrCat(".*(?:", v.substr(2), ").*"));
          } else {
            alternatives.push_back(quoteMeta(absl::AsciiStrToLower(v)));
          }
        }
        h->set_regex(absl::StrCat("(?i)(?:", absl::StrJoin(alternatives, "|"), ")"));
      }
      for (const auto& [filter, config] : s.filter_config) {
        (*out.mutable_filter_config())[filter] = config;
      }
      if (!r.http) {
        // https-only route on Sluice's cleartext listener: Kong's answer to plain http, which
        // Kong's router gives before any plugin runs.
        disableFilters(out);
        if (r.https_redirect_status_code == 426) {
          auto* d = out.mutable_direct_response();
          d->set_status(426);
          d->set_body("{\"message\":\"Please use HTTPS protocol\"}");
          d->set_content_type("application/json");
        } else {
          auto* red = out.mutable_redirect();
          red->set_scheme_redirect("https");
          red->set_response_code(static_cast<uint32_t>(r.https_redirect_status_code));
        }
        return out;
      }
      auto* action = out.mutable_route();
      if (s.canary && s.canary->percentage > 0) {
        auto* wc = action->mutable_weighted_clusters();
        if (s.canary->percentage < 100) {
          auto* a = wc->add_clusters();
          a->set_name(svc.cluster);
          a->set_weight(100 - s.canary->percentage);
        }
        auto* b = wc->add_clusters();
        b->set_name(s.canary->cluster);
        b->set_weight(s.canary->percentage);
        wc->set_hash_on(s.canary->hash_on);
        wc->set_hash_key(s.canary->hash_key);
        if (wc->clusters_size() > 1) wc->set_canary_header(s.canary->canary_header);
      } else {
        action->set_cluster(svc.cluster);
      }
      if (!r.preserve_host) {
        const bool default_port =
            svc.port == (svc.protocol == "https" || svc.protocol == "grpcs" ? 443u : 80u);
        // Kong sends the service host (an upstream's: see convertService).
        action->set_host_rewrite(!svc.upstream_host.empty() ? svc.upstream_host
                                 : default_port             ? svc.host
                                                : absl::StrCat(svc.host, ":", svc.port));
      }
      setMilliseconds(action->mutable_timeout(), std::max(svc.read_timeout, svc.write_timeout));
      auto* retry = action->mutable_retry_policy();
      retry->add_retry_on("connect-failure");
      retry->add_retry_on("reset");
      retry->set_num_retries(static_cast<uint32_t>(std::min<int64_t>(svc.retries, 10)));
      return out;
    };
    // Regex paths first (Kong tries them first within a route), then prefixes, longest first.
    std::vector<size_t> idx(r.paths.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      const bool ra = r.paths[a][0] == '~', rb = r.paths[b][0] == '~';
      if (ra != rb) return ra;
      return !ra && r.paths[a].size() > r.paths[b].size();
    });
    // A request-transformer's replace.uri sets the whole upstream path in Kong: no rewrite of
    // the router's then (Sluice's router would apply it to the replaced path).
    uri_replaced_ = false;
    auto rt = s.filter_config.find("request_transformer");
    const auto& listener_rt = requestTransformer(globalPlugin("request-transformer"), -1);
    const google::protobuf::Struct& rtc = rt != s.filter_config.end() ? rt->second : listener_rt;
    auto replace = rtc.fields().find("replace");
    if (replace != rtc.fields().end() && replace->second.struct_value().fields().count("uri") > 0) {
      uri_replaced_ = true;
    }
    if (r.paths.empty()) {
      emitPrefix(vh, base, r, svc, "/", r.path, r.line);
      return;
    }
    for (size_t i : idx) {
      const std::string& p = r.paths[i];
      if (p[0] == '~') {
        emitRegex(vh, base, r, svc, p.substr(1), r.path_paths[i], r.path_lines[i]);
      } else {
        emitPrefix(vh, base, r, svc, p, r.path_paths[i], r.path_lines[i]);
      }
    }
  }

  template <class Base>
  void emitPrefix(sluice::config::v1::VirtualHost* vh, Base& base, const Route& r,
                  const Service& svc, const std::string& p, const std::string& path, int line) {
    if (!r.http) {
      auto out = base();
      out.mutable_match()->set_prefix(p);
      *vh->add_routes() = out;
      return;
    }
    std::optional<std::vector<PathRoute>> parts = prefixRoutes(p, r.strip_path, svc.base);
    if (!parts) {
      diags_.error(path, line,
                   absl::StrCat("can't express Kong's upstream path for \"", p,
                                "\" with service path \"", svc.base, "\""));
      return;
    }
    for (const PathRoute& pr : *parts) {
      auto out = base();
      if (pr.exact) {
        out.mutable_match()->set_path(pr.match);
      } else {
        out.mutable_match()->set_prefix(pr.match);
      }
      if (!pr.rewrite.empty() && out.has_route() && !uri_replaced_)
        out.mutable_route()->set_prefix_rewrite(pr.rewrite);
      *vh->add_routes() = out;
    }
  }

  template <class Base>
  void emitRegex(sluice::config::v1::VirtualHost* vh, Base& base, const Route& r,
                 const Service& svc, const std::string& pcre, const std::string& path, int line) {
    std::string error;
    std::optional<std::string> re = translateRegex(pcre, error);
    if (!re) {
      if (reported_regex_.insert(path).second) {
        diags_.problem(path, line,
                       absl::StrCat("Kong's regex (PCRE) \"", pcre,
                                    "\" can't be used by Sluice (RE2): ", error));
      }
      return;
    }
    auto out = base();
    // Kong anchors regex paths at the start; Sluice's regex must match the whole path.
    out.mutable_match()->set_regex(absl::StrCat("(?:", *re, ").*"));
    if (!r.http || uri_replaced_ || (!r.strip_path && svc.base == "/")) {
      // The path goes up as it came (or as replace.uri makes it).
      *vh->add_routes() = out;
      return;
    }
    // Kong's upstream path from what the regex matched: a request_transformer's replace.uri
    // with captures of the route's regex (the router's prefix_rewrite replaces a regex route's
    // whole path).
    if (r.strip_path) {
      if (svc.base != "/") {
        if (reported_regex_.insert(path).second) {
          diags_.problem(path, line,
                         absl::StrCat("strip_path with a regex path to service \"", svc.name,
                                      "\" with path \"", svc.base,
                                      "\": Kong's join of the two depends on what the regex "
                                      "matched in ways Sluice's rewrites can't follow; use a "
                                      "prefix path, or strip_path: false"));
        }
        return;
      }
      // Service path "/": "/" + what follows the match, without its leading slash.
      out.mutable_match()->set_regex(absl::StrCat("(?:", *re, ")/?(?P<kong_rest>.*)"));
      setUpstreamUri(out, "/$(uri_captures.kong_rest)");
      *vh->add_routes() = out;
      return;
    }
    // strip_path false, service path B: B joined with the whole request path.
    std::string prefix = svc.base;
    if (prefix.back() == '/') {
      prefix.pop_back();
    } else if (RE2::FullMatch("/", absl::StrCat("(?:", *re, ").*"))) {
      // Kong sends B (not B/) for the path "/".
      auto root = base();
      root.mutable_match()->set_path("/");
      root.mutable_route()->set_prefix_rewrite(svc.base);
      *vh->add_routes() = root;
    }
    if (prefix.find('$') != std::string::npos) {
      diags_.problem(path, line,
                     absl::StrCat("service \"", svc.name, "\" path \"", svc.base,
                                  "\" has a $, which Sluice's path templates can't carry"));
      return;
    }
    out.mutable_match()->set_regex(absl::StrCat("(?P<kong_path>(?:", *re, ").*)"));
    setUpstreamUri(out, absl::StrCat(prefix, "$(uri_captures.kong_path)"));
    *vh->add_routes() = out;
  }

  // The route's request_transformer config (its own, or the listener's it would get) with
  // replace.uri = `uri`.
  void setUpstreamUri(sluice::config::v1::Route& route, const std::string& uri) {
    auto& fc = *route.mutable_filter_config();
    if (fc.find("request_transformer") == fc.end()) {
      fc["request_transformer"] =
          requestTransformer(globalPlugin("request-transformer"), globalPlugin("correlation-id"));
    }
    auto& replace =
        *(*fc["request_transformer"].mutable_fields())["replace"].mutable_struct_value();
    (*replace.mutable_fields())["uri"] = stringValue(uri);
  }

  void buildListener() {
    auto* l = out_.add_listeners();
    l->set_name("kong");
    l->set_route_table("kong");
    std::string listen = options_.listen.empty() ? "0.0.0.0:8000" : options_.listen;
    const size_t colon = listen.rfind(':');
    uint32_t port = 0;
    std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
    if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
        port > 65535 || host.empty()) {
      diags_.error("", 0, absl::StrCat("--listen \"", listen, "\": expected HOST:PORT"));
    }
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    l->mutable_address()->set_host(host);
    l->mutable_address()->set_port(port);
    // Kong's plugin order (by priority): cors 2000, key-auth/jwt/oauth2, ip-restriction 990,
    // acl 950, rate-limiting 910, request-transformer 801, response-transformer 800,
    // proxy-cache 100. http-log goes first so that it logs the requests the others answer
    // (Kong logs every request).
    static const std::vector<std::string> kOrder = {"http_log",
                                                    "cors",
                                                    "auth",
                                                    "ip_restriction",
                                                    "acl",
                                                    "rate_limit",
                                                    "request_transformer",
                                                    "response_transformer",
                                                    "cache"};
    static const std::map<std::string, std::string> kPlugin = {
        {"http_log", "http-log"},
        {"cors", "cors"},
        {"ip_restriction", "ip-restriction"},
        {"acl", "acl"},
        {"response_transformer", "response-transformer"},
        {"cache", "proxy-cache"}};
    for (const std::string& f : kOrder) {
      if (!filters_.count(f)) continue;
      auto* hf = l->add_http_filters();
      hf->set_name(f);
      if (f == "auth" || f == "rate_limit") continue;  // policies per route
      if (f == "request_transformer") {
        const int ge = globalPlugin("request-transformer");
        const int gc = globalPlugin("correlation-id");
        *hf->mutable_config() = requestTransformer(ge, gc);
        continue;
      }
      const int g = globalPlugin(kPlugin.at(f));
      if (g >= 0) {
        *hf->mutable_config() = m_.results[g].config;
      } else if (f == "http_log") {
        *hf->mutable_config() = disabled();
      } else {
        // Every route has a config of its own (or disabled): the listener's serves only
        // requests that match no route. The first plugin's config stands in.
        for (size_t i = 0; i < m_.plugins.size(); ++i) {
          if (m_.results[i].ok && m_.results[i].filter == f) {
            *hf->mutable_config() = m_.results[i].config;
            break;
          }
        }
      }
    }
    l->add_http_filters()->set_name("router");
    // Listener-wide plugins.
    for (size_t i = 0; i < m_.plugins.size(); ++i) {
      const Plugin& p = m_.plugins[i];
      const PluginResult& r = m_.results[i];
      if (!r.ok || !p.enabled) continue;
      if (p.name == "prometheus" && r.per_consumer) l->mutable_metrics()->set_per_consumer(true);
      if (p.name == "request-size-limiting") {
        l->mutable_limits()->set_max_request_body_bytes(r.max_body_bytes);
      }
    }
    kongReplies(*l);
  }

  // The replies Kong's plugins make, in Kong's words and shape (`{"message": ...}`, no request
  // id in the body): clients of a Kong API may read them. Sluice's own replies have the same
  // statuses; their bodies and the key-auth challenge are reshaped by the listener's
  // gateway_responses. Where one Sluice type stands for replies Kong words differently (a
  // missing key vs a missing JWT), the file's auth plugins decide; with both, Sluice's own
  // message in Kong's shape.
  void kongReplies(sluice::config::v1::Listener& l) {
    bool key_auth = false, jwt = false;
    for (size_t i = 0; i < m_.plugins.size(); ++i) {
      if (!m_.plugins[i].enabled || !m_.results[i].ok) continue;
      key_auth = key_auth || m_.plugins[i].name == "key-auth";
      jwt = jwt || m_.plugins[i].name == "jwt" || m_.plugins[i].name == "oauth2";
    }
    auto& replies = *l.mutable_gateway_responses();
    auto reply = [&replies](const char* type, const char* body) {
      sluice::config::v1::GatewayResponse& r = replies[type];
      r.set_body(body);
      return &r;
    };
    // Every other reply of the gateway: Kong's shape with Sluice's message.
    reply("DEFAULT_4XX", "{\"message\":\"$message\"}");
    reply("DEFAULT_5XX", "{\"message\":\"$message\"}");
    // rate-limiting, acl and ip-restriction already say what Kong says.
    reply("THROTTLED", "{\"message\":\"API rate limit exceeded\"}");
    reply("QUOTA_EXCEEDED", "{\"message\":\"API rate limit exceeded\"}");
    if (key_auth && !jwt) {
      (*reply("UNAUTHORIZED", "{\"message\":\"No API key found in request\"}")
            ->mutable_headers())["www-authenticate"] = "Key realm=\"kong\"";
    } else if (jwt && !key_auth) {
      reply("UNAUTHORIZED", "{\"message\":\"Unauthorized\"}");
    }
    if (key_auth) reply("INVALID_API_KEY", "{\"message\":\"Invalid authentication credentials\"}");
    // jwt's claims check answers with the failed claims as the object.
    if (jwt) reply("EXPIRED_TOKEN", "{\"exp\":\"token expired\"}");
    // Kong's proxy timeout (its 502s and 503s word other causes: DEFAULT_5XX).
    reply("INTEGRATION_TIMEOUT", "{\"message\":\"The upstream server is timed out\"}");
    reply("REQUEST_TOO_LARGE", "{\"message\":\"Request size limit exceeded\"}");
  }

  void warnUnusedCredentials() {
    bool key_auth = false, jwt = false, acl = false;
    for (size_t i = 0; i < m_.plugins.size(); ++i) {
      if (!m_.plugins[i].enabled) continue;
      key_auth = key_auth || m_.plugins[i].name == "key-auth";
      jwt = jwt || m_.plugins[i].name == "jwt";
      acl = acl || m_.plugins[i].name == "acl";
    }
    for (const Consumer& c : m_.consumers) {
      if (!key_auth) {
        for (size_t i = 0; i < c.key_paths.size(); ++i) {
          diags_.warning(c.key_paths[i], c.key_lines[i],
                         "no key-auth plugin: Kong never checks this credential");
        }
      }
      if (!jwt) {
        for (size_t i = 0; i < c.jwt_paths.size(); ++i) {
          diags_.warning(c.jwt_paths[i], c.jwt_lines[i],
                         "no jwt plugin: Kong never checks this credential");
        }
      }
      if (!acl && c.proto.groups_size() > 0) {
        diags_.warning(
            c.path, c.line,
            absl::StrCat("consumer \"", c.username, "\" has acls but no acl plugin uses them"));
      }
    }
  }

  Model& m_;
  const Options& options_;
  StaticResources& out_;
  Diagnostics& diags_;
  std::set<std::string> filters_;
  std::map<std::string, std::string> auth_policies_;
  std::set<std::string> reported_regex_;
  bool listener_rt_set_ = false;
  bool uri_replaced_ = false;  // the route being emitted has a replace.uri
};

}  // namespace
}  // namespace Kong

Result convertKong(const std::string& text, const Options& options) {
  Result result(options.lenient);
  Diagnostics& diags = result.diagnostics;
  std::optional<Node> doc = parseDocument(text, diags);
  if (!doc) return result;
  if (!doc->isMap()) {
    diags.error("", doc->line(), absl::StrCat("a Kong file is a map, not ", doc->describe()));
    return result;
  }
  const Node* version = doc->find("_format_version");
  if (version == nullptr || !version->isScalar()) {
    diags.error("_format_version", version != nullptr ? version->line() : 0,
                "is required (\"3.0\", or \"1.1\" / \"2.1\")");
    return result;
  }
  const std::string v = version->scalar();
  if (v != "3.0" && v != "1.1" && v != "2.1") {
    diags.error("_format_version", *version,
                absl::StrCat("\"", v,
                             "\" is not a Kong format version this importer reads "
                             "(\"3.0\", \"2.1\", \"1.1\")"));
    return result;
  }
  if (const Node* t = doc->get("_transform")) {
    if (t->asBool().value_or(true) == false) {
      diags.problem("_transform", *t,
                    "_transform: false (credentials already hashed) can't be imported: Sluice "
                    "needs the keys and secrets themselves");
    }
  }
  Kong::checkKongFields(*doc, "", Kong::kTopFields, diags);
  Kong::Model model;
  Kong::Reader(model, diags, v != "3.0").read(*doc);
  // On with errors too: every problem of the file is reported at once.
  Kong::Converter(model, options, result.resources, diags).run();
  return result;
}

}  // namespace ConfigImport
}  // namespace sluice
