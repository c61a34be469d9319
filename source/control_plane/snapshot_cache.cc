#include "source/control_plane/snapshot_cache.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/config/redact.h"
#include "source/common/config/utility.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace ControlPlane {
namespace {

google::protobuf::Timestamp toTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

absl::Time fromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(ts));
}

// Lines of `errors` plus those of `extra` whose field no error of `errors` already names (the
// validator may report the same duplicate names checkNames does).
std::vector<std::string> mergeErrors(std::vector<std::string> errors,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (const std::string& e : extra) {
    const std::string field = e.substr(0, e.find(':'));
    bool named = false;
    for (const std::string& v : errors) {
      if (v.rfind(field + ":", 0) == 0 || v.rfind(field + " ", 0) == 0) {
        named = true;
        break;
      }
    }
    if (!named) {
      out.push_back(e);
    }
  }
  errors.insert(errors.end(), out.begin(), out.end());
  return errors;
}

}  // namespace

std::string describeChanges(const GroupSnapshot* before, const GroupSnapshot& after) {
  std::vector<std::string> parts;
  if (before == nullptr) {
    for (ResourceType t : allTypes()) {
      if (!after.type(t).resources.empty()) {
        parts.push_back(absl::StrCat(shortName(t), " ", after.type(t).resources.size()));
      }
    }
    return absl::StrCat("new group: ", parts.empty() ? "no resources" : absl::StrJoin(parts, ", "));
  }
  const auto changed = after.changedTypes(before);
  for (ResourceType t : allTypes()) {
    if (!changed[typeIndex(t)]) {
      continue;
    }
    int added = 0, modified = 0, removed = 0;
    for (const NamedResource& r : after.type(t).resources) {
      const NamedResource* old = before->type(t).find(r.name);
      if (old == nullptr) {
        ++added;
      } else if (old->version != r.version) {
        ++modified;
      }
    }
    for (const NamedResource& r : before->type(t).resources) {
      if (after.type(t).find(r.name) == nullptr) {
        ++removed;
      }
    }
    parts.push_back(absl::StrCat(shortName(t), " +", added, " ~", modified, " -", removed));
  }
  return parts.empty() ? "no change" : absl::StrJoin(parts, ", ");
}

SnapshotCache::SnapshotCache(const StateStore* store, Validator validator, Clock clock)
    : store_(store), validator_(std::move(validator)), clock_(std::move(clock)) {}

absl::Status SnapshotCache::loadState() {
  if (store_ == nullptr) {
    return absl::OkStatus();
  }
  auto states = store_->load();
  if (!states.ok()) {
    return states.status();
  }
  for (auto& state : *states) {
    GroupSnapshot::TypeVersions versions(typeCount());
    for (ResourceType t : allTypes()) {
      auto it = state.type_versions().find(shortName(t));
      if (it != state.type_versions().end()) {
        versions[typeIndex(t)] = it->second;
      }
    }
    const std::vector<std::string> errors = validate(state.resources());
    if (!errors.empty()) {
      // Validation got stricter since it was applied: serve it anyway (data planes that reject
      // it NACK and keep their config), but say so.
      spdlog::warn("state: group \"{}\" version {} no longer validates ({} errors): {}",
                   state.group(), state.version(), errors.size(), absl::StrJoin(errors, "; "));
    }
    GroupInfo info;
    info.snapshot =
        GroupSnapshot::create(state.group(), state.version(), state.resources(), versions);
    info.source = state.source();
    info.applied_at = fromTimestamp(state.applied_at());
    info.file_path = state.file_path();
    info.file_sha256 = state.file_sha256();
    spdlog::info("state: serving group \"{}\" version {} ({}, applied {})", state.group(),
                 state.version(), info.source, absl::FormatTime(info.applied_at));
    absl::MutexLock lock(&mu_);
    last_version_ = std::max<uint64_t>(last_version_, state.version());
    for (ResourceType t : allTypes()) {
      uint64_t v = 0;
      if (absl::SimpleAtoi(versions[typeIndex(t)], &v)) {
        last_version_ = std::max(last_version_, v);
      }
    }
    groups_[state.group()] = std::move(info);
  }
  return absl::OkStatus();
}

std::vector<std::string> SnapshotCache::validate(
    const sluice::config::v1::StaticResources& resources) const {
  std::vector<std::string> errors;
  const absl::Status status = validator_ ? validator_(resources) : absl::OkStatus();
  if (!status.ok()) {
    for (absl::string_view line : absl::StrSplit(status.message(), '\n', absl::SkipEmpty())) {
      errors.emplace_back(line);
    }
    if (errors.empty()) {
      errors.push_back(status.ToString());
    }
  }
  // A private key as `sluicectl get` prints it, applied again: refused here whatever the
  // validator knows about secrets.
  for (std::string& e : Config::redactedPlaceholders(resources)) {
    errors.push_back(std::move(e));
  }
  return mergeErrors(std::move(errors), checkNames(resources));
}

absl::Status SnapshotCache::persist(const std::string& group, const GroupInfo& info) const {
  if (store_ == nullptr) {
    return absl::OkStatus();
  }
  sluice::control_plane::v1::GroupState state;
  state.set_group(group);
  state.set_version(info.snapshot->versionNumber());
  for (ResourceType t : allTypes()) {
    (*state.mutable_type_versions())[shortName(t)] = info.snapshot->type(t).version;
  }
  state.set_source(info.source);
  *state.mutable_applied_at() = toTimestamp(info.applied_at);
  state.set_file_path(info.file_path);
  state.set_file_sha256(info.file_sha256);
  *state.mutable_resources() = info.snapshot->declared();
  return store_->save(state);
}

SnapshotCache::ApplyResult SnapshotCache::apply(const std::string& group,
                                                sluice::config::v1::StaticResources resources,
                                                const std::string& source, const FileOrigin* file) {
  ApplyResult result;
  absl::MutexLock apply_lock(&apply_mu_);
  if (!validGroupName(group)) {
    result.errors.push_back(absl::StrCat(
        "group: \"", group, "\" is not a valid group name (1-128 letters, digits, '.', '_', '-')"));
    return result;
  }
  result.errors = validate(resources);
  GroupSnapshotConstSharedPtr current;
  uint64_t next_version;
  GroupInfo previous;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = groups_.find(group);
    if (it != groups_.end()) {
      previous = it->second;
      current = it->second.snapshot;
    }
    next_version = last_version_ + 1;
  }
  if (!result.errors.empty()) {
    result.version = current ? current->version() : "";
    spdlog::warn("apply group \"{}\" ({}): refused with {} error(s):\n  {}", group, source,
                 result.errors.size(), absl::StrJoin(result.errors, "\n  "));
    return result;
  }
  result.accepted = true;
  auto candidate = GroupSnapshot::create(group, next_version, std::move(resources), current.get());
  if (current != nullptr && candidate->sameContent(*current)) {
    result.version = current->version();
    spdlog::info("apply group \"{}\" ({}): unchanged at version {}", group, source,
                 current->version());
    if (file != nullptr && file->sha256 != previous.file_sha256) {
      // Remember the file so a restart does not apply it again.
      previous.file_path = file->path;
      previous.file_sha256 = file->sha256;
      result.status = persist(group, previous);
      if (result.status.ok()) {
        absl::MutexLock lock(&mu_);
        groups_[group] = previous;
      }
    }
    return result;
  }
  GroupInfo info;
  info.snapshot = candidate;
  info.source = source;
  info.applied_at = clock_();
  info.file_path = file != nullptr ? file->path : previous.file_path;
  info.file_sha256 = file != nullptr ? file->sha256 : previous.file_sha256;
  result.status = persist(group, info);
  if (!result.status.ok()) {
    result.accepted = false;
    result.version = current ? current->version() : "";
    spdlog::error("apply group \"{}\" ({}): not published, state not written: {}", group, source,
                  std::string(result.status.message()));
    return result;
  }
  {
    absl::MutexLock lock(&mu_);
    groups_[group] = info;
    last_version_ = next_version;
  }
  result.changed = true;
  result.version = candidate->version();
  spdlog::info("apply group \"{}\" version {} ({}): {}", group, candidate->version(), source,
               describeChanges(current.get(), *candidate));
  if (on_publish_) {
    on_publish_(group);
  }
  return result;
}

void SnapshotCache::applyConfigFile(const ConfigFile& file, const ConfigImport::Options& import) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = groups_.find(file.group);
    if (it != groups_.end() && it->second.file_sha256 == file.sha256) {
      spdlog::debug("config file {}: already applied to group \"{}\"", file.path, file.group);
      return;
    }
  }
  // An empty file (most likely caught between truncate and write) is refused by the loader.
  std::string warnings;
  auto resources = ConfigImport::loadDeclared(file.content, "", import, &warnings);
  if (!warnings.empty()) {
    spdlog::warn("config file {}: converted with warnings:\n{}", file.path,
                 std::string(absl::StripTrailingAsciiWhitespace(warnings)));
  }
  if (!resources.ok()) {
    spdlog::error("config file {}: not applied: {}", file.path,
                  std::string(resources.status().message()));
    return;
  }
  FileOrigin origin{file.path, file.sha256};
  ApplyResult result = apply(file.group, std::move(*resources), "file " + file.path, &origin);
  if (!result.status.ok()) {
    spdlog::error("config file {}: {}", file.path, std::string(result.status.message()));
  }
}

GroupSnapshotConstSharedPtr SnapshotCache::own(const std::string& group) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : it->second.snapshot;
}

GroupSnapshotConstSharedPtr SnapshotCache::effective(const std::string& group) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) {
    it = groups_.find(kDefaultGroup);
  }
  return it == groups_.end() ? nullptr : it->second.snapshot;
}

std::map<std::string, SnapshotCache::GroupInfo> SnapshotCache::groups() const {
  absl::ReaderMutexLock lock(&mu_);
  return groups_;
}

}  // namespace ControlPlane
}  // namespace sluice
