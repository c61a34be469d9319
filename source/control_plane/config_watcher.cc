#include "source/control_plane/config_watcher.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "source/common/config/utility.h"
#include "source/control_plane/group_snapshot.h"
#include "source/control_plane/state_store.h"

namespace sluice {
namespace ControlPlane {
namespace {

// Extensions in order of precedence when a group has more than one file: Sluice's own, then
// Kong declarative files, then OpenAPI specs (converted when applied, docs/imports.md).
constexpr const char* kExtensions[] = {".yaml",         ".yml",         ".json",
                                       ".kong.yaml",    ".kong.yml",    ".kong.json",
                                       ".openapi.yaml", ".openapi.yml", ".openapi.json"};
constexpr int kExtensionCount = sizeof(kExtensions) / sizeof(kExtensions[0]);

}  // namespace

ConfigDirWatcher::Changes ConfigDirWatcher::poll() {
  Changes changes;
  absl::flat_hash_set<std::string> warnings_now;
  auto warn = [&](std::string w) {
    if (!warned_.contains(w)) {
      changes.warnings.push_back(w);
    }
    warnings_now.insert(std::move(w));
  };

  // group -> candidate paths by extension precedence.
  std::map<std::string, std::map<int, std::string>> candidates;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec) {
    warn(absl::StrCat("config dir ", dir_, ": ", ec.message()));
    warned_ = std::move(warnings_now);
    // Keep what was seen: a dir that is briefly unreadable does not "remove" every file.
    return changes;
  }
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // The longest extension that matches: "edge.kong.yml" is group "edge".
    for (int i = kExtensionCount - 1; i >= 0; --i) {
      if (!absl::EndsWith(name, kExtensions[i])) {
        continue;
      }
      const std::string group = name.substr(0, name.size() - std::strlen(kExtensions[i]));
      if (name[0] == '.') {
        break;  // Hidden files (editor swap files, our own temp files).
      }
      if (!validGroupName(group)) {
        warn(absl::StrCat("config dir: ignoring ", it->path().string(),
                          ": a group name has only letters, digits, '.', '_' and '-'"));
        break;
      }
      candidates[group][i] = it->path().string();
      break;
    }
  }

  absl::flat_hash_set<std::string> present;
  const int64_t now_ns = absl::ToUnixNanos(absl::Now());
  for (const auto& [group, by_ext] : candidates) {
    const std::string& path = by_ext.begin()->second;
    if (by_ext.size() > 1) {
      warn(absl::StrCat("config dir: group \"", group, "\" has ", by_ext.size(), " files; using ",
                        path, ", ignoring the others"));
    }
    present.insert(path);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    Seen& seen = seen_[path];
    const int64_t mtime_ns =
        static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    // Like git's "racily clean" check: a file modified within the last 2 s may be rewritten
    // again within the same mtime tick with the same size, so its content is checked anyway.
    const bool settled = now_ns - mtime_ns > 2'000'000'000;
    if (settled && seen.mtime_ns == mtime_ns && seen.size == static_cast<int64_t>(st.st_size)) {
      continue;
    }
    // The loader's reader: refuses files over Config::kMaxConfigBytes before reading them.
    auto content = Config::readConfigFile(path);
    if (!content.ok()) {
      warn(std::string(content.status().message()));
      continue;
    }
    seen.mtime_ns = mtime_ns;
    seen.size = static_cast<int64_t>(st.st_size);
    std::string sha = sha256Hex(*content);
    if (sha == seen.sha256) {
      continue;  // Touched, or rewritten with the same content.
    }
    seen.sha256 = sha;
    changes.changed.push_back(ConfigFile{group, path, std::move(*content), std::move(sha)});
  }
  for (auto s = seen_.begin(); s != seen_.end();) {
    if (!present.contains(s->first)) {
      changes.removed.push_back(s->first);
      seen_.erase(s++);
    } else {
      ++s;
    }
  }
  std::sort(changes.removed.begin(), changes.removed.end());
  warned_ = std::move(warnings_now);
  return changes;
}

}  // namespace ControlPlane
}  // namespace sluice
