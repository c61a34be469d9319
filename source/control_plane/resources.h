#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "sluice/config/v1/bootstrap.pb.h"

namespace sluice {
namespace ControlPlane {

// The resource types served over ADS. The enum order is the order responses are sent to a data
// plane (make-before-break: clusters and their endpoints before the policies and route tables
// that name them, listeners last).
enum class ResourceType : int {
  Cluster = 0,
  ClusterEndpoints = 1,
  AuthPolicy = 2,
  RateLimitPolicy = 3,
  RouteTable = 4,
  Listener = 5,
};
constexpr int kTypeCount = 6;
constexpr std::array<ResourceType, kTypeCount> kAllTypes = {
    ResourceType::Cluster,         ResourceType::ClusterEndpoints, ResourceType::AuthPolicy,
    ResourceType::RateLimitPolicy, ResourceType::RouteTable,       ResourceType::Listener,
};
inline int typeIndex(ResourceType type) { return static_cast<int>(type); }

// "Cluster", "ClusterEndpoints", ... (the message name, used in status and diffs).
const std::string& shortName(ResourceType type);
// "type.googleapis.com/sluice.config.v1.Cluster", ...
const std::string& typeUrl(ResourceType type);
// The StaticResources field holding the type: "clusters", "cluster_endpoints", ...
const std::string& fieldName(ResourceType type);

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
