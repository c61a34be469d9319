#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/control_plane/state.pb.h"

namespace sluice {
namespace ControlPlane {

// Group names: what may name a config file and a state file. 1-128 characters of letters,
// digits, '.', '_' and '-', not starting with '.'.
bool validGroupName(const std::string& group);

// Persists each group's GroupState as `<dir>/groups/<group>.json`, written atomically (a temp
// file fsynced, then renamed over the old one).
class StateStore {
 public:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directories when missing.
  absl::Status init();
  // Every group's state. An unreadable or corrupt file is an error naming it (serving a group
  // something other than what was applied would be worse than not starting).
  absl::StatusOr<std::vector<sluice::control_plane::v1::GroupState>> load() const;
  absl::Status save(const sluice::control_plane::v1::GroupState& state) const;

  std::string pathFor(const std::string& group) const;

 private:
  std::string dir_;
};

// Writes `content` to `path` atomically: `path.tmp` written and fsynced, then renamed.
absl::Status writeFileAtomically(const std::string& path, const std::string& content);
absl::StatusOr<std::string> readFile(const std::string& path);

}  // namespace ControlPlane
}  // namespace sluice
