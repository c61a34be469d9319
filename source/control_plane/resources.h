#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "sluice/config/v1/bootstrap.pb.h"

namespace sluice {
namespace ControlPlane {

// A resource type served over ADS: one per repeated message field of StaticResources, read from
// its descriptor at first use, so a filter that adds a policy list (and registers its
// Config::PolicyType) needs no change here. Types are numbered in the order responses are sent
// to a data plane, the data plane's own order (Config::resourceLists(), shared with it):
// make-before-break, clusters and their endpoints first, then the other lists (the filters'
// policies) in field order, route tables, listeners last.
class ResourceType {
 public:
  constexpr explicit ResourceType(int index) : index_(index) {}
  // 0 .. typeCount()-1, in send order.
  constexpr int index() const { return index_; }
  friend constexpr bool operator==(ResourceType a, ResourceType b) { return a.index_ == b.index_; }
  friend constexpr bool operator!=(ResourceType a, ResourceType b) { return !(a == b); }

 private:
  int index_;
};
inline int typeIndex(ResourceType type) { return type.index(); }

// How many types there are, and all of them in send order.
int typeCount();
const std::vector<ResourceType>& allTypes();

// "Cluster", "ClusterEndpoints", ... (the message name, used in status and diffs).
const std::string& shortName(ResourceType type);
// "type.googleapis.com/sluice.config.v1.Cluster", ...
const std::string& typeUrl(ResourceType type);
// The StaticResources field holding the type: "clusters", "cluster_endpoints", ...
const std::string& fieldName(ResourceType type);

// For test failure messages: the short name.
inline std::ostream& operator<<(std::ostream& os, ResourceType type) {
  return os << shortName(type);
}

// Exact type URL -> type; nullopt for anything else.
std::optional<ResourceType> typeFromUrl(absl::string_view url);
// Lenient name as typed by an operator: case-insensitive, singular or plural, CamelCase or
// snake_case ("Listener", "listeners", "route_tables", "RouteTable", "cluster-endpoints"), the
// full message name or the type URL. nullopt when it names no type.
std::optional<ResourceType> parseTypeName(absl::string_view name);
// "Cluster, ClusterEndpoints, ..." for error messages.
std::string typeNameList();

// The resources of `type` in `resources`, in declaration order.
std::vector<const google::protobuf::Message*> resourcesOf(
    const sluice::config::v1::StaticResources& resources, ResourceType type);
// A resource's name: its `name` field (`cluster_name` for ClusterEndpoints).
std::string resourceName(const google::protobuf::Message& resource, ResourceType type);

// Errors for names that are empty or declared twice within a type, each naming the field, e.g.
// `clusters[3].name: duplicate Cluster name "api" (first at clusters[0])`.
std::vector<std::string> checkNames(const sluice::config::v1::StaticResources& resources);

}  // namespace ControlPlane
}  // namespace sluice
