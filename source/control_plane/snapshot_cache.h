#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/config_import/import.h"
#include "source/control_plane/config_watcher.h"
#include "source/control_plane/group_snapshot.h"
#include "source/control_plane/state_store.h"

namespace sluice {
namespace ControlPlane {

// The name of the group whose config is served to groups without one of their own, and the
// group of nodes that name none.
inline constexpr char kDefaultGroup[] = "default";

// The published config of every node group, its versions and where it came from.
//
// Versions: one counter shared by all groups hands out each accepted change's version, so a
// group's version only grows, and a version number names exactly one group's content. A node
// that moves from the default group's config to its group's own (or between groups) thus never
// gets told "you already have version N" for different content. A type's version is the group
// version at which that type's content last changed.
//
// Thread-safe. Applies are serialized; readers (streams, status) take a shared lock and get
// immutable snapshots.
class SnapshotCache {
 public:
  using Validator = std::function<absl::Status(const sluice::config::v1::StaticResources&)>;
  using Clock = std::function<absl::Time()>;

  // `store`: where groups are persisted; nullptr = nowhere (tests). `validator`: the data
  // plane's validation (Server::validateResources), errors one per line.
  SnapshotCache(const StateStore* store, Validator validator, Clock clock = absl::Now);

  // Serves what the state dir holds. Call once, before anything else.
  absl::Status loadState();

  // Every error of a declared config: names (checkNames) and the validator's.
  std::vector<std::string> validate(const sluice::config::v1::StaticResources& resources) const;

  struct FileOrigin {
    std::string path;
    std::string sha256;
  };
  struct ApplyResult {
    bool accepted = false;
    // False when the content equals what the group already publishes (nothing pushed).
    bool changed = false;
    // The group's version after the call ("" when it has none).
    std::string version;
    std::vector<std::string> errors;
    // Non-OK when the state could not be written (then nothing changed either).
    absl::Status status;
  };
  // Validates and publishes `resources` as `group`'s whole config, persisted before it is
  // served. Invalid: refused with every error and nothing changes.
  ApplyResult apply(const std::string& group, sluice::config::v1::StaticResources resources,
                    const std::string& source, const FileOrigin* file = nullptr);
  // Applies a config-dir file unless the group's state says this very content was the last file
  // applied for it (so a restart does not replace a later `sluicectl apply`). Logs the outcome.
  // A Kong or OpenAPI file is converted with `import` first (its warnings logged).
  void applyConfigFile(const ConfigFile& file, const ConfigImport::Options& import = {});

  // The group's own config; nullptr when it has none.
  GroupSnapshotConstSharedPtr own(const std::string& group) const;
  // What the group's nodes are served: its own config, else the default group's; nullptr when
  // neither exists.
  GroupSnapshotConstSharedPtr effective(const std::string& group) const;

  struct GroupInfo {
    GroupSnapshotConstSharedPtr snapshot;
    std::string source;
    absl::Time applied_at;
    std::string file_path;
    std::string file_sha256;
  };
  // Groups with their own config, by name.
  std::map<std::string, GroupInfo> groups() const;

  // Called after each publication, outside the cache's locks, with the group that changed.
  void setOnPublish(std::function<void(const std::string& group)> cb) {
    on_publish_ = std::move(cb);
  }

 private:
  absl::Status persist(const std::string& group, const GroupInfo& info) const;

  const StateStore* const store_;
  const Validator validator_;
  const Clock clock_;
  std::function<void(const std::string&)> on_publish_;

  // Serializes apply(): validate, version, persist, publish.
  absl::Mutex apply_mu_;
  mutable absl::Mutex mu_;
  std::map<std::string, GroupInfo> groups_ ABSL_GUARDED_BY(mu_);
  uint64_t last_version_ ABSL_GUARDED_BY(mu_) = 0;
};

// For the apply log line: per changed type, resources added, changed and removed
// ("Cluster +1 ~2 -0, RouteTable +0 ~1 -0"); for a new group, its resource counts.
std::string describeChanges(const GroupSnapshot* before, const GroupSnapshot& after);

}  // namespace ControlPlane
}  // namespace sluice
