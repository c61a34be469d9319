#include "source/common/http/gateway_response.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/config/v1/listener.pb.h"
#include "source/common/config/utility.h"
#include "source/common/http/gateway_response_config.h"

namespace sluice {
namespace Http {
namespace {

using testing::HasSubstr;

std::string render(absl::string_view text, GatewayResponseTemplate::Escape escape,
                   const GatewayResponseVars& vars) {
  std::string out;
  GatewayResponseTemplate::compile(text).render(vars, escape, out);
  return out;
}

// Compiles `yaml` (a Listener's `gateway_responses` map) and returns the errors, one per line.
std::string compileErrors(const std::string& yaml, GatewayResponsesConstSharedPtr* out = nullptr) {
  sluice::config::v1::Listener listener;
  absl::Status loaded = Config::loadFromYaml("gateway_responses:\n" + yaml, listener);
  EXPECT_TRUE(loaded.ok()) << loaded;
  Config::ErrorList errors;
  GatewayResponsesConstSharedPtr compiled =
      GatewayResponses::create(listener.gateway_responses(), "l.gateway_responses", errors);
  EXPECT_EQ(errors.empty(), compiled != nullptr);
  if (out != nullptr) *out = compiled;
  return std::string(errors.status().message());
}

const GatewayResponseVars kVars{"rid-1", 429, "too \"many\"\nrequests\\", "orders/list"};

TEST(GatewayResponseTypeTest, NamesRoundTrip) {
  for (size_t i = 0; i < kGatewayResponseTypeCount; ++i) {
    const auto type = static_cast<GatewayResponseType>(i);
    EXPECT_EQ(parseGatewayResponseType(gatewayResponseTypeName(type)), type);
  }
  EXPECT_EQ(gatewayResponseTypeName(GatewayResponseType::BadRequestBody), "BAD_REQUEST_BODY");
  EXPECT_EQ(gatewayResponseTypeName(GatewayResponseType::UnsupportedMediaType),
            "UNSUPPORTED_MEDIA_TYPE");
  EXPECT_EQ(parseGatewayResponseType("throttled"), absl::nullopt);  // names are exact
  EXPECT_EQ(parseGatewayResponseType("THROTLED"), absl::nullopt);
  EXPECT_THAT(gatewayResponseTypeNames(), HasSubstr("RESOURCE_NOT_FOUND, UNAUTHORIZED, "));
}

TEST(GatewayResponseTypeTest, Inference) {
  ResponseFlags none;
  auto with = [](ResponseFlag f) {
    ResponseFlags flags;
    flags.set(f);
    return flags;
  };
  EXPECT_EQ(inferGatewayResponseType(404, with(ResponseFlag::NoRouteFound)),
            GatewayResponseType::ResourceNotFound);
  EXPECT_EQ(inferGatewayResponseType(404, none), GatewayResponseType::Default4xx);
  EXPECT_EQ(inferGatewayResponseType(401, none), GatewayResponseType::Unauthorized);
  EXPECT_EQ(inferGatewayResponseType(403, none), GatewayResponseType::AccessDenied);
  EXPECT_EQ(inferGatewayResponseType(413, none), GatewayResponseType::RequestTooLarge);
  EXPECT_EQ(inferGatewayResponseType(415, none), GatewayResponseType::UnsupportedMediaType);
  EXPECT_EQ(inferGatewayResponseType(429, none), GatewayResponseType::Throttled);
  for (ResponseFlag f :
       {ResponseFlag::NoClusterFound, ResponseFlag::NoHealthyUpstream,
        ResponseFlag::UpstreamOverflow, ResponseFlag::UpstreamConnectionFailure,
        ResponseFlag::UpstreamProtocolError, ResponseFlag::UpstreamConnectionTermination}) {
    EXPECT_EQ(inferGatewayResponseType(502, with(f)), GatewayResponseType::IntegrationFailure);
    EXPECT_EQ(inferGatewayResponseType(503, with(f)), GatewayResponseType::IntegrationFailure);
  }
  // A filter's 503 (rate-limit store down, auth policy missing) is not the integration's.
  EXPECT_EQ(inferGatewayResponseType(503, with(ResponseFlag::RateLimitServiceError)),
            GatewayResponseType::Default5xx);
  EXPECT_EQ(inferGatewayResponseType(503, none), GatewayResponseType::Default5xx);
  EXPECT_EQ(inferGatewayResponseType(504, with(ResponseFlag::UpstreamRequestTimeout)),
            GatewayResponseType::IntegrationTimeout);
  EXPECT_EQ(inferGatewayResponseType(400, none), GatewayResponseType::Default4xx);
  EXPECT_EQ(inferGatewayResponseType(431, none), GatewayResponseType::Default4xx);
  EXPECT_EQ(inferGatewayResponseType(408, with(ResponseFlag::RequestTimeout)),
            GatewayResponseType::Default4xx);
  EXPECT_EQ(inferGatewayResponseType(500, none), GatewayResponseType::Default5xx);
  // Redirects and successes are never reshaped.
  EXPECT_EQ(inferGatewayResponseType(307, none), absl::nullopt);
  EXPECT_EQ(inferGatewayResponseType(200, none), absl::nullopt);
  EXPECT_EQ(inferGatewayResponseType(600, none), absl::nullopt);
}

TEST(GatewayResponseTemplateTest, Variables) {
  using E = GatewayResponseTemplate::Escape;
  EXPECT_EQ(render("", E::None, kVars), "");
  EXPECT_EQ(render("plain text", E::None, kVars), "plain text");
  EXPECT_EQ(render("$request_id", E::None, kVars), "rid-1");
  EXPECT_EQ(render("[$status] $route: $request_id", E::None, kVars), "[429] orders/list: rid-1");
  EXPECT_EQ(render("$status$status", E::None, kVars), "429429");
  // Unknown names, a bare `$` and names that only start like a variable stay as written.
  EXPECT_EQ(render("$ $$ $foo $routes $status_code cost: 5$", E::None, kVars),
            "$ $$ $foo $routes $status_code cost: 5$");
  EXPECT_EQ(render("$$status", E::None, kVars), "$429");
  EXPECT_EQ(render("($route)", E::None, kVars), "(orders/list)");
  // An empty value (no route matched).
  GatewayResponseVars no_route = kVars;
  no_route.route = "";
  EXPECT_EQ(render("route=$route.", E::None, no_route), "route=.");
}

TEST(GatewayResponseTemplateTest, JsonEscapesValuesNotLiterals) {
  const std::string out = render(R"({"error":"$message","id":"$request_id","n":$status})",
                                 GatewayResponseTemplate::Escape::Json, kVars);
  EXPECT_EQ(out, R"({"error":"too \"many\"\nrequests\\","id":"rid-1","n":429})");
  GatewayResponseVars controls = kVars;
  controls.message = absl::string_view(
      "a\x01\x7f"
      "b",
      4);
  EXPECT_EQ(render("$message", GatewayResponseTemplate::Escape::Json, controls),
            "a\\u0001\\u007fb");
}

TEST(GatewayResponseTemplateTest, HeaderValuesNeverCarryControls) {
  EXPECT_EQ(render("m=$message", GatewayResponseTemplate::Escape::HeaderValue, kVars),
            "m=too \"many\" requests\\");
  GatewayResponseVars tab = kVars;
  tab.message = "a\tb\r\nc";
  EXPECT_EQ(render("$message", GatewayResponseTemplate::Escape::HeaderValue, tab), "a\tb  c");
}

TEST(GatewayResponsesTest, CompileAndRender) {
  GatewayResponsesConstSharedPtr set;
  const std::string yaml = R"yaml(
  THROTTLED:
    status_code: 503
    headers: {Retry-After: "30", X-Why: "$message ($status)"}
    body: '{"error":"$message","request_id":"$request_id"}'
  DEFAULT_4XX:
    body: "<p>$message</p>"
    content_type: text/html; charset=utf-8
  DEFAULT_5XX:
    headers: {access-control-allow-origin: "*"}
  UNAUTHORIZED:
    body: ""
  QUOTA_EXCEEDED:
    body: "$message"
    content_type: application/problem+json
)yaml";
  EXPECT_EQ(compileErrors(yaml, &set), "");
  ASSERT_NE(set, nullptr);
  const CompiledGatewayResponse* t = set->find(GatewayResponseType::Throttled);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->statusFor(429), 503u);
  EXPECT_TRUE(t->has_body);
  EXPECT_EQ(t->content_type, "application/json");
  EXPECT_TRUE(t->json);
  GatewayResponseVars vars = kVars;
  vars.status = t->statusFor(429);
  std::string body;
  t->renderBody(vars, body);
  EXPECT_EQ(body, R"({"error":"too \"many\"\nrequests\\","request_id":"rid-1"})");
  ResponseHeaderMap headers;
  headers.add("retry-after", "1");
  headers.add("content-length", "5");
  t->applyHeaders(vars, headers);
  EXPECT_EQ(headers.count("retry-after"), 1u);  // replaced, not added
  EXPECT_EQ(headers.get("retry-after"), "30");
  EXPECT_EQ(headers.get("x-why"), "too \"many\" requests\\ (503)");  // names lower-cased
  EXPECT_EQ(headers.get("content-length"), "5");

  const CompiledGatewayResponse* d4 = set->find(GatewayResponseType::Default4xx);
  ASSERT_NE(d4, nullptr);
  EXPECT_EQ(d4->statusFor(400), 400u);  // 0 keeps the gateway's status
  EXPECT_FALSE(d4->json);
  body.clear();
  d4->renderBody(kVars, body);
  EXPECT_EQ(body, "<p>too \"many\"\nrequests\\</p>");  // not JSON: as is

  const CompiledGatewayResponse* d5 = set->find(GatewayResponseType::Default5xx);
  ASSERT_NE(d5, nullptr);
  EXPECT_FALSE(d5->has_body);                                           // the built-in JSON body
  EXPECT_TRUE(set->find(GatewayResponseType::Unauthorized)->has_body);  // "" is a body
  EXPECT_TRUE(set->find(GatewayResponseType::QuotaExceeded)->json);     // +json
  EXPECT_EQ(set->find(GatewayResponseType::ResourceNotFound), nullptr);
}

TEST(GatewayResponsesTest, ErrorsNameTheField) {
  EXPECT_EQ(compileErrors("  THROTLED: {status_code: 503}\n"),
            "l.gateway_responses.THROTLED: unknown gateway response type (one of "
            "RESOURCE_NOT_FOUND, UNAUTHORIZED, ACCESS_DENIED, EXPIRED_TOKEN, INVALID_API_KEY, "
            "THROTTLED, QUOTA_EXCEEDED, REQUEST_TOO_LARGE, BAD_REQUEST_BODY, "
            "BAD_REQUEST_PARAMETERS, UNSUPPORTED_MEDIA_TYPE, INTEGRATION_FAILURE, "
            "INTEGRATION_TIMEOUT, DEFAULT_4XX, DEFAULT_5XX)");
  for (const char* status : {"99", "100", "199", "600", "1000"}) {
    EXPECT_EQ(compileErrors(absl::StrCat("  DEFAULT_4XX: {status_code: ", status, "}\n")),
              "l.gateway_responses.DEFAULT_4XX.status_code: must be 0 (the gateway's status) or "
              "200..599")
        << status;
  }
  EXPECT_EQ(compileErrors("  DEFAULT_4XX: {status_code: 200}\n"), "");
  EXPECT_EQ(compileErrors("  DEFAULT_4XX: {status_code: 599}\n"), "");
  EXPECT_EQ(compileErrors("  DEFAULT_4XX: {headers: {\"bad name\": x}}\n"),
            "l.gateway_responses.DEFAULT_4XX.headers.bad name: invalid header name");
  EXPECT_EQ(compileErrors("  DEFAULT_4XX: {headers: {\"x-a\": \"line\\nbreak\"}}\n"),
            "l.gateway_responses.DEFAULT_4XX.headers.x-a: invalid header value (control "
            "characters)");
  EXPECT_EQ(compileErrors("  DEFAULT_4XX: {headers: {Content-Length: \"1\"}}\n"),
            "l.gateway_responses.DEFAULT_4XX.headers.Content-Length: can't be set here: is "
            "computed from the body");
  EXPECT_THAT(compileErrors("  DEFAULT_4XX: {headers: {content-type: text/plain}}\n"),
              HasSubstr("use content_type"));
  EXPECT_THAT(compileErrors("  DEFAULT_4XX: {headers: {x-request-id: x}}\n"),
              HasSubstr("is set by the gateway"));
  EXPECT_THAT(compileErrors("  DEFAULT_4XX: {headers: {Transfer-Encoding: chunked}}\n"),
              HasSubstr("hop-by-hop"));
  EXPECT_EQ(compileErrors("  DEFAULT_4XX: {headers: {X-A: \"1\", x-a: \"2\"}}\n"),
            "l.gateway_responses.DEFAULT_4XX.headers.x-a: duplicate header (names are "
            "case-insensitive)");
  EXPECT_EQ(compileErrors("  DEFAULT_4XX: {body: x, content_type: \"text\"}\n"),
            "l.gateway_responses.DEFAULT_4XX.content_type: invalid media type (type/subtype[; "
            "parameters], no controls)");
  EXPECT_EQ(compileErrors("  DEFAULT_4XX: {content_type: text/plain}\n"),
            "l.gateway_responses.DEFAULT_4XX.content_type: only with body (the built-in body is "
            "JSON)");
  // Every error is reported, not only the first.
  const std::string all =
      compileErrors("  NOPE: {}\n  DEFAULT_5XX: {status_code: 700, headers: {\"a b\": x}}\n");
  EXPECT_THAT(all, HasSubstr("NOPE: unknown"));
  EXPECT_THAT(all, HasSubstr("DEFAULT_5XX.status_code"));
  EXPECT_THAT(all, HasSubstr("DEFAULT_5XX.headers.a b"));
  // An empty map is no set at all.
  Config::ErrorList errors;
  EXPECT_EQ(GatewayResponses::create({}, "x", errors), nullptr);
  EXPECT_TRUE(errors.empty());
}

TEST(GatewayResponsesTest, LookupOrder) {
  GatewayResponsesConstSharedPtr vhost;
  GatewayResponsesConstSharedPtr listener;
  ASSERT_EQ(
      compileErrors("  THROTTLED: {status_code: 531}\n  DEFAULT_4XX: {status_code: 532}\n", &vhost),
      "");
  ASSERT_EQ(compileErrors("  THROTTLED: {status_code: 541}\n  UNAUTHORIZED: {status_code: 542}\n"
                          "  DEFAULT_4XX: {status_code: 543}\n  DEFAULT_5XX: {status_code: 544}\n",
                          &listener),
            "");
  auto pick = [&](GatewayResponseType type, uint32_t status, const GatewayResponses* v,
                  const GatewayResponses* l) -> uint32_t {
    const CompiledGatewayResponse* r = selectGatewayResponse(type, status, v, l);
    return r == nullptr ? 0 : r->status_code;
  };
  const GatewayResponses* v = vhost.get();
  const GatewayResponses* l = listener.get();
  // The virtual host's entry for the type, else the listener's.
  EXPECT_EQ(pick(GatewayResponseType::Throttled, 429, v, l), 531u);
  EXPECT_EQ(pick(GatewayResponseType::Unauthorized, 401, v, l), 542u);
  // Then the virtual host's default of the class, then the listener's.
  EXPECT_EQ(pick(GatewayResponseType::AccessDenied, 403, v, l), 532u);
  EXPECT_EQ(pick(GatewayResponseType::AccessDenied, 403, nullptr, l), 543u);
  EXPECT_EQ(pick(GatewayResponseType::IntegrationFailure, 502, v, l), 544u);
  // The class is the reply's status, whatever the type.
  EXPECT_EQ(pick(GatewayResponseType::ExpiredToken, 500, v, nullptr), 0u);
  EXPECT_EQ(pick(GatewayResponseType::ExpiredToken, 401, v, nullptr), 532u);
  EXPECT_EQ(pick(GatewayResponseType::Throttled, 429, nullptr, nullptr), 0u);
  // Below 400 (redirects) nothing applies, even with a type.
  EXPECT_EQ(pick(GatewayResponseType::Default4xx, 307, v, l), 0u);
}

TEST(GatewayResponsesTest, JsonContentTypes) {
  EXPECT_TRUE(isJsonContentType("application/json"));
  EXPECT_TRUE(isJsonContentType("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(isJsonContentType("application/problem+json"));
  EXPECT_TRUE(isJsonContentType("application/vnd.api+json ;x=y"));
  EXPECT_FALSE(isJsonContentType("text/plain"));
  EXPECT_FALSE(isJsonContentType("application/jsonp"));
  EXPECT_FALSE(isJsonContentType("text/html; profile=\"+json\""));
}

}  // namespace
}  // namespace Http
}  // namespace sluice
