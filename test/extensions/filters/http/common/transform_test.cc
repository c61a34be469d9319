#include "source/extensions/filters/http/common/transform.h"

#include "gtest/gtest.h"

namespace sluice {
namespace Extensions {
namespace Transform {
namespace {

JsonPath path(absl::string_view text) { return *parseJsonPath(text); }

std::string apply(absl::string_view body, const JsonRules& rules,
                  RenameMissing rename_missing = RenameMissing::Skip) {
  absl::StatusOr<Json::Value> v = parseBody(body);
  EXPECT_TRUE(v.ok()) << v.status();
  applyJsonRules(*v, rules, rename_missing);
  return v->toJson();
}

TEST(TransformTest, EntriesAreReadAsKongReadsThem) {
  Entry e = *parseEntry("x-a:1");
  EXPECT_EQ("x-a", e.name);
  EXPECT_EQ("1", e.value);
  EXPECT_TRUE(e.has_value);
  e = *parseEntry("p3:value:3");  // the value keeps its own colons
  EXPECT_EQ("value:3", e.value);
  e = *parseEntry("p::v");  // colons before the value are skipped
  EXPECT_EQ("p", e.name);
  EXPECT_EQ("v", e.value);
  e = *parseEntry("only-name");
  EXPECT_FALSE(e.has_value);
  e = *parseEntry("name:");
  EXPECT_FALSE(e.has_value);
  EXPECT_FALSE(parseEntry(":v").ok());
  EXPECT_FALSE(parseEntry("").ok());
}

TEST(TransformTest, DottedPaths) {
  EXPECT_EQ(3u, path("a.b.c").keys.size());
  EXPECT_FALSE(parseJsonPath("a..b").ok());
  EXPECT_FALSE(parseJsonPath(".a").ok());
  EXPECT_FALSE(parseJsonPath("").ok());
}

TEST(TransformTest, KongOrderAndMeaning) {
  JsonRules r;
  r.remove.push_back(path("secret"));
  r.rename.push_back({path("old"), path("new")});
  r.replace.push_back({path("status"), Json::Value::string("replaced")});
  r.replace.push_back({path("absent"), Json::Value::string("never")});
  r.add.push_back({path("status"), Json::Value::string("not added: present")});
  r.add.push_back({path("extra"), Json::Value::number("1")});
  r.append.push_back({path("tags"), Json::Value::string("b")});
  r.append.push_back({path("name"), Json::Value::string("y")});
  r.append.push_back({path("count"), Json::Value::string("z")});
  EXPECT_EQ(
      R"({"status":"replaced","tags":["a","b"],"name":["x","y"],"count":["z"],"new":1,"extra":1})",
      apply(R"({"old":1,"status":"ok","tags":["a"],"name":"x","count":5,"secret":"s"})", r));
}

TEST(TransformTest, FalseCountsAsAbsentNullAsPresent) {
  JsonRules r;
  r.replace.push_back({path("f"), Json::Value::string("r")});
  r.replace.push_back({path("n"), Json::Value::string("r")});
  r.add.push_back({path("f"), Json::Value::string("a")});
  r.add.push_back({path("n"), Json::Value::string("a")});
  EXPECT_EQ(R"({"f":"a","n":"r"})", apply(R"({"f":false,"n":null})", r));
}

TEST(TransformTest, NestedPaths) {
  JsonRules r;
  r.replace.push_back({path("meta.api_version"), Json::Value::string("v1")});
  r.add.push_back({path("meta.added.deep"), Json::Value::boolean(true)});
  r.add.push_back({path("scalar.child"), Json::Value::string("x")});  // scalar on the way
  r.remove.push_back(path("meta.internal"));
  r.rename.push_back({path("meta.a"), path("top")});
  EXPECT_EQ(R"({"meta":{"api_version":"v1","added":{"deep":true}},"scalar":3,"top":1})",
            apply(R"({"meta":{"api_version":"v0","internal":1,"a":1},"scalar":3})", r));
}

TEST(TransformTest, RenameOfAMissingMember) {
  JsonRules r;
  r.rename.push_back({path("missing"), path("b")});
  EXPECT_EQ(R"({"b":1})", apply(R"({"b":1})", r, RenameMissing::Skip));
  EXPECT_EQ(R"({})", apply(R"({"b":1})", r, RenameMissing::RemoveTarget));
}

TEST(TransformTest, DuplicateNamesCollapseSoRemoveLeavesNoCopy) {
  JsonRules r;
  r.remove.push_back(path("role"));
  EXPECT_EQ(R"({"x":1})", apply(R"({"role":"user","x":1,"role":"admin"})", r));
  absl::StatusOr<Json::Value> v = parseBody(R"({"a":1,"b":2,"a":3})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(R"({"a":3,"b":2})", v->toJson());
}

TEST(TransformTest, NumbersAndStringsAreWrittenBackAsRead) {
  JsonRules r;
  r.add.push_back({path("k"), Json::Value::string("\"quoted\" \\ \n")});
  // Escapes are decoded, the string written back as UTF-8 (U+2028 included: valid JSON).
  EXPECT_EQ(
      "{\"big\":12345678901234567890,\"f\":1.50e3,\"u\":\"\xC3\xA9\xE2\x80\xA8\","
      "\"k\":\"\\\"quoted\\\" \\\\ \\n\"}",
      apply("{\"big\":12345678901234567890,\"f\":1.50e3,\"u\":\"\\u00e9\\u2028\"}", r));
}

TEST(TransformTest, NonObjectRootsAreLeftAlone) {
  JsonRules r;
  r.add.push_back({path("k"), Json::Value::string("v")});
  EXPECT_EQ("[1,2]", apply("[1,2]", r));
  EXPECT_EQ("\"s\"", apply("\"s\"", r));
}

TEST(TransformTest, ContentTypes) {
  EXPECT_TRUE(isJsonContentType("application/json"));
  EXPECT_TRUE(isJsonContentType("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(isJsonContentType("application/problem+json"));
  EXPECT_FALSE(isJsonContentType("text/plain"));
  EXPECT_FALSE(isJsonContentType("application/jsonx"));
  EXPECT_FALSE(isJsonContentType("+json"));
  EXPECT_TRUE(isFormContentType("application/x-www-form-urlencoded; charset=utf-8"));
  EXPECT_FALSE(isFormContentType("multipart/form-data"));
  Http::HeaderMap h;
  EXPECT_FALSE(hasContentCoding(h));
  h.add("content-encoding", "identity");
  EXPECT_FALSE(hasContentCoding(h));
  h.add("content-encoding", "gzip");
  EXPECT_TRUE(hasContentCoding(h));
}

}  // namespace
}  // namespace Transform
}  // namespace Extensions
}  // namespace sluice
