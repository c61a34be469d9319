#include "source/extensions/filters/http/response_transformer/config.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/server/config/snapshot.h"

namespace sluice {
namespace Extensions {
namespace ResponseTransformer {
namespace {

using testing::HasSubstr;

// The error of building a snapshot from a bootstrap whose listener has the filter with
// `config`, and whose route `users` and virtual host have `route` / `vhost` as their
// filter_config.response_transformer ("" for none).
std::string buildError(const std::string& config, const std::string& route = "",
                       const std::string& vhost = "") {
  const std::string yaml = absl::StrCat(R"(
static_resources:
  clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 9000}]}]
  route_tables:
  - name: main
    virtual_hosts:
    - domains: ["*"]
)",
                                        vhost.empty() ? ""
                                                      : absl::StrCat("      filter_config: "
                                                                     "{response_transformer: ",
                                                                     vhost, "}\n"),
                                        R"(      routes:
      - name: users
        match: {prefix: /users}
        route: {cluster: c}
)",
                                        route.empty() ? ""
                                                      : absl::StrCat("        filter_config: "
                                                                     "{response_transformer: ",
                                                                     route, "}\n"),
                                        R"(      - {match: {prefix: /}, route: {cluster: c}}
  listeners:
  - name: public
    route_table: main
    http_filters:
    - name: response_transformer
      config: )",
                                        config, R"(
    - {name: router}
)");
  sluice::config::v1::Bootstrap b;
  absl::Status s = Config::loadFromYaml(yaml, b);
  EXPECT_TRUE(s.ok()) << s << yaml;
  auto snap = Server::buildSnapshot(b, nullptr, Server::BuildOptions{});
  return snap.ok() ? "" : std::string(snap.status().message());
}

constexpr char kFilter[] = "static_resources.listeners[0].http_filters[0].config.";
constexpr char kRoute[] =
    "static_resources.route_tables[0].virtual_hosts[0].routes[0].filter_config."
    "response_transformer.";

TEST(ResponseTransformerConfigTest, ValidConfigs) {
  EXPECT_EQ("", buildError("{}"));
  EXPECT_EQ("", buildError(R"({
        remove: {headers: [x-powered-by, 'server:ignored'], json: [debug, meta.internal]},
        rename: {headers: ['x-old:x-new'], json: ['id:user_id', 'a.b:c']},
        replace: {headers: ['x-a:v:1'], json: ['meta.api_version:v1', 'n:1.5e3'],
                  json_types: [string, number]},
        add: {headers: ['x-b:2'], json: ['flag:yes', 'x:1'], json_types: [boolean]},
        append: {headers: ['x-c:3'], json: ['tags:new']},
        max_body_bytes: 67108864})",
                           "{add: {json: ['route:1']}, max_body_bytes: 10}",
                           "{remove: {headers: [server]}}"));
}

TEST(ResponseTransformerConfigTest, CompiledRules) {
  ConfigProto proto;
  ASSERT_TRUE(Config::loadFromYaml(R"(
remove: {headers: [X-Powered-By, 'server:ignored'], json: ['meta.internal']}
rename: {headers: ['X-Old:X-New']}
replace: {headers: ['h2:value:2'], json: ['n:-1.50E+3', 'b:true', 's:5'],
          json_types: [number, boolean]}
add: {json: ['f:yes', 'k::v'], json_types: [boolean, string]}
)",
                                   proto)
                  .ok());
  Config::ErrorList errors;
  RulesConstSharedPtr r = compileRules(
      proto, [](absl::string_view f) { return std::string(f); }, errors);
  ASSERT_NE(nullptr, r) << errors.status();
  ASSERT_EQ(2u, r->remove_headers.size());
  EXPECT_EQ("x-powered-by", r->remove_headers[0]);
  EXPECT_EQ("server", r->remove_headers[1]);  // Kong: the name runs to the first colon
  ASSERT_EQ(1u, r->json.remove.size());
  EXPECT_EQ((std::vector<std::string>{"meta", "internal"}), r->json.remove[0].keys);
  ASSERT_EQ(1u, r->rename_headers.size());
  EXPECT_EQ("x-old", r->rename_headers[0].from);
  EXPECT_EQ("x-new", r->rename_headers[0].to);
  ASSERT_EQ(1u, r->replace_headers.size());
  EXPECT_EQ("value:2", r->replace_headers[0].value);
  ASSERT_EQ(3u, r->json.replace.size());
  EXPECT_TRUE(r->json.replace[0].value.isNumber());
  EXPECT_EQ("-1.50E+3", r->json.replace[0].value.str());  // as configured
  EXPECT_TRUE(r->json.replace[1].value.isBool());
  EXPECT_TRUE(r->json.replace[1].value.boolValue());
  EXPECT_TRUE(r->json.replace[2].value.isString());  // no type: a string
  EXPECT_EQ("5", r->json.replace[2].value.str());
  ASSERT_EQ(2u, r->json.add.size());
  EXPECT_FALSE(r->json.add[0].value.boolValue());  // Kong: true only for "true"
  EXPECT_EQ("v", r->json.add[1].value.str());      // colons before the value are skipped
  EXPECT_EQ(kDefaultMaxBodyBytes, r->max_body_bytes);
  EXPECT_TRUE(r->hasHeaderRules());
}

TEST(ResponseTransformerConfigTest, ErrorsNameTheirFields) {
  const std::string e = buildError(R"({
        remove: {headers: ['', 'bad header'], json: ['a..b', '.x']},
        rename: {headers: ['x-a', 'x-a:x-A', 'x-b:bad name'], json: ['a:a', 'b:']},
        replace: {headers: [':v', "x-c:bad\u0001value"], json: ['n:abc', 'm:1'],
                  json_types: [number, float]},
        add: {headers: ['content-length:5', 'connection:close', 'x-d:'],
              json: ['a:1', 'b:0x10', 'c:1.', 'd:-'], json_types: [string, number, number]},
        append: {json: ['a:1'], json_types: [string, string]},
        max_body_bytes: 67108865})");
  const std::string f = kFilter;
  for (const std::string& expected : {
           f + "remove.headers[0]: \"\": expected \"name:value\" (the name is empty)",
           f + "remove.headers[1]: \"bad header\" is not a valid header name",
           f + "remove.json[0]: \"a..b\": empty key in a dotted JSON path",
           f + "remove.json[1]: \".x\": empty key in a dotted JSON path",
           f + "rename.headers[0]: \"x-a\": expected \"name:value\" (the value is empty)",
           f + "rename.headers[1]: \"x-a:x-A\" renames the header to itself",
           f + "rename.headers[2]: \"bad name\" is not a valid header name",
           f + "rename.json[0]: \"a:a\" renames the member to itself",
           f + "rename.json[1]: \"b:\": expected \"name:value\" (the value is empty)",
           f + "replace.headers[0]: \":v\": expected \"name:value\" (the name is empty)",
           f + "replace.headers[1]: \"x-c:bad\x01value\": the value has a character",
           f + "replace.json_types[0]: \"abc\" (replace.json[0]) is not a JSON number",
           f + "replace.json_types[1]: unknown type \"float\" (string, boolean or number)",
           f + "add.headers[0]: \"content-length\": the message framing and hop-by-hop",
           f + "add.headers[1]: \"connection\": the message framing and hop-by-hop",
           f + "add.headers[2]: \"x-d:\": expected \"name:value\" (the value is empty)",
           f + "add.json_types[1]: \"0x10\" (add.json[1]) is not a JSON number",
           f + "add.json_types[2]: \"1.\" (add.json[2]) is not a JSON number",
           f + "append.json_types: has 2 entries for 1 json entries",
           f + "max_body_bytes: must be <= 67108864",
       }) {
    EXPECT_THAT(e, HasSubstr(expected)) << e;
  }
  // A string-typed value is anything; no error for add.json[3] ("d:-", a string).
  EXPECT_THAT(e, testing::Not(HasSubstr("add.json[3]")));
  EXPECT_THAT(e, testing::Not(HasSubstr("add.json_types[0]")));
}

TEST(ResponseTransformerConfigTest, RouteAndVirtualHostErrorsNameTheirFields) {
  const std::string e =
      buildError("{}", "{add: {json: ['a:1', 'b:2'], json_types: [number, number, string]}}",
                 "{remove: {json: ['x.']}}");
  EXPECT_THAT(e, HasSubstr(absl::StrCat(kRoute, "add.json_types: has 3 entries for 2 json"))) << e;
  EXPECT_THAT(e, HasSubstr("static_resources.route_tables[0].virtual_hosts[0].filter_config."
                           "response_transformer.remove.json[0]: \"x.\": empty key"))
      << e;
  // Unknown fields fail at their path, like every filter config.
  EXPECT_THAT(buildError("{add: {jsn: ['a:1']}}"),
              HasSubstr(absl::StrCat(kFilter, "(add) jsn: unknown field")));
  EXPECT_THAT(buildError("{}", "{remove: {header: [x]}}"),
              HasSubstr(absl::StrCat(kRoute, "(remove) header: unknown field")));
}

TEST(ResponseTransformerConfigTest, PathDepthIsBounded) {
  std::string deep = "a";
  for (size_t i = 1; i < kMaxJsonPathKeys; ++i) absl::StrAppend(&deep, ".a");
  EXPECT_EQ("", buildError(absl::StrCat("{remove: {json: ['", deep, "']}}")));
  EXPECT_THAT(buildError(absl::StrCat("{add: {json: ['", deep, ".b:1']}}")),
              HasSubstr("more than 32 keys in a dotted JSON path"));
}

TEST(ResponseTransformerConfigTest, ListenerWithoutTheFilterIsRefusedForARouteConfig) {
  const std::string yaml = R"(
static_resources:
  clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 9000}]}]
  route_tables:
  - name: main
    virtual_hosts:
    - domains: ["*"]
      routes:
      - {name: users, match: {prefix: /}, route: {cluster: c},
         filter_config: {response_transformer: {add: {headers: ['x:1']}}}}
  listeners:
  - {name: public, route_table: main, http_filters: [{name: router}]}
)";
  sluice::config::v1::Bootstrap b;
  ASSERT_TRUE(Config::loadFromYaml(yaml, b).ok());
  auto snap = Server::buildSnapshot(b, nullptr, Server::BuildOptions{});
  ASSERT_FALSE(snap.ok());
  EXPECT_THAT(std::string(snap.status().message()),
              HasSubstr("requires config for the response_transformer filter but listener "
                        "\"public\" has no response_transformer filter"));
}

}  // namespace
}  // namespace ResponseTransformer
}  // namespace Extensions
}  // namespace sluice
