#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "sluice/service/discovery/v1/ads.pb.h"
#include "source/control_plane/resources.h"

namespace sluice {
namespace ControlPlane {

// Hex SHA-256 of `data` (64 chars).
std::string sha256Hex(absl::string_view data);
// The content version of an encoded resource: its SHA-256 truncated to 16 hex chars. Stable
// across processes and restarts (never std::hash / absl::Hash).
std::string contentVersion(absl::string_view bytes);

// One resource of a published type.
struct NamedResource {
  std::string name;
  // Content version of the encoded resource (the per-resource version of delta xDS).
  std::string version;
  // Position in TypeSnapshot::response.resources().
  int index = 0;
  // The declared message; owned by the GroupSnapshot.
  const google::protobuf::Message* message = nullptr;
};

// Everything about one resource type of a published group, encoded once.
struct TypeSnapshot {
  // The group version at which this type's content last changed.
  std::string version;
  // Hash over every (name, content version): equal hashes = equal content.
  std::string content_hash;
  // In name order.
  std::vector<NamedResource> resources;
  // The state-of-the-world response (version_info, type_url, resources in name order) without
  // a nonce: a stream copies it and stamps its own nonce.
  sluice::service::discovery::v1::DiscoveryResponse response;

  const google::protobuf::Any& any(const NamedResource& r) const {
    return response.resources(r.index);
  }
  // nullptr when absent.
  const NamedResource* find(absl::string_view name) const;
};

class GroupSnapshot;
using GroupSnapshotConstSharedPtr = std::shared_ptr<const GroupSnapshot>;

// A group's published config: immutable once built and shared by every stream of the group (and
// of groups served the default group's config), so resources are encoded once per group, not
// per node.
class GroupSnapshot {
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Use create().
  explicit GroupSnapshot(PrivateTag) : types_(typeCount()) {}

  // Indexed by ResourceType::index(); typeCount() entries.
  using TypeVersions = std::vector<std::string>;

  // Encodes `declared`, whose names must be unique within each type (see checkNames; later
  // duplicates are dropped). A type keeps `previous`'s version when its content is unchanged,
  // otherwise it gets `version`.
  static GroupSnapshotConstSharedPtr create(std::string group, uint64_t version,
                                            sluice::config::v1::StaticResources declared,
                                            const GroupSnapshot* previous);
  // The same with each type's version given (restoring persisted state); an empty or missing
  // entry gets `version`.
  static GroupSnapshotConstSharedPtr create(std::string group, uint64_t version,
                                            sluice::config::v1::StaticResources declared,
                                            const TypeVersions& type_versions);

  const std::string& group() const { return group_; }
  uint64_t versionNumber() const { return version_number_; }
  const std::string& version() const { return version_; }
  const sluice::config::v1::StaticResources& declared() const { return declared_; }
  const TypeSnapshot& type(ResourceType t) const { return types_[typeIndex(t)]; }
  TypeVersions typeVersions() const;

  // True for each type whose content differs from `other`'s (every type when null); indexed by
  // ResourceType::index().
  std::vector<bool> changedTypes(const GroupSnapshot* other) const;
  bool sameContent(const GroupSnapshot& other) const;

 private:
  static std::shared_ptr<GroupSnapshot> encode(std::string group, uint64_t version,
                                               sluice::config::v1::StaticResources declared);

  std::string group_;
  uint64_t version_number_ = 0;
  std::string version_;
  sluice::config::v1::StaticResources declared_;
  // Indexed by ResourceType::index().
  std::vector<TypeSnapshot> types_;
};

// What a delta stream must be sent so that it holds exactly the type's resources.
struct DeltaUpdate {
  // Resources the stream lacks or has at another version, in name order.
  std::vector<const NamedResource*> updated;
  // Names the stream has that no longer exist, sorted.
  std::vector<std::string> removed;
  bool empty() const { return updated.empty() && removed.empty(); }
};
// `known`: name -> content version, what the stream has.
DeltaUpdate computeDelta(const TypeSnapshot& type,
                         const absl::flat_hash_map<std::string, std::string>& known);

}  // namespace ControlPlane
}  // namespace sluice
