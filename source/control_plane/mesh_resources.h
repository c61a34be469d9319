#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/any.pb.h"
#include "source/control_plane/group_snapshot.h"

namespace sluice {
namespace ControlPlane {

// The Envoy xDS v3 resource types served to proxyless gRPC clients, in send order
// (make-before-break: clusters and their endpoints before the listeners and routes naming them).
enum class MeshType : int {
  Cluster = 0,                // envoy.config.cluster.v3.Cluster (CDS)
  ClusterLoadAssignment = 1,  // envoy.config.endpoint.v3.ClusterLoadAssignment (EDS)
  Listener = 2,               // envoy.config.listener.v3.Listener (LDS)
  RouteConfiguration = 3,     // envoy.config.route.v3.RouteConfiguration (RDS)
};
inline constexpr int kMeshTypeCount = 4;
inline int meshIndex(MeshType t) { return static_cast<int>(t); }
const std::array<MeshType, kMeshTypeCount>& allMeshTypes();
// "Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration".
const std::string& meshTypeName(MeshType t);
// "type.googleapis.com/envoy.config.cluster.v3.Cluster", ...
const std::string& meshTypeUrl(MeshType t);
// Exact type URL -> type; nullopt for anything else.
std::optional<MeshType> meshTypeFromUrl(absl::string_view url);

struct MeshResource {
  std::string name;
  // Content version (hash of the encoding), the per-resource version of delta xDS.
  std::string version;
  google::protobuf::Any any;
};

struct MeshTypeSnapshot {
  // The group version at which this type's content last changed.
  std::string version;
  // Hash over every (name, content version).
  std::string content_hash;
  // By name.
  std::map<std::string, MeshResource> resources;

  const MeshResource* find(const std::string& name) const {
    auto it = resources.find(name);
    return it == resources.end() ? nullptr : &it->second;
  }
};

class MeshSnapshot;
using MeshSnapshotConstSharedPtr = std::shared_ptr<const MeshSnapshot>;

// What a group's declared config becomes for proxyless gRPC clients (docs/mesh.md): per exact
// virtual-host domain a Listener of that name (the `xds:///NAME` target) with an API listener
// whose HttpConnectionManager takes its routes over RDS (the RouteConfiguration named after the
// route table) and ends with the router filter; per cluster a CDS Cluster (EDS over ADS, or
// LOGICAL_DNS) and its ClusterLoadAssignment. Whatever gRPC's client does not implement is left
// out and listed in notes() rather than pushed to be NACKed. Immutable.
class MeshSnapshot {
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  explicit MeshSnapshot(PrivateTag) {}

  // Translates `group`. Each type keeps `previous`'s version when its content is unchanged,
  // else it gets the group's version.
  static MeshSnapshotConstSharedPtr create(GroupSnapshotConstSharedPtr group,
                                           const MeshSnapshot* previous);

  const GroupSnapshot& group() const { return *group_; }
  const GroupSnapshotConstSharedPtr& groupPtr() const { return group_; }
  const MeshTypeSnapshot& type(MeshType t) const { return types_[meshIndex(t)]; }
  // What was left out or changed in translation, one line each, sorted.
  const std::vector<std::string>& notes() const { return notes_; }
  // Target names (Listener names), sorted.
  std::vector<std::string> targets() const;

 private:
  GroupSnapshotConstSharedPtr group_;
  std::array<MeshTypeSnapshot, kMeshTypeCount> types_;
  std::vector<std::string> notes_;
};

// The mesh translation of each published group snapshot, made once per snapshot (on first use)
// and shared by every proxyless stream of the groups served it. Thread-safe.
class MeshCache {
 public:
  // nullptr for nullptr.
  MeshSnapshotConstSharedPtr get(const GroupSnapshotConstSharedPtr& group) const;

 private:
  mutable absl::Mutex mu_;
  // By the translated group's name: the latest translation.
  mutable std::map<std::string, MeshSnapshotConstSharedPtr> latest_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ControlPlane
}  // namespace sluice
