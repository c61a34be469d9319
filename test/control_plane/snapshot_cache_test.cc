#include "source/control_plane/snapshot_cache.h"

#include <fstream>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/control_plane/state_store.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;
using TestUtil::typeNamed;

constexpr char kConfig[] = R"(
clusters:
- {name: users, endpoints: [{address: 10.0.0.1, port: 80}]}
listeners:
- {name: public, address: {host: 127.0.0.1, port: 8080}, route_table: main}
)";

// Refuses clusters named "bad*" (two errors each), the way validateResources reports errors:
// one per line.
absl::Status fakeValidator(const sluice::config::v1::StaticResources& r) {
  std::string errors;
  for (int i = 0; i < r.clusters_size(); ++i) {
    if (absl::StartsWith(r.clusters(i).name(), "bad")) {
      absl::StrAppend(&errors, "clusters[", i, "].lb_policy: bad\nclusters[", i,
                      "].endpoints: bad\n");
    }
  }
  return errors.empty() ? absl::OkStatus() : absl::InvalidArgumentError(errors);
}

class SnapshotCacheTest : public testing::Test {
 protected:
  SnapshotCacheTest()
      : dir_(TestUtil::tempDir("state")),
        store_(dir_),
        cache_(std::make_unique<SnapshotCache>(&store_, fakeValidator, [this] { return now_; })) {
    EXPECT_TRUE(store_.init().ok());
    cache_->setOnPublish([this](const std::string& g) { published_.push_back(g); });
  }

  // A new process on the same state dir.
  void restart() {
    cache_ = std::make_unique<SnapshotCache>(&store_, fakeValidator, [this] { return now_; });
    ASSERT_TRUE(cache_->loadState().ok());
  }

  std::string dir_;
  StateStore store_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::unique_ptr<SnapshotCache> cache_;
  std::vector<std::string> published_;
};

TEST_F(SnapshotCacheTest, ApplyPublishesAndIdenticalApplyChangesNothing) {
  auto r = cache_->apply("default", TestUtil::resources(kConfig), "test");
  EXPECT_TRUE(r.accepted);
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.version, "1");
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(published_, ElementsAre("default"));
  ASSERT_NE(cache_->own("default"), nullptr);

  auto again = cache_->apply("default", TestUtil::resources(kConfig), "test again");
  EXPECT_TRUE(again.accepted);
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.version, "1");
  EXPECT_THAT(published_, ElementsAre("default"));
  EXPECT_EQ(cache_->groups().at("default").source, "test");
}

TEST_F(SnapshotCacheTest, InvalidIsRefusedWithEveryErrorAndNothingChanges) {
  ASSERT_TRUE(cache_->apply("default", TestUtil::resources(kConfig), "test").changed);
  auto before = cache_->own("default");
  auto r = cache_->apply("default", TestUtil::resources(R"(
clusters: [{name: bad1}, {name: ok}, {name: bad2}, {name: ok}]
)"),
                         "test");
  EXPECT_FALSE(r.accepted);
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.version, "1");
  EXPECT_THAT(r.errors, ElementsAre("clusters[0].lb_policy: bad", "clusters[0].endpoints: bad",
                                    "clusters[2].lb_policy: bad", "clusters[2].endpoints: bad",
                                    HasSubstr("clusters[3].name: duplicate Cluster name \"ok\"")));
  EXPECT_EQ(cache_->own("default"), before);
  EXPECT_THAT(published_, ElementsAre("default"));

  auto bad_group = cache_->apply("../etc", TestUtil::resources(kConfig), "test");
  EXPECT_FALSE(bad_group.accepted);
  EXPECT_THAT(bad_group.errors, ElementsAre(HasSubstr("not a valid group name")));
}

TEST_F(SnapshotCacheTest, DuplicateReportedOnceWhenTheValidatorNamesTheFieldToo) {
  SnapshotCache cache(nullptr, [](const sluice::config::v1::StaticResources&) {
    return absl::InvalidArgumentError("clusters[1].name: duplicate cluster \"a\"");
  });
  EXPECT_THAT(cache.validate(TestUtil::resources("clusters: [{name: a}, {name: a}]")),
              ElementsAre("clusters[1].name: duplicate cluster \"a\""));
}

TEST_F(SnapshotCacheTest, VersionsComeFromOneCounterAndTypesKeepTheirs) {
  EXPECT_EQ(cache_->apply("default", TestUtil::resources(kConfig), "t").version, "1");
  EXPECT_EQ(cache_->apply("edge", TestUtil::resources(kConfig), "t").version, "2");
  auto changed = TestUtil::resources(kConfig);
  changed.mutable_clusters(0)->mutable_endpoints(0)->set_port(81);
  EXPECT_EQ(cache_->apply("default", changed, "t").version, "3");
  auto def = cache_->own("default");
  EXPECT_EQ(def->type(typeNamed("Cluster")).version, "3");
  EXPECT_EQ(def->type(typeNamed("Listener")).version, "1");
  // edge was not touched.
  EXPECT_EQ(cache_->own("edge")->version(), "2");
}

TEST_F(SnapshotCacheTest, GroupsWithoutConfigGetTheDefaultGroups) {
  EXPECT_EQ(cache_->effective("edge"), nullptr);
  cache_->apply("default", TestUtil::resources(kConfig), "t");
  EXPECT_EQ(cache_->effective("edge"), cache_->own("default"));
  EXPECT_EQ(cache_->own("edge"), nullptr);
  cache_->apply("edge", TestUtil::resources("clusters: [{name: edge-only}]"), "t");
  EXPECT_EQ(cache_->effective("edge")->group(), "edge");
  EXPECT_EQ(cache_->effective("other")->group(), "default");
}

TEST_F(SnapshotCacheTest, StatePersistsAcrossRestarts) {
  now_ = absl::FromUnixSeconds(1700000123);
  cache_->apply("default", TestUtil::resources(kConfig), "sluicectl apply -f x.yaml");
  auto changed = TestUtil::resources(kConfig);
  changed.mutable_clusters(0)->mutable_endpoints(0)->set_port(81);
  cache_->apply("default", changed, "sluicectl apply -f x.yaml");  // version 2, Cluster only
  cache_->apply("edge", TestUtil::resources(kConfig), "file /etc/edge.yaml");  // version 3

  restart();
  auto def = cache_->own("default");
  ASSERT_NE(def, nullptr);
  EXPECT_EQ(def->version(), "2");
  EXPECT_EQ(def->type(typeNamed("Cluster")).version, "2");
  EXPECT_EQ(def->type(typeNamed("Listener")).version, "1");
  EXPECT_EQ(def->declared().clusters(0).endpoints(0).port(), 81u);
  const auto groups = cache_->groups();
  EXPECT_EQ(groups.at("default").source, "sluicectl apply -f x.yaml");
  EXPECT_EQ(groups.at("default").applied_at, absl::FromUnixSeconds(1700000123));
  EXPECT_EQ(groups.at("edge").snapshot->version(), "3");
  // The same content again is no change, also after a restart.
  EXPECT_FALSE(cache_->apply("default", changed, "t").changed);
  // Versions keep growing.
  EXPECT_EQ(cache_->apply("default", TestUtil::resources(kConfig), "t").version, "4");
  EXPECT_EQ(cache_->own("default")->type(typeNamed("Listener")).version, "1");
}

TEST_F(SnapshotCacheTest, CorruptStateFailsTheLoad) {
  cache_->apply("default", TestUtil::resources(kConfig), "t");
  std::ofstream(store_.pathFor("default")) << "{not json";
  SnapshotCache cache(&store_, fakeValidator);
  absl::Status s = cache.loadState();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("default.json"));
}

TEST_F(SnapshotCacheTest, ConfigFilesApplyOnceAndALaterApplyWins) {
  ConfigFile file{"edge", "/cfg/edge.yaml", kConfig, "hash1"};
  cache_->applyConfigFile(file);
  auto v1 = cache_->own("edge");
  ASSERT_NE(v1, nullptr);
  EXPECT_EQ(cache_->groups().at("edge").source, "file /cfg/edge.yaml");
  // An Apply after the file.
  cache_->apply("edge", TestUtil::resources("clusters: [{name: other}]"), "sluicectl");
  auto v2 = cache_->own("edge");
  EXPECT_NE(v2, v1);
  // After a restart the unchanged file is not applied again: the Apply stays.
  restart();
  cache_->applyConfigFile(file);
  EXPECT_EQ(cache_->own("edge")->version(), v2->version());
  EXPECT_EQ(cache_->groups().at("edge").source, "sluicectl");
  // A changed file is.
  cache_->applyConfigFile(ConfigFile{"edge", "/cfg/edge.yaml", kConfig, "hash2"});
  EXPECT_EQ(cache_->groups().at("edge").source, "file /cfg/edge.yaml");
  EXPECT_EQ(cache_->groups().at("edge").file_sha256, "hash2");
  // Bad YAML and invalid config change nothing.
  auto before = cache_->own("edge");
  cache_->applyConfigFile(ConfigFile{"edge", "/cfg/edge.yaml", "clusters: [", "hash3"});
  cache_->applyConfigFile(ConfigFile{"edge", "/cfg/edge.yaml", "clusters: [{name: bad}]", "h4"});
  cache_->applyConfigFile(ConfigFile{"edge", "/cfg/edge.yaml", "nonsense_key: 1", "hash5"});
  // Empty (a file caught mid-rewrite) or only comments: never wipes the group.
  cache_->applyConfigFile(ConfigFile{"edge", "/cfg/edge.yaml", "", "hash6"});
  cache_->applyConfigFile(ConfigFile{"edge", "/cfg/edge.yaml", "# rewriting\n", "hash7"});
  EXPECT_EQ(cache_->own("edge"), before);
  EXPECT_EQ(cache_->groups().at("edge").file_sha256, "hash2");
  // `{}` on purpose: every resource removed.
  cache_->applyConfigFile(ConfigFile{"edge", "/cfg/edge.yaml", "{}", "hash8"});
  EXPECT_EQ(cache_->own("edge")->type(typeNamed("Listener")).resources.size(), 0u);
}

TEST_F(SnapshotCacheTest, FileWithSameContentIsRememberedWithoutANewVersion) {
  cache_->apply("edge", TestUtil::resources(kConfig), "sluicectl");
  cache_->applyConfigFile(ConfigFile{"edge", "/cfg/edge.yaml", kConfig, "hash1"});
  EXPECT_EQ(cache_->own("edge")->version(), "1");
  EXPECT_EQ(cache_->groups().at("edge").file_sha256, "hash1");
  restart();
  EXPECT_EQ(cache_->groups().at("edge").file_sha256, "hash1");
}

TEST(DescribeChangesTest, CountsPerType) {
  auto a = GroupSnapshot::create("g", 1, TestUtil::resources(kConfig), nullptr);
  auto r = TestUtil::resources(kConfig);
  r.mutable_clusters(0)->mutable_endpoints(0)->set_port(81);
  r.add_clusters()->set_name("new");
  r.clear_listeners();
  auto b = GroupSnapshot::create("g", 2, r, a.get());
  EXPECT_EQ(describeChanges(a.get(), *b), "Cluster +1 ~1 -0, Listener +0 ~0 -1");
  EXPECT_EQ(describeChanges(nullptr, *a), "new group: Cluster 1, Listener 1");
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
