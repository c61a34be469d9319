#include "source/cli/format.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Cli {
namespace {

using sluice::config::v1::StaticResources;
using sluice::service::control::v1::DiffResponse;
using sluice::service::control::v1::ResourceChange;
using sluice::service::control::v1::StatusResponse;
using testing::HasSubstr;
using testing::Not;

// Every list of StaticResources is a type: the four core ones first, then the others sorted.
TEST(FormatTest, TypeNamesComeFromStaticResources) {
  std::vector<std::string> rest;
  const auto* d = StaticResources::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    const std::string& name = f->message_type() != nullptr ? f->message_type()->name() : "";
    if (f->is_repeated() && !name.empty() && name != "Listener" && name != "RouteTable" &&
        name != "Cluster" && name != "ClusterEndpoints") {
      rest.push_back(name);
    }
  }
  std::sort(rest.begin(), rest.end());
  std::vector<std::string> want = {"Listener", "RouteTable", "Cluster", "ClusterEndpoints"};
  want.insert(want.end(), rest.begin(), rest.end());
  EXPECT_EQ(typeNames(), want);
  EXPECT_THAT(rest, testing::IsSupersetOf({"AuthPolicy", "RateLimitPolicy"}));
  EXPECT_TRUE(typeLess("ClusterEndpoints", "AuthPolicy"));
  EXPECT_TRUE(typeLess("AuthPolicy", "RateLimitPolicy"));
  EXPECT_TRUE(typeLess("Listener", "RouteTable"));
  EXPECT_FALSE(typeLess("RateLimitPolicy", "Cluster"));
}

template <class M>
M fromJson(const std::string& json) {
  M m;
  auto s = google::protobuf::util::JsonStringToMessage(json, &m);
  EXPECT_TRUE(s.ok()) << s.message();
  return m;
}

TEST(PrettyJsonTest, IndentsAndKeepsOrderAndStrings) {
  EXPECT_EQ(prettyJson(R"({"b":1,"a":[1,{"x":"y, {z}: \"q\""}],"e":{},"f":[ ]})"),
            "{\n"
            "  \"b\": 1,\n"
            "  \"a\": [\n"
            "    1,\n"
            "    {\n"
            "      \"x\": \"y, {z}: \\\"q\\\"\"\n"
            "    }\n"
            "  ],\n"
            "  \"e\": {},\n"
            "  \"f\": []\n"
            "}");
  // Already pretty (protobuf's 1-space style) input gives the same result.
  EXPECT_EQ(prettyJson("{\n \"b\": 1\n}\n"), "{\n  \"b\": 1\n}");
  EXPECT_EQ(prettyJson(""), "");
}

TEST(UnifiedDiffTest, Equal) { EXPECT_EQ(unifiedDiff("a\nb\n", "a\nb"), ""); }

TEST(UnifiedDiffTest, OneChangeWithContext) {
  EXPECT_EQ(unifiedDiff("1\n2\n3\n4\n5\n6\n7\n8\n9", "1\n2\n3\n4\nFIVE\n6\n7\n8\n9", 2),
            "@@ -3,5 +3,5 @@\n"
            " 3\n"
            " 4\n"
            "-5\n"
            "+FIVE\n"
            " 6\n"
            " 7\n");
}

TEST(UnifiedDiffTest, SeparateAndMergedHunks) {
  // Changes at lines 2 and 9 are 6 lines apart: two hunks with context 2.
  EXPECT_EQ(unifiedDiff("1\n2\n3\n4\n5\n6\n7\n8\n9\n10", "1\nB\n3\n4\n5\n6\n7\n8\nI\n10", 2),
            "@@ -1,4 +1,4 @@\n"
            " 1\n"
            "-2\n"
            "+B\n"
            " 3\n"
            " 4\n"
            "@@ -7,4 +7,4 @@\n"
            " 7\n"
            " 8\n"
            "-9\n"
            "+I\n"
            " 10\n");
  // With context 3 the gap of 6 equal lines is bridged: one hunk.
  EXPECT_THAT(unifiedDiff("1\n2\n3\n4\n5\n6\n7\n8\n9\n10", "1\nB\n3\n4\n5\n6\n7\n8\nI\n10", 3),
              Not(HasSubstr("@@ -7")));
}

TEST(UnifiedDiffTest, InsertionsAndDeletionsAtTheEdges) {
  EXPECT_EQ(unifiedDiff("", "a\nb"), "@@ -0,0 +1,2 @@\n+a\n+b\n");
  EXPECT_EQ(unifiedDiff("a\nb", ""), "@@ -1,2 +0,0 @@\n-a\n-b\n");
  EXPECT_EQ(unifiedDiff("a\nb", "a\nb\nc", 1), "@@ -2,1 +2,2 @@\n b\n+c\n");
  EXPECT_EQ(unifiedDiff("x\na", "a", 0), "@@ -1,1 +0,0 @@\n-x\n");
}

TEST(RenderChangesTest, MarksAndLineDiff) {
  DiffResponse diff = fromJson<DiffResponse>(R"({"changes":[
    {"kind":"ADDED","type":"Listener","name":"public","after_json":"{\"name\":\"public\"}"},
    {"kind":"REMOVED","type":"RouteTable","name":"old","before_json":"{\"name\":\"old\"}"},
    {"kind":"CHANGED","type":"Cluster","name":"users",
     "before_json":"{\"name\":\"users\",\"lb_policy\":\"ROUND_ROBIN\"}",
     "after_json":"{\"name\":\"users\",\"lb_policy\":\"RANDOM\"}"}]})");
  EXPECT_EQ(renderChanges(diff),
            "+ Listener public\n"
            "- RouteTable old\n"
            "~ Cluster users\n"
            "    @@ -1,4 +1,4 @@\n"
            "     {\n"
            "       \"name\": \"users\",\n"
            "    -  \"lb_policy\": \"ROUND_ROBIN\"\n"
            "    +  \"lb_policy\": \"RANDOM\"\n"
            "     }\n"
            "3 changes: 1 added, 1 removed, 1 changed\n");
  EXPECT_EQ(renderChanges(DiffResponse()), "no changes\n");
}

TEST(JsonToYamlTest, ListAndSingle) {
  const std::vector<std::string> jsons = {
      R"({"name":"a","endpoints":[{"address":"10.0.0.1","port":80}],"tags":{},"list":[]})",
      R"({"name":"b","connect_timeout":"0.250s"})"};
  auto list = jsonToYaml(jsons, false);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(*list,
            "- name: a\n"
            "  endpoints:\n"
            "    - address: 10.0.0.1\n"
            "      port: 80\n"
            "  tags: {}\n"
            "  list: []\n"
            "- name: b\n"
            "  connect_timeout: 0.250s\n");
  auto single = jsonToYaml({jsons[1]}, true);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(*single, "name: b\nconnect_timeout: 0.250s\n");
  auto empty = jsonToYaml({}, false);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "[]\n");
  EXPECT_FALSE(jsonToYaml({"{\"a\": [}"}, false).ok());
}

TEST(JsonToYamlTest, QuotesStringsThatWouldChangeType) {
  auto yaml = jsonToYaml({R"({"a":"true","b":"5","c":"","d":"null","e":"yes","f":"1.5",
      "g":"0x1F","h":"2024-01-02","i":"ok\n","j":true,"k":5,"l":"plain","m":"10.0.0.1",
      "q":".inf","o":"~","p":"-3"})"},
                         true);
  ASSERT_TRUE(yaml.ok());
  for (const char* line :
       {"a: \"true\"\n", "b: \"5\"\n", "c: \"\"\n", "d: \"null\"\n", "e: \"yes\"\n", "f: \"1.5\"\n",
        "g: \"0x1F\"\n", "h: \"2024-01-02\"\n", "i: \"ok\\n\"\n", "j: true\n", "k: 5\n",
        "l: plain\n", "m: 10.0.0.1\n", "q: \".inf\"\n", "o: \"~\"\n", "p: \"-3\"\n"}) {
    EXPECT_THAT(*yaml, HasSubstr(line));
  }
}

// What `get` prints loads back into the same resources (so it can be edited and applied).
TEST(JsonToYamlTest, RoundTripsThroughTheConfigLoader) {
  StaticResources original;
  ASSERT_TRUE(Config::loadFromYaml(R"(
clusters:
- name: "true"
  connect_timeout: 250ms
  lb_policy: ROUND_ROBIN
  endpoints: [{address: 10.0.0.11, port: 9001, weight: 100}, {address: "::1", port: 9002}]
- name: "5"
route_tables:
- name: main
  virtual_hosts:
  - name: api
    domains: ["*", "*.example.com"]
    routes:
    - match: {prefix: /api}
      route: {cluster: "true", timeout: 5s}
    - match: {path: /healthz}
      direct_response: {status: 200, body: "ok\n"}
)",
                                   original)
                  .ok());
  std::vector<std::string> jsons;
  for (const auto& c : original.clusters()) {
    jsons.push_back(Config::toJson(c));
  }
  auto yaml = jsonToYaml(jsons, false);
  ASSERT_TRUE(yaml.ok());
  StaticResources reloaded;
  absl::Status s = Config::loadFromYaml("clusters:\n" + *yaml, reloaded);
  ASSERT_TRUE(s.ok()) << s << "\n" << *yaml;
  StaticResources only_clusters;
  *only_clusters.mutable_clusters() = original.clusters();
  EXPECT_EQ(Config::toJson(reloaded), Config::toJson(only_clusters));

  auto table = jsonToYaml({Config::toJson(original.route_tables(0))}, true);
  ASSERT_TRUE(table.ok());
  sluice::config::v1::RouteTable reloaded_table;
  s = Config::loadFromYaml(*table, reloaded_table);
  ASSERT_TRUE(s.ok()) << s << "\n" << *table;
  EXPECT_EQ(Config::toJson(reloaded_table), Config::toJson(original.route_tables(0)));
}

TEST(JsonArrayTest, ArrayOrSingle) {
  EXPECT_EQ(jsonArray({R"({"a":1})", R"({"b":2})"}, false),
            "[\n  {\n    \"a\": 1\n  },\n  {\n    \"b\": 2\n  }\n]\n");
  EXPECT_EQ(jsonArray({R"({"a":1})"}, true), "{\n  \"a\": 1\n}\n");
  EXPECT_EQ(jsonArray({}, false), "[]\n");
}

TEST(RenderTableTest, PadsColumnsWithoutTrailingSpace) {
  EXPECT_EQ(renderTable({{"NAME", "V", "X"}, {"a", "12345", ""}, {"longer", "1", "z"}}),
            "NAME    V      X\n"
            "a       12345\n"
            "longer  1      z\n");
}

StatusResponse sampleStatus() {
  return fromJson<StatusResponse>(R"({
    "groups": [
      {"name": "default", "version": "7", "source": "sluicectl apply -f edge.yaml",
       "applied_at": "2024-05-01T12:00:00Z",
       "resources": {"Cluster": 2, "Listener": 1, "RouteTable": 1, "AuthPolicy": 0}},
      {"name": "empty", "source": "default group", "resources": {"Cluster": 0}}
    ],
    "nodes": [
      {"id": "edge-1", "group": "default", "connected": true, "api": "sotw", "in_sync": true,
       "types": [{"type": "Cluster", "sent_version": "7", "acked_version": "7"},
                 {"type": "Listener", "sent_version": "7", "acked_version": "7"}]},
      {"id": "edge-2", "group": "default", "connected": false, "api": "delta",
       "types": [{"type": "Listener", "sent_version": "7", "acked_version": "6"},
                 {"type": "Cluster", "sent_version": "7", "acked_version": "6",
                  "nacked_version": "7", "nack_reason": "clusters[0]: bad\nsecond line",
                  "nack_time": "2024-05-01T12:00:01Z"}]}
    ]})");
}

TEST(RenderStatusTest, GroupsNodesAndNacks) {
  EXPECT_EQ(renderStatus(sampleStatus()),
            "GROUPS\n"
            "NAME     VERSION  SOURCE                        APPLIED_AT            RESOURCES\n"
            "default  7        sluicectl apply -f edge.yaml  2024-05-01T12:00:00Z  "
            "Listener=1 RouteTable=1 Cluster=2\n"
            "empty    -        default group                 -                     -\n"
            "\n"
            "NODES\n"
            "ID      GROUP    CONNECTED  API    IN_SYNC  Listener    Cluster\n"
            "edge-1  default  yes        sotw   yes      7           7\n"
            "edge-2  default  no         delta  no       6 (sent 7)  6 (nack 7)\n"
            "\n"
            "NACKS\n"
            "NODE    TYPE     VERSION  NACKED_AT             REASON\n"
            "edge-2  Cluster  7        2024-05-01T12:00:01Z  clusters[0]: bad; second line\n");
}

TEST(RenderStatusTest, Empty) {
  EXPECT_EQ(renderStatus(StatusResponse()), "GROUPS\n(none)\n\nNODES\n(none)\n");
}

TEST(StatusJsonTest, ProtoFieldNamesAndDefaults) {
  const std::string json = statusJson(sampleStatus());
  EXPECT_THAT(json, HasSubstr("\"in_sync\": false"));  // defaults are printed
  EXPECT_THAT(json, HasSubstr("\"acked_version\": \"6\""));
  EXPECT_THAT(json, HasSubstr("\"applied_at\": \"2024-05-01T12:00:00Z\""));
  // It is the StatusResponse again.
  StatusResponse back = fromJson<StatusResponse>(json);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, sampleStatus()));
}

}  // namespace
}  // namespace Cli
}  // namespace sluice
