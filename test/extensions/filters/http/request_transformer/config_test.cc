#include "source/extensions/filters/http/request_transformer/config.h"

#include "gtest/gtest.h"
#include "source/extensions/filters/http/request_transformer/filter.h"

namespace sluice {
namespace Extensions {
namespace RequestTransformer {
namespace {

class FakeContext : public TemplateContext {
 public:
  absl::optional<absl::string_view> header(absl::string_view name) const override {
    if (name == "x-user") return absl::string_view("ann");
    return absl::nullopt;
  }
  absl::optional<std::string> queryParam(absl::string_view name) const override {
    if (name == "q") return std::string("a b");
    return absl::nullopt;
  }
  absl::optional<std::string> uriCapture(absl::string_view name) const override {
    if (name == "id") return std::string("7");
    return absl::nullopt;
  }
  absl::string_view variable(TemplateVariable v) const override {
    switch (v) {
      case TemplateVariable::RequestId:
        return "rid";
      case TemplateVariable::Scheme:
        return "https";
      case TemplateVariable::Host:
        return "h.example";
      case TemplateVariable::ClientIp:
        return "10.0.0.1";
      case TemplateVariable::Consumer:
        return "alice";
    }
    return "";
  }
};

std::string render(absl::string_view text) {
  absl::StatusOr<Template> t = Template::compile(text);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? t->render(FakeContext()) : "";
}

TEST(TemplateTest, Placeholders) {
  EXPECT_EQ("ann", render("$(headers.x-user)"));
  EXPECT_EQ("ann", render("$(headers.X_User)"));  // nginx's table: case and _ for -
  EXPECT_EQ("ann", render("$(headers[\"x-user\"])"));
  EXPECT_EQ("ann", render("$( headers['X-User'] )"));
  EXPECT_EQ("q=a b id=7", render("q=$(query_params.q) id=$(uri_captures.id)"));
  EXPECT_EQ("rid https h.example 10.0.0.1 alice",
            render("$request_id $scheme $host $client_ip $consumer"));
  EXPECT_EQ("[]", render("[$(headers.none)]"));
  EXPECT_EQ("$ $5 $hostname $", render("$ $5 $hostname $"));
  EXPECT_TRUE(Template::compile("plain").value().isStatic());
  EXPECT_FALSE(Template::compile("$host").value().isStatic());
}

TEST(TemplateTest, Errors) {
  EXPECT_FALSE(Template::compile("$(headers.x").ok());
  EXPECT_FALSE(Template::compile("$(cookies.x)").ok());
  EXPECT_FALSE(Template::compile("$(headers)").ok());
  EXPECT_FALSE(Template::compile("$(headers.)").ok());
  EXPECT_FALSE(Template::compile("$(os.execute('x'))").ok());
}

TEST(FormPairsTest, KongEditsKeepWhatTheyDontTouch) {
  FormPairs f("a=1&b=x%2Fy&c&d=1&d=2&e+f=3");
  EXPECT_EQ("x/y", f.first("b").value());
  EXPECT_EQ("", f.first("c").value());
  EXPECT_EQ("3", f.first("e f").value());
  EXPECT_FALSE(f.first("z").has_value());
  f.remove("a");
  f.rename("d", "dd");
  f.replace("b", "new value");
  f.append("c", "v");  // a flag gets a value
  f.add("n", "a&b=c");
  EXPECT_EQ("b=new%20value&dd=1&dd=2&e+f=3&c=v&n=a%26b%3Dc", f.toString());
  f.rename("missing", "dd");  // Kong: a missing source removes the target
  EXPECT_EQ("b=new%20value&e+f=3&c=v&n=a%26b%3Dc", f.toString());
  EXPECT_FALSE(f.replace("zz", "v"));
}

TEST(FormPairsTest, Decoding) {
  EXPECT_EQ("a b/c%zz%", decodeFormComponent("a+b%2fc%zz%"));
  EXPECT_EQ("a%20b%2Fc~", encodeFormComponent("a b/c~"));
}

TEST(SafePathTest, EncodesAndRefusesDotSegments) {
  std::string out;
  EXPECT_TRUE(safePath("/a b/%41?#", out));
  EXPECT_EQ("/a%20b/%41%3F%23", out);
  EXPECT_FALSE(safePath("relative", out));
  EXPECT_FALSE(safePath("", out));
  EXPECT_FALSE(safePath("/a/../b", out));
  EXPECT_FALSE(safePath("/a/%2e%2E/b", out));
  EXPECT_FALSE(safePath("/.", out));
  EXPECT_TRUE(safePath("/a/..b/.c", out));
}

TEST(ConfigTest, CompilesAndNamesFields) {
  sluice::extensions::filters::http::request_transformer::v1::RequestTransformer proto;
  proto.mutable_add()->add_headers("X-Upper:v");
  proto.mutable_rename()->add_headers("x-a:X-B");
  proto.mutable_add()->add_body("meta.v:1");
  proto.set_http_method("get");
  sluice::Config::ErrorList errors;
  auto c = TransformConfig::create(proto, "f", errors);
  ASSERT_TRUE(errors.empty()) << errors.status();
  ASSERT_NE(nullptr, c);
  EXPECT_EQ("x-upper", c->headers.add[0].name);
  EXPECT_EQ("x-b", c->headers.rename[0].value.text());
  EXPECT_EQ("GET", c->http_method);
  EXPECT_TRUE(c->moves_form_to_query);
  EXPECT_TRUE(c->reads_json_body);
  EXPECT_EQ(kDefaultMaxBodyBytes, c->max_body_bytes);

  proto.mutable_append()->add_headers("x-bad:\x01");
  proto.mutable_remove()->add_headers("connection");
  errors = sluice::Config::ErrorList();
  EXPECT_EQ(nullptr, TransformConfig::create(proto, "f", errors));
  const std::string msg(errors.status().message());
  EXPECT_NE(std::string::npos, msg.find("f.append.headers[0]: the value is not a valid header"));
  EXPECT_NE(std::string::npos, msg.find("f.remove.headers[0]: \"connection\" is managed"));
}

}  // namespace
}  // namespace RequestTransformer
}  // namespace Extensions
}  // namespace sluice
