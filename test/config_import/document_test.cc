#include "source/config_import/document.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/config_import/import.h"

namespace sluice {
namespace ConfigImport {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;

std::vector<std::string> lines(const Diagnostics& d) {
  std::vector<std::string> out;
  for (const Diagnostic& x : d.all()) {
    out.push_back(
        absl::StrCat(x.severity == Diagnostic::Severity::Error ? "E " : "W ", x.toString()));
  }
  return out;
}

TEST(DocumentTest, NodesKnowTheirLineAndType) {
  Diagnostics d(false);
  auto doc = parseDocument("a: 1\nb:\n  - x\n  - \"5\"\nc: {d: true, e: null, f: 1.5}\n", d);
  ASSERT_TRUE(doc.has_value());
  EXPECT_FALSE(d.hasErrors());
  ASSERT_TRUE(doc->isMap());
  EXPECT_EQ(doc->get("a")->asInt(), 1);
  EXPECT_EQ(doc->get("a")->line(), 1);
  const Node* b = doc->get("b");
  ASSERT_TRUE(b->isSequence());
  EXPECT_EQ(b->items()[1].line(), 4);
  // A quoted number is a string.
  EXPECT_EQ(b->items()[1].asInt(), std::nullopt);
  EXPECT_EQ(b->items()[1].asString(), "5");
  EXPECT_EQ(b->items()[1].describe(), "a string");
  const Node* c = doc->get("c");
  EXPECT_EQ(c->get("d")->asBool(), true);
  EXPECT_EQ(c->get("e"), nullptr);
  ASSERT_NE(c->find("e"), nullptr);
  EXPECT_TRUE(c->find("e")->isNull());
  EXPECT_EQ(c->get("f")->asDouble(), 1.5);
  EXPECT_EQ(c->get("f")->asInt(), std::nullopt);
  EXPECT_EQ(c->get("missing"), nullptr);
}

TEST(DocumentTest, DuplicateKeysAreErrorsOrWarningsWithBothLines) {
  const std::string text = "components:\n  a:\n    type: apiKey\n    name: x\n    type: oauth2\n";
  Diagnostics strict(false);
  auto doc = parseDocument(text, strict);
  ASSERT_TRUE(doc.has_value());
  EXPECT_THAT(lines(strict), ElementsAre("E line 5: components.a.type: duplicate key \"type\" "
                                         "(first at line 3)"));

  Diagnostics lenient(true);
  doc = parseDocument(text, lenient);
  ASSERT_TRUE(doc.has_value());
  EXPECT_FALSE(lenient.hasErrors());
  EXPECT_THAT(lines(lenient), ElementsAre("W line 5: components.a.type: duplicate key \"type\" "
                                          "(first at line 3): the last value is used"));
  EXPECT_EQ(doc->get("components")->get("a")->get("type")->scalar(), "oauth2");
  EXPECT_EQ(doc->get("components")->get("a")->size(), 2u);
}

TEST(DocumentTest, SyntaxErrorsHaveTheirLine) {
  Diagnostics d(true);
  EXPECT_FALSE(parseDocument("a: 1\nb: [1, 2\nc: 3\n", d).has_value());
  ASSERT_EQ(d.all().size(), 1u);
  EXPECT_TRUE(d.hasErrors());  // never lenient
  EXPECT_GT(d.all()[0].line, 1);
  EXPECT_THAT(d.all()[0].message, HasSubstr("invalid YAML"));

  Diagnostics two(false);
  EXPECT_FALSE(parseDocument("a: 1\n---\nb: 2\n", two).has_value());
  EXPECT_THAT(lines(two), ElementsAre(HasSubstr("more than one YAML document")));
}

TEST(DocumentTest, AliasBombsAndDeepNestingAreRefused) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'i'; ++c) {
    bomb += absl::StrCat(std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 10; ++i) bomb += absl::StrCat(i ? ", " : "", "*", std::string(1, prev));
    bomb += "]\n";
    prev = c;
  }
  Diagnostics d(false);
  EXPECT_FALSE(parseDocument(bomb, d).has_value());
  EXPECT_THAT(lines(d), ElementsAre(HasSubstr("YAML aliases expanded")));

  Diagnostics deep(false);
  EXPECT_FALSE(parseDocument(std::string(100, '[') + std::string(100, ']'), deep).has_value());
  EXPECT_THAT(lines(deep), ElementsAre(HasSubstr("nested deeper than")));
}

TEST(DocumentTest, UnknownFieldsNameWhatTheSourceTakes) {
  Diagnostics d(false);
  auto doc = parseDocument("unhealthy:\n  http_failures: 3\n  successes: 2\n", d);
  ASSERT_TRUE(doc.has_value());
  EXPECT_FALSE(checkFields(
      *doc->get("unhealthy"), "upstreams[0].healthchecks.active.unhealthy",
      {"http_failures", "tcp_failures", "timeouts", "interval", "http_statuses"}, "Kong", d));
  EXPECT_THAT(lines(d),
              ElementsAre("E line 3: upstreams[0].healthchecks.active.unhealthy.successes: Kong "
                          "has no such field (it takes http_failures, tcp_failures, timeouts, "
                          "interval, http_statuses)"));
  Diagnostics lenient(true);
  checkFields(*doc->get("unhealthy"), "u", {"http_failures"}, "Kong", lenient);
  EXPECT_FALSE(lenient.hasErrors());
  EXPECT_EQ(lenient.all().size(), 1u);
}

TEST(DocumentTest, TypedGettersNameTheField) {
  Diagnostics d(false);
  auto doc = parseDocument("port: \"80\"\nretries: x\nhosts: [a, {b: 1}]\nname: 5\n", d);
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(getInt(*doc, "port", "services[0]", d), std::nullopt);
  EXPECT_EQ(getInt(*doc, "retries", "services[0]", d), std::nullopt);
  EXPECT_EQ(getStringList(*doc, "hosts", "services[0]", d), std::nullopt);
  EXPECT_EQ(getString(*doc, "name", "services[0]", d), "5");
  EXPECT_EQ(getMap(*doc, "name", "services[0]", d), nullptr);
  EXPECT_EQ(getBool(*doc, "absent", "services[0]", d), std::nullopt);
  EXPECT_THAT(lines(d), ElementsAre("E line 1: services[0].port: must be an integer, not a string",
                                    "E line 2: services[0].retries: must be an integer, not a "
                                    "string",
                                    "E line 3: services[0].hosts[1]: must be a string, not a map",
                                    "E line 4: services[0].name: must be a map, not an integer"));
}

TEST(ImportTest, DetectsTheFormatFromTheTopLevelKeys) {
  EXPECT_EQ(detectFormat("_format_version: \"3.0\"\nservices: []\n"), Format::Kong);
  EXPECT_EQ(detectFormat("# kong\n'_format_version': '2.1'\n"), Format::Kong);
  EXPECT_EQ(detectFormat("{\"_format_version\": \"3.0\"}"), Format::Kong);
  EXPECT_EQ(detectFormat("info: {title: x}\nopenapi: 3.0.3\n"), Format::OpenApi);
  EXPECT_EQ(detectFormat("swagger: \"2.0\"\n"), Format::OpenApi);
  EXPECT_EQ(detectFormat("{\"openapi\": \"3.1.0\", \"paths\": {}}"), Format::OpenApi);
  EXPECT_EQ(detectFormat("clusters: []\nlisteners: []\n"), Format::Sluice);
  // Nested keys do not count.
  EXPECT_EQ(detectFormat("clusters:\n  _format_version: 1\n"), Format::Sluice);
  EXPECT_EQ(detectFormat("{\"clusters\": [{\"openapi\": 1}]}"), Format::Sluice);
  EXPECT_EQ(detectFormat("not: [valid"), Format::Sluice);
}

TEST(ImportTest, RendersDiagnosticsSortedByLine) {
  Diagnostics d(false);
  d.warning("b", 9, "later");
  d.error("a", 3, "first");
  d.error("", 0, "whole file");
  EXPECT_EQ(renderDiagnostics(d, "kong.yml"),
            "kong.yml: error: whole file\n"
            "kong.yml:3: error: a: first\n"
            "kong.yml:9: warning: b: later\n");
}

}  // namespace
}  // namespace ConfigImport
}  // namespace sluice
