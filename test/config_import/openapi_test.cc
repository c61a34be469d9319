// The OpenAPI 3 + AWS API Gateway importer (source/config_import/openapi.cc): every mapping,
// every diagnostic, converted resources validated as a data plane would (Server::
// validateResources), and golden outputs (testdata/<name>.openapi.yaml ->
// <name>.openapi.golden.yaml; UPDATE_GOLDEN=1 bazel run //test/config_import:openapi_test
// rewrites them in the source tree).

#include "source/config_import/openapi.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/config_import/import.h"
#include "source/server/config/snapshot.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace ConfigImport {
namespace {

namespace v1 = sluice::config::v1;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;
using testing::Not;

std::string diagnosticsText(const Result& r) {
  return renderDiagnostics(r.diagnostics, "api.yaml");
}

Result convertText(const std::string& text, bool lenient = false, Options options = {}) {
  options.lenient = lenient;
  return convertOpenApi(text, options);
}

// A converted document that must convert without errors and pass Sluice's validation.
Result convertOk(const std::string& text, Options options = {}) {
  Result r = convertText(text, false, options);
  EXPECT_TRUE(r.ok()) << diagnosticsText(r);
  if (r.ok()) {
    absl::Status v = Server::validateResources(r.resources);
    EXPECT_TRUE(v.ok()) << v << "\n" << Config::toJson(r.resources, true);
  }
  return r;
}

// A spec around `paths` (indented by the caller at 2 spaces) and optional other top-level text.
std::string spec(const std::string& paths, const std::string& extra = "") {
  return absl::StrCat("openapi: 3.0.1\ninfo: {title: t, version: '1'}\n", extra, "paths:\n", paths);
}

std::string proxyOp(const std::string& uri, const std::string& more = "") {
  return absl::StrCat("      x-amazon-apigateway-integration:\n        type: http_proxy\n",
                      "        uri: ", uri, "\n", more);
}

const v1::VirtualHost& vhost(const Result& r) {
  return r.resources.route_tables(0).virtual_hosts(0);
}

const v1::Route* routeNamed(const Result& r, const std::string& name) {
  if (r.resources.route_tables_size() == 0) return nullptr;
  for (const v1::Route& route : vhost(r).routes()) {
    if (route.name() == name) return &route;
  }
  return nullptr;
}

const v1::Cluster* clusterNamed(const Result& r, const std::string& name) {
  for (const v1::Cluster& c : r.resources.clusters()) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}

const v1::AuthPolicy* policyNamed(const Result& r, const std::string& name) {
  for (const v1::AuthPolicy& p : r.resources.auth_policies()) {
    if (p.name() == name) return &p;
  }
  return nullptr;
}

// JSON with the members of Structs in sorted order (protobuf's map order is not stable).
std::string canonical(const google::protobuf::Value& v);
std::string canonical(const google::protobuf::Struct& s) {
  std::vector<std::string> keys;
  for (const auto& [k, unused] : s.fields()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  std::string out = "{";
  for (const std::string& k : keys) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"", k, "\":", canonical(s.fields().at(k)));
  }
  return out + "}";
}
std::string canonical(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kStructValue:
      return canonical(v.struct_value());
    case google::protobuf::Value::kListValue: {
      std::string out = "[";
      for (const auto& item : v.list_value().values()) {
        absl::StrAppend(&out, out.size() > 1 ? "," : "", canonical(item));
      }
      return out + "]";
    }
    case google::protobuf::Value::kStringValue:
      return absl::StrCat("\"", v.string_value(), "\"");
    case google::protobuf::Value::kNumberValue:
      return absl::StrCat(v.number_value());
    case google::protobuf::Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    default:
      return "null";
  }
}
std::string json(const google::protobuf::Struct& s) { return canonical(s); }

std::vector<std::string> filterNames(const Result& r) {
  std::vector<std::string> out;
  for (const auto& f : r.resources.listeners(0).http_filters()) out.push_back(f.name());
  return out;
}

// ---- Document-level errors -----------------------------------------------------------------

TEST(OpenApiDocument, SwaggerTwoIsAClearError) {
  Result r = convertText("swagger: '2.0'\ninfo: {title: t}\npaths: {}\n");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(diagnosticsText(r),
              HasSubstr("api.yaml:1: error: swagger: Swagger/OpenAPI 2.0 is not supported: "
                        "convert the spec to OpenAPI 3 first"));
}

TEST(OpenApiDocument, UnknownVersion) {
  Result r = convertText("openapi: 4.0.0\npaths: {}\n");
  EXPECT_THAT(diagnosticsText(r),
              HasSubstr("api.yaml:1: error: openapi: unsupported OpenAPI version \"4.0.0\""));
  r = convertText("openapi: [3]\npaths: {}\n");
  EXPECT_FALSE(r.ok());
}

TEST(OpenApiDocument, MissingVersionAndPaths) {
  EXPECT_THAT(diagnosticsText(convertText("info: {title: t}\npaths: {}\n")),
              HasSubstr("error: openapi: missing"));
  EXPECT_THAT(diagnosticsText(convertText("openapi: 3.0.0\ninfo: {title: t}\n")),
              HasSubstr("error: paths: missing: the spec has no paths, nothing to route"));
}

TEST(OpenApiDocument, NotAMapAndBrokenYaml) {
  EXPECT_THAT(diagnosticsText(convertText("- a\n- b\n")),
              HasSubstr("an OpenAPI document is a map, not a list"));
  EXPECT_THAT(diagnosticsText(convertText("openapi: 3.0.0\npaths: {a: [\n")),
              HasSubstr("invalid YAML"));
  EXPECT_FALSE(convertText("").ok());
}

TEST(OpenApiDocument, OpenApi31IsConvertedWithAWarning) {
  Result r = convertOk("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n" +
                       proxyOp("http://10.0.0.1/a"));
  EXPECT_THAT(diagnosticsText(r), HasSubstr("warning: openapi: OpenAPI 3.1: schemas are "
                                            "validated as OpenAPI 3.0"));
}

TEST(OpenApiDocument, ServersBasePathIsWarned) {
  Result r = convertOk(
      spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
           "servers:\n- url: https://abc.execute-api.eu-west-1.amazonaws.com/prod\n- url: /v1/\n"
           "- url: https://api.example.com\n- url: https://api.example.com/\n"));
  EXPECT_THAT(diagnosticsText(r),
              HasSubstr("warning: servers[0].url: the base path /prod is not prefixed"));
  EXPECT_THAT(diagnosticsText(r), HasSubstr("servers[1].url: the base path /v1 is not prefixed"));
  EXPECT_THAT(diagnosticsText(r), Not(HasSubstr("servers[2]")));
  EXPECT_THAT(diagnosticsText(r), Not(HasSubstr("servers[3]")));
}

TEST(OpenApiDocument, UnknownTopLevelFieldIsAProblem) {
  const std::string text = "openapi: 3.0.0\nbogus: 1\npaths: {}\n";
  EXPECT_THAT(diagnosticsText(convertText(text)),
              HasSubstr("api.yaml:2: error: bogus: OpenAPI has no such field here"));
  Result lenient = convertText(text, true);
  EXPECT_TRUE(lenient.ok());
  EXPECT_THAT(diagnosticsText(lenient), HasSubstr("api.yaml:2: warning: bogus"));
}

TEST(OpenApiDocument, DuplicateKeyStrictAndLenient) {
  const std::string text = spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
                                "components:\n  securitySchemes:\n    k:\n      type: oauth2\n"
                                "      name: x-key\n      in: header\n      type: apiKey\n");
  Result strict = convertText(text);
  EXPECT_FALSE(strict.ok());
  EXPECT_THAT(diagnosticsText(strict),
              HasSubstr("api.yaml:9: error: components.securitySchemes.k.type: duplicate key "
                        "\"type\" (first at line 6)"));
  Result lenient = convertText(text, true);
  EXPECT_TRUE(lenient.ok()) << diagnosticsText(lenient);
  EXPECT_THAT(diagnosticsText(lenient),
              HasSubstr("api.yaml:9: warning: components.securitySchemes.k.type: duplicate key "
                        "\"type\" (first at line 6): the last value is used"));
}

TEST(OpenApiDocument, HostileInputNeverCrashes) {
  const std::vector<std::string> inputs = {
      "openapi: 3.0.0\npaths: 5\n",
      "openapi: 3.0.0\npaths: {/a: 5}\n",
      "openapi: 3.0.0\npaths: {/a: {get: [1]}}\n",
      "openapi: 3.0.0\npaths: {/a: {get: {x-amazon-apigateway-integration: 1}}}\n",
      "openapi: 3.0.0\npaths: {/a: {get: {x-amazon-apigateway-integration: {type: [1]}}}}\n",
      "openapi: 3.0.0\npaths: {'/{': {get: {}}}\n",
      "openapi: 3.0.0\npaths: {'/a/{b+}/c': {get: {}}}\n",
      "openapi: 3.0.0\ncomponents: 1\npaths: {}\n",
      "openapi: 3.0.0\ncomponents: {securitySchemes: {a: 1}}\nsecurity: [{a: []}]\npaths: {}\n",
      "openapi: 3.0.0\nsecurity: 7\npaths: {/a: {get: {x-amazon-apigateway-integration: "
      "{type: mock}}}}\n",
      "openapi: 3.0.0\nsecurity: [7]\npaths: {/a: {get: {x-amazon-apigateway-integration: "
      "{type: mock}}}}\n",
      "openapi: 3.0.0\nx-amazon-apigateway-gateway-responses: {DEFAULT_4XX: [1]}\npaths: {}\n",
      "openapi: 3.0.0\nx-amazon-apigateway-request-validators: {a: 1}\npaths: {}\n",
      "openapi: 3.0.0\npaths: {/a: {get: {x-amazon-apigateway-integration: {type: http_proxy, "
      "uri: 'http://[::1'}}}}\n",
      "openapi: 3.0.0\npaths: {/a: {get: {x-amazon-apigateway-integration: {type: http_proxy, "
      "uri: 'http://h:99999/'}}}}\n",
      "openapi: 3.0.0\npaths: {/a: {get: {x-amazon-apigateway-integration: {type: http_proxy, "
      "uri: 'http://h/{'}}}}\n",
      "openapi: 3.0.0\npaths: {/a: {get: {x-amazon-apigateway-integration: {type: mock, "
      "responses: {default: 3}}}}}\n",
      "openapi: 3.0.0\npaths: {/a: {get: {x-amazon-apigateway-integration: {type: mock, "
      "responses: {'(': {statusCode: 9999}}, requestTemplates: {a: '\"statusCode\": 200'}}}}}\n",
      "openapi: 3.0.0\nx-amazon-apigateway-request-validator: v\n"
      "x-amazon-apigateway-request-validators: {v: {validateRequestBody: true}}\n"
      "paths: {/a: {post: {requestBody: {content: {application/json: {schema: {$ref: 1}}}}, "
      "x-amazon-apigateway-integration: {type: mock}}}}\n",
      std::string(200, '[') + std::string(200, ']'),
  };
  for (const std::string& text : inputs) {
    for (bool lenient : {false, true}) {
      Result r = convertText(text, lenient);
      if (r.ok()) {
        // Whatever converts without an error must be a valid config.
        absl::Status v = Server::validateResources(r.resources);
        EXPECT_TRUE(v.ok()) << text << "\n" << v;
      }
    }
  }
  EXPECT_THAT(diagnosticsText(convertText(inputs[0])), HasSubstr("paths: must be a map"));
  EXPECT_THAT(diagnosticsText(convertText(inputs[6])),
              HasSubstr("the greedy parameter {b+} must be the last segment"));
}

// ---- Paths and methods ---------------------------------------------------------------------

TEST(OpenApiPaths, TemplatesBecomeRegexesAndLiteralsExactPaths) {
  Result r =
      convertOk(spec("  /users/{userId}/orders.v1:\n    get:\n" + proxyOp("http://10.0.0.1/x") +
                     "  /users:\n    post:\n" + proxyOp("http://10.0.0.1/x") +
                     "  /files/{proxy+}:\n    get:\n" + proxyOp("http://10.0.0.1/x")));
  const v1::Route* a = routeNamed(r, "GET /users/{userId}/orders.v1");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->match().regex(), "/users/(?P<userId>[^/]+)/orders\\.v1");
  EXPECT_THAT(a->match().methods(), ElementsAre("GET"));
  const v1::Route* b = routeNamed(r, "POST /users");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->match().path(), "/users");
  EXPECT_EQ(routeNamed(r, "GET /files/{proxy+}")->match().regex(), "/files/(?P<proxy>.+)");
}

TEST(OpenApiPaths, MostSpecificFirstAndAnyMethodAfterMethods) {
  Result r = convertOk(
      spec("  /{proxy+}:\n    x-amazon-apigateway-any-method:\n" + proxyOp("http://10.0.0.1/") +
           "  /users/{id}:\n    x-amazon-apigateway-any-method:\n" + proxyOp("http://10.0.0.1/") +
           "    get:\n" + proxyOp("http://10.0.0.1/") + "  /users/me:\n    get:\n" +
           proxyOp("http://10.0.0.1/") + "  /users/{id}/{rest+}:\n    get:\n" +
           proxyOp("http://10.0.0.1/")));
  std::vector<std::string> names;
  for (const auto& route : vhost(r).routes()) names.push_back(route.name());
  EXPECT_THAT(names, ElementsAre("GET /users/me", "GET /users/{id}", "ANY /users/{id}",
                                 "GET /users/{id}/{rest+}", "ANY /{proxy+}"));
  EXPECT_THAT(routeNamed(r, "ANY /{proxy+}")->match().methods(), IsEmpty());
}

TEST(OpenApiPaths, ShadowedOperationsAreWarned) {
  Result r = convertOk(spec("  /a/{x}:\n    get:\n" + proxyOp("http://10.0.0.1/") +
                            "  /a/{y}:\n    get:\n" + proxyOp("http://10.0.0.1/") + "    post:\n" +
                            proxyOp("http://10.0.0.1/")));
  EXPECT_THAT(diagnosticsText(r),
              HasSubstr("api.yaml:11: warning: paths./a/{y}.get: matches the same requests as "
                        "paths./a/{x}.get (line 6), which comes first: never used"));
  EXPECT_THAT(diagnosticsText(r), Not(HasSubstr("paths./a/{y}.post")));
}

TEST(OpenApiPaths, BadTemplatesAreProblems) {
  Result r = convertText(spec("  /files/{name}.json:\n    get:\n" + proxyOp("http://h/") +
                              "  users:\n    get:\n" + proxyOp("http://h/") +
                              "  /a/{x}/{x}:\n    get:\n" + proxyOp("http://h/")));
  const std::string d = diagnosticsText(r);
  EXPECT_THAT(d, HasSubstr("error: paths./files/{name}.json: \"/files/{name}.json\": segment "
                           "\"{name}.json\": a template segment is a whole segment"));
  EXPECT_THAT(d, HasSubstr("paths.users: \"users\": a path must start with '/'"));
  EXPECT_THAT(d, HasSubstr("path parameter \"x\" appears twice"));
  EXPECT_THAT(
      diagnosticsText(convertText(spec("  /u/{user-id}:\n    get:\n" + proxyOp("http://h/")))),
      HasSubstr("parameter {user-id}: a name of letters, digits and '_'"));
  Result lenient = convertText(spec("  /files/{name}.json:\n    get:\n" + proxyOp("http://h/") +
                                    "  /ok:\n    get:\n" + proxyOp("http://h/")),
                               true);
  EXPECT_TRUE(lenient.ok());
  EXPECT_EQ(vhost(lenient).routes_size(), 1);
}

TEST(OpenApiPaths, UnknownOperationFieldAndMissingIntegration) {
  Result r = convertText(spec("  /a:\n    get:\n      operationId: a\n    gett: {}\n"));
  const std::string d = diagnosticsText(r);
  EXPECT_THAT(d, HasSubstr("api.yaml:6: error: paths./a.get: no x-amazon-apigateway-integration: "
                           "nothing to send the request to; skipped"));
  EXPECT_THAT(d, HasSubstr("paths./a.gett: OpenAPI has no such field in a path item"));
}

TEST(OpenApiPaths, OperationIdNamesTheRouteAndDuplicatesWarn) {
  Result r =
      convertOk(spec("  /a:\n    get:\n      operationId: same\n" + proxyOp("http://10.0.0.1/a") +
                     "    post:\n      operationId: same\n" + proxyOp("http://10.0.0.1/a")));
  EXPECT_NE(routeNamed(r, "same"), nullptr);
  EXPECT_NE(routeNamed(r, "POST /a"), nullptr);
  EXPECT_THAT(diagnosticsText(r), HasSubstr("operationId \"same\" is used twice"));
}

// ---- http / http_proxy integrations --------------------------------------------------------

TEST(OpenApiIntegration, ClustersFromUris) {
  Result r = convertOk(
      spec("  /a:\n    get:\n" + proxyOp("https://api.example.com/v1/a") + "    post:\n" +
           proxyOp("https://api.example.com/v1/b") + "  /b:\n    get:\n" +
           proxyOp("http://10.1.2.3:8080/b") + "  /c:\n    get:\n" + proxyOp("http://[::1]:81/c") +
           "  /d:\n    get:\n" +
           proxyOp("https://10.9.9.9/d", "        tlsConfig: {insecureSkipVerification: true}\n")));
  ASSERT_EQ(r.resources.clusters_size(), 4);  // the two api.example.com routes share one
  const v1::Cluster* dns = clusterNamed(r, "api.example.com_443_tls");
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(dns->type(), v1::Cluster::STRICT_DNS);
  EXPECT_EQ(dns->endpoints(0).address(), "api.example.com");
  EXPECT_EQ(dns->endpoints(0).port(), 443u);
  EXPECT_EQ(dns->tls().sni(), "api.example.com");
  const v1::Cluster* ip = clusterNamed(r, "10.1.2.3_8080");
  ASSERT_NE(ip, nullptr);
  EXPECT_EQ(ip->type(), v1::Cluster::STATIC);
  EXPECT_FALSE(ip->has_tls());
  EXPECT_EQ(clusterNamed(r, "__1_81")->endpoints(0).address(), "::1");
  EXPECT_TRUE(clusterNamed(r, "10.9.9.9_443_tls")->tls().insecure_skip_verify());

  const v1::Route* a = routeNamed(r, "GET /a");
  EXPECT_EQ(a->route().cluster(), "api.example.com_443_tls");
  EXPECT_EQ(a->route().host_rewrite(), "api.example.com");
  EXPECT_EQ(a->route().prefix_rewrite(), "/v1/a");
  EXPECT_EQ(routeNamed(r, "POST /a")->route().prefix_rewrite(), "/v1/b");
  EXPECT_EQ(routeNamed(r, "GET /b")->route().host_rewrite(), "10.1.2.3:8080");
  EXPECT_EQ(routeNamed(r, "GET /c")->route().host_rewrite(), "[::1]:81");
  EXPECT_TRUE(a->filter_config().empty());
}

TEST(OpenApiIntegration, BadUris) {
  for (const auto& [uri, message] : std::vector<std::pair<std::string, std::string>>{
           {"ftp://h/x", "must be an http:// or https:// URL"},
           {"http://u:p@h/x", "user info in the URL is not supported"},
           {"http://${stageVariables.host}/x", "the host is a template"},
           {"http://h:0/x", "invalid port \"0\""},
           {"http://bad_host/x", "invalid host \"bad_host\""},
           {"http://h/{nope}", "{nope} has no value: map integration.request.path.nope"},
       }) {
    Result r = convertText(spec("  /a:\n    get:\n" + proxyOp("'" + uri + "'")));
    EXPECT_FALSE(r.ok()) << uri;
    EXPECT_THAT(diagnosticsText(r), HasSubstr("paths./a.get.x-amazon-apigateway-integration.uri: "))
        << uri;
    EXPECT_THAT(diagnosticsText(r), HasSubstr(message)) << uri;
  }
  EXPECT_THAT(diagnosticsText(convertText(
                  spec("  /a:\n    get:\n      x-amazon-apigateway-integration: {type: http}\n"))),
              HasSubstr("uri: missing: an http integration needs a uri"));
}

TEST(OpenApiIntegration, PathParametersSubstitutedThroughTheTransformer) {
  Result r = convertOk(
      spec("  /users/{userId}/{rest+}:\n    get:\n" +
           proxyOp("http://10.0.0.1/v2/u/{id}/{rest}",
                   "        requestParameters:\n"
                   "          integration.request.path.id: method.request.path.userId\n")));
  const v1::Route* route = routeNamed(r, "GET /users/{userId}/{rest+}");
  ASSERT_NE(route, nullptr);
  EXPECT_TRUE(route->route().prefix_rewrite().empty());
  EXPECT_EQ(json(route->filter_config().at("request_transformer")),
            R"x({"replace":{"uri":"/v2/u/$(uri_captures.userId)/$(uri_captures.rest)"}})x");
  EXPECT_THAT(filterNames(r), ElementsAre("request_transformer", "router"));
}

TEST(OpenApiIntegration, RequestParametersMappings) {
  Result r = convertOk(spec(
      "  /a:\n    get:\n" +
      proxyOp("http://10.0.0.1/a?fixed=1",
              "        requestParameters:\n"
              "          integration.request.header.X-User: method.request.header.X-Id\n"
              "          integration.request.header.x-static: \"'v:1'\"\n"
              "          integration.request.header.x-rid: context.requestId\n"
              "          integration.request.header.x-ip: $context.identity.sourceIp\n"
              "          integration.request.header.x-host: context.domainName\n"
              "          integration.request.querystring.q: method.request.querystring.search\n"
              "          integration.request.querystring.h: method.request.header.x-h\n")));
  const v1::Route* route = routeNamed(r, "GET /a");
  const std::string t = json(route->filter_config().at("request_transformer"));
  for (const char* want :
       {R"x("x-user:$(headers.x-id)")x", R"("x-static:v:1")", R"("x-rid:$request_id")",
        R"("x-ip:$client_ip")", R"("x-host:$host")", R"x("q:$(query_params.search)")x",
        R"x("h:$(headers.x-h)")x", R"("fixed:1")"}) {
    EXPECT_THAT(t, HasSubstr(want));
  }
  // Set = replaced when present, added when absent.
  EXPECT_THAT(t, HasSubstr(R"("add":{)"));
  EXPECT_THAT(t, HasSubstr(R"("replace":{)"));
  EXPECT_EQ(route->route().prefix_rewrite(), "/a");
}

TEST(OpenApiIntegration, HttpApiParameterMappings) {
  Result r = convertOk(
      spec("  /users/{id}:\n    get:\n" +
           proxyOp("http://10.0.0.1/x",
                   "        payloadFormatVersion: '1.0'\n"
                   "        requestParameters:\n"
                   "          append:header.X-Trace: $context.requestId\n"
                   "          overwrite:header.x-user: 'u-${request.path.id}'\n"
                   "          remove:header.cookie: \"''\"\n"
                   "          overwrite:querystring.q: $request.header.x-q\n"
                   "          append:querystring.tag: gw\n"
                   "          remove:querystring.debug: \"''\"\n"
                   "          overwrite:path: /v2/users/$request.path.id/profile\n") +
           "  $default:\n    x-amazon-apigateway-any-method:\n" + proxyOp("http://10.0.0.1/")));
  EXPECT_EQ(
      json(routeNamed(r, "GET /users/{id}")->filter_config().at("request_transformer")),
      R"x({"add":{"headers":["x-user:u-$(uri_captures.id)"],"querystring":["q:$(headers.x-q)"]},)x"
      R"x("append":{"headers":["x-trace:$request_id"],"querystring":["tag:gw"]},)x"
      R"x("remove":{"headers":["cookie"],"querystring":["debug"]},)x"
      R"x("replace":{"headers":["x-user:u-$(uri_captures.id)"],"querystring":["q:$(headers.x-q)"],)x"
      R"x("uri":"/v2/users/$(uri_captures.id)/profile"}})x");
  // $default: whatever else, last.
  ASSERT_EQ(vhost(r).routes_size(), 2);
  EXPECT_EQ(vhost(r).routes(1).name(), "ANY $default");
  EXPECT_EQ(vhost(r).routes(1).match().prefix(), "/");
  EXPECT_EQ(json(vhost(r).routes(1).filter_config().at("request_transformer")),
            R"({"replace":{"uri":"/"}})");
  EXPECT_THAT(diagnosticsText(r), HasSubstr("$default: every request is sent to the path /"));

  auto d = [](const std::string& key, const std::string& value) {
    return diagnosticsText(
        convertText(spec("  /a:\n    get:\n" +
                         proxyOp("http://10.0.0.1/a", absl::StrCat("        requestParameters: {'",
                                                                   key, "': '", value, "'}\n")))));
  };
  EXPECT_THAT(d("overwrite:header.x", "$request.body.a"),
              HasSubstr("$request.body.a is not supported"));
  EXPECT_THAT(d("overwrite:header.x", "$request.path.nope"),
              HasSubstr("$request.path.nope is not supported"));
  EXPECT_THAT(d("remove:path", ""), HasSubstr("an HTTP API mapping is"));
  EXPECT_THAT(d("overwrite:path", "v2"), HasSubstr("overwrite:path must start with '/'"));
  EXPECT_THAT(d("overwrite:header.x", "${context.requestId"), HasSubstr("unterminated ${...}"));
  EXPECT_THAT(d("overwrite:header.x", ""), HasSubstr("an empty value can't be set"));
  EXPECT_THAT(d("append:header.Content-Length", "1"), HasSubstr("can't be set"));
}

TEST(OpenApiIntegration, RequestParameterErrors) {
  auto with = [](const std::string& target, const std::string& source) {
    return convertText(
        spec("  /a/{id}:\n    get:\n" +
             proxyOp("http://10.0.0.1/a", absl::StrCat("        requestParameters:\n"
                                                       "          ",
                                                       target, ": ", source, "\n"))));
  };
  EXPECT_THAT(diagnosticsText(with("integration.request.header.x", "method.request.path.nope")),
              HasSubstr("method.request.path.nope: the path has no {nope} parameter"));
  EXPECT_THAT(diagnosticsText(with("integration.request.header.x", "stageVariables.v")),
              HasSubstr("source \"stageVariables.v\" is not supported"));
  EXPECT_THAT(diagnosticsText(with("integration.request.header.x", "method.request.body.a")),
              HasSubstr("is not supported"));
  EXPECT_THAT(diagnosticsText(with("integration.request.header.content-length", "\"'1'\"")),
              HasSubstr("header \"content-length\" can't be set"));
  EXPECT_THAT(diagnosticsText(with("integration.request.header.a b", "\"'1'\"")),
              HasSubstr("header \"a b\" can't be set"));
  EXPECT_THAT(diagnosticsText(with("integration.response.header.x", "\"'a'\"")),
              HasSubstr("target must be integration.request.{path|querystring|header}.NAME"));
  EXPECT_THAT(diagnosticsText(with("integration.request.header.x", "\"''\"")),
              HasSubstr("an empty value can't be set"));
  EXPECT_THAT(
      diagnosticsText(convertText(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a?flag")))),
      HasSubstr("query parameter \"flag\" of the uri: a name and a value are needed"));
  Result unused = with("integration.request.path.zz", "method.request.path.id");
  EXPECT_TRUE(unused.ok());
  EXPECT_THAT(diagnosticsText(unused), HasSubstr("the uri has no {zz}: unused"));
}

TEST(OpenApiIntegration, MethodTimeoutAndVpcLink) {
  Result r =
      convertOk(spec("  /a:\n    get:\n" +
                     proxyOp("http://10.0.0.1/a",
                             "        httpMethod: POST\n        timeoutInMillis: 1500\n"
                             "        connectionType: VPC_LINK\n"
                             "        connectionId: vl-123\n") +
                     "    put:\n" + proxyOp("http://10.0.0.1/a", "        httpMethod: put\n") +
                     "    x-amazon-apigateway-any-method:\n" +
                     proxyOp("http://10.0.0.1/a", "        httpMethod: ANY\n")));
  const v1::Route* get = routeNamed(r, "GET /a");
  EXPECT_EQ(json(get->filter_config().at("request_transformer")), R"({"http_method":"POST"})");
  EXPECT_EQ(get->route().timeout().seconds(), 1);
  EXPECT_EQ(get->route().timeout().nanos(), 500000000);
  EXPECT_TRUE(routeNamed(r, "PUT /a")->filter_config().empty());
  EXPECT_TRUE(routeNamed(r, "ANY /a")->filter_config().empty());
  EXPECT_THAT(diagnosticsText(r),
              HasSubstr("warning: paths./a.get.x-amazon-apigateway-integration.connectionType: "
                        "VPC_LINK vl-123: Sluice connects to 10.0.0.1 directly"));
  EXPECT_THAT(
      diagnosticsText(convertText(spec(
          "  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a", "        timeoutInMillis: -5\n")))),
      HasSubstr("timeoutInMillis: must be > 0"));
  EXPECT_THAT(
      diagnosticsText(convertText(spec(
          "  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a", "        timeoutInMillis: soon\n")))),
      HasSubstr("timeoutInMillis: must be an integer, not a string"));
}

TEST(OpenApiIntegration, HttpNonProxyWarnsAboutTemplates) {
  Result r =
      convertOk(spec("  /a:\n    post:\n      x-amazon-apigateway-integration:\n"
                     "        type: http\n        uri: http://10.0.0.1/a\n"
                     "        requestTemplates: {application/json: '{\"a\": 1}'}\n"
                     "        responses: {default: {statusCode: '200'}}\n"));
  EXPECT_THAT(diagnosticsText(r), HasSubstr("mapping templates (VTL) are not applied"));
  EXPECT_THAT(diagnosticsText(r), HasSubstr("integration responses are not mapped"));
  // The default response's static headers (the PetStore sample's CORS header) are kept.
  Result cors = convertOk(
      spec("  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: http\n"
           "        uri: http://10.0.0.1/a\n        responses:\n          default:\n"
           "            statusCode: '200'\n            responseParameters:\n"
           "              method.response.header.Access-Control-Allow-Origin: \"'*'\"\n"));
  EXPECT_EQ(json(routeNamed(cors, "GET /a")->filter_config().at("response_transformer")),
            R"({"add":{"headers":["access-control-allow-origin:*"]},)"
            R"("replace":{"headers":["access-control-allow-origin:*"]}})");
}

TEST(OpenApiIntegration, MockBecomesADirectResponse) {
  Result r = convertOk(spec(
      "  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: mock\n"
      "        requestTemplates: {application/json: '{\"statusCode\": 404}'}\n"
      "        responses:\n"
      "          default: {statusCode: '200'}\n"
      "          '4\\d{2}':\n            statusCode: '404'\n"
      "            responseTemplates:\n              text/plain: nothing\n"
      "              application/json: '{\"found\": false}'\n"
      "  /b:\n    get:\n      x-amazon-apigateway-integration:\n        type: mock\n"
      "  /c:\n    get:\n      x-amazon-apigateway-integration:\n        type: mock\n"
      "        responses:\n          default:\n            statusCode: 201\n"
      "            responseParameters:\n"
      "              method.response.header.Access-Control-Allow-Origin: \"'*'\"\n"
      "              method.response.header.x-dyn: integration.response.header.y\n"
      "            responseTemplates: {application/json: '{\"id\": \"$context.requestId\"}'}\n"));
  const v1::Route* a = routeNamed(r, "GET /a");
  EXPECT_EQ(a->direct_response().status(), 404u);
  EXPECT_EQ(a->direct_response().body(), R"({"found": false})");
  EXPECT_EQ(a->direct_response().content_type(), "application/json");
  EXPECT_EQ(routeNamed(r, "GET /b")->direct_response().status(), 200u);
  EXPECT_EQ(routeNamed(r, "GET /c")->direct_response().status(), 201u);
  const std::string d = diagnosticsText(r);
  EXPECT_THAT(d, HasSubstr("holds VTL that is not evaluated"));
  EXPECT_THAT(d, HasSubstr("responseParameters.method.response.header.x-dyn: ignored: a reply's "
                           "header is method.response.header.NAME set to a quoted static"));
  EXPECT_EQ(json(routeNamed(r, "GET /c")->filter_config().at("response_transformer")),
            R"({"add":{"headers":["access-control-allow-origin:*"]},)"
            R"("replace":{"headers":["access-control-allow-origin:*"]}})");
  EXPECT_THAT(filterNames(r), ElementsAre("response_transformer", "router"));
}

TEST(OpenApiIntegration, AwsIntegrationsAreRefusedWithTheReason) {
  const std::string text = spec(
      "  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: aws_proxy\n"
      "        uri: arn:aws:apigateway:us-east-1:lambda:path/functions/f/invocations\n"
      "  /b:\n    get:\n      x-amazon-apigateway-integration:\n        type: AWS\n"
      "  /c:\n    get:\n      x-amazon-apigateway-integration:\n        type: teleport\n"
      "  /d:\n    get:\n" +
      proxyOp("http://10.0.0.1/d"));
  const std::string d = diagnosticsText(convertText(text));
  EXPECT_THAT(d, HasSubstr("api.yaml:7: error: paths./a.get.x-amazon-apigateway-integration.type: "
                           "integration type aws_proxy (a Lambda function or AWS service: "
                           "arn:aws:apigateway:us-east-1:lambda:path/functions/f/invocations) is "
                           "not supported: Sluice proxies HTTP"));
  EXPECT_THAT(d, HasSubstr("integration type aws (a Lambda function or AWS service)"));
  EXPECT_THAT(d, HasSubstr("integration type \"teleport\" is not supported"));
  Result lenient = convertText(text, true);
  ASSERT_TRUE(lenient.ok());
  ASSERT_EQ(vhost(lenient).routes_size(), 1);
  EXPECT_EQ(vhost(lenient).routes(0).name(), "GET /d");
}

TEST(OpenApiIntegration, UnknownIntegrationFieldIsAProblem) {
  EXPECT_THAT(diagnosticsText(convertText(
                  spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a", "        urii: x\n")))),
              HasSubstr("x-amazon-apigateway-integration.urii: OpenAPI has no such field here"));
}

// ---- Security ------------------------------------------------------------------------------

const std::string kCognito =
    "components:\n  securitySchemes:\n    pool:\n      type: apiKey\n      name: Authorization\n"
    "      in: header\n      x-amazon-apigateway-authtype: cognito_user_pools\n"
    "      x-amazon-apigateway-authorizer:\n        type: cognito_user_pools\n"
    "        providerARNs: [arn:aws:cognito-idp:eu-central-1:123456789012:userpool/"
    "eu-central-1_XyZ]\n";

TEST(OpenApiSecurity, CognitoIssuerAndJwksFromThePoolArn) {
  Result r =
      convertOk(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a") +
                         "  /b:\n    get:\n      security: []\n" + proxyOp("http://10.0.0.1/b"),
                     kCognito + "security:\n- pool: []\n"));
  ASSERT_EQ(r.resources.auth_policies_size(), 1);
  const v1::AuthPolicy& p = r.resources.auth_policies(0);
  EXPECT_EQ(p.name(), "pool");
  ASSERT_EQ(p.jwt().providers_size(), 1);
  const v1::JwtProvider& provider = p.jwt().providers(0);
  EXPECT_EQ(provider.issuer(), "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_XyZ");
  EXPECT_EQ(provider.remote_jwks().uri(),
            "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_XyZ/.well-known/"
            "jwks.json");
  // "Bearer <token>" and the bare token, as Cognito authorizers take both.
  ASSERT_EQ(provider.from_headers_size(), 2);
  EXPECT_EQ(provider.from_headers(0).value_prefix(), "Bearer ");
  EXPECT_EQ(provider.from_headers(1).value_prefix(), "");
  EXPECT_EQ(routeNamed(r, "GET /a")->auth(), "pool");
  EXPECT_EQ(routeNamed(r, "GET /b")->auth(), "");
  EXPECT_THAT(filterNames(r), ElementsAre("auth", "router"));
}

TEST(OpenApiSecurity, JwksOverrides) {
  Options o;
  o.jwks_uri = "http://127.0.0.1:9999/jwks.json";
  Result r = convertOk(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
                            kCognito + "security:\n- pool: []\n"),
                       o);
  EXPECT_EQ(r.resources.auth_policies(0).jwt().providers(0).remote_jwks().uri(),
            "http://127.0.0.1:9999/jwks.json");
  // The issuer stays the pool's: tokens are still checked for it.
  EXPECT_THAT(r.resources.auth_policies(0).jwt().providers(0).issuer(),
              HasSubstr("cognito-idp.eu-central-1"));
  Result ext = convertOk(
      spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
           absl::StrReplaceAll(kCognito, {{"        type: cognito_user_pools\n",
                                           "        type: cognito_user_pools\n"
                                           "        x-sluice-jwks-uri: http://keys.local/k\n"}}) +
               "security:\n- pool: []\n"));
  EXPECT_EQ(ext.resources.auth_policies(0).jwt().providers(0).remote_jwks().uri(),
            "http://keys.local/k");
}

TEST(OpenApiSecurity, JwksMustBeAnHttpUrl) {
  EXPECT_THAT(diagnosticsText(
                  convertText(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
                                   "components:\n  securitySchemes:\n    o:\n      type: oauth2\n"
                                   "      x-sluice-jwks-uri: file:///etc/keys\n"))),
              HasSubstr("components.securitySchemes.o: the JWKS URL \"file:///etc/keys\" is not an "
                        "http:// or https:// URL"));
}

TEST(OpenApiSecurity, BadArnAndMissingArns) {
  EXPECT_THAT(diagnosticsText(convertText(
                  spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
                       absl::StrReplaceAll(kCognito, {{"arn:aws:cognito-idp", "arn:aws:iam"}})))),
              HasSubstr("providerARNs[0]: \"arn:aws:iam:eu-central-1:123456789012:userpool/"
                        "eu-central-1_XyZ\" is not a user pool ARN"));
  EXPECT_THAT(diagnosticsText(convertText(
                  spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
                       "components:\n  securitySchemes:\n    pool:\n      type: apiKey\n"
                       "      x-amazon-apigateway-authorizer: {type: cognito_user_pools}\n"))),
              HasSubstr("providerARNs: missing"));
}

TEST(OpenApiSecurity, HttpApiJwtAuthorizerWithScopes) {
  Result r = convertOk(spec(
      "  /a:\n    get:\n      security: [{partners: [write, read]}]\n" +
          proxyOp("http://10.0.0.1/a") +
          "    post:\n      security: [{partners: [read, write]}]\n" +
          proxyOp("http://10.0.0.1/a") + "    put:\n      security: [{partners: []}]\n" +
          proxyOp("http://10.0.0.1/a"),
      "components:\n  securitySchemes:\n    partners:\n      type: oauth2\n"
      "      x-amazon-apigateway-authorizer:\n        type: jwt\n"
      "        identitySource: $request.header.X-Token\n"
      "        jwtConfiguration: {issuer: 'https://idp.example.com/', audience: [api, web]}\n"));
  // The same scopes in any order share one policy.
  ASSERT_EQ(r.resources.auth_policies_size(), 2);
  const v1::AuthPolicy* scoped = policyNamed(r, "partners-scopes-read_write");
  ASSERT_NE(scoped, nullptr);
  EXPECT_THAT(scoped->required_scopes(), ElementsAre("read", "write"));
  const v1::JwtProvider& p = scoped->jwt().providers(0);
  EXPECT_EQ(p.issuer(), "https://idp.example.com/");
  EXPECT_THAT(p.audiences(), ElementsAre("api", "web"));
  EXPECT_EQ(p.remote_jwks().uri(), "https://idp.example.com/.well-known/jwks.json");
  ASSERT_EQ(p.from_headers_size(), 1);
  EXPECT_EQ(p.from_headers(0).name(), "X-Token");
  EXPECT_EQ(routeNamed(r, "GET /a")->auth(), "partners-scopes-read_write");
  EXPECT_EQ(routeNamed(r, "POST /a")->auth(), "partners-scopes-read_write");
  EXPECT_EQ(routeNamed(r, "PUT /a")->auth(), "partners");
  EXPECT_THAT(diagnosticsText(convertText(spec(
                  "  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
                  "components:\n  securitySchemes:\n    j:\n      type: oauth2\n"
                  "      x-amazon-apigateway-authorizer: {type: jwt, jwtConfiguration: {}}\n"))),
              HasSubstr("jwtConfiguration.issuer: missing"));
}

TEST(OpenApiSecurity, OAuth2AndBearerNeedAKeySet) {
  const std::string schemes =
      "components:\n  securitySchemes:\n    o:\n      type: oauth2\n      flows: {}\n"
      "    b:\n      type: http\n      scheme: bearer\n";
  const std::string paths =
      "  /a:\n    get:\n      security: [{o: [s1]}]\n" + proxyOp("http://10.0.0.1/a") +
      "  /b:\n    get:\n      security: [{b: []}]\n" + proxyOp("http://10.0.0.1/b");
  Result r = convertText(spec(paths, schemes));
  EXPECT_THAT(diagnosticsText(r), HasSubstr("components.securitySchemes.o: a oauth2 scheme names "
                                            "no key set to verify its tokens"));
  EXPECT_THAT(diagnosticsText(r),
              HasSubstr("security scheme \"o\" (line 6) could not be converted; route skipped"));
  Options o;
  o.oauth2_jwks = "https://as.example.com/jwks";
  Result ok = convertOk(spec(paths, schemes), o);
  const v1::AuthPolicy* p = policyNamed(ok, "o-scopes-s1");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->jwt().providers(0).remote_jwks().uri(), "https://as.example.com/jwks");
  EXPECT_EQ(p->jwt().providers(0).issuer(), "");
  EXPECT_THAT(p->required_scopes(), ElementsAre("s1"));
  EXPECT_NE(policyNamed(ok, "b"), nullptr);
  // Lenient: the route needing the unconvertible scheme is skipped, never served open.
  Result lenient = convertText(spec(paths, schemes), true);
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ(vhost(lenient).routes_size(), 0);
}

TEST(OpenApiSecurity, OpenIdConnectByConvention) {
  Result r = convertOk(spec("  /a:\n    get:\n      security: [{oidc: [openid, profile]}]\n" +
                                proxyOp("http://10.0.0.1/a"),
                            "components:\n  securitySchemes:\n    oidc:\n"
                            "      type: openIdConnect\n"
                            "      openIdConnectUrl: https://login.example.com/realms/x/"
                            ".well-known/openid-configuration\n"));
  const v1::AuthPolicy& p = r.resources.auth_policies(0);
  EXPECT_EQ(p.jwt().providers(0).issuer(), "https://login.example.com/realms/x");
  EXPECT_EQ(p.jwt().providers(0).remote_jwks().uri(),
            "https://login.example.com/realms/x/.well-known/jwks.json");
  EXPECT_THAT(p.required_scopes(), ElementsAre("openid", "profile"));
}

TEST(OpenApiSecurity, ApiKeys) {
  Result r = convertOk(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
                            "components:\n  securitySchemes:\n    key:\n      type: apiKey\n"
                            "      name: x-api-key\n      in: header\n"
                            "      x-sluice-consumers:\n"
                            "      - {username: app, keys: [k1, k2]}\n"
                            "    qkey: {type: apiKey, name: api_key, in: query}\n"
                            "security: [{key: []}]\n"));
  const v1::AuthPolicy& p = r.resources.auth_policies(0);
  EXPECT_THAT(p.key_auth().key_names(), ElementsAre("x-api-key"));
  EXPECT_TRUE(p.key_auth().in_header());
  EXPECT_FALSE(p.key_auth().in_query());
  ASSERT_EQ(p.consumers_size(), 1);
  EXPECT_EQ(p.consumers(0).username(), "app");
  EXPECT_EQ(p.consumers(0).keyauth_credentials_size(), 2);
  EXPECT_THAT(diagnosticsText(r), HasSubstr("components.securitySchemes.qkey: API key scheme "
                                            "without keys"));
  EXPECT_THAT(
      diagnosticsText(convertText(
          spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
               "components:\n  securitySchemes:\n    c: {type: apiKey, name: k, in: cookie}\n"))),
      HasSubstr("an API key in cookie is not supported"));
}

TEST(OpenApiSecurity, LambdaAuthorizersAndIamAreRefused) {
  const std::string text =
      spec("  /a:\n    get:\n      security: [{lambda: []}]\n" + proxyOp("http://10.0.0.1/a") +
               "  /b:\n    get:\n      security: [{iam: []}]\n" + proxyOp("http://10.0.0.1/b") +
               "  /c:\n    get:\n      security: []\n" + proxyOp("http://10.0.0.1/c"),
           "components:\n  securitySchemes:\n    lambda:\n      type: apiKey\n      name: Auth\n"
           "      in: header\n      x-amazon-apigateway-authorizer:\n        type: token\n"
           "        authorizerUri: arn:aws:apigateway:us-east-1:lambda:path/fn\n"
           "    iam:\n      type: apiKey\n      name: Authorization\n      in: header\n"
           "      x-amazon-apigateway-authtype: awsSigv4\n");
  const std::string d = diagnosticsText(convertText(text));
  EXPECT_THAT(d, HasSubstr("x-amazon-apigateway-authorizer.type: a Lambda authorizer (type "
                           "token) is not supported: Sluice cannot run the AWS Lambda function "
                           "arn:aws:apigateway:us-east-1:lambda:path/fn"));
  EXPECT_THAT(d, HasSubstr("IAM (SigV4) authorization is not supported"));
  Result lenient = convertText(text, true);
  ASSERT_TRUE(lenient.ok());
  ASSERT_EQ(vhost(lenient).routes_size(), 1);
  EXPECT_EQ(vhost(lenient).routes(0).name(), "GET /c");
}

TEST(OpenApiSecurity, Requirements) {
  const std::string schemes = kCognito +
                              "    key:\n      type: apiKey\n      name: x-api-key\n"
                              "      in: header\n      x-sluice-consumers: [{username: a, "
                              "keys: [k]}]\n"
                              "    key2: {type: apiKey, name: k2, in: query, "
                              "x-sluice-consumers: [{username: b, keys: [k]}]}\n";
  Result r = convertOk(spec("  /either:\n    get:\n      security: [{pool: []}, {key: []}]\n" +
                                proxyOp("http://10.0.0.1/a") +
                                "  /optional:\n    get:\n      security: [{key: []}, {}]\n" +
                                proxyOp("http://10.0.0.1/a") +
                                "  /open:\n    get:\n      security: [{}]\n" +
                                proxyOp("http://10.0.0.1/a"),
                            schemes));
  const v1::AuthPolicy* either = policyNamed(r, "pool-or-key");
  ASSERT_NE(either, nullptr);
  EXPECT_EQ(either->jwt().providers_size(), 1);
  EXPECT_TRUE(either->has_key_auth());
  EXPECT_FALSE(either->allow_anonymous());
  const v1::AuthPolicy* optional = policyNamed(r, "key-optional");
  ASSERT_NE(optional, nullptr);
  EXPECT_TRUE(optional->allow_anonymous());
  EXPECT_EQ(routeNamed(r, "GET /open")->auth(), "");

  auto problem = [&](const std::string& security) {
    return diagnosticsText(convertText(
        spec("  /a:\n    get:\n      security: " + security + "\n" + proxyOp("http://10.0.0.1/a"),
             schemes)));
  };
  EXPECT_THAT(problem("[{pool: [], key: []}]"),
              HasSubstr("requires pool and key together: a Sluice auth policy accepts one "
                        "credential of several kinds, not all of them at once; route skipped"));
  EXPECT_THAT(problem("[{nobody: []}]"),
              HasSubstr("security[0].nobody: no security scheme \"nobody\" in "
                        "components.securitySchemes; route skipped"));
  EXPECT_THAT(problem("[{pool: [a]}, {pool: [b]}]"),
              HasSubstr("alternatives with different scopes"));
  EXPECT_THAT(problem("[{key: []}, {key2: []}]"), HasSubstr("several API key schemes"));
  EXPECT_THAT(problem("{pool: []}"), HasSubstr("must be a list of security requirements"));
  EXPECT_THAT(problem("[{pool: ['a b']}]"),
              HasSubstr("a scope is a non-empty string without spaces; route skipped"));
}

TEST(OpenApiSecurity, SeedAuthorizersBlock) {
  const std::string text = spec(
      "  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
      "x-amazon-api-gateway:\n  authorizers:\n    pool:\n      type: cognito_user_pools\n"
      "      providerARNs: [arn:aws:cognito-idp:us-west-2:1:userpool/us-west-2_Q]\n"
      "    orphan: {type: jwt}\n"
      "components:\n  securitySchemes:\n    pool: {type: apiKey, name: Authorization, in: header}\n"
      "security: [{pool: []}]\n");
  Result r = convertText(text);
  EXPECT_THAT(diagnosticsText(r),
              HasSubstr("x-amazon-api-gateway.authorizers.orphan: no security scheme \"orphan\""));
  Result lenient = convertText(text, true);
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ(lenient.resources.auth_policies(0).jwt().providers(0).issuer(),
            "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_Q");
}

// ---- Gateway responses ---------------------------------------------------------------------

TEST(OpenApiGatewayResponses, BothSpellings) {
  Result r = convertOk(
      spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
           "x-amazon-apigateway-gateway-responses:\n"
           "  UNAUTHORIZED:\n    statusCode: '401'\n    responseParameters:\n"
           "      gatewayresponse.header.WWW-Authenticate: \"'Bearer'\"\n"
           "      gatewayresponse.header.x-rid: context.requestId\n"
           "    responseTemplates:\n"
           "      application/json: '{\"msg\":$context.error.messageString,"
           "\"t\":\"$context.error.responseType\",\"id\":\"$context.requestId\"}'\n"
           "  ACCESS_DENIED:\n    responseParameters:\n"
           "      gatewayresponse.header.Content-Type: \"'text/plain'\"\n"
           "    responseTemplates: {text/plain: 'no: $context.error.message'}\n"
           "x-amazon-api-gateway:\n  gateway-responses:\n"
           "    RESOURCE_NOT_FOUND: {statusCode: 404, responseTemplates: {application/json: "
           "'{\"m\":\"none\"}'}}\n"
           "    MISSING_AUTHENTICATION_TOKEN: {statusCode: 403}\n"));
  const auto& gr = r.resources.listeners(0).gateway_responses();
  ASSERT_EQ(gr.size(), 3u);
  const v1::GatewayResponse& u = gr.at("UNAUTHORIZED");
  EXPECT_EQ(u.status_code(), 401u);
  EXPECT_EQ(u.headers().at("www-authenticate"), "Bearer");
  EXPECT_EQ(u.headers().at("x-rid"), "$request_id");
  EXPECT_EQ(u.body(), R"({"msg":"$message","t":"UNAUTHORIZED","id":"$request_id"})");
  EXPECT_EQ(u.content_type(), "application/json");
  const v1::GatewayResponse& a = gr.at("ACCESS_DENIED");
  EXPECT_EQ(a.status_code(), 0u);
  EXPECT_EQ(a.content_type(), "text/plain");
  EXPECT_EQ(a.body(), "no: $message");
  EXPECT_EQ(gr.at("RESOURCE_NOT_FOUND").status_code(), 404u);
  EXPECT_THAT(diagnosticsText(r), HasSubstr("warning: x-amazon-api-gateway.gateway-responses."
                                            "MISSING_AUTHENTICATION_TOKEN: Sluice never sends"));
}

TEST(OpenApiGatewayResponses, Errors) {
  auto d = [](const std::string& responses) {
    return diagnosticsText(
        convertText(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"),
                         "x-amazon-apigateway-gateway-responses:\n" + responses)));
  };
  EXPECT_THAT(d("  NOPE: {statusCode: 400}\n"),
              HasSubstr("unknown gateway response type \"NOPE\""));
  EXPECT_THAT(d("  DEFAULT_4XX: {statusCode: 99}\n"),
              HasSubstr("DEFAULT_4XX.statusCode: must be a status code, 200..599"));
  EXPECT_THAT(d("  DEFAULT_4XX: {responseParameters: {gatewayresponse.header.x: "
                "method.request.header.y}}\n"),
              HasSubstr("value \"method.request.header.y\" is not supported"));
  EXPECT_THAT(d("  DEFAULT_4XX: {responseParameters: {gatewayresponse.querystring.x: \"'a'\"}}\n"),
              HasSubstr("only gatewayresponse.header.NAME is supported"));
  EXPECT_THAT(d("  DEFAULT_4XX: {responseParameters: {gatewayresponse.header.X-Request-Id: "
                "\"'a'\"}}\n"),
              HasSubstr("header \"X-Request-Id\" can't be set"));
  EXPECT_THAT(d("  DEFAULT_4XX: {responseParameters: {gatewayresponse.header.Content-Type: "
                "\"'text/plain'\"}}\n"),
              HasSubstr("a Content-Type without a responseTemplates body: ignored"));
  EXPECT_THAT(d("  DEFAULT_4XX: {responseTemplates: {application/json: '$input.body'}}\n"),
              HasSubstr("holds VTL that Sluice does not evaluate"));
}

// ---- Request validation --------------------------------------------------------------------

const std::string kValidators =
    "x-amazon-apigateway-request-validators:\n"
    "  all: {validateRequestBody: true, validateRequestParameters: true}\n"
    "  params: {validateRequestBody: false, validateRequestParameters: true}\n"
    "  body: {validateRequestBody: true, validateRequestParameters: false}\n";

TEST(OpenApiValidation, ParametersAndBody) {
  Result r = convertOk(
      spec("  /pets/{petId}:\n    parameters:\n"
           "    - {name: petId, in: path, required: true, schema: {type: integer}}\n"
           "    - {name: X-Tenant, in: header, required: true, schema: {type: string}}\n"
           "    put:\n      parameters:\n"
           "      - {name: X-Tenant, in: header, required: false}\n"
           "      - $ref: '#/components/parameters/Dry'\n"
           "      requestBody:\n        required: true\n        content:\n"
           "          application/json:\n            schema: {$ref: '#/components/schemas/Pet'}\n"
           "          application/xml: {}\n" +
               proxyOp("http://10.0.0.1/a"),
           kValidators + "x-amazon-apigateway-request-validator: all\n" +
               "components:\n  parameters:\n"
               "    Dry: {name: dry, in: query, schema: {type: boolean}}\n"
               "  schemas:\n    Pet:\n      type: object\n      required: [name]\n"
               "      properties:\n        name: {type: string, example: Rex}\n"
               "        kids: {type: array, items: {$ref: '#/components/schemas/Pet'}}\n"
               "        tag: {$ref: '#/components/schemas/Tag/properties/v'}\n"
               "    Tag: {type: object, properties: {v: {type: string, nullable: true}}}\n"));
  const v1::Route* route = routeNamed(r, "PUT /pets/{petId}");
  ASSERT_NE(route, nullptr);
  const std::string v = json(route->filter_config().at("request_validator"));
  EXPECT_THAT(
      v, HasSubstr(R"({"in":"PATH","name":"petId","required":true,"schema":{"type":"integer"}})"));
  // The operation's X-Tenant replaces the path item's (not required).
  EXPECT_THAT(v, HasSubstr(R"({"in":"HEADER","name":"X-Tenant"})"));
  EXPECT_THAT(v, HasSubstr(R"({"in":"QUERY","name":"dry","schema":{"type":"boolean"}})"));
  EXPECT_THAT(v, HasSubstr(R"("content_types":["application/json","application/xml"])"));
  EXPECT_THAT(v, HasSubstr(R"("$ref":"#/definitions/Pet")"));
  EXPECT_THAT(v, HasSubstr(R"("$ref":"#/definitions/Tag/properties/v")"));
  EXPECT_THAT(v, HasSubstr(R"("definitions":{)"));
  EXPECT_THAT(v, HasSubstr(R"("required":true)"));
  EXPECT_THAT(filterNames(r), ElementsAre("request_validator", "router"));
}

TEST(OpenApiValidation, ValidatorChoice) {
  const std::string op =
      "      parameters: [{name: q, in: query, required: true}]\n"
      "      requestBody: {content: {application/json: {schema: {type: object}}}}\n" +
      proxyOp("http://10.0.0.1/a");
  Result r = convertOk(spec("  /a:\n    post:\n" + op +
                                "  /b:\n    post:\n      x-amazon-apigateway-request-validator: "
                                "body\n" +
                                op + "  /c:\n    post:\n" + op,
                            kValidators + "x-amazon-apigateway-request-validator: params\n"));
  EXPECT_EQ(json(routeNamed(r, "POST /a")->filter_config().at("request_validator")),
            R"({"parameters":[{"in":"QUERY","name":"q","required":true}]})");
  EXPECT_EQ(json(routeNamed(r, "POST /b")->filter_config().at("request_validator")),
            R"({"body":{"content_types":["application/json"],"schema":{"type":"object"}}})");
  // Without any validator nothing is validated.
  Result none = convertOk(spec("  /a:\n    post:\n" + op, kValidators));
  EXPECT_TRUE(routeNamed(none, "POST /a")->filter_config().empty());
  EXPECT_THAT(filterNames(none), ElementsAre("router"));
  EXPECT_THAT(diagnosticsText(convertText(
                  spec("  /a:\n    post:\n      x-amazon-apigateway-request-validator: nope\n" + op,
                       kValidators))),
              HasSubstr("no request validator \"nope\" in x-amazon-apigateway-request-validators"));
  EXPECT_THAT(diagnosticsText(convertText(spec("  /a:\n    post:\n" + op,
                                               "x-amazon-apigateway-request-validator: nope\n"))),
              HasSubstr("x-amazon-apigateway-request-validator: no request validator \"nope\""));
}

TEST(OpenApiValidation, DanglingReferencesNamedWithPathAndLine) {
  const std::string head = kValidators + "x-amazon-apigateway-request-validator: all\n" +
                           "components:\n  schemas:\n    Pet: {type: object}\n";
  Result r = convertText(spec(
      "  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n"
      "            schema:\n              type: object\n              properties:\n"
      "                owner: {$ref: '#/components/schemas/Owner'}\n" +
          proxyOp("http://10.0.0.1/a") +
          "  /b:\n    get:\n      parameters:\n      - $ref: '#/components/parameters/Gone'\n" +
          proxyOp("http://10.0.0.1/b") +
          "  /c:\n    post:\n      requestBody: {$ref: '#/components/requestBodies/Nope'}\n" +
          proxyOp("http://10.0.0.1/c") +
          "  /d:\n    post:\n      requestBody: {content: {application/json: {schema: "
          "{$ref: 'other.yaml#/Pet'}}}}\n" +
          proxyOp("http://10.0.0.1/d"),
      head));
  const std::string d = diagnosticsText(r);
  EXPECT_THAT(d, HasSubstr("api.yaml:20: error: paths./a.post.requestBody.content.application/"
                           "json.schema.properties.owner.$ref: dangling reference "
                           "\"#/components/schemas/Owner\": components.schemas has no \"Owner\""));
  EXPECT_THAT(d, HasSubstr("paths./b.get.parameters[0].$ref: dangling reference "
                           "\"#/components/parameters/Gone\""));
  EXPECT_THAT(d, HasSubstr("paths./c.post.requestBody.$ref: dangling reference"));
  EXPECT_THAT(d, HasSubstr("\"other.yaml#/Pet\": only references to #/components/schemas/NAME"));
  // Lenient: dangling references are still errors (the spec is broken, not unsupported).
  EXPECT_FALSE(convertText(spec("  /b:\n    get:\n      parameters:\n"
                                "      - $ref: '#/components/parameters/Gone'\n" +
                                    proxyOp("http://10.0.0.1/b"),
                                head),
                           true)
                   .ok());
}

TEST(OpenApiValidation, SchemasAreCompiledByTheValidatorsCompiler) {
  const std::string head = kValidators + "x-amazon-apigateway-request-validator: all\n";
  const std::string text = spec(
      "  /a:\n    get:\n      parameters:\n"
      "      - {name: q, in: query, schema: {type: string, pattern: '(?=x)'}}\n"
      "      - {name: r, in: query, schema: {type: 7}}\n" +
          proxyOp("http://10.0.0.1/a"),
      head);
  const std::string d = diagnosticsText(convertText(text));
  EXPECT_THAT(d, HasSubstr("api.yaml:12: error: paths./a.get.parameters[0].schema: invalid "
                           "schema: #/pattern: "));
  EXPECT_THAT(d, HasSubstr("paths./a.get.parameters[1].schema: invalid schema: #/type: "));
  // Lenient: the schema is dropped, the parameter is still declared.
  Result lenient = convertText(text, true);
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ(json(routeNamed(lenient, "GET /a")->filter_config().at("request_validator")),
            R"({"parameters":[{"in":"QUERY","name":"q"},{"in":"QUERY","name":"r"}]})");
}

TEST(OpenApiValidation, ParameterProblems) {
  const std::string head = kValidators + "x-amazon-apigateway-request-validator: all\n";
  const std::string d = diagnosticsText(
      convertText(spec("  /a/{id}:\n    get:\n      parameters:\n"
                       "      - {name: sid, in: cookie}\n      - {name: other, in: path}\n"
                       "      - {in: query}\n" +
                           proxyOp("http://10.0.0.1/a"),
                       head)));
  EXPECT_THAT(d, HasSubstr("parameters in cookie are not validated"));
  EXPECT_THAT(d, HasSubstr("path parameter \"other\" is not in the path template"));
  EXPECT_THAT(d, HasSubstr("a parameter needs a name and an in"));
  Result media =
      convertOk(spec("  /a:\n    post:\n      requestBody: {content: {'Application/JSON; "
                     "charset=utf-8': {}, text/plain: {}}}\n" +
                         proxyOp("http://10.0.0.1/a"),
                     head));
  EXPECT_EQ(json(routeNamed(media, "POST /a")->filter_config().at("request_validator")),
            R"({"body":{"content_types":["application/json","text/plain"]}})");
  EXPECT_THAT(diagnosticsText(convertText(spec("  /a:\n    post:\n      requestBody: {content: "
                                               "{json: {}}}\n" +
                                                   proxyOp("http://10.0.0.1/a"),
                                               head))),
              HasSubstr("requestBody.content.json: not a media type (type/subtype)"));
}

// ---- Listener ------------------------------------------------------------------------------

TEST(OpenApiListener, ListenOption) {
  Options o;
  o.listen = "127.0.0.1:9090";
  Result r = convertOk(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a")), o);
  EXPECT_EQ(r.resources.listeners(0).address().host(), "127.0.0.1");
  EXPECT_EQ(r.resources.listeners(0).address().port(), 9090u);
  Result d = convertOk(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a")));
  EXPECT_EQ(d.resources.listeners(0).address().host(), "0.0.0.0");
  EXPECT_EQ(d.resources.listeners(0).address().port(), 8080u);
  o.listen = "[::1]:81";
  EXPECT_EQ(convertOk(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a")), o)
                .resources.listeners(0)
                .address()
                .host(),
            "::1");
  // The spec's x-sluice-listen, unless --listen says otherwise.
  const std::string with_listen =
      spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a"), "x-sluice-listen: 127.0.0.2:0\n");
  EXPECT_EQ(convertOk(with_listen).resources.listeners(0).address().host(), "127.0.0.2");
  EXPECT_EQ(convertOk(with_listen, o).resources.listeners(0).address().host(), "::1");
  o.listen = "nope";
  EXPECT_THAT(
      diagnosticsText(convertText(spec("  /a:\n    get:\n" + proxyOp("http://h/a")), false, o)),
      HasSubstr("listen address \"nope\" (--listen or x-sluice-listen): must be HOST:PORT"));
}

TEST(OpenApiFormat, DetectedAndDispatched) {
  EXPECT_EQ(detectFormat("openapi: 3.0.0\npaths: {}\n"), Format::OpenApi);
  EXPECT_EQ(detectFormat("{\"openapi\": \"3.0.0\", \"paths\": {}}"), Format::OpenApi);
  Result r = convert(spec("  /a:\n    get:\n" + proxyOp("http://10.0.0.1/a")), Format::OpenApi, {});
  EXPECT_TRUE(r.ok()) << diagnosticsText(r);
}

// ---- Golden files --------------------------------------------------------------------------

// JSON -> block YAML with map keys sorted ("name" first), so the golden is stable.
YAML::Node sortedCopy(const YAML::Node& in) {
  if (in.IsMap()) {
    std::vector<std::string> keys;
    for (auto it = in.begin(); it != in.end(); ++it) keys.push_back(it->first.as<std::string>());
    std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
      if ((a == "name") != (b == "name")) return a == "name";
      return a < b;
    });
    YAML::Node out(YAML::NodeType::Map);
    for (const std::string& k : keys) out[k] = sortedCopy(in[k]);
    return out;
  }
  if (in.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const auto& item : in) out.push_back(sortedCopy(item));
    return out;
  }
  return in;
}

std::string goldenText(const Result& r, bool lenient) {
  std::string out = absl::StrCat(
      "# Generated by //test/config_import:openapi_test", lenient ? " (--lenient)" : "",
      "; regenerate with UPDATE_GOLDEN=1 bazel run //test/config_import:openapi_test\n");
  for (absl::string_view line :
       absl::StrSplit(renderDiagnostics(r.diagnostics, "input"), '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "# ", line, "\n");
  }
  if (!r.ok()) return out;
  YAML::Emitter emitter;
  emitter << sortedCopy(YAML::Load(Config::toJson(r.resources)));
  absl::StrAppend(&out, emitter.c_str(), "\n");
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class OpenApiGolden : public testing::TestWithParam<std::pair<std::string, bool>> {};

TEST_P(OpenApiGolden, MatchesTheGolden) {
  const auto& [name, lenient] = GetParam();
  const std::string dir = "test/config_import/testdata/";
  const std::string input = readFile(dir + name + ".openapi.yaml");
  ASSERT_FALSE(input.empty()) << name;
  Result r = convertText(input, lenient);
  ASSERT_TRUE(r.ok()) << diagnosticsText(r);
  absl::Status v = Server::validateResources(r.resources);
  EXPECT_TRUE(v.ok()) << v;
  const std::string got = goldenText(r, lenient);
  const char* update = std::getenv("UPDATE_GOLDEN");
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (update != nullptr && std::string(update) == "1") {
    ASSERT_NE(workspace, nullptr) << "UPDATE_GOLDEN needs `bazel run`";
    std::ofstream(absl::StrCat(workspace, "/", dir, name, ".openapi.golden.yaml")) << got;
    return;
  }
  EXPECT_EQ(got, readFile(dir + name + ".openapi.golden.yaml"))
      << "regenerate with UPDATE_GOLDEN=1 bazel run //test/config_import:openapi_test";
}

INSTANTIATE_TEST_SUITE_P(Specs, OpenApiGolden,
                         testing::Values(std::make_pair(std::string("seed"), true),
                                         std::make_pair(std::string("full"), false)),
                         [](const auto& info) { return info.param.first; });

// Every spec one line shorter, and every prefix of it: no crash, and whatever converts without
// an error is a config Sluice accepts.
TEST(OpenApiRobustness, MutilatedSpecsNeverCrashOrConvertToInvalidConfig) {
  const std::string full = readFile("test/config_import/testdata/full.openapi.yaml");
  ASSERT_FALSE(full.empty());
  std::vector<std::string> lines = absl::StrSplit(full, '\n');
  std::vector<std::string> variants;
  for (size_t skip = 0; skip < lines.size(); ++skip) {
    std::string text;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i != skip) absl::StrAppend(&text, lines[i], "\n");
    }
    variants.push_back(std::move(text));
  }
  for (size_t n = 0; n < full.size(); n += 97) variants.push_back(full.substr(0, n));
  // Each value replaced by one of another type.
  for (size_t at = 0; at < lines.size(); ++at) {
    const size_t colon = lines[at].find(": ");
    if (colon == std::string::npos) continue;
    for (const char* other : {"[1, {a: b}]", "{x: 1}", "-7", "''"}) {
      std::string text;
      for (size_t i = 0; i < lines.size(); ++i) {
        absl::StrAppend(&text, i == at ? lines[i].substr(0, colon + 2) + other : lines[i], "\n");
      }
      variants.push_back(std::move(text));
    }
  }
  int converted = 0;
  for (const std::string& text : variants) {
    for (bool lenient : {false, true}) {
      Result r = convertText(text, lenient);
      if (!r.ok()) continue;
      ++converted;
      absl::Status v = Server::validateResources(r.resources);
      EXPECT_TRUE(v.ok()) << v << "\n" << text;
    }
  }
  EXPECT_GT(converted, 500);
}

TEST(OpenApiSeed, StrictRefusesTheDuplicateKey) {
  Result r = convertText(readFile("test/config_import/testdata/seed.openapi.yaml"));
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(diagnosticsText(r),
              HasSubstr("api.yaml:34: error: components.securitySchemes.cognito.type: duplicate "
                        "key \"type\" (first at line 31)"));
}

}  // namespace
}  // namespace ConfigImport
}  // namespace sluice
