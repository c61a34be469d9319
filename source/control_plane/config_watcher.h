#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace sluice {
namespace ControlPlane {

// A declared config file of the config dir, read.
struct ConfigFile {
  std::string group;
  std::string path;
  std::string content;
  // Hex SHA-256 of `content`.
  std::string sha256;
};

// Watches a config dir for `<group>.yaml`, `<group>.yml` and `<group>.json` by polling: a file
// is read again only when its mtime or size changed, and reported only when its content hash
// differs from the last one seen. Not thread-safe (one poller).
class ConfigDirWatcher {
 public:
  explicit ConfigDirWatcher(std::string dir) : dir_(std::move(dir)) {}

  struct Changes {
    // New files and files whose content changed since the last poll, sorted by group.
    std::vector<ConfigFile> changed;
    // Paths that disappeared since the last poll.
    std::vector<std::string> removed;
    // Problems worth a log line (bad names, two files for one group, unreadable files); each
    // is reported once until it goes away and comes back.
    std::vector<std::string> warnings;
  };
  Changes poll();

  const std::string& dir() const { return dir_; }

 private:
  struct Seen {
    int64_t mtime_ns = 0;
    int64_t size = -1;
    std::string sha256;
  };

  std::string dir_;
  absl::flat_hash_map<std::string, Seen> seen_;  // by path
  absl::flat_hash_set<std::string> warned_;
};

}  // namespace ControlPlane
}  // namespace sluice
