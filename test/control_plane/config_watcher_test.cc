#include "source/control_plane/config_watcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/control_plane/group_snapshot.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;

void write(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::trunc) << content;
}

std::vector<std::string> groups(const ConfigDirWatcher::Changes& c) {
  std::vector<std::string> out;
  for (const auto& f : c.changed) {
    out.push_back(f.group);
  }
  return out;
}

TEST(ConfigDirWatcherTest, DetectsAddedChangedAndRemovedFiles) {
  const std::string dir = TestUtil::tempDir("cfg");
  ConfigDirWatcher watcher(dir);
  EXPECT_THAT(watcher.poll().changed, IsEmpty());

  write(dir + "/edge.yaml", "clusters: []\n");
  write(dir + "/default.json", "{}");
  write(dir + "/notes.txt", "ignored");
  auto c = watcher.poll();
  EXPECT_THAT(groups(c), ElementsAre("default", "edge"));
  EXPECT_EQ(c.changed[1].path, dir + "/edge.yaml");
  EXPECT_EQ(c.changed[1].content, "clusters: []\n");
  EXPECT_EQ(c.changed[1].sha256, sha256Hex("clusters: []\n"));

  // Nothing new.
  EXPECT_THAT(watcher.poll().changed, IsEmpty());

  // Rewritten with the same content: not a change.
  write(dir + "/edge.yaml", "clusters: []\n");
  EXPECT_THAT(watcher.poll().changed, IsEmpty());

  // New content of the same size, right away (same mtime tick): still seen.
  write(dir + "/edge.yaml", "clusters: {}\n");
  EXPECT_THAT(groups(watcher.poll()), ElementsAre("edge"));

  ::unlink((dir + "/edge.yaml").c_str());
  c = watcher.poll();
  EXPECT_THAT(c.changed, IsEmpty());
  EXPECT_THAT(c.removed, ElementsAre(dir + "/edge.yaml"));
  EXPECT_THAT(watcher.poll().removed, IsEmpty());

  // Back with the old content: reported (the cache decides whether it is new to the group).
  write(dir + "/edge.yaml", "clusters: {}\n");
  EXPECT_THAT(groups(watcher.poll()), ElementsAre("edge"));
}

TEST(ConfigDirWatcherTest, OldFilesAreNotReadAgainWhenUnchanged) {
  const std::string dir = TestUtil::tempDir("cfg");
  const std::string path = dir + "/g.yml";
  write(path, "a: 1\n");
  // An mtime well in the past: the (mtime, size) signature is trusted.
  struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  ConfigDirWatcher watcher(dir);
  EXPECT_THAT(groups(watcher.poll()), ElementsAre("g"));
  // Same size, same mtime: not read (so not reported, although the content differs).
  write(path, "b: 2\n");
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  EXPECT_THAT(watcher.poll().changed, IsEmpty());
  // Another mtime: read and reported.
  struct timespec later[2] = {{1000000001, 0}, {1000000001, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), later, 0), 0);
  EXPECT_THAT(groups(watcher.poll()), ElementsAre("g"));
}

TEST(ConfigDirWatcherTest, WarnsOnceAboutBadNamesAndSecondFiles) {
  const std::string dir = TestUtil::tempDir("cfg");
  write(dir + "/edge.yaml", "{}");
  write(dir + "/edge.json", "{}");
  write(dir + "/bad name.yaml", "{}");
  write(dir + "/.hidden.yaml", "{}");
  ConfigDirWatcher watcher(dir);
  auto c = watcher.poll();
  ASSERT_EQ(c.changed.size(), 1u);
  EXPECT_EQ(c.changed[0].path, dir + "/edge.yaml");
  EXPECT_THAT(c.warnings, testing::UnorderedElementsAre(HasSubstr("bad name.yaml"),
                                                        HasSubstr("group \"edge\" has 2 files")));
  EXPECT_THAT(watcher.poll().warnings, IsEmpty());
}

TEST(ConfigDirWatcherTest, KongAndOpenApiFilesNameTheirGroupWithoutTheFormat) {
  const std::string dir = TestUtil::tempDir("cfg");
  ConfigDirWatcher watcher(dir);
  write(dir + "/edge.kong.yml", "_format_version: \"3.0\"\n");
  write(dir + "/api.openapi.yaml", "openapi: 3.0.3\n");
  write(dir + "/v2.openapi.json", "{\"openapi\": \"3.0.3\"}");
  auto c = watcher.poll();
  EXPECT_THAT(groups(c), ElementsAre("api", "edge", "v2"));
  EXPECT_EQ(c.changed[1].path, dir + "/edge.kong.yml");

  // A group's own file beats its Kong file (one file per group, with a warning).
  write(dir + "/edge.yaml", "{}");
  c = watcher.poll();
  EXPECT_THAT(c.warnings,
              ElementsAre(HasSubstr("group \"edge\" has 2 files; using " + dir + "/edge.yaml")));
  EXPECT_THAT(groups(c), ElementsAre("edge"));
  EXPECT_EQ(c.changed[0].path, dir + "/edge.yaml");
}

TEST(ConfigDirWatcherTest, MissingDirIsAWarningNotARemoval) {
  const std::string dir = TestUtil::tempDir("cfg");
  write(dir + "/edge.yaml", "{}");
  ConfigDirWatcher watcher(dir);
  EXPECT_THAT(groups(watcher.poll()), ElementsAre("edge"));
  ConfigDirWatcher missing(dir + "/nope");
  auto c = missing.poll();
  EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("nope")));
  EXPECT_THAT(c.removed, IsEmpty());
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
