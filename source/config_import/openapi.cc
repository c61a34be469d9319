#include "source/config_import/openapi.h"

#include <arpa/inet.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "re2/re2.h"
#include "source/common/common/json_value.h"
#include "source/common/config/utility.h"
#include "source/common/http/gateway_response.h"
#include "source/extensions/filters/http/request_validator/json_schema.h"

// OpenAPI 3 + AWS API Gateway extensions -> Sluice resources. The mapping is documented in
// docs/imports.md ("OpenAPI 3 with AWS API Gateway extensions"). One listener, one route table
// with one virtual host ("*"); each path and method is a route; each integration endpoint a
// cluster; each distinct security requirement an AuthPolicy; request parameter mappings and
// templated integration paths a per-route request_transformer config; request validators a
// per-route request_validator config.

namespace sluice {
namespace ConfigImport {
namespace {

namespace v1 = sluice::config::v1;
using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr absl::string_view kSource = "OpenAPI";
constexpr absl::string_view kAnyMethod = "x-amazon-apigateway-any-method";
constexpr absl::string_view kIntegration = "x-amazon-apigateway-integration";
constexpr absl::string_view kAuthorizer = "x-amazon-apigateway-authorizer";
constexpr absl::string_view kGatewayResponses = "x-amazon-apigateway-gateway-responses";
constexpr absl::string_view kValidators = "x-amazon-apigateway-request-validators";
constexpr absl::string_view kValidator = "x-amazon-apigateway-request-validator";
// The seed's spelling: `x-amazon-api-gateway: {authorizers: {...}, gateway-responses: {...}}`.
constexpr absl::string_view kSeedBlock = "x-amazon-api-gateway";
constexpr absl::string_view kJwksExtension = "x-sluice-jwks-uri";
constexpr absl::string_view kConsumersExtension = "x-sluice-consumers";
constexpr absl::string_view kListenExtension = "x-sluice-listen";

const char* const kMethods[] = {"get",     "put",  "post",  "delete",
                                "options", "head", "patch", "trace"};

bool isExtension(absl::string_view key) { return absl::StartsWith(key, "x-"); }

// The request_transformer template of an API Gateway `$context` variable Sluice has (`var`
// without the `$`), else nullptr.
const char* contextTemplate(absl::string_view var) {
  if (var == "context.requestId" || var == "context.extendedRequestId") return "$request_id";
  if (var == "context.identity.sourceIp") return "$client_ip";
  if (var == "context.domainName") return "$host";
  return nullptr;
}

// An HTTP header name (RFC 9110 token).
bool isToken(absl::string_view name) {
  static const LazyRE2 kToken = {R"([!#$%&'*+.^_`|~0-9A-Za-z-]+)"};
  return RE2::FullMatch(std::string(name), *kToken);
}

// Headers the gateway frames and identifies requests and replies with: not settable.
bool isManagedHeader(absl::string_view lower) {
  for (absl::string_view h : {"content-length", "transfer-encoding", "connection", "keep-alive",
                              "te", "trailer", "upgrade", "proxy-connection", "x-request-id"}) {
    if (lower == h) return true;
  }
  return false;
}

// Like checkFields, but every `x-...` key is allowed (OpenAPI's specification extensions).
void checkOpenApiFields(const Node& node, const std::string& path,
                        std::initializer_list<absl::string_view> known, Diagnostics& diag) {
  for (const auto& [key, value] : node.entries()) {
    if (isExtension(key) || std::find(known.begin(), known.end(), key) != known.end()) continue;
    diag.problem(pathField(path, key), value.line(),
                 absl::StrCat(kSource, " has no such field here (it takes ",
                              absl::StrJoin(known, ", "), ", and x-... extensions)"));
  }
}

// A name safe in stats and resource names: letters, digits, '-', '_', '.'; others become '_'.
std::string safeName(absl::string_view in) {
  std::string out(in);
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      c = '_';
    }
  }
  return out.empty() ? "_" : out;
}

// "'text'" -> text (AWS's static values); nullopt when not quoted that way.
std::optional<std::string> quotedStatic(absl::string_view v) {
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
    return std::string(v.substr(1, v.size() - 2));
  }
  return std::nullopt;
}

bool isIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

Value stringValue(absl::string_view s) {
  Value v;
  v.set_string_value(std::string(s));
  return v;
}

Value boolValue(bool b) {
  Value v;
  v.set_bool_value(b);
  return v;
}

// A YAML node as JSON (the request_validator's schemas): plain scalars are booleans, numbers or
// null as YAML reads them; quoted scalars are strings.
Value toValue(const Node& node) {
  Value v;
  switch (node.kind()) {
    case Node::Kind::Null:
      v.set_null_value(google::protobuf::NULL_VALUE);
      break;
    case Node::Kind::Scalar:
      if (node.plain()) {
        if (std::optional<bool> b = node.asBool()) {
          v.set_bool_value(*b);
          break;
        }
        if (std::optional<double> d = node.asDouble()) {
          v.set_number_value(*d);
          break;
        }
        if (node.scalar() == "null" || node.scalar() == "~") {
          v.set_null_value(google::protobuf::NULL_VALUE);
          break;
        }
      }
      v.set_string_value(node.scalar());
      break;
    case Node::Kind::Sequence:
      for (const Node& item : node.items()) *v.mutable_list_value()->add_values() = toValue(item);
      v.mutable_list_value();
      break;
    case Node::Kind::Map:
      v.mutable_struct_value();
      for (const auto& [key, value] : node.entries()) {
        (*v.mutable_struct_value()->mutable_fields())[key] = toValue(value);
      }
      break;
  }
  return v;
}

// A path template, segment by segment.
struct Segment {
  enum class Kind { Literal, Param, Greedy };
  Kind kind = Kind::Literal;
  std::string text;  // the literal, or the parameter's name (without '+')
};

struct PathTemplate {
  std::vector<Segment> segments;
  std::vector<std::string> params;  // names, in order
  // HTTP APIs' `$default` path: whatever no other route matches.
  bool catch_all = false;
  bool templated() const { return !params.empty(); }
};

// "/users/{userId}/{proxy+}" -> segments. Errors as a message.
std::optional<PathTemplate> parsePathTemplate(absl::string_view path, std::string* error) {
  PathTemplate out;
  if (path == "$default") {
    out.catch_all = true;
    return out;
  }
  if (path.empty() || path.front() != '/') {
    *error = "a path must start with '/'";
    return std::nullopt;
  }
  if (path == "/") return out;
  std::vector<absl::string_view> parts = absl::StrSplit(path.substr(1), '/');
  static const LazyRE2 kParam = {R"(\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\})"};
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::string_view part = parts[i];
    Segment seg;
    std::string name, plus;
    if (part.find_first_of("{}") == absl::string_view::npos) {
      if (part.empty() && i + 1 != parts.size()) {
        *error = "an empty path segment ('//')";
        return std::nullopt;
      }
      seg.text = std::string(part);
    } else if (RE2::FullMatch(std::string(part), *kParam, &name, &plus)) {
      if (std::find(out.params.begin(), out.params.end(), name) != out.params.end()) {
        *error = absl::StrCat("path parameter \"", name, "\" appears twice");
        return std::nullopt;
      }
      seg.kind = plus.empty() ? Segment::Kind::Param : Segment::Kind::Greedy;
      seg.text = name;
      out.params.push_back(name);
      if (seg.kind == Segment::Kind::Greedy && i + 1 != parts.size()) {
        *error = absl::StrCat("the greedy parameter {", name, "+} must be the last segment");
        return std::nullopt;
      }
    } else if (absl::StartsWith(part, "{") && absl::EndsWith(part, "}") &&
               part.find('{', 1) == absl::string_view::npos) {
      *error = absl::StrCat("parameter ", part,
                            ": a name of letters, digits and '_' (it becomes a regex capture "
                            "name), not starting with a digit");
      return std::nullopt;
    } else {
      *error = absl::StrCat(
          "segment \"", part,
          "\": a template segment is a whole segment {name} or {name+} (name: letters, digits, "
          "'_'; partial segments such as {id}.json are not supported)");
      return std::nullopt;
    }
    out.segments.push_back(std::move(seg));
  }
  return out;
}

// The route regex of a template: literal segments quoted, {p} one segment, {p+} the rest.
std::string templateRegex(const PathTemplate& t) {
  std::string out;
  for (const Segment& s : t.segments) {
    out += "/";
    switch (s.kind) {
      case Segment::Kind::Literal:
        out += RE2::QuoteMeta(s.text);
        break;
      case Segment::Kind::Param:
        absl::StrAppend(&out, "(?P<", s.text, ">[^/]+)");
        break;
      case Segment::Kind::Greedy:
        absl::StrAppend(&out, "(?P<", s.text, ">.+)");
        break;
    }
  }
  return out;
}

// An integration endpoint: http(s)://host[:port]/path?query.
struct Endpoint {
  bool tls = false;
  std::string host;  // without brackets
  uint32_t port = 0;
  std::string path;  // "/..." (may hold {placeholders})
  std::string query;
};

std::optional<Endpoint> parseUri(absl::string_view uri, std::string* error) {
  Endpoint e;
  absl::string_view rest = uri;
  if (absl::StartsWithIgnoreCase(rest, "https://")) {
    rest.remove_prefix(8);
    e.tls = true;
  } else if (absl::StartsWithIgnoreCase(rest, "http://")) {
    rest.remove_prefix(7);
  } else {
    *error = "must be an http:// or https:// URL";
    return std::nullopt;
  }
  const size_t end = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, end);
  rest = end == absl::string_view::npos ? absl::string_view() : rest.substr(end);
  if (authority.find('@') != absl::string_view::npos) {
    *error = "user info in the URL is not supported";
    return std::nullopt;
  }
  if (authority.find_first_of("{}$") != absl::string_view::npos) {
    *error =
        "the host is a template (stage variables and parameters in the host are not supported: "
        "write the endpoint's host)";
    return std::nullopt;
  }
  absl::string_view host = authority, port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      *error = "unterminated [IPv6] host";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        *error = "invalid host";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  static const LazyRE2 kHost = {R"([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+)"};
  if (host.empty() || !RE2::FullMatch(std::string(host), *kHost)) {
    *error = absl::StrCat("invalid host \"", host, "\"");
    return std::nullopt;
  }
  e.host = absl::AsciiStrToLower(host);
  e.port = e.tls ? 443 : 80;
  if (!port.empty()) {
    uint32_t p;
    if (!absl::SimpleAtoi(port, &p) || p == 0 || p > 65535) {
      *error = absl::StrCat("invalid port \"", port, "\"");
      return std::nullopt;
    }
    e.port = p;
  }
  if (const size_t hash = rest.find('#'); hash != absl::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    e.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  e.path = rest.empty() ? "/" : std::string(rest);
  return e;
}

void setDuration(google::protobuf::Duration* d, int64_t millis) {
  d->set_seconds(millis / 1000);
  d->set_nanos(static_cast<int32_t>((millis % 1000) * 1000000));
}

// A request transformer's config under construction (Kong's request-transformer schema).
struct Transform {
  std::string uri;
  std::string method;
  std::vector<std::string> set_headers;  // "name:value", added and replaced
  std::vector<std::string> set_query;
  std::vector<std::string> append_headers;  // HTTP API mappings: append:..., remove:...
  std::vector<std::string> append_query;
  std::vector<std::string> remove_headers;
  std::vector<std::string> remove_query;
  bool empty() const {
    return uri.empty() && method.empty() && set_headers.empty() && set_query.empty() &&
           append_headers.empty() && append_query.empty() && remove_headers.empty() &&
           remove_query.empty();
  }
  Struct toStruct() const {
    Struct s;
    auto list = [](const std::vector<std::string>& items) {
      Value v;
      for (const std::string& i : items) *v.mutable_list_value()->add_values() = stringValue(i);
      return v;
    };
    if (!method.empty()) (*s.mutable_fields())["http_method"] = stringValue(method);
    Struct replace, add;
    if (!uri.empty()) (*replace.mutable_fields())["uri"] = stringValue(uri);
    if (!set_headers.empty()) {
      (*replace.mutable_fields())["headers"] = list(set_headers);
      (*add.mutable_fields())["headers"] = list(set_headers);
    }
    if (!set_query.empty()) {
      (*replace.mutable_fields())["querystring"] = list(set_query);
      (*add.mutable_fields())["querystring"] = list(set_query);
    }
    auto rules = [&](const char* name, const std::vector<std::string>& headers,
                     const std::vector<std::string>& query) {
      Struct r;
      if (!headers.empty()) (*r.mutable_fields())["headers"] = list(headers);
      if (!query.empty()) (*r.mutable_fields())["querystring"] = list(query);
      if (!r.fields().empty()) *(*s.mutable_fields())[name].mutable_struct_value() = std::move(r);
    };
    rules("remove", remove_headers, remove_query);
    rules("append", append_headers, append_query);
    if (!replace.fields().empty()) {
      *(*s.mutable_fields())["replace"].mutable_struct_value() = std::move(replace);
    }
    if (!add.fields().empty()) {
      *(*s.mutable_fields())["add"].mutable_struct_value() = std::move(add);
    }
    return s;
  }
};

// A route and where it sorts: AWS matches the most specific resource, Sluice the first route.
struct RouteEntry {
  v1::Route route;
  std::vector<int> specificity;  // per segment: 0 literal, 1 {param}, 2 {greedy+}; then method
  size_t order = 0;
  std::string path;  // of the operation in the spec, and its line
  int line = 0;
};

class Converter {
 public:
  Converter(const Node& root, const Options& options, Result& result)
      : root_(root), options_(options), resources_(result.resources), diag_(result.diagnostics) {}

  void run();

 private:
  struct Scheme {
    bool usable = false;
    int line = 0;
    bool jwt = false;
    std::vector<v1::JwtProvider> providers;
    bool api_key = false;
    v1::KeyAuth key_auth;
    std::vector<v1::Consumer> consumers;
  };
  struct Validator {
    bool body = false;
    bool params = false;
  };

  // Top level.
  bool checkVersion();
  void readComponents();
  void readSchemes();
  void readScheme(const std::string& name, const Node& scheme, const std::string& path);
  void readJwtAuthorizer(const std::string& name, const Node& scheme, const Node& authorizer,
                         const std::string& path, Scheme& out);
  std::string jwksFor(const Node& scheme, const Node* authorizer, const std::string& derived);
  void readValidators();
  void readGatewayResponses(const Node& node, const std::string& path);
  void readPaths();
  void convertOperation(const std::string& method, const Node& op, const std::string& opath,
                        const std::string& template_path, const PathTemplate& tmpl,
                        const Node* item_params, const std::string& item_path, size_t order);
  // Operation parts; false = the route is skipped (a problem was reported).
  bool convertHttp(const Node& integration, const std::string& ipath, const std::string& method,
                   const PathTemplate& tmpl, v1::Route& route);
  bool convertMock(const Node& integration, const std::string& ipath, v1::Route& route);
  void responseHeaders(const Node& rp, const std::string& ppath, v1::Route& route);
  bool httpApiMapping(const std::string& target, const Node& value, const std::string& path,
                      const PathTemplate& tmpl, Transform& transform,
                      std::optional<std::string>* path_override);
  std::optional<std::string> policyFor(const Node& security, const std::string& path);
  bool validationFor(const Node& op, const std::string& opath, const PathTemplate& tmpl,
                     const Node* item_params, const std::string& item_path, Struct& out);
  std::optional<Value> schemaValue(const Node& schema, const std::string& path);
  // A `$ref` to components.<section>: the node, or nullptr after a diagnostic.
  const Node* resolveRef(const Node& node, const std::string& path, absl::string_view section,
                         std::string* resolved_path);
  std::string clusterFor(const Endpoint& e, const Node* tls_config, const std::string& path);
  void finish();

  const Node& root_;
  const Options& options_;
  v1::StaticResources& resources_;
  Diagnostics& diag_;

  const Node* components_ = nullptr;
  const Node* seed_authorizers_ = nullptr;
  std::map<std::string, Scheme> schemes_;
  std::map<std::string, std::string> policy_by_key_;
  std::map<std::string, Validator> validators_;
  std::optional<std::string> default_validator_;
  std::map<std::string, std::string> cluster_by_key_;
  std::set<std::string> operation_ids_;
  std::vector<RouteEntry> routes_;
  google::protobuf::Map<std::string, v1::GatewayResponse> gateway_responses_;
  bool uses_auth_ = false;
  bool uses_validator_ = false;
  bool uses_transformer_ = false;
  bool uses_response_transformer_ = false;
};

bool Converter::checkVersion() {
  if (!root_.isMap()) {
    diag_.error("", root_, absl::StrCat("an OpenAPI document is a map, not ", root_.describe()));
    return false;
  }
  if (const Node* swagger = root_.find("swagger")) {
    diag_.error("swagger", *swagger,
                absl::StrCat("Swagger/OpenAPI ", swagger->scalar(),
                             " is not supported: convert the spec to OpenAPI 3 first (e.g. "
                             "swagger2openapi, or export it from API Gateway as OpenAPI 3)"));
    return false;
  }
  const Node* version = root_.get("openapi");
  if (version == nullptr) {
    diag_.error("openapi", root_.line(),
                "missing: an OpenAPI 3 document starts with openapi: 3.0.x");
    return false;
  }
  const std::string v = version->scalar();
  static const LazyRE2 kVersion = {R"(3\.([01])(\.\d+)?(-.*)?)"};
  std::string minor;
  if (!version->isScalar() || !RE2::FullMatch(v, *kVersion, &minor)) {
    diag_.error("openapi", *version,
                absl::StrCat("unsupported OpenAPI version \"", v,
                             "\" (3.0.x and 3.1.x are; Swagger 2.0 must be converted to 3 first)"));
    return false;
  }
  if (minor == "1") {
    diag_.warning("openapi", *version,
                  "OpenAPI 3.1: schemas are validated as OpenAPI 3.0 / JSON Schema draft 4 "
                  "(type lists, const, $defs and the other 2020-12 keywords are not)");
  }
  if (root_.get("paths") == nullptr) {
    diag_.error("paths", root_.line(), "missing: the spec has no paths, nothing to route");
    return false;
  }
  checkOpenApiFields(root_, "",
                     {"openapi", "info", "servers", "paths", "components", "security", "tags",
                      "externalDocs", "webhooks", "jsonSchemaDialect"},
                     diag_);
  if (const Node* servers = root_.get("servers"); servers != nullptr && servers->isSequence()) {
    static const LazyRE2 kPath = {R"(^(?:[a-z]+://[^/]*)?(/[^?#]*[^/?#])[/]?(?:[?#].*)?$)"};
    for (size_t i = 0; i < servers->items().size(); ++i) {
      const Node* url = servers->items()[i].get("url");
      std::string base;
      if (url != nullptr && RE2::FullMatch(url->scalar(), *kPath, &base)) {
        diag_.warning(pathField(pathIndex("servers", i), "url"), *url,
                      absl::StrCat("the base path ", base,
                                   " is not prefixed: routes match the paths as written"));
      }
    }
  }
  if (const Node* webhooks = root_.get("webhooks")) {
    diag_.warning("webhooks", *webhooks, "ignored: webhooks are calls the API makes, not routes");
  }
  for (absl::string_view ignored :
       {"x-amazon-apigateway-binary-media-types", "x-amazon-apigateway-minimum-compression-size",
        "x-amazon-apigateway-policy", "x-amazon-apigateway-endpoint-configuration",
        "x-amazon-apigateway-documentation", "x-amazon-apigateway-cors",
        "x-amazon-apigateway-api-key-source", "x-amazon-apigateway-tag-value"}) {
    if (const Node* n = root_.get(ignored)) {
      diag_.warning(std::string(ignored), *n, "not converted (no Sluice equivalent in the import)");
    }
  }
  return true;
}

void Converter::readComponents() {
  components_ = getMap(root_, "components", "", diag_);
  if (const Node* seed = getMap(root_, kSeedBlock, "", diag_)) {
    const std::string path(kSeedBlock);
    checkFields(*seed, path, {"authorizers", "gateway-responses"}, kSource, diag_);
    seed_authorizers_ = getMap(*seed, "authorizers", path, diag_);
    if (const Node* gr = getMap(*seed, "gateway-responses", path, diag_)) {
      readGatewayResponses(*gr, pathField(path, "gateway-responses"));
    }
  }
  if (const Node* gr = getMap(root_, kGatewayResponses, "", diag_)) {
    readGatewayResponses(*gr, std::string(kGatewayResponses));
  }
}

// ---- Security ------------------------------------------------------------------------------

std::string Converter::jwksFor(const Node& scheme, const Node* authorizer,
                               const std::string& derived) {
  if (!options_.jwks_uri.empty()) return options_.jwks_uri;
  if (authorizer != nullptr) {
    if (const Node* n = authorizer->get(kJwksExtension)) return n->scalar();
  }
  if (const Node* n = scheme.get(kJwksExtension)) return n->scalar();
  return derived;
}

void Converter::readSchemes() {
  const Node* schemes =
      components_ ? getMap(*components_, "securitySchemes", "components", diag_) : nullptr;
  if (schemes != nullptr) {
    for (const auto& [name, scheme] : schemes->entries()) {
      readScheme(name, scheme, pathField("components.securitySchemes", name));
    }
  }
  if (seed_authorizers_ != nullptr) {
    for (const auto& [name, value] : seed_authorizers_->entries()) {
      if (schemes == nullptr || schemes->find(name) == nullptr) {
        diag_.problem(pathField(absl::StrCat(kSeedBlock, ".authorizers"), name), value,
                      absl::StrCat("no security scheme \"", name,
                                   "\" in components.securitySchemes uses this authorizer"));
      }
    }
  }
}

void Converter::readScheme(const std::string& name, const Node& scheme, const std::string& path) {
  Scheme out;
  out.line = scheme.line();
  if (!scheme.isMap()) {
    diag_.error(path, scheme, absl::StrCat("must be a map, not ", scheme.describe()));
    schemes_[name] = out;
    return;
  }
  checkOpenApiFields(
      scheme, path,
      {"type", "description", "name", "in", "scheme", "bearerFormat", "flows", "openIdConnectUrl"},
      diag_);
  const Node* authorizer = getMap(scheme, kAuthorizer, path, diag_);
  std::string apath = pathField(path, kAuthorizer);
  if (authorizer == nullptr && seed_authorizers_ != nullptr) {
    authorizer = getMap(*seed_authorizers_, name, absl::StrCat(kSeedBlock, ".authorizers"), diag_);
    apath = pathField(absl::StrCat(kSeedBlock, ".authorizers"), name);
  }
  const std::optional<std::string> type = getString(scheme, "type", path, diag_);
  if (const Node* authtype = scheme.get("x-amazon-apigateway-authtype")) {
    if (absl::EqualsIgnoreCase(authtype->scalar(), "awsSigv4")) {
      diag_.problem(pathField(path, "x-amazon-apigateway-authtype"), *authtype,
                    "IAM (SigV4) authorization is not supported: Sluice cannot check AWS "
                    "signatures");
      schemes_[name] = out;
      return;
    }
  }
  const Node* http_scheme = scheme.get("scheme");
  const bool bearer =
      http_scheme != nullptr && absl::EqualsIgnoreCase(http_scheme->scalar(), "bearer");
  if (authorizer != nullptr) {
    readJwtAuthorizer(name, scheme, *authorizer, apath, out);
  } else if (!type) {
    diag_.error(pathField(path, "type"), scheme, "missing: a security scheme needs a type");
  } else if (*type == "apiKey") {
    const std::optional<std::string> key_name = getString(scheme, "name", path, diag_);
    const std::optional<std::string> in = getString(scheme, "in", path, diag_);
    if (!key_name || key_name->empty()) {
      diag_.error(pathField(path, "name"), scheme, "missing: an apiKey scheme names its key");
    } else if (!in || (*in != "header" && *in != "query")) {
      diag_.problem(pathField(path, "in"), scheme,
                    absl::StrCat("an API key in ", in ? *in : "(missing)",
                                 " is not supported (header or query are)"));
    } else {
      out.api_key = true;
      out.key_auth.add_key_names(*key_name);
      out.key_auth.set_in_header(*in == "header");
      out.key_auth.set_in_query(*in == "query");
      out.usable = true;
      if (const Node* consumers = getSequence(scheme, kConsumersExtension, path, diag_)) {
        const std::string cpath = pathField(path, kConsumersExtension);
        for (size_t i = 0; i < consumers->items().size(); ++i) {
          const Node& c = consumers->items()[i];
          const std::string ipath = pathIndex(cpath, i);
          if (!c.isMap()) {
            diag_.error(ipath, c, "must be a map {username, keys}");
            out.usable = false;
            continue;
          }
          checkFields(c, ipath, {"username", "keys"}, "x-sluice-consumers", diag_);
          v1::Consumer consumer;
          if (auto u = getString(c, "username", ipath, diag_)) consumer.set_username(*u);
          if (consumer.username().empty()) {
            diag_.error(pathField(ipath, "username"), c, "missing");
            out.usable = false;
          }
          if (auto keys = getStringList(c, "keys", ipath, diag_)) {
            for (const std::string& k : *keys) consumer.add_keyauth_credentials()->set_key(k);
          }
          out.consumers.push_back(std::move(consumer));
        }
      } else {
        diag_.warning(path, scheme,
                      absl::StrCat("API key scheme without keys: AWS keeps keys in usage plans, "
                                   "outside the spec; list them under ",
                                   kConsumersExtension,
                                   " ([{username, keys: [...]}]) or every request is refused"));
      }
    }
  } else if (*type == "oauth2" || (*type == "http" && bearer)) {
    std::string jwks = jwksFor(scheme, nullptr, options_.oauth2_jwks);
    if (jwks.empty()) {
      diag_.problem(path, scheme,
                    absl::StrCat("a ", *type, " scheme names no key set to verify its tokens: set ",
                                 kJwksExtension, " on the scheme (or --jwks-uri)"));
    } else {
      v1::JwtProvider p;
      p.set_name(name);
      p.mutable_remote_jwks()->set_uri(jwks);
      out.providers.push_back(std::move(p));
      out.jwt = true;
      out.usable = true;
    }
  } else if (*type == "openIdConnect") {
    const std::optional<std::string> url = getString(scheme, "openIdConnectUrl", path, diag_);
    if (!url || url->empty()) {
      diag_.error(pathField(path, "openIdConnectUrl"), scheme, "missing");
    } else {
      absl::string_view issuer_view = *url;
      absl::ConsumeSuffix(&issuer_view, "/");
      const bool conventional =
          absl::ConsumeSuffix(&issuer_view, "/.well-known/openid-configuration");
      const std::string issuer(issuer_view);
      if (!conventional) {
        diag_.warning(pathField(path, "openIdConnectUrl"), *scheme.get("openIdConnectUrl"),
                      "does not end in /.well-known/openid-configuration: used as the issuer");
      }
      v1::JwtProvider p;
      p.set_name(name);
      p.set_issuer(issuer);
      p.mutable_remote_jwks()->set_uri(
          jwksFor(scheme, nullptr, absl::StrCat(issuer, "/.well-known/jwks.json")));
      out.providers.push_back(std::move(p));
      out.jwt = true;
      out.usable = true;
    }
  } else {
    diag_.problem(pathField(path, "type"), *scheme.get("type"),
                  absl::StrCat("security scheme type \"", *type,
                               "\" is not supported (apiKey, oauth2, openIdConnect, http bearer, "
                               "and x-amazon-apigateway-authorizer cognito_user_pools / jwt are)"));
  }
  for (const v1::JwtProvider& p : out.providers) {
    const std::string& uri = p.remote_jwks().uri();
    if (!absl::StartsWithIgnoreCase(uri, "http://") &&
        !absl::StartsWithIgnoreCase(uri, "https://")) {
      diag_.problem(path, scheme,
                    absl::StrCat("the JWKS URL \"", uri,
                                 "\" is not an http:// or https:// URL (from the issuer, ",
                                 kJwksExtension, " or --jwks-uri)"));
      out.usable = false;
    }
  }
  schemes_[name] = std::move(out);
}

void Converter::readJwtAuthorizer(const std::string& name, const Node& scheme,
                                  const Node& authorizer, const std::string& path, Scheme& out) {
  checkOpenApiFields(
      authorizer, path,
      {"type", "providerARNs", "authorizerUri", "authorizerCredentials", "identitySource",
       "identityValidationExpression", "authorizerResultTtlInSeconds", "jwtConfiguration",
       "authorizerPayloadFormatVersion", "enableSimpleResponses"},
      diag_);
  const std::optional<std::string> type_opt = getString(authorizer, "type", path, diag_);
  const std::string type = absl::AsciiStrToLower(type_opt.value_or(""));
  const Node* type_node = authorizer.get("type");
  const int line = type_node ? type_node->line() : authorizer.line();
  // identitySource: "method.request.header.Authorization" (REST) or
  // "$request.header.Authorization" (HTTP APIs, maybe a list).
  std::vector<std::string> headers;
  if (const Node* src = authorizer.get("identitySource")) {
    std::vector<std::string> sources;
    if (src->isSequence()) {
      for (const Node& i : src->items()) sources.push_back(i.scalar());
    } else {
      for (absl::string_view s : absl::StrSplit(src->scalar(), ',', absl::SkipWhitespace())) {
        sources.emplace_back(absl::StripAsciiWhitespace(s));
      }
    }
    for (const std::string& s : sources) {
      absl::string_view v = s;
      if (absl::ConsumePrefix(&v, "method.request.header.") ||
          absl::ConsumePrefix(&v, "$request.header.")) {
        headers.emplace_back(v);
      } else {
        diag_.problem(
            pathField(path, "identitySource"), *src,
            absl::StrCat("identity source \"", s, "\" is not supported (a request header is)"));
        return;
      }
    }
  }
  if (headers.empty()) headers.push_back("Authorization");
  auto locate = [&](v1::JwtProvider& p, bool raw_too) {
    for (const std::string& h : headers) {
      auto* fh = p.add_from_headers();
      fh->set_name(h);
      fh->set_value_prefix("Bearer ");
      if (raw_too) {
        // Cognito user pool authorizers take the bare token as well as "Bearer <token>".
        auto* raw = p.add_from_headers();
        raw->set_name(h);
      }
    }
  };
  if (type == "cognito_user_pools") {
    const std::optional<std::vector<std::string>> arns =
        getStringList(authorizer, "providerARNs", path, diag_);
    if (!arns || arns->empty()) {
      diag_.error(pathField(path, "providerARNs"), authorizer,
                  "missing: a cognito_user_pools authorizer lists its user pool ARNs");
      return;
    }
    static const LazyRE2 kArn = {
        R"(arn:aws[a-z-]*:cognito-idp:([a-z0-9-]+):[0-9]+:userpool/([A-Za-z0-9_-]+))"};
    for (size_t i = 0; i < arns->size(); ++i) {
      std::string region, pool;
      if (!RE2::FullMatch((*arns)[i], *kArn, &region, &pool)) {
        diag_.error(pathIndex(pathField(path, "providerARNs"), i),
                    authorizer.get("providerARNs")->items()[i],
                    absl::StrCat("\"", (*arns)[i],
                                 "\" is not a user pool ARN "
                                 "(arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID)"));
        return;
      }
      v1::JwtProvider p;
      p.set_name(arns->size() == 1 ? name : absl::StrCat(name, "-", i));
      p.set_issuer(absl::StrCat("https://cognito-idp.", region, ".amazonaws.com/", pool));
      p.mutable_remote_jwks()->set_uri(
          jwksFor(scheme, &authorizer, absl::StrCat(p.issuer(), "/.well-known/jwks.json")));
      locate(p, true);
      out.providers.push_back(std::move(p));
    }
    if (const Node* n = authorizer.get("identityValidationExpression")) {
      diag_.warning(pathField(path, "identityValidationExpression"), *n,
                    "ignored: the token's signature, issuer and expiry are checked");
    }
  } else if (type == "jwt") {
    const Node* config = getMap(authorizer, "jwtConfiguration", path, diag_);
    const std::string cpath = pathField(path, "jwtConfiguration");
    std::optional<std::string> issuer;
    if (config != nullptr) {
      checkFields(*config, cpath, {"issuer", "audience"}, kSource, diag_);
      issuer = getString(*config, "issuer", cpath, diag_);
    }
    if (!issuer || issuer->empty()) {
      diag_.error(pathField(cpath, "issuer"), config ? *config : authorizer,
                  "missing: a jwt authorizer names its issuer");
      return;
    }
    v1::JwtProvider p;
    p.set_name(name);
    p.set_issuer(*issuer);
    if (auto aud = getStringList(*config, "audience", cpath, diag_)) {
      for (const std::string& a : *aud) p.add_audiences(a);
    }
    absl::string_view base = *issuer;
    absl::ConsumeSuffix(&base, "/");
    p.mutable_remote_jwks()->set_uri(
        jwksFor(scheme, &authorizer, absl::StrCat(base, "/.well-known/jwks.json")));
    locate(p, false);
    out.providers.push_back(std::move(p));
  } else if (type == "token" || type == "request") {
    const Node* uri = authorizer.get("authorizerUri");
    diag_.problem(pathField(path, "type"), line,
                  absl::StrCat("a Lambda authorizer (type ", type,
                               ") is not supported: Sluice cannot run the AWS Lambda function",
                               uri ? absl::StrCat(" ", uri->scalar()) : std::string(),
                               " that decides; use a JWT (cognito_user_pools, jwt) or an API key"));
    return;
  } else {
    diag_.problem(pathField(path, "type"), line,
                  absl::StrCat("authorizer type \"", type_opt.value_or(""),
                               "\" is not supported (cognito_user_pools and jwt are)"));
    return;
  }
  // authorizerResultTtlInSeconds needs nothing: verified tokens are cached per worker until
  // their `exp` (the AuthPolicy's token cache).
  out.jwt = true;
  out.usable = true;
}

// The AuthPolicy for a `security` requirement list: "" = none; nullopt = the route is skipped.
std::optional<std::string> Converter::policyFor(const Node& security, const std::string& path) {
  if (!security.isSequence()) {
    diag_.error(path, security,
                absl::StrCat("must be a list of security requirements, not ", security.describe()));
    return std::nullopt;
  }
  if (security.items().empty()) return "";
  bool anonymous = false;
  std::vector<std::string> names;
  std::optional<std::vector<std::string>> scopes;
  for (size_t i = 0; i < security.items().size(); ++i) {
    const Node& req = security.items()[i];
    const std::string rpath = pathIndex(path, i);
    if (!req.isMap()) {
      diag_.error(rpath, req, "must be a map of scheme name to scopes");
      return std::nullopt;
    }
    if (req.size() == 0) {
      anonymous = true;
      continue;
    }
    if (req.size() > 1) {
      std::vector<std::string> both;
      for (const auto& [k, v] : req.entries()) both.push_back(k);
      diag_.problem(rpath, req,
                    absl::StrCat("requires ", absl::StrJoin(both, " and "),
                                 " together: a Sluice auth policy accepts one credential of "
                                 "several kinds, not all of them at once; route skipped (an API "
                                 "key there only for usage plans can be dropped from the "
                                 "requirement)"));
      return std::nullopt;
    }
    const auto& [scheme_name, scope_node] = req.entries().front();
    const std::string spath = pathField(rpath, scheme_name);
    auto it = schemes_.find(scheme_name);
    if (it == schemes_.end()) {
      diag_.problem(spath, scope_node,
                    absl::StrCat("no security scheme \"", scheme_name,
                                 "\" in components.securitySchemes; route skipped"));
      return std::nullopt;
    }
    if (!it->second.usable) {
      diag_.problem(spath, scope_node,
                    absl::StrCat("security scheme \"", scheme_name, "\" (line ", it->second.line,
                                 ") could not be converted; route skipped (never served without "
                                 "its authentication)"));
      return std::nullopt;
    }
    std::vector<std::string> these;
    if (!scope_node.isNull()) {
      if (!scope_node.isSequence()) {
        diag_.error(spath, scope_node, "must be a list of scopes");
        return std::nullopt;
      }
      for (const Node& s : scope_node.items()) {
        if (!s.isScalar() || s.scalar().empty() || s.scalar().find(' ') != std::string::npos) {
          diag_.problem(spath, s, "a scope is a non-empty string without spaces; route skipped");
          return std::nullopt;
        }
        these.push_back(s.scalar());
      }
    }
    if (it->second.api_key && !these.empty()) {
      diag_.warning(spath, scope_node, "an API key has no scopes: ignored");
      these.clear();
    }
    std::sort(these.begin(), these.end());
    if (scopes && *scopes != these) {
      diag_.problem(rpath, req,
                    "alternatives with different scopes: a Sluice auth policy has one list of "
                    "required scopes; route skipped");
      return std::nullopt;
    }
    scopes = these;
    if (std::find(names.begin(), names.end(), scheme_name) == names.end()) {
      names.push_back(scheme_name);
    }
  }
  if (names.empty()) return "";  // [{}]: anonymous only
  int key_schemes = 0;
  for (const std::string& n : names) key_schemes += schemes_[n].api_key ? 1 : 0;
  if (key_schemes > 1) {
    diag_.problem(path, security,
                  "alternatives between several API key schemes are not supported (one key-auth "
                  "per policy); route skipped");
    return std::nullopt;
  }
  const std::string key = absl::StrCat(absl::StrJoin(names, "|"), "#", absl::StrJoin(*scopes, " "),
                                       anonymous ? "#anon" : "");
  auto found = policy_by_key_.find(key);
  if (found != policy_by_key_.end()) return found->second;
  std::vector<std::string> safe;
  for (const std::string& n : names) safe.push_back(safeName(n));
  std::string name = absl::StrJoin(safe, "-or-");
  if (!scopes->empty()) absl::StrAppend(&name, "-scopes-", safeName(absl::StrJoin(*scopes, "+")));
  if (anonymous) absl::StrAppend(&name, "-optional");
  v1::AuthPolicy* policy = resources_.add_auth_policies();
  policy->set_name(name);
  for (const std::string& n : names) {
    const Scheme& s = schemes_[n];
    for (const v1::JwtProvider& p : s.providers) *policy->mutable_jwt()->add_providers() = p;
    if (s.api_key) {
      *policy->mutable_key_auth() = s.key_auth;
      for (const v1::Consumer& c : s.consumers) *policy->add_consumers() = c;
    }
  }
  for (const std::string& s : *scopes) policy->add_required_scopes(s);
  policy->set_allow_anonymous(anonymous);
  policy_by_key_[key] = name;
  return name;
}

// ---- Gateway responses ---------------------------------------------------------------------

void Converter::readGatewayResponses(const Node& node, const std::string& path) {
  // Sluice's types (Http::GatewayResponseType), sorted for the message.
  static const std::set<std::string> kSluiceTypes = [] {
    std::set<std::string> names;
    for (size_t i = 0; i < Http::kGatewayResponseTypeCount; ++i) {
      names.emplace(Http::gatewayResponseTypeName(static_cast<Http::GatewayResponseType>(i)));
    }
    return names;
  }();
  static const std::set<std::string> kAwsOnly = {
      "API_CONFIGURATION_ERROR", "AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE",
      "INVALID_SIGNATURE",       "MISSING_AUTHENTICATION_TOKEN",   "WAF_FILTERED"};
  for (const auto& [type, value] : node.entries()) {
    const std::string tpath = pathField(path, type);
    if (kAwsOnly.count(type) > 0) {
      diag_.warning(tpath, value,
                    absl::StrCat("Sluice never sends a ", type,
                                 " reply (no Lambda authorizer, IAM, WAF"
                                 ", and a path no route matches is RESOURCE_NOT_FOUND): skipped"));
      continue;
    }
    if (kSluiceTypes.count(type) == 0) {
      diag_.problem(tpath, value,
                    absl::StrCat("unknown gateway response type \"", type, "\" (it takes ",
                                 absl::StrJoin(kSluiceTypes, ", "), ")"));
      continue;
    }
    if (!value.isMap()) {
      diag_.error(tpath, value, absl::StrCat("must be a map, not ", value.describe()));
      continue;
    }
    checkOpenApiFields(value, tpath,
                       {"statusCode", "responseParameters", "responseTemplates", "defaultResponse"},
                       diag_);
    v1::GatewayResponse out;
    if (const Node* sc = value.get("statusCode")) {
      int64_t code = 0;
      if (!sc->isScalar() || !absl::SimpleAtoi(sc->scalar(), &code) || code < 200 || code > 599) {
        diag_.error(pathField(tpath, "statusCode"), *sc, "must be a status code, 200..599");
        continue;
      }
      out.set_status_code(static_cast<uint32_t>(code));
    }
    bool ok = true;
    if (const Node* params = getMap(value, "responseParameters", tpath, diag_)) {
      for (const auto& [key, v] : params->entries()) {
        const std::string ppath = pathField(pathField(tpath, "responseParameters"), key);
        absl::string_view header = key;
        if (!absl::ConsumePrefix(&header, "gatewayresponse.header.") || header.empty()) {
          diag_.problem(ppath, v,
                        "only gatewayresponse.header.NAME is supported (a header of the reply)");
          continue;
        }
        std::string text;
        if (auto s = quotedStatic(v.scalar())) {
          text = *s;
        } else if (v.scalar() == "context.requestId" || v.scalar() == "$context.requestId") {
          text = "$request_id";
        } else {
          diag_.problem(ppath, v,
                        absl::StrCat("value \"", v.scalar(),
                                     "\" is not supported (a quoted static value '...' or "
                                     "context.requestId is)"));
          ok = false;
          continue;
        }
        const std::string name = absl::AsciiStrToLower(header);
        if (!isToken(name) || isManagedHeader(name)) {
          diag_.problem(ppath, v,
                        absl::StrCat("header \"", header,
                                     "\" can't be set (not a header name, or one the gateway "
                                     "manages)"));
          ok = false;
          continue;
        }
        if (name == "content-type") {
          out.set_content_type(text);
        } else {
          (*out.mutable_headers())[name] = text;
        }
      }
    }
    if (const Node* templates = getMap(value, "responseTemplates", tpath, diag_)) {
      const std::string rpath = pathField(tpath, "responseTemplates");
      const Node* chosen = nullptr;
      std::string content_type;
      for (const auto& [ct, body] : templates->entries()) {
        if (chosen == nullptr || ct == "application/json") {
          chosen = &body;
          content_type = ct;
        }
      }
      for (const auto& [ct, body] : templates->entries()) {
        if (&body != chosen) {
          diag_.warning(pathField(rpath, ct), body,
                        absl::StrCat("one body per reply: the ", content_type,
                                     " template is used, not this one"));
        }
      }
      if (chosen != nullptr) {
        std::string body = chosen->isNull() ? "" : chosen->scalar();
        // AWS's variables that Sluice has: messageString is the quoted message.
        body = absl::StrReplaceAll(body, {{"$context.error.messageString", "\"$message\""},
                                          {"$context.error.validationErrorString", "\"$message\""},
                                          {"$context.error.message", "$message"},
                                          {"$context.error.responseType", type},
                                          {"$context.requestId", "$request_id"},
                                          {"$context.extendedRequestId", "$request_id"}});
        static const LazyRE2 kVtl = {
            R"((\$(context|input|util|stageVariables)\b|#set|#if|#foreach))"};
        if (RE2::PartialMatch(body, *kVtl)) {
          diag_.warning(pathField(rpath, content_type), *chosen,
                        "holds VTL that Sluice does not evaluate ($message, $request_id, "
                        "$status and $route are its variables): sent as written");
        }
        out.set_body(body);
        if (out.content_type().empty()) out.set_content_type(content_type);
      }
    }
    if (!ok) continue;
    if (!out.has_body() && !out.content_type().empty()) {
      diag_.warning(pathField(tpath, "responseParameters"), value,
                    "a Content-Type without a responseTemplates body: ignored (the built-in "
                    "body is JSON)");
      out.clear_content_type();
    }
    gateway_responses_[type] = std::move(out);
  }
}

// ---- Request validation --------------------------------------------------------------------

void Converter::readValidators() {
  if (const Node* validators = getMap(root_, kValidators, "", diag_)) {
    for (const auto& [name, v] : validators->entries()) {
      const std::string vpath = pathField(std::string(kValidators), name);
      if (!v.isMap()) {
        diag_.error(vpath, v, "must be a map {validateRequestBody, validateRequestParameters}");
        continue;
      }
      checkFields(v, vpath, {"validateRequestBody", "validateRequestParameters"}, kSource, diag_);
      Validator out;
      out.body = getBool(v, "validateRequestBody", vpath, diag_).value_or(false);
      out.params = getBool(v, "validateRequestParameters", vpath, diag_).value_or(false);
      validators_[name] = out;
    }
  }
  if (auto d = getString(root_, kValidator, "", diag_)) default_validator_ = *d;
  if (default_validator_ && validators_.count(*default_validator_) == 0) {
    diag_.problem(
        std::string(kValidator), *root_.get(kValidator),
        absl::StrCat("no request validator \"", *default_validator_, "\" in ", kValidators));
    default_validator_.reset();
  }
}

const Node* Converter::resolveRef(const Node& node, const std::string& path,
                                  absl::string_view section, std::string* resolved_path) {
  *resolved_path = path;
  const Node* ref = node.get("$ref");
  if (ref == nullptr) return &node;
  const std::string prefix = absl::StrCat("#/components/", section, "/");
  absl::string_view r = ref->scalar();
  if (!absl::ConsumePrefix(&r, prefix) || r.empty() || r.find('/') != absl::string_view::npos) {
    diag_.problem(pathField(path, "$ref"), *ref,
                  absl::StrCat("\"", ref->scalar(), "\": only references to ", prefix,
                               "NAME are supported here"));
    return nullptr;
  }
  const std::string name = absl::StrReplaceAll(r, {{"~1", "/"}, {"~0", "~"}});
  const Node* section_node = components_ ? components_->get(section) : nullptr;
  const Node* target = section_node ? section_node->get(name) : nullptr;
  if (target == nullptr || !target->isMap()) {
    diag_.error(pathField(path, "$ref"), *ref,
                absl::StrCat("dangling reference \"", ref->scalar(), "\": components.", section,
                             " has no \"", name, "\""));
    return nullptr;
  }
  *resolved_path = pathField(absl::StrCat("components.", section), name);
  if (target->get("$ref") != nullptr) {
    diag_.problem(*resolved_path, *target, "a reference to a reference is not supported");
    return nullptr;
  }
  return target;
}

// A schema as the request_validator takes it: `$ref: #/components/schemas/X[/...]` become
// `#/definitions/X[/...]` and every schema referenced (transitively) is copied into
// `definitions`, so recursive schemas stay finite. nullopt after a diagnostic.
std::optional<Value> Converter::schemaValue(const Node& schema, const std::string& path) {
  const Node* schemas = components_ ? components_->get("schemas") : nullptr;
  std::set<std::string> wanted;
  bool ok = true;
  // Copies `node` rewriting references; records the components they name.
  std::function<Value(const Node&, const std::string&)> copy = [&](const Node& node,
                                                                   const std::string& at) -> Value {
    if (node.isMap()) {
      Value v;
      v.mutable_struct_value();
      for (const auto& [key, child] : node.entries()) {
        const std::string cpath = pathField(at, key);
        if (key == "$ref" && child.isScalar()) {
          absl::string_view r = child.scalar();
          if (!absl::ConsumePrefix(&r, "#/components/schemas/")) {
            diag_.problem(cpath, child,
                          absl::StrCat("\"", child.scalar(),
                                       "\": only references to #/components/schemas/NAME are "
                                       "supported in a schema (nothing is fetched)"));
            ok = false;
            continue;
          }
          const size_t slash = r.find('/');
          const std::string name =
              absl::StrReplaceAll(r.substr(0, slash), {{"~1", "/"}, {"~0", "~"}});
          if (schemas == nullptr || schemas->find(name) == nullptr) {
            diag_.error(cpath, child,
                        absl::StrCat("dangling reference \"", child.scalar(),
                                     "\": components.schemas has no \"", name, "\""));
            ok = false;
            continue;
          }
          wanted.insert(name);
          (*v.mutable_struct_value()->mutable_fields())[key] =
              stringValue(absl::StrCat("#/definitions/", r));
          continue;
        }
        (*v.mutable_struct_value()->mutable_fields())[key] = copy(child, cpath);
      }
      return v;
    }
    if (node.isSequence()) {
      Value v;
      v.mutable_list_value();
      for (size_t i = 0; i < node.items().size(); ++i) {
        *v.mutable_list_value()->add_values() = copy(node.items()[i], pathIndex(at, i));
      }
      return v;
    }
    return toValue(node);
  };
  Value out = copy(schema, path);
  if (!ok) return std::nullopt;
  if (!wanted.empty()) {
    if (!out.has_struct_value()) return out;
    Struct definitions;
    std::set<std::string> done;
    while (true) {
      std::vector<std::string> todo;
      for (const std::string& w : wanted) {
        if (done.count(w) == 0) todo.push_back(w);
      }
      if (todo.empty()) break;
      for (const std::string& name : todo) {
        done.insert(name);
        (*definitions.mutable_fields())[name] =
            copy(*schemas->find(name), pathField("components.schemas", name));
      }
    }
    if (!ok) return std::nullopt;
    if (out.struct_value().fields().count("definitions") > 0) {
      diag_.problem(pathField(path, "definitions"), schema,
                    "a schema with its own definitions may not also use $ref to "
                    "components.schemas");
      return std::nullopt;
    }
    *(*out.mutable_struct_value()->mutable_fields())["definitions"].mutable_struct_value() =
        std::move(definitions);
  }
  // Compiled by the request_validator's own JSON Schema compiler, so a schema it would refuse
  // is reported here, at the spec's line, rather than by the config's validation later.
  absl::StatusOr<Json::Value> json = Json::parse(Config::toJson(out), {.max_depth = 64});
  absl::Status status = json.status();
  if (json.ok()) status = Extensions::RequestValidator::Schema::compile(*json).status();
  if (!status.ok()) {
    diag_.problem(path, schema, absl::StrCat("invalid schema: ", status.message()));
    return std::nullopt;
  }
  return out;
}

bool Converter::validationFor(const Node& op, const std::string& opath, const PathTemplate& tmpl,
                              const Node* item_params, const std::string& item_path, Struct& out) {
  std::optional<std::string> name = default_validator_;
  if (const Node* n = op.get(kValidator)) {
    name = n->scalar();
    if (validators_.count(*name) == 0) {
      diag_.problem(
          pathField(opath, kValidator), *n,
          absl::StrCat("no request validator \"", *name, "\" in ", kValidators, "; not validated"));
      return true;
    }
  }
  if (!name) return true;
  const Validator& v = validators_[*name];
  bool ok = true;
  if (v.params) {
    // (in, name) -> parameter; the operation's override the path item's.
    std::map<std::pair<std::string, std::string>, std::pair<const Node*, std::string>> params;
    std::vector<std::pair<std::string, std::string>> order;
    auto collect = [&](const Node* list, const std::string& lpath) {
      if (list == nullptr) return;
      if (!list->isSequence()) {
        diag_.error(lpath, *list, absl::StrCat("must be a list, not ", list->describe()));
        ok = false;
        return;
      }
      for (size_t i = 0; i < list->items().size(); ++i) {
        std::string ppath;
        const Node* p = resolveRef(list->items()[i], pathIndex(lpath, i), "parameters", &ppath);
        if (p == nullptr) {
          ok = ok && diag_.lenient();
          continue;
        }
        if (!p->isMap()) {
          diag_.error(ppath, *p, "must be a map");
          ok = false;
          continue;
        }
        auto pname = getString(*p, "name", ppath, diag_);
        auto in = getString(*p, "in", ppath, diag_);
        if (!pname || !in || pname->empty()) {
          diag_.error(ppath, *p, "a parameter needs a name and an in");
          ok = false;
          continue;
        }
        auto key = std::make_pair(*in, *pname);
        if (params.count(key) == 0) order.push_back(key);
        params[key] = {p, ppath};
      }
    };
    collect(item_params, pathField(item_path, "parameters"));
    collect(op.get("parameters"), pathField(opath, "parameters"));
    Value list;
    list.mutable_list_value();
    for (const auto& key : order) {
      const auto& [p, ppath] = params[key];
      checkOpenApiFields(
          *p, ppath,
          {"name", "in", "description", "required", "deprecated", "allowEmptyValue", "style",
           "explode", "allowReserved", "schema", "example", "examples", "content"},
          diag_);
      const std::string& in = key.first;
      Struct param;
      (*param.mutable_fields())["name"] = stringValue(key.second);
      if (in == "path") {
        if (std::find(tmpl.params.begin(), tmpl.params.end(), key.second) == tmpl.params.end()) {
          diag_.problem(
              pathField(ppath, "name"), *p,
              absl::StrCat("path parameter \"", key.second, "\" is not in the path template"));
          ok = ok && diag_.lenient();
          continue;
        }
        (*param.mutable_fields())["in"] = stringValue("PATH");
      } else if (in == "query") {
        (*param.mutable_fields())["in"] = stringValue("QUERY");
      } else if (in == "header") {
        (*param.mutable_fields())["in"] = stringValue("HEADER");
      } else {
        diag_.problem(
            pathField(ppath, "in"), *p,
            absl::StrCat("parameters in ", in, " are not validated (query, path and header are)"));
        ok = ok && diag_.lenient();
        continue;
      }
      if (getBool(*p, "required", ppath, diag_).value_or(false)) {
        (*param.mutable_fields())["required"] = boolValue(true);
      }
      if (const Node* schema = p->get("schema")) {
        std::optional<Value> s = schemaValue(*schema, pathField(ppath, "schema"));
        if (!s) {
          ok = ok && diag_.lenient();
        } else {
          (*param.mutable_fields())["schema"] = std::move(*s);
        }
      } else if (p->get("content") != nullptr) {
        diag_.warning(pathField(ppath, "content"), *p->get("content"),
                      "a parameter's content (a serialized value) is not validated, only its "
                      "presence");
      }
      *list.mutable_list_value()->add_values()->mutable_struct_value() = std::move(param);
    }
    if (!list.list_value().values().empty()) (*out.mutable_fields())["parameters"] = list;
  }
  if (v.body) {
    if (const Node* rb = op.get("requestBody")) {
      std::string bpath;
      const Node* body = resolveRef(*rb, pathField(opath, "requestBody"), "requestBodies", &bpath);
      if (body == nullptr) return diag_.lenient();
      checkOpenApiFields(*body, bpath, {"description", "content", "required"}, diag_);
      Struct b;
      if (getBool(*body, "required", bpath, diag_).value_or(false)) {
        (*b.mutable_fields())["required"] = boolValue(true);
      }
      if (const Node* content = getMap(*body, "content", bpath, diag_)) {
        Value types;
        types.mutable_list_value();
        static const LazyRE2 kMediaType = {R"([!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+)"};
        for (const auto& [ct, media] : content->entries()) {
          const std::string lower = absl::AsciiStrToLower(
              absl::StripAsciiWhitespace(absl::string_view(ct).substr(0, ct.find(';'))));
          if (!RE2::FullMatch(lower, *kMediaType)) {
            diag_.problem(pathField(pathField(bpath, "content"), ct), media,
                          "not a media type (type/subtype)");
            ok = ok && diag_.lenient();
            continue;
          }
          *types.mutable_list_value()->add_values() = stringValue(lower);
          const bool json = lower == "application/json" || absl::EndsWith(lower, "+json");
          const Node* schema = media.get("schema");
          if (json && schema != nullptr && b.fields().count("schema") == 0) {
            std::optional<Value> s = schemaValue(
                *schema, pathField(pathField(pathField(bpath, "content"), ct), "schema"));
            if (!s) {
              ok = ok && diag_.lenient();
            } else {
              (*b.mutable_fields())["schema"] = std::move(*s);
            }
          }
        }
        if (!types.list_value().values().empty()) (*b.mutable_fields())["content_types"] = types;
      }
      if (!b.fields().empty()) *(*out.mutable_fields())["body"].mutable_struct_value() = b;
    }
  }
  return ok;
}

// ---- Integrations --------------------------------------------------------------------------

std::string Converter::clusterFor(const Endpoint& e, const Node* tls_config,
                                  const std::string& path) {
  bool insecure = false;
  std::string server_name;
  if (tls_config != nullptr) {
    const std::string tpath = pathField(path, "tlsConfig");
    checkFields(*tls_config, tpath, {"insecureSkipVerification", "serverNameToVerify"}, kSource,
                diag_);
    insecure = getBool(*tls_config, "insecureSkipVerification", tpath, diag_).value_or(false);
    server_name = getString(*tls_config, "serverNameToVerify", tpath, diag_).value_or("");
  }
  const std::string host_port = e.host.find(':') != std::string::npos
                                    ? absl::StrCat("[", e.host, "]:", e.port)
                                    : absl::StrCat(e.host, ":", e.port);
  const std::string key = absl::StrCat(e.tls ? "https://" : "http://", host_port, "#",
                                       insecure ? "insecure" : "", "#", server_name);
  auto it = cluster_by_key_.find(key);
  if (it != cluster_by_key_.end()) return it->second;
  std::string name = safeName(absl::StrCat(e.host, "_", e.port));
  if (e.tls) absl::StrAppend(&name, "_tls");
  for (int n = 2; std::any_of(cluster_by_key_.begin(), cluster_by_key_.end(),
                              [&](const auto& kv) { return kv.second == name; });
       ++n) {
    name = absl::StrCat(safeName(absl::StrCat(e.host, "_", e.port)), e.tls ? "_tls" : "", "_", n);
  }
  v1::Cluster* c = resources_.add_clusters();
  c->set_name(name);
  const bool ip = isIpLiteral(e.host) || e.host == "localhost";
  if (!ip) c->set_type(v1::Cluster::STRICT_DNS);
  auto* ep = c->add_endpoints();
  ep->set_address(e.host);
  ep->set_port(e.port);
  if (e.tls) {
    v1::UpstreamTls* tls = c->mutable_tls();
    if (!server_name.empty()) {
      tls->set_sni(server_name);
    } else if (!ip) {
      tls->set_sni(e.host);
    }
    if (insecure) tls->set_insecure_skip_verify(true);
  }
  cluster_by_key_[key] = name;
  return name;
}

bool Converter::convertHttp(const Node& integration, const std::string& ipath,
                            const std::string& method, const PathTemplate& tmpl, v1::Route& route) {
  const std::optional<std::string> uri = getString(integration, "uri", ipath, diag_);
  if (!uri || uri->empty()) {
    diag_.error(pathField(ipath, "uri"), integration, "missing: an http integration needs a uri");
    return false;
  }
  std::string error;
  std::optional<Endpoint> e = parseUri(*uri, &error);
  if (!e) {
    diag_.problem(pathField(ipath, "uri"), *integration.get("uri"),
                  absl::StrCat("\"", *uri, "\": ", error));
    return false;
  }
  const Node* uri_node = integration.get("uri");
  if (auto ct = getString(integration, "connectionType", ipath, diag_)) {
    if (*ct == "VPC_LINK") {
      const Node* id = integration.get("connectionId");
      diag_.warning(pathField(ipath, "connectionType"), *integration.get("connectionType"),
                    absl::StrCat("VPC_LINK", id ? absl::StrCat(" ", id->scalar()) : "",
                                 ": Sluice connects to ", e->host,
                                 " directly; it must be reachable from the gateway"));
    } else if (*ct != "INTERNET") {
      diag_.problem(pathField(ipath, "connectionType"), *integration.get("connectionType"),
                    absl::StrCat("unknown connectionType \"", *ct, "\" (INTERNET, VPC_LINK)"));
    }
  }
  v1::RouteAction* action = route.mutable_route();
  action->set_cluster(clusterFor(*e, getMap(integration, "tlsConfig", ipath, diag_), ipath));
  const bool default_port = e->port == (e->tls ? 443u : 80u);
  const std::string host_header =
      e->host.find(':') != std::string::npos ? absl::StrCat("[", e->host, "]") : e->host;
  action->set_host_rewrite(default_port ? host_header : absl::StrCat(host_header, ":", e->port));
  if (auto t = getInt(integration, "timeoutInMillis", ipath, diag_)) {
    if (*t <= 0) {
      diag_.error(pathField(ipath, "timeoutInMillis"), *integration.get("timeoutInMillis"),
                  "must be > 0");
      return false;
    }
    setDuration(action->mutable_timeout(), *t);
  }

  Transform transform;
  // requestParameters: integration.request.<where>.<name> <- a source.
  std::map<std::string, std::string> path_values;  // uri placeholder -> template
  std::optional<std::string> path_override;        // HTTP APIs' overwrite:path
  if (const Node* params = getMap(integration, "requestParameters", ipath, diag_)) {
    const std::string rpath = pathField(ipath, "requestParameters");
    for (const auto& [target, source_node] : params->entries()) {
      const std::string ppath = pathField(rpath, target);
      if (!absl::StartsWith(target, "integration.") && target.find(':') != std::string::npos) {
        // HTTP APIs: "append|overwrite|remove:header|querystring.NAME", "overwrite:path".
        if (!httpApiMapping(target, source_node, ppath, tmpl, transform, &path_override)) {
          return false;
        }
        continue;
      }
      const std::string source = source_node.scalar();
      std::string value;
      absl::string_view s = source;
      absl::ConsumePrefix(&s, "$");
      if (auto st = quotedStatic(source)) {
        value = *st;
      } else if (absl::ConsumePrefix(&s, "method.request.path.")) {
        const std::string name(s);
        if (std::find(tmpl.params.begin(), tmpl.params.end(), name) == tmpl.params.end()) {
          diag_.problem(ppath, source_node,
                        absl::StrCat("method.request.path.", name, ": the path has no {", name,
                                     "} parameter"));
          return false;
        }
        value = absl::StrCat("$(uri_captures.", name, ")");
      } else if (absl::ConsumePrefix(&s, "method.request.querystring.") ||
                 absl::ConsumePrefix(&s, "method.request.multivaluequerystring.")) {
        value = absl::StrCat("$(query_params.", s, ")");
      } else if (absl::ConsumePrefix(&s, "method.request.header.") ||
                 absl::ConsumePrefix(&s, "method.request.multivalueheader.")) {
        value = absl::StrCat("$(headers.", absl::AsciiStrToLower(s), ")");
      } else if (const char* t = contextTemplate(s)) {
        value = t;
      } else if (s == "context.authorizer.principalId" || s == "context.authorizer.claims.sub" ||
                 s == "context.authorizer.claims.cognito:username") {
        value = "$consumer";
        diag_.warning(ppath, source_node,
                      "mapped to the consumer the auth policy identified (the token's subject)");
      } else {
        diag_.problem(ppath, source_node,
                      absl::StrCat("source \"", source,
                                   "\" is not supported (method.request.{path|querystring|header}"
                                   ".NAME, a quoted static value, context.requestId, "
                                   "context.identity.sourceIp, context.domainName are)"));
        return false;
      }
      absl::string_view t = target;
      if (value.empty() && !absl::StartsWith(t, "integration.request.path.")) {
        diag_.problem(ppath, source_node,
                      "an empty value can't be set (the request transformer needs a value)");
        return false;
      }
      if (absl::ConsumePrefix(&t, "integration.request.path.") && !t.empty()) {
        path_values[std::string(t)] = value;
      } else if (absl::ConsumePrefix(&t, "integration.request.querystring.") && !t.empty()) {
        transform.set_query.push_back(absl::StrCat(t, ":", value));
      } else if (absl::ConsumePrefix(&t, "integration.request.header.") && !t.empty()) {
        if (!isToken(t) || isManagedHeader(absl::AsciiStrToLower(t))) {
          diag_.problem(ppath, source_node,
                        absl::StrCat("header \"", t,
                                     "\" can't be set (not a header name, or one the gateway "
                                     "manages)"));
          return false;
        }
        transform.set_headers.push_back(absl::StrCat(absl::AsciiStrToLower(t), ":", value));
      } else {
        diag_.problem(ppath, source_node,
                      "target must be integration.request.{path|querystring|header}.NAME");
        return false;
      }
    }
  }
  // The upstream path: the uri's, with its {placeholders} from requestParameters (or, as the
  // AWS console writes for http_proxy, the method's path parameter of the same name).
  std::string upstream;
  std::set<std::string> used;
  absl::string_view p = e->path;
  bool templated = false;
  while (!p.empty()) {
    const size_t open = p.find('{');
    if (open == absl::string_view::npos) {
      absl::StrAppend(&upstream, p);
      break;
    }
    absl::StrAppend(&upstream, p.substr(0, open));
    const size_t close = p.find('}', open);
    if (close == absl::string_view::npos) {
      diag_.problem(pathField(ipath, "uri"), *uri_node, "unterminated { in the uri's path");
      return false;
    }
    std::string name(p.substr(open + 1, close - open - 1));
    if (absl::EndsWith(name, "+")) name.pop_back();
    auto it = path_values.find(name);
    if (it != path_values.end()) {
      upstream += it->second;
    } else if (std::find(tmpl.params.begin(), tmpl.params.end(), name) != tmpl.params.end()) {
      upstream += absl::StrCat("$(uri_captures.", name, ")");
    } else {
      diag_.problem(pathField(ipath, "uri"), *uri_node,
                    absl::StrCat("{", name, "} has no value: map integration.request.path.", name,
                                 " in requestParameters"));
      return false;
    }
    used.insert(name);
    templated = true;
    p = p.substr(close + 1);
  }
  for (const auto& [name, value] : path_values) {
    if (used.count(name) == 0) {
      diag_.warning(pathField(pathField(ipath, "requestParameters"),
                              absl::StrCat("integration.request.path.", name)),
                    *integration.get("requestParameters"),
                    absl::StrCat("the uri has no {", name, "}: unused"));
    }
  }
  if (path_override) {
    transform.uri = *path_override;
  } else if (templated) {
    transform.uri = upstream;
  } else if (tmpl.catch_all) {
    // A prefix route: prefix_rewrite would keep the rest of the path; the uri's path replaces
    // all of it, as on every other route.
    transform.uri = upstream;
    diag_.warning(pathField(ipath, "uri"), *uri_node,
                  absl::StrCat("$default: every request is sent to the path ", upstream,
                               " (the request's path is not appended)"));
  } else {
    action->set_prefix_rewrite(upstream);
  }
  if (!e->query.empty()) {
    for (absl::string_view kv : absl::StrSplit(e->query, '&', absl::SkipEmpty())) {
      std::pair<std::string, std::string> split = absl::StrSplit(kv, absl::MaxSplits('=', 1));
      if (split.first.empty() || split.second.empty()) {
        diag_.problem(
            pathField(ipath, "uri"), *uri_node,
            absl::StrCat("query parameter \"", kv, "\" of the uri: a name and a value are needed"));
        return false;
      }
      transform.set_query.push_back(absl::StrCat(split.first, ":", split.second));
    }
  }
  if (auto m = getString(integration, "httpMethod", ipath, diag_)) {
    const std::string upper = absl::AsciiStrToUpper(*m);
    if (upper != "ANY" && upper != method) transform.method = upper;
  }
  if (!transform.empty()) {
    (*route.mutable_filter_config())["request_transformer"] = transform.toStruct();
    uses_transformer_ = true;
  }
  return true;
}

// One HTTP API parameter mapping (AWS: "Transforming API requests and responses", HTTP APIs):
// the value is static text with $request.{header|querystring|path}.NAME and $context.*
// variables, braced (${request.path.id}) or not.
bool Converter::httpApiMapping(const std::string& target, const Node& value,
                               const std::string& path, const PathTemplate& tmpl,
                               Transform& transform, std::optional<std::string>* path_override) {
  static const LazyRE2 kTarget = {
      R"((append|overwrite|remove):(?:(header|querystring)\.(\S+)|(path)))"};
  std::string op, where, name, whole_path;
  if (!RE2::FullMatch(target, *kTarget, &op, &where, &name, &whole_path) ||
      (!whole_path.empty() && op != "overwrite")) {
    diag_.problem(path, value,
                  "an HTTP API mapping is append|overwrite|remove:header.NAME, "
                  "append|overwrite|remove:querystring.NAME or overwrite:path");
    return false;
  }
  if (where == "header" && (!isToken(name) || isManagedHeader(absl::AsciiStrToLower(name)))) {
    diag_.problem(path, value,
                  absl::StrCat("header \"", name,
                               "\" can't be set (not a header name, or one the gateway manages)"));
    return false;
  }
  if (where == "header") name = absl::AsciiStrToLower(name);
  if (op == "remove") {
    (where == "header" ? transform.remove_headers : transform.remove_query).push_back(name);
    return true;
  }
  // The value as a request_transformer template.
  const std::string& in = value.scalar();
  std::string out;
  for (size_t i = 0; i < in.size();) {
    if (in[i] != '$' || i + 1 == in.size()) {
      out += in[i++];
      continue;
    }
    size_t start = i + 1, end;
    const bool braced = in[start] == '{';
    if (braced) {
      ++start;
      end = in.find('}', start);
      if (end == std::string::npos) {
        diag_.problem(path, value, "unterminated ${...}");
        return false;
      }
    } else {
      end = start;
      while (end < in.size() &&
             (absl::ascii_isalnum(static_cast<unsigned char>(in[end])) || in[end] == '_' ||
              in[end] == '.' || in[end] == '-' || in[end] == ':')) {
        ++end;
      }
    }
    absl::string_view var = absl::string_view(in).substr(start, end - start);
    i = braced ? end + 1 : end;
    if (!absl::StartsWith(var, "request.") && !absl::StartsWith(var, "context.") &&
        !absl::StartsWith(var, "stageVariables.")) {
      absl::StrAppend(&out, "$", braced ? "{" : "", var, braced ? "}" : "");
      continue;
    }
    absl::string_view v = var;
    if (absl::ConsumePrefix(&v, "request.header.") && !v.empty()) {
      absl::StrAppend(&out, "$(headers.", absl::AsciiStrToLower(v), ")");
    } else if (absl::ConsumePrefix(&v, "request.querystring.") && !v.empty()) {
      absl::StrAppend(&out, "$(query_params.", v, ")");
    } else if (absl::ConsumePrefix(&v, "request.path.") &&
               std::find(tmpl.params.begin(), tmpl.params.end(), std::string(v)) !=
                   tmpl.params.end()) {
      absl::StrAppend(&out, "$(uri_captures.", v, ")");
    } else if (const char* t = contextTemplate(var)) {
      out += t;
    } else {
      diag_.problem(path, value,
                    absl::StrCat("$", var,
                                 " is not supported ($request.header|querystring.NAME, "
                                 "$request.path.NAME of a path parameter, $context.requestId, "
                                 "$context.identity.sourceIp, $context.domainName are)"));
      return false;
    }
  }
  if (!whole_path.empty()) {
    if (out.empty() || out.front() != '/') {
      diag_.problem(path, value, "overwrite:path must start with '/'");
      return false;
    }
    *path_override = out;
    return true;
  }
  if (out.empty()) {
    diag_.problem(path, value,
                  "an empty value can't be set (the request transformer needs a value)");
    return false;
  }
  const std::string entry = absl::StrCat(name, ":", out);
  if (op == "append") {
    (where == "header" ? transform.append_headers : transform.append_query).push_back(entry);
  } else {
    (where == "header" ? transform.set_headers : transform.set_query).push_back(entry);
  }
  return true;
}

// method.response.header.X: "'value'" of an integration response (CORS headers, mostly): set on
// the reply by the route's response_transformer. Other forms are warned about and ignored.
void Converter::responseHeaders(const Node& rp, const std::string& ppath, v1::Route& route) {
  Value set;
  set.mutable_list_value();
  for (const auto& [key, v] : rp.entries()) {
    absl::string_view header = key;
    std::optional<std::string> text = quotedStatic(v.scalar());
    if (!absl::ConsumePrefix(&header, "method.response.header.") || !isToken(header) ||
        isManagedHeader(absl::AsciiStrToLower(header)) ||
        absl::EqualsIgnoreCase(header, "content-type") || !text || text->empty()) {
      diag_.warning(pathField(ppath, key), v,
                    "ignored: a reply's header is method.response.header.NAME set to a quoted "
                    "static value '...' (not Content-Type)");
      continue;
    }
    *set.mutable_list_value()->add_values() =
        stringValue(absl::StrCat(absl::AsciiStrToLower(header), ":", *text));
  }
  if (set.list_value().values().empty()) return;
  Struct rt;
  (*(*rt.mutable_fields())["replace"].mutable_struct_value()->mutable_fields())["headers"] = set;
  (*(*rt.mutable_fields())["add"].mutable_struct_value()->mutable_fields())["headers"] = set;
  (*route.mutable_filter_config())["response_transformer"] = rt;
  uses_response_transformer_ = true;
}

bool Converter::convertMock(const Node& integration, const std::string& ipath, v1::Route& route) {
  v1::DirectResponse* direct = route.mutable_direct_response();
  direct->set_status(200);
  const Node* responses = getMap(integration, "responses", ipath, diag_);
  if (responses == nullptr || responses->size() == 0) return true;
  const std::string rpath = pathField(ipath, "responses");
  // The request template's {"statusCode": N} selects the response whose pattern matches N.
  std::string selected_code;
  if (const Node* rt = integration.get("requestTemplates")) {
    static const LazyRE2 kCode = {R"("statusCode"\s*:\s*"?(\d{3}))"};
    for (const auto& [ct, tmpl] : rt->entries()) {
      if (RE2::PartialMatch(tmpl.scalar(), *kCode, &selected_code)) break;
    }
  }
  const Node* chosen = nullptr;
  std::string chosen_key;
  for (const auto& [pattern, resp] : responses->entries()) {
    if (pattern == "default") continue;
    if (!selected_code.empty()) {
      RE2 re(pattern, RE2::Quiet);
      if (re.ok() && RE2::FullMatch(selected_code, re)) {
        chosen = &resp;
        chosen_key = pattern;
        break;
      }
    }
  }
  if (chosen == nullptr) {
    chosen = responses->get("default");
    chosen_key = "default";
  }
  if (chosen == nullptr) {
    chosen = &responses->entries().front().second;
    chosen_key = responses->entries().front().first;
  }
  const std::string cpath = pathField(rpath, chosen_key);
  if (!chosen->isMap()) {
    diag_.error(cpath, *chosen, "must be a map");
    return false;
  }
  checkOpenApiFields(*chosen, cpath,
                     {"statusCode", "responseTemplates", "responseParameters", "contentHandling"},
                     diag_);
  if (const Node* sc = chosen->get("statusCode")) {
    int64_t code = 0;
    if (!absl::SimpleAtoi(sc->scalar(), &code) || code < 200 || code > 599) {
      diag_.error(pathField(cpath, "statusCode"), *sc, "must be a status code, 200..599");
      return false;
    }
    direct->set_status(static_cast<uint32_t>(code));
  }
  if (const Node* templates = getMap(*chosen, "responseTemplates", cpath, diag_)) {
    const Node* body = nullptr;
    for (const auto& [ct, t] : templates->entries()) {
      if (body == nullptr || ct == "application/json") {
        body = &t;
        direct->set_content_type(ct);
      }
    }
    if (body != nullptr) {
      direct->set_body(body->isNull() ? "" : body->scalar());
      static const LazyRE2 kVtl = {
          R"((\$(context|input|util|stageVariables)\b|#set|#if|#foreach))"};
      if (RE2::PartialMatch(direct->body(), *kVtl)) {
        diag_.warning(pathField(cpath, "responseTemplates"), *body,
                      "holds VTL that is not evaluated: the body is sent as written");
      }
    }
  }
  if (const Node* rp = getMap(*chosen, "responseParameters", cpath, diag_)) {
    responseHeaders(*rp, pathField(cpath, "responseParameters"), route);
  }
  return true;
}

// ---- Paths ---------------------------------------------------------------------------------

void Converter::convertOperation(const std::string& method, const Node& op,
                                 const std::string& opath, const std::string& template_path,
                                 const PathTemplate& tmpl, const Node* item_params,
                                 const std::string& item_path, size_t order) {
  if (!op.isMap()) {
    diag_.error(opath, op, absl::StrCat("must be a map, not ", op.describe()));
    return;
  }
  checkOpenApiFields(op, opath,
                     {"tags", "summary", "description", "externalDocs", "operationId", "parameters",
                      "requestBody", "responses", "callbacks", "deprecated", "security", "servers"},
                     diag_);
  RouteEntry entry;
  entry.order = order;
  entry.path = opath;
  entry.line = op.line();
  for (const Segment& s : tmpl.segments) {
    entry.specificity.push_back(static_cast<int>(s.kind));
  }
  if (tmpl.catch_all) entry.specificity.push_back(3);  // after everything else
  entry.specificity.push_back(method.empty() ? 1 : 0);
  v1::Route& route = entry.route;
  std::string name = absl::StrCat(method.empty() ? "ANY" : method, " ", template_path);
  if (auto id = getString(op, "operationId", opath, diag_)) {
    if (!operation_ids_.insert(*id).second) {
      diag_.warning(pathField(opath, "operationId"), *op.get("operationId"),
                    absl::StrCat("operationId \"", *id, "\" is used twice; the route is named \"",
                                 name, "\""));
    } else {
      name = *id;
    }
  }
  route.set_name(name);
  if (tmpl.catch_all) {
    route.mutable_match()->set_prefix("/");
  } else if (tmpl.templated()) {
    route.mutable_match()->set_regex(templateRegex(tmpl));
  } else {
    route.mutable_match()->set_path(template_path);
  }
  if (!method.empty()) route.mutable_match()->add_methods(method);

  const Node* integration = op.get(kIntegration);
  const std::string ipath = pathField(opath, kIntegration);
  if (integration == nullptr) {
    diag_.problem(opath, op,
                  absl::StrCat("no ", kIntegration, ": nothing to send the request to; skipped"));
    return;
  }
  if (!integration->isMap()) {
    diag_.error(ipath, *integration, "must be a map");
    return;
  }
  checkOpenApiFields(
      *integration, ipath,
      {"type", "uri", "httpMethod", "connectionType", "connectionId", "requestParameters",
       "requestTemplates", "passthroughBehavior", "responses", "timeoutInMillis",
       "cacheKeyParameters", "cacheNamespace", "tlsConfig", "contentHandling", "credentials",
       "payloadFormatVersion", "integrationSubtype", "description", "responseParameters"},
      diag_);
  const std::string type =
      absl::AsciiStrToLower(getString(*integration, "type", ipath, diag_).value_or(""));
  if (type == "http_proxy" || type == "http") {
    if (!convertHttp(*integration, ipath, method, tmpl, route)) return;
    if (type == "http") {
      if (const Node* rt = integration->get("requestTemplates")) {
        diag_.warning(pathField(ipath, "requestTemplates"), *rt,
                      "mapping templates (VTL) are not applied: the request body passes as sent");
      }
      if (const Node* r = getMap(*integration, "responses", ipath, diag_)) {
        // The default response's static headers are set on every reply; the rest (status
        // mappings, templates) is not applied.
        const Node* d = r->get("default");
        const Node* rp = d != nullptr && d->isMap() ? d->get("responseParameters") : nullptr;
        if (rp != nullptr && rp->isMap()) {
          responseHeaders(
              *rp,
              pathField(pathField(pathField(ipath, "responses"), "default"), "responseParameters"),
              route);
        }
        diag_.warning(pathField(ipath, "responses"), *r,
                      "integration responses are not mapped (status codes, templates): the "
                      "upstream's response passes as it is, with the default response's static "
                      "headers");
      }
    }
  } else if (type == "mock") {
    if (!convertMock(*integration, ipath, route)) return;
  } else if (type == "aws" || type == "aws_proxy") {
    const Node* uri = integration->get("uri");
    diag_.problem(pathField(ipath, "type"), *integration->get("type"),
                  absl::StrCat("integration type ", type, " (a Lambda function or AWS service",
                               uri ? absl::StrCat(": ", uri->scalar()) : std::string(),
                               ") is not supported: Sluice proxies HTTP; put the function behind "
                               "an HTTP endpoint (a Lambda function URL) and use http_proxy"));
    return;
  } else {
    diag_.problem(pathField(ipath, "type"),
                  integration->get("type") ? *integration->get("type") : *integration,
                  absl::StrCat("integration type \"", type,
                               "\" is not supported (http_proxy, http, mock are)"));
    return;
  }

  // Security: the operation's requirement, else the document's.
  const Node* security = op.find("security");
  std::string spath = pathField(opath, "security");
  if (security == nullptr) {
    security = root_.find("security");
    spath = "security";
  }
  if (security != nullptr && !security->isNull()) {
    std::optional<std::string> policy = policyFor(*security, spath);
    if (!policy) return;
    if (!policy->empty()) {
      // Also on a direct response (mock): the auth filter runs before the router answers.
      route.set_auth(*policy);
      uses_auth_ = true;
    }
  }

  Struct validation;
  if (!validationFor(op, opath, tmpl, item_params, item_path, validation)) return;
  if (!validation.fields().empty()) {
    (*route.mutable_filter_config())["request_validator"] = validation;
    uses_validator_ = true;
  }
  routes_.push_back(std::move(entry));
}

void Converter::readPaths() {
  const Node* paths = getMap(root_, "paths", "", diag_);
  if (paths == nullptr) return;
  size_t order = 0;
  for (const auto& [path, item] : paths->entries()) {
    const std::string item_path = pathField("paths", path);
    std::string error;
    std::optional<PathTemplate> tmpl = parsePathTemplate(path, &error);
    if (!tmpl) {
      diag_.problem(item_path, item, absl::StrCat("\"", path, "\": ", error));
      continue;
    }
    if (!item.isMap()) {
      diag_.error(item_path, item, absl::StrCat("must be a map, not ", item.describe()));
      continue;
    }
    if (const Node* ref = item.get("$ref")) {
      diag_.problem(pathField(item_path, "$ref"), *ref, "path item references are not supported");
      continue;
    }
    const Node* item_params = item.get("parameters");
    bool any = false;
    for (const auto& [key, op] : item.entries()) {
      const std::string opath = pathField(item_path, key);
      if (key == kAnyMethod) {
        convertOperation("", op, opath, path, *tmpl, item_params, item_path, order++);
        any = true;
      } else if (std::find(std::begin(kMethods), std::end(kMethods), key) != std::end(kMethods)) {
        convertOperation(absl::AsciiStrToUpper(key), op, opath, path, *tmpl, item_params, item_path,
                         order++);
        any = true;
      } else if (key == "summary" || key == "description" || key == "servers" ||
                 key == "parameters" || isExtension(key)) {
        continue;
      } else {
        diag_.problem(opath, op,
                      absl::StrCat(kSource,
                                   " has no such field in a path item (it takes get, put, post, "
                                   "delete, options, head, patch, trace, ",
                                   kAnyMethod, ", summary, description, servers, parameters)"));
      }
    }
    if (!any) diag_.warning(item_path, item, "no operations: nothing routed");
  }
}

void Converter::finish() {
  std::stable_sort(routes_.begin(), routes_.end(), [](const RouteEntry& a, const RouteEntry& b) {
    return a.specificity < b.specificity;
  });
  std::string title = "openapi";
  v1::RouteTable* table = resources_.add_route_tables();
  table->set_name(title);
  v1::VirtualHost* vhost = table->add_virtual_hosts();
  vhost->set_name(title);
  vhost->add_domains("*");
  // Two operations with the same match (/a/{x} and /a/{y}): the second is never reached.
  std::map<std::string, const RouteEntry*> seen;
  for (const RouteEntry& r : routes_) {
    const v1::RouteMatch& m = r.route.match();
    std::string regex = m.regex();  // capture names do not change what matches
    static const LazyRE2 kName = {R"(\(\?P<[A-Za-z0-9_]+>)"};
    RE2::GlobalReplace(&regex, *kName, "(");
    const std::string key =
        absl::StrCat(m.path(), "|", m.prefix(), "|", absl::StrJoin(m.methods(), ","), "|", regex);
    auto [it, inserted] = seen.try_emplace(key, &r);
    if (!inserted) {
      diag_.warning(r.path, r.line,
                    absl::StrCat("matches the same requests as ", it->second->path, " (line ",
                                 it->second->line, "), which comes first: never used"));
    }
  }
  for (RouteEntry& r : routes_) *vhost->add_routes() = std::move(r.route);

  v1::Listener* listener = resources_.add_listeners();
  listener->set_name(title);
  listener->set_route_table(title);
  // --listen, else the spec's x-sluice-listen, else Sluice's default for OpenAPI.
  std::string listen = options_.listen;
  if (listen.empty()) {
    listen = getString(root_, kListenExtension, "", diag_).value_or("0.0.0.0:8080");
  }
  std::string host = "0.0.0.0";
  uint32_t port = 0;
  const size_t colon = listen.rfind(':');
  absl::string_view h =
      colon == std::string::npos ? "" : absl::string_view(listen).substr(0, colon);
  absl::ConsumePrefix(&h, "[");
  absl::ConsumeSuffix(&h, "]");
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port > 65535) {
    diag_.error("", 0,
                absl::StrCat("listen address \"", listen,
                             "\" (--listen or x-sluice-listen): must be HOST:PORT"));
  } else {
    if (!h.empty()) host = std::string(h);
  }
  listener->mutable_address()->set_host(host);
  listener->mutable_address()->set_port(port);
  // First: it sees the replies last (those of auth and the validator too).
  if (uses_response_transformer_) listener->add_http_filters()->set_name("response_transformer");
  if (uses_auth_) listener->add_http_filters()->set_name("auth");
  if (uses_validator_) listener->add_http_filters()->set_name("request_validator");
  if (uses_transformer_) listener->add_http_filters()->set_name("request_transformer");
  listener->add_http_filters()->set_name("router");
  *listener->mutable_gateway_responses() = gateway_responses_;
}

void Converter::run() {
  if (!checkVersion()) return;
  readComponents();
  readSchemes();
  readValidators();
  readPaths();
  finish();
}

}  // namespace

Result convertOpenApi(const std::string& text, const Options& options) {
  Result result(options.lenient);
  std::optional<Node> root = parseDocument(text, result.diagnostics);
  if (!root) return result;
  Converter converter(*root, options, result);
  converter.run();
  return result;
}

}  // namespace ConfigImport
}  // namespace sluice
