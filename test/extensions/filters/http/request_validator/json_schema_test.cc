#include "source/extensions/filters/http/request_validator/json_schema.h"

#include <dirent.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace Extensions {
namespace RequestValidator {
namespace {

constexpr char kSuite[] = "/usr/share/json-schema-test-suite/tests/draft4";
// The suite's remote documents (served at http://localhost:1234/ by its runner) and the
// draft-04 meta-schema (python3-jsonschema's copy), given to the validator as known documents:
// nothing is fetched.
constexpr char kRemotes[] = "/usr/share/json-schema-test-suite/remotes";
constexpr char kMetaSchema[] = "/usr/lib/python3/dist-packages/jsonschema/schemas/draft4.json";

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Schema::Options suiteOptions() {
  Schema::Options o;
  for (const char* remote :
       {"integer.json", "name.json", "subSchemas.json", "folder/folderInteger.json"}) {
    auto doc = Json::parse(readFile(absl::StrCat(kRemotes, "/", remote)));
    EXPECT_TRUE(doc.ok()) << remote;
    if (doc.ok()) o.documents.emplace_back(absl::StrCat("http://localhost:1234/", remote), *doc);
  }
  auto meta = Json::parse(readFile(kMetaSchema));
  EXPECT_TRUE(meta.ok()) << kMetaSchema << " (python3-jsonschema, tools/setup.sh)";
  if (meta.ok()) o.documents.emplace_back("http://json-schema.org/draft-04/schema", *meta);
  return o;
}

// Groups (file, or "file: group description") not run, and why.
const std::vector<std::pair<std::string, std::string>>& skipped() {
  static const std::vector<std::pair<std::string, std::string>> s = {
      {"optional/format.json", "format is an annotation here, not asserted (draft 4 allows it)"},
      {"optional/bignum.json", "numbers are compared as doubles: no arbitrary precision"},
      {"optional/ecmascript-regex.json", "patterns are RE2, not ECMA 262 regexes"},
      {"optional/zeroTerminatedFloats.json",
       "1.0 is accepted as an integer (as by most validators)"},
  };
  return s;
}

bool isSkipped(const std::string& file, const std::string& group) {
  for (const auto& [what, why] : skipped()) {
    if (what == file || what == absl::StrCat(file, ": ", group)) return true;
  }
  return false;
}

std::vector<std::string> suiteFiles() {
  std::vector<std::string> out;
  for (const char* dir : {"", "optional/"}) {
    DIR* d = opendir(absl::StrCat(kSuite, "/", dir).c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (absl::EndsWith(name, ".json")) out.push_back(absl::StrCat(dir, name));
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(JsonSchemaSuiteTest, Draft4) {
  const std::vector<std::string> files = suiteFiles();
  ASSERT_GE(files.size(), 25u) << "json-schema-test-suite is not installed (tools/setup.sh)";
  const Schema::Options options = suiteOptions();
  int run = 0, skipped_cases = 0;
  for (const std::string& file : files) {
    std::ifstream in(absl::StrCat(kSuite, "/", file));
    std::stringstream text;
    text << in.rdbuf();
    auto groups = Json::parse(text.str(), {.max_depth = 64, .reject_duplicate_names = false});
    ASSERT_TRUE(groups.ok()) << file << ": " << groups.status();
    for (const Json::Value& g : groups->items()) {
      const std::string desc = g.find("description")->str();
      const Json::Value& tests = *g.find("tests");
      if (isSkipped(file, desc)) {
        skipped_cases += tests.items().size();
        continue;
      }
      auto schema = Schema::compile(*g.find("schema"), options);
      ASSERT_TRUE(schema.ok()) << file << ": " << desc << ": " << schema.status();
      for (const Json::Value& t : tests.items()) {
        std::string error;
        const bool valid = (*schema)->validate(*t.find("data"), &error, "body");
        EXPECT_EQ(valid, t.find("valid")->boolValue())
            << file << ": " << desc << ": " << t.find("description")->str() << " (" << error << ")";
        if (!valid) EXPECT_FALSE(error.empty());
        ++run;
      }
    }
  }
  EXPECT_GT(run, 200);
  std::cout << "draft4: " << run << " cases run, " << skipped_cases << " skipped:\n";
  for (const auto& [what, why] : skipped()) std::cout << "  " << what << ": " << why << "\n";
}

TEST(JsonSchemaTest, ErrorsSayWhereAndWhy) {
  auto schema = Schema::compile(*Json::parse(R"({
    "type": "object", "required": ["name"],
    "properties": {
      "name": {"type": "string", "minLength": 1},
      "age": {"type": "integer", "minimum": 0},
      "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
      "note": {"type": "string", "nullable": true}
    },
    "additionalProperties": false})"));
  ASSERT_TRUE(schema.ok()) << schema.status();
  auto check = [&](const char* json) {
    std::string error;
    EXPECT_FALSE((*schema)->validate(*Json::parse(json), &error, "body")) << json;
    return error;
  };
  EXPECT_EQ(check(R"({"age": 3})"), "body: missing required property \"name\"");
  EXPECT_EQ(check(R"({"name": "x", "age": -1})"), "body.age: must be >= 0");
  EXPECT_EQ(check(R"({"name": "x", "age": 1.5})"), "body.age: must be an integer");
  EXPECT_EQ(check(R"({"name": "x", "tags": ["a", "c"]})"),
            "body.tags[1]: must be one of the allowed values");
  EXPECT_EQ(check(R"({"name": "x", "extra": 1})"), "body: property \"extra\" is not allowed");
  EXPECT_EQ(check(R"({"name": ""})"), "body.name: must be at least 1 characters long");
  std::string error;
  EXPECT_TRUE((*schema)->validate(*Json::parse(R"({"name": "x", "note": null})"), &error));
}

TEST(JsonSchemaTest, CompileErrors) {
  auto bad = [](const char* json) {
    auto s = Schema::compile(*Json::parse(json));
    EXPECT_FALSE(s.ok()) << json;
    return std::string(s.status().message());
  };
  EXPECT_EQ(bad(R"({"type": "text"})"), "#/type: unknown type \"text\"");
  EXPECT_EQ(bad(R"({"$ref": "#/definitions/missing"})"),
            "#/$ref: $ref \"#/definitions/missing\" points to nothing");
  EXPECT_EQ(bad(R"({"$ref": "http://example.com/s.json"})"),
            "#/$ref: $ref \"http://example.com/s.json\" is in another document (remote "
            "references are not supported)");
  EXPECT_TRUE(absl::StartsWith(bad(R"({"pattern": "(?<=a)b"})"), "#/pattern: invalid regex"));
  EXPECT_EQ(bad(R"({"minimum": "1"})"), "#/minimum: must be a number");
}

TEST(JsonSchemaTest, RecursiveSchemasTerminate) {
  auto schema = Schema::compile(*Json::parse(
      R"({"definitions": {"node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/node"}}}},
          "$ref": "#/definitions/node"})"));
  ASSERT_TRUE(schema.ok()) << schema.status();
  std::string deep = "{}";
  for (int i = 0; i < 50; ++i) deep = absl::StrCat("{\"next\": ", deep, "}");
  std::string error;
  EXPECT_TRUE((*schema)->validate(*Json::parse(deep, {.max_depth = 64}), &error)) << error;
  // A $ref cycle without a schema in between: refused? No: it is valid JSON Schema that
  // matches everything; validation must still end.
  auto loop = Schema::compile(*Json::parse(R"({"definitions": {"a": {"$ref": "#/definitions/b"},
      "b": {"$ref": "#/definitions/a"}}, "$ref": "#/definitions/a"})"));
  ASSERT_TRUE(loop.ok()) << loop.status();
  EXPECT_TRUE((*loop)->validate(*Json::parse("1"), &error));
}

}  // namespace
}  // namespace RequestValidator
}  // namespace Extensions
}  // namespace sluice
