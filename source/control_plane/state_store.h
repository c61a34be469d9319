#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/control_plane/state.pb.h"
#include "source/control_plane/state_cipher.h"

namespace sluice {
namespace ControlPlane {

// Group names: what may name a config file and a state file. 1-128 characters of letters,
// digits, '.', '_' and '-', not starting with '.'.
bool validGroupName(const std::string& group);

// Persists each group's GroupState as `<dir>/groups/<group>.json`, written atomically (a temp
// file fsynced, then renamed over the old one). The directories are 0700 and the files 0600;
// secrets (the fields marked sensitive, private keys) are written encrypted with `cipher`
// (StateCipher) and decrypted on load, so the files never hold them in clear.
class StateStore {
 public:
  // `cipher`: nullptr = none; then a state holding a secret cannot be saved.
  explicit StateStore(std::string dir, const StateCipher* cipher = nullptr)
      : dir_(std::move(dir)), cipher_(cipher) {}

  // Creates the directories when missing; makes them (and existing state files) private to
  // the user.
  absl::Status init();
  // Every group's state, secrets decrypted. An unreadable or corrupt file, or a secret that
  // does not decrypt (another key), is an error naming it (serving a group something other
  // than what was applied would be worse than not starting). A file with a secret in clear
  // (written before secrets were encrypted) is written again, encrypted.
  absl::StatusOr<std::vector<sluice::control_plane::v1::GroupState>> load() const;
  absl::Status save(const sluice::control_plane::v1::GroupState& state) const;

  // Before load() or save().
  void setCipher(const StateCipher* cipher) { cipher_ = cipher; }

  std::string pathFor(const std::string& group) const;

 private:
  // The associated data of a group's sealed value at `path`.
  static std::string aadFor(const std::string& group, const std::string& path);

  std::string dir_;
  const StateCipher* cipher_;
};

// Writes `content` to `path` atomically: `path.tmp` written (created with `mode`) and fsynced,
// then renamed.
absl::Status writeFileAtomically(const std::string& path, const std::string& content,
                                 mode_t mode = 0644);
absl::StatusOr<std::string> readFile(const std::string& path);

}  // namespace ControlPlane
}  // namespace sluice
