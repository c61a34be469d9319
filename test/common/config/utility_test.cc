#include "source/common/config/utility.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "sluice/config/v1/bootstrap.pb.h"

namespace sluice {
namespace Config {
namespace {

using sluice::config::v1::Bootstrap;
using sluice::config::v1::Cluster;
using sluice::config::v1::Listener;
using testing::HasSubstr;

google::protobuf::Duration duration(int64_t seconds, int32_t nanos) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  d.set_nanos(nanos);
  return d;
}

// Loads `yaml` into a Cluster and returns its connect_timeout.
google::protobuf::Duration connectTimeout(const std::string& value) {
  Cluster c;
  absl::Status s = loadFromYaml("name: c\nconnect_timeout: " + value + "\n", c);
  EXPECT_TRUE(s.ok()) << value << ": " << s;
  EXPECT_TRUE(c.has_connect_timeout()) << value;
  return c.connect_timeout();
}

MATCHER_P2(IsDuration, seconds, nanos, "") {
  return arg.seconds() == seconds && arg.nanos() == nanos;
}

TEST(DurationTest, HumanUnits) {
  EXPECT_THAT(connectTimeout("250ms"), IsDuration(0, 250000000));
  EXPECT_THAT(connectTimeout("1.5s"), IsDuration(1, 500000000));
  EXPECT_THAT(connectTimeout("2m"), IsDuration(120, 0));
  EXPECT_THAT(connectTimeout("1h"), IsDuration(3600, 0));
  EXPECT_THAT(connectTimeout("100us"), IsDuration(0, 100000));
  EXPECT_THAT(connectTimeout("10ns"), IsDuration(0, 10));
  EXPECT_THAT(connectTimeout("5s"), IsDuration(5, 0));
  EXPECT_THAT(connectTimeout("0.1s"), IsDuration(0, 100000000));
  EXPECT_THAT(connectTimeout("1.25m"), IsDuration(75, 0));
  EXPECT_THAT(connectTimeout(".5s"), IsDuration(0, 500000000));
  EXPECT_THAT(connectTimeout("0s"), IsDuration(0, 0));
  EXPECT_THAT(connectTimeout("5.s"), IsDuration(5, 0));
  EXPECT_THAT(connectTimeout("007ms"), IsDuration(0, 7000000));
  EXPECT_THAT(connectTimeout("1.5ns"), IsDuration(0, 1));  // truncated to the nanosecond
  // Fraction digits past the ninth are dropped, whatever the unit.
  EXPECT_THAT(connectTimeout("0.0000000019s"), IsDuration(0, 1));
  EXPECT_THAT(connectTimeout("0.0000000001h"), IsDuration(0, 0));
  EXPECT_THAT(connectTimeout("0.999999999999999999h"), IsDuration(3599, 999996400));
}

TEST(DurationTest, ProtobufJsonFormStillAccepted) {
  EXPECT_THAT(connectTimeout("0.250s"), IsDuration(0, 250000000));
  EXPECT_THAT(connectTimeout("\"3s\""), IsDuration(3, 0));
}

TEST(DurationTest, NestedInRepeatedMessages) {
  Bootstrap b;
  absl::Status s = loadFromYaml(R"(
drain_timeout: 2m
static_resources:
  clusters:
  - name: a
    connect_timeout: 250ms
    idle_timeout: 1.5s
  - name: b
    connect_timeout: 1h
  listeners:
  - name: l
    limits: {request_timeout: 100ms, idle_timeout: 30s}
)",
                                b);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(b.drain_timeout(), IsDuration(120, 0));
  EXPECT_THAT(b.static_resources().clusters(0).connect_timeout(), IsDuration(0, 250000000));
  EXPECT_THAT(b.static_resources().clusters(0).idle_timeout(), IsDuration(1, 500000000));
  EXPECT_THAT(b.static_resources().clusters(1).connect_timeout(), IsDuration(3600, 0));
  EXPECT_THAT(b.static_resources().listeners(0).limits().request_timeout(),
              IsDuration(0, 100000000));
  EXPECT_THAT(b.static_resources().listeners(0).limits().idle_timeout(), IsDuration(30, 0));
}

TEST(DurationTest, CamelCaseKeysAlsoGetUnits) {
  Cluster c;
  absl::Status s = loadFromYaml("name: c\nconnectTimeout: 250ms\n", c);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(c.connect_timeout(), IsDuration(0, 250000000));
}

TEST(DurationTest, BadDurationIsAnError) {
  // absl::ParseDuration alone would take 1h30m, inf and 0; config does not.
  for (const char* bad :
       {"5x", "fast", "1.2.3s", "ms", "s", ".s", "5", "1h30m", "inf", "0", "5S", "1e3s"}) {
    Cluster c;
    absl::Status s = loadFromYaml(std::string("name: c\nconnect_timeout: ") + bad + "\n", c);
    EXPECT_FALSE(s.ok()) << bad;
  }
}

TEST(DurationTest, DurationsOnlyConvertedInDurationFields) {
  // A string field keeps "250ms" verbatim.
  Cluster c;
  ASSERT_TRUE(loadFromYaml("name: 250ms\n", c).ok());
  EXPECT_EQ("250ms", c.name());
}

TEST(DurationTest, DurationMs) {
  auto d = durationMs(duration(1, 500000000), "x.timeout");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(1500, d->count());
  // Rounded up: a positive sub-millisecond duration never becomes 0 ("disabled").
  auto sub = durationMs(duration(0, 1), "x.timeout");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(1, sub->count());
  auto almost = durationMs(duration(2, 999999), "x.timeout");
  ASSERT_TRUE(almost.ok());
  EXPECT_EQ(2001, almost->count());
  auto zero = durationMs(duration(0, 0), "x.timeout");
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(0, zero->count());
}

TEST(DurationTest, DurationMsErrorsNameTheField) {
  auto neg = durationMs(duration(-1, 0), "clusters[0].connect_timeout");
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ("clusters[0].connect_timeout: must not be negative", neg.status().message());
  auto big = durationMs(duration(315576000000LL, 0), "drain_timeout");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ("drain_timeout: too large", big.status().message());
}

TEST(DurationTest, DurationOr) {
  EXPECT_EQ(7000, durationOr(false, duration(1, 0), std::chrono::milliseconds(7000)).count());
  EXPECT_EQ(1250, durationOr(true, duration(1, 250000000), std::chrono::milliseconds(7)).count());
  EXPECT_EQ(0, durationOr(true, duration(0, 0), std::chrono::milliseconds(7)).count());
  EXPECT_EQ(1, durationOr(true, duration(0, 100), std::chrono::milliseconds(7)).count());
}

TEST(YamlTest, UnknownFieldErrorNamesTheField) {
  Cluster c;
  absl::Status s = loadFromYaml("name: c\nendpoints:\n- {address: 127.0.0.1, prot: 80}\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("prot"));

  Bootstrap b;
  s = loadFromYaml("static_resources:\n  listenerz: []\n", b);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("listenerz"));
}

TEST(YamlTest, BadEnumValueIsAnError) {
  Cluster c;
  absl::Status s = loadFromYaml("name: c\nlb_policy: ROUND_ROBINX\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("ROUND_ROBINX"));
}

TEST(YamlTest, EnumValues) {
  Cluster c;
  ASSERT_TRUE(
      loadFromYaml("name: c\nlb_policy: RING_HASH\nring_hash: {hash_on: HEADER}\n", c).ok());
  EXPECT_EQ(Cluster::RING_HASH, c.lb_policy());
  EXPECT_EQ(sluice::config::v1::RingHash::HEADER, c.ring_hash().hash_on());
}

TEST(YamlTest, QuotedNumbersStayStrings) {
  auto json = yamlToJson("a: \"123\"\nb: '0.5'\nc: 123\nd: \"true\"\ne: true\n");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(R"({"a":"123","b":"0.5","c":123,"d":"true","e":true})", *json);

  // Into a string field of a message.
  sluice::config::v1::Node node;
  ASSERT_TRUE(loadFromYaml("id: \"123\"\ncluster: '007'\n", node).ok());
  EXPECT_EQ("123", node.id());
  EXPECT_EQ("007", node.cluster());
}

TEST(YamlTest, QuotedNumbersInStructConfigStayStrings) {
  Listener l;
  absl::Status s = loadFromYaml(R"(
name: l
http_filters:
- name: f
  config: {n: 5, s: "5", f: 1.5, b: false, z: null, list: [1, "2"]}
)",
                                l);
  ASSERT_TRUE(s.ok()) << s;
  const auto& f = l.http_filters(0).config().fields();
  EXPECT_EQ(google::protobuf::Value::kNumberValue, f.at("n").kind_case());
  EXPECT_EQ(5, f.at("n").number_value());
  EXPECT_EQ(google::protobuf::Value::kStringValue, f.at("s").kind_case());
  EXPECT_EQ("5", f.at("s").string_value());
  EXPECT_EQ(1.5, f.at("f").number_value());
  EXPECT_FALSE(f.at("b").bool_value());
  EXPECT_EQ(google::protobuf::Value::kNullValue, f.at("z").kind_case());
  EXPECT_EQ("2", f.at("list").list_value().values(1).string_value());
}

TEST(YamlTest, ScalarsThatAreNotJsonNumbersBecomeStrings) {
  auto json = yamlToJson("a: 007\nb: +5\nc: 1.2.3\nd: -7\ne: 2.5\nf: 0\n");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(R"({"a":"007","b":"+5","c":"1.2.3","d":-7,"e":2.5,"f":0})", *json);
}

// Regression (fixed): yamlToJson copies YAML floats such as ".5", "5." and "-.5" verbatim into the
// JSON, which is not valid JSON: loadFromYaml then fails with "Expected a value." and no field
// name.
TEST(YamlTest, FloatsWithoutLeadingOrTrailingDigitAreValidJson) {
  // YAML 1.2 core-schema floats: ".5", "5.", "-.5". The output must still be JSON.
  auto json = yamlToJson("a: .5\nb: 5.\nc: -.5\n");
  ASSERT_TRUE(json.ok());
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(*json, &parsed);
  EXPECT_TRUE(status.ok()) << *json;

  Listener l;
  absl::Status s = loadFromYaml("name: l\nhttp_filters:\n- name: f\n  config: {ratio: .5}\n", l);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(0.5, l.http_filters(0).config().fields().at("ratio").number_value());
}

TEST(YamlTest, NullAndEmptyDocuments) {
  auto json = yamlToJson("a: ~\nb: null\nc:\n");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(R"({"a":null,"b":null,"c":null})", *json);
  Bootstrap b;
  EXPECT_TRUE(loadFromYaml("", b).ok());
}

TEST(YamlTest, StringsAreEscaped) {
  auto json = yamlToJson("a: \"quote\\\" back\\\\ nl\\n tab\\t\"\n");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(R"({"a":"quote\" back\\ nl\n tab\t"})", *json);
}

TEST(YamlTest, JsonInputIsYaml) {
  Cluster c;
  absl::Status s =
      loadFromYaml(R"({"name": "c", "endpoints": [{"address": "::1", "port": 9}]})", c);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ("::1", c.endpoints(0).address());
  EXPECT_EQ(9u, c.endpoints(0).port());
}

TEST(YamlTest, JsonFastPathFallsBackForUnitsAndErrors) {
  // Plain JSON takes protobuf's parser; what it refuses goes the YAML way, so "250ms" still
  // works and errors still name the field.
  Cluster c;
  absl::Status s = loadFromYaml(R"({"name": "c", "connect_timeout": "250ms"})", c);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.connect_timeout().nanos(), 250000000);
  s = loadFromYaml(R"({"name": "c", "bogus": 1})", c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("bogus"));
  // A failed fast parse leaves nothing half-filled behind.
  Cluster d;
  d.set_name("before");
  EXPECT_FALSE(loadFromYaml(R"({"name": "x", "endpoints": [{"port": "nope"}]})", d).ok());
}

TEST(YamlTest, InvalidYaml) {
  Cluster c;
  absl::Status s = loadFromYaml("name: [unclosed\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("invalid YAML"));
}

TEST(YamlTest, WrongTypeIsAnError) {
  Cluster c;
  EXPECT_FALSE(loadFromYaml("name: c\nmax_idle_connections_per_endpoint: lots\n", c).ok());
  EXPECT_FALSE(loadFromYaml("name: c\nmax_idle_connections_per_endpoint: -1\n", c).ok());
}

TEST(YamlTest, NonScalarMapKeysAreAnError) {
  auto json = yamlToJson("? [a, b]\n: 1\n");
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(std::string(json.status().message()), HasSubstr("map keys must be strings"));
}

TEST(YamlTest, DeepNestingIsAnError) {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  auto json = yamlToJson(deep);
  EXPECT_FALSE(json.ok());
}

TEST(YamlTest, LoadFromFile) {
  char path[] = "/tmp/sluice_utility_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string yaml = "name: from-file\nconnect_timeout: 2s\n";
  ASSERT_EQ(static_cast<ssize_t>(yaml.size()), write(fd, yaml.data(), yaml.size()));
  close(fd);
  Cluster c;
  absl::Status s = loadFromFile(path, c);
  unlink(path);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ("from-file", c.name());
  EXPECT_EQ(2, c.connect_timeout().seconds());

  absl::Status missing = loadFromFile("/nonexistent/sluice.yaml", c);
  EXPECT_EQ(absl::StatusCode::kNotFound, missing.code());
  EXPECT_THAT(std::string(missing.message()), HasSubstr("/nonexistent/sluice.yaml"));
}

// A "billion laughs": nine levels of nine aliases, 9^9 (387 million) strings once expanded.
std::string aliasBomb() {
  std::string y = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    const char p = c - 1;
    y += absl::StrFormat("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, p, p, p,
                         p, p, p, p, p, p);
  }
  return y;
}

TEST(LimitsTest, AliasesAreExpanded) {
  auto json = yamlToJson("base: &b {port: 80, tags: [x, y]}\none: *b\ntwo: [*b, *b]\n");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(R"({"base":{"port":80,"tags":["x","y"]},"one":{"port":80,"tags":["x","y"]},)"
            R"("two":[{"port":80,"tags":["x","y"]},{"port":80,"tags":["x","y"]}]})",
            *json);
  // An aliased scalar in a typed field still gets its conversions.
  Bootstrap b;
  absl::Status s = loadFromYaml(R"(
static_resources:
  clusters:
  - {name: a, connect_timeout: &t 250ms}
  - {name: b, connect_timeout: *t}
)",
                                b);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(b.static_resources().clusters(1).connect_timeout(), IsDuration(0, 250000000));
}

TEST(LimitsTest, AliasBombIsRefusedQuickly) {
  const auto start = absl::Now();
  Bootstrap b;
  absl::Status s = loadFromYaml(aliasBomb(), b);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("config expands to more than 1000000 nodes through YAML aliases"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("at line "));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // yamlToJson (sluicectl, sluice-cp) has the same limit.
  EXPECT_FALSE(yamlToJson(aliasBomb()).ok());
}

TEST(LimitsTest, AliasesOfLongStringsAreBoundedInBytes) {
  // 1 MiB, 100 times: few nodes, 100 MiB of JSON.
  std::string y = "a: &a \"" + std::string(1 << 20, 'x') + "\"\nb: [";
  for (int i = 0; i < 100; ++i) y += "*a, ";
  y += "*a]\n";
  auto json = yamlToJson(y);
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(std::string(json.status().message()),
              HasSubstr("config expands to more than 64 MiB of JSON through YAML aliases"));
}

TEST(LimitsTest, AnAliasInsideTheNodeItNamesIsRefused) {
  auto json = yamlToJson("a: &a [1, *a]\n");
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(std::string(json.status().message()),
              HasSubstr("the YAML alias *a at line 1 is inside the node it names"));
}

TEST(LimitsTest, DuplicateYamlKeysAreRefusedWithTheirLines) {
  Cluster c;
  absl::Status s = loadFromYaml("name: a\nlb_policy: RING_HASH\nname: b\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "duplicate key \"name\" at line 3 (first at line 1)");

  Bootstrap b;
  s = loadFromYaml(R"(static_resources:
  clusters:
  - name: a
  - name: b
    lb_policy: RING_HASH
    lb_policy: ROUND_ROBIN
)",
                   b);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "static_resources.clusters[1]: duplicate key \"lb_policy\" at line 6 (first at line "
            "5)");

  // Two spellings of one field.
  s = loadFromYaml("name: c\nconnect_timeout: 1s\nconnectTimeout: 2s\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "duplicate key \"connectTimeout\" at line 3: the same field as \"connect_timeout\" at "
            "line 2");

  // Free-form maps (a filter's config) too.
  auto json = yamlToJson("config:\n  a: 1\n  b: 2\n  a: 3\n");
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().message(), "config: duplicate key \"a\" at line 4 (first at line 2)");
  // The same key in different maps is fine.
  EXPECT_TRUE(yamlToJson("x: {a: 1}\ny: {a: 1}\n").ok());
}

TEST(LimitsTest, DuplicateJsonKeysAreRefused) {
  // protobuf's own JSON parser keeps the last of two equal keys; the loader must not.
  Cluster c;
  absl::Status s =
      loadFromYaml("{\"name\": \"a\",\n \"lb_policy\": \"RING_HASH\",\n \"name\": \"b\"}", c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "duplicate key \"name\" at line 3 (first at line 1)");
  s = loadFromYaml(R"({"name": "a", "connectTimeout": "1s", "connect_timeout": "2s"})", c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("the same field as \"connectTimeout\""));
  Listener l;
  s = loadFromYaml(R"({"name": "l", "http_filters": [{"name": "f", "config": {"a": 1, "a": 2}}]})",
                   l);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("http_filters[0].config: duplicate key \"a\" at line 1"));
  // Escaped keys are compared by what they say.
  s = loadFromYaml(R"({"name": "a", "n\u0061me": "b"})", c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("duplicate key \"name\""));
  // Keys that only look alike (for the fast path's check) are fine.
  s = loadFromYaml(
      R"({"name": "l", "http_filters": [{"name": "f", "config": {"a_b": 1, "aB": 2}}]})", l);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(2, l.http_filters(0).config().fields_size());
}

TEST(LimitsTest, AnythingAfterTheConfigIsRefused) {
  Cluster c;
  absl::Status s = loadFromYaml(R"({"name": "c"} xyz)", c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "unexpected content after the end of the config at line 1");
  s = loadFromYaml("{\"name\": \"c\"}\n{\"name\": \"d\"}\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "unexpected content after the end of the config at line 2");
  // White space and comments are fine.
  EXPECT_TRUE(loadFromYaml("{\"name\": \"c\"}\n\n  \n", c).ok());
  EXPECT_TRUE(loadFromYaml("{\"name\": \"c\"}  # the end\n", c).ok());
}

TEST(LimitsTest, ASecondYamlDocumentIsRefused) {
  Cluster c;
  absl::Status s = loadFromYaml("name: a\n---\nname: b\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "more than one YAML document: a second one starts at line 2 (a config file holds "
            "one)");
  EXPECT_FALSE(yamlToJson("a: 1\n---\nb: 2\n").ok());
  // A leading "---", and an empty document after the config, are harmless.
  EXPECT_TRUE(loadFromYaml("---\nname: a\n", c).ok());
  EXPECT_TRUE(loadFromYaml("name: a\n---\n", c).ok());
  EXPECT_TRUE(loadFromYaml("name: a\n...\n", c).ok());
}

TEST(LimitsTest, EnumNumbersMustNameAValue) {
  Cluster c;
  absl::Status s = loadFromYaml("name: c\nlb_policy: 99\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("lb_policy: 99 is not a LbPolicy value, at line 2 (one of ROUND_ROBIN"));
  // JSON takes the fast path, then the YAML one for the line.
  s = loadFromYaml("{\"name\": \"c\",\n \"lb_policy\": 99}", c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("lb_policy: 99 is not a LbPolicy value, at line 2"));
  Bootstrap b;
  s = loadFromYaml(
      "static_resources:\n  clusters:\n  - {name: a}\n  - {name: b, ring_hash: {hash_on: -1}}\n",
      b);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("static_resources.clusters[1].ring_hash.hash_on: -1 is not a HashOn"));
  s = loadFromYaml("name: c\nlb_policy: 4294967297\n", c);
  EXPECT_FALSE(s.ok());
  // Numbers that name a value are fine.
  ASSERT_TRUE(loadFromYaml("name: c\nlb_policy: 0\n", c).ok());
  EXPECT_EQ(Cluster::ROUND_ROBIN, c.lb_policy());

  // Messages built any other way.
  Bootstrap built;
  built.mutable_static_resources()->add_clusters();
  built.mutable_static_resources()->add_clusters()->set_lb_policy(
      static_cast<Cluster::LbPolicy>(42));
  s = checkEnumValues(built);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("static_resources.clusters[1].lb_policy: 42 is not a LbPolicy value"));
  EXPECT_TRUE(checkEnumValues(Bootstrap()).ok());
}

std::string nested(int depth) {
  std::string y;
  for (int i = 0; i < depth; ++i) y += std::string(2 * i, ' ') + "a:\n";
  return y + std::string(2 * depth, ' ') + "1\n";
}

TEST(LimitsTest, DeepNestingNamesTheLine) {
  auto ok = yamlToJson(nested(kMaxConfigDepth));
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto deep = yamlToJson(nested(kMaxConfigDepth + 1));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "config nested deeper than 64 levels at line 65");
  // Far past yaml-cpp's own limit (2000): still our message.
  std::string flow(5000, '[');
  flow += std::string(5000, ']');
  auto deeper = yamlToJson(flow);
  ASSERT_FALSE(deeper.ok());
  EXPECT_EQ(deeper.status().message(), "config nested deeper than 64 levels at line 1");
  Bootstrap b;
  EXPECT_FALSE(loadFromYaml("{\"a\":" + flow + "}", b).ok());
}

TEST(LimitsTest, TextsOverTheSizeCapAreRefused) {
  const std::string big(kMaxConfigBytes + 1, ' ');
  Bootstrap b;
  absl::Status s = loadFromYaml(big, b);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("more than the 16 MiB a config may have"));
  EXPECT_FALSE(yamlToJson(big).ok());
}

TEST(ReadConfigFileTest, RefusesWhatIsNotAConfigFile) {
  auto dir = readConfigFile("/tmp");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().message(), "config file /tmp is a directory");
  auto dev = readConfigFile("/dev/zero");
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().message(), "config file /dev/zero is a character device");
  Bootstrap b;
  EXPECT_FALSE(loadFromFile("/tmp", b).ok());
  EXPECT_FALSE(loadFromFile("/dev/zero", b).ok());
}

TEST(ReadConfigFileTest, RefusesBigFilesWithoutReadingThem) {
  char path[] = "/tmp/sluice_utility_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, ftruncate(fd, kMaxConfigBytes + 1));  // sparse
  close(fd);
  const auto start = absl::Now();
  auto text = readConfigFile(path);
  unlink(path);
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(std::string(text.status().message()),
              HasSubstr("is 16777217 bytes, more than the 16 MiB a config may have"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(ReadConfigFileTest, ReadsPipes) {
  int fds[2];
  ASSERT_EQ(0, pipe(fds));
  const std::string yaml = "name: piped\n";
  ASSERT_EQ(static_cast<ssize_t>(yaml.size()), write(fds[1], yaml.data(), yaml.size()));
  close(fds[1]);
  Cluster c;
  absl::Status s = loadFromFile(absl::StrCat("/proc/self/fd/", fds[0]), c);
  close(fds[0]);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ("piped", c.name());
}

TEST(ToJsonTest, UsesProtoFieldNamesAndRoundTrips) {
  Cluster c;
  ASSERT_TRUE(loadFromYaml(R"(
name: users
lb_policy: LEAST_REQUEST
connect_timeout: 250ms
max_idle_connections_per_endpoint: 3
endpoints: [{address: 127.0.0.1, port: 8080, weight: 2}]
)",
                           c)
                  .ok());
  const std::string json = toJson(c);
  EXPECT_THAT(json, HasSubstr("\"max_idle_connections_per_endpoint\":3"));
  EXPECT_THAT(json, HasSubstr("\"connect_timeout\":\"0.250s\""));
  EXPECT_THAT(json, HasSubstr("\"lb_policy\":\"LEAST_REQUEST\""));
  Cluster back;
  ASSERT_TRUE(loadFromYaml(json, back).ok());
  EXPECT_EQ(c.SerializeAsString(), back.SerializeAsString());
  EXPECT_THAT(toJson(c, true), HasSubstr("\n"));
}

TEST(ToJsonTest, MapsPrintSortedWhateverTheirInsertionOrder) {
  sluice::config::v1::VirtualHost a, b;
  for (const char* name : {"zeta", "alpha", "mid", "beta"}) {
    (*a.mutable_filter_config())[name].mutable_fields()->insert({"k", {}});
  }
  for (const char* name : {"beta", "mid", "alpha", "zeta"}) {
    (*b.mutable_filter_config())[name].mutable_fields()->insert({"k", {}});
  }
  a.set_name("v");
  b.set_name("v");
  EXPECT_EQ(toJson(a), toJson(b));
  const std::string json = toJson(a);
  EXPECT_LT(json.find("alpha"), json.find("beta"));
  EXPECT_LT(json.find("beta"), json.find("mid"));
  EXPECT_LT(json.find("mid"), json.find("zeta"));
  EXPECT_EQ(json.find("\"name\":\"v\""), 1u);  // fields keep the proto's order
}

TEST(ErrorListTest, CollectsAllErrors) {
  ErrorList e;
  EXPECT_TRUE(e.empty());
  EXPECT_TRUE(e.status().ok());
  e.add("a.b", "is required");
  e.add(absl::OkStatus());
  e.add(absl::InvalidArgumentError("c: bad"));
  EXPECT_FALSE(e.empty());
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, e.status().code());
  EXPECT_EQ("a.b: is required\nc: bad", e.status().message());
}

}  // namespace
}  // namespace Config
}  // namespace sluice
