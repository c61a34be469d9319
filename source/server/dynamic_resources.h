#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/ads_client.h"

namespace sluice {
namespace Server {

// The name of a pushed resource of `type_url` (ClusterEndpoints are named by cluster_name).
absl::StatusOr<std::string> resourceName(const std::string& type_url,
                                         const google::protobuf::Any& resource);

// The first resource of `type_url`'s list in `resources`, or null.
const google::protobuf::Message* firstResource(
    const std::string& type_url, const sluice::config::v1::StaticResources& resources);

// Replaces the list of `out` that holds `type_url` with the decoded `resources`.
absl::Status decodeResources(const std::string& type_url, const Config::ResourceSet& resources,
                             sluice::config::v1::StaticResources& out);

// The resources to run: `declared` (what the control plane sent) plus every resource that was
// in `previous` but is no longer declared while something still refers to it: a route table a
// listener names, a cluster or policy a route names, the endpoints of an eds cluster. This is
// what makes updates make-before-break when types arrive one after another: a cluster removed
// in the Cluster update stays until the RouteTable update stops sending traffic to it. The names
// kept this way are added to `retained` as "Type/name".
sluice::config::v1::StaticResources withRetained(
    const sluice::config::v1::StaticResources& declared,
    const sluice::config::v1::StaticResources& previous,
    const sluice::config::v1::StaticResources& static_resources,
    std::vector<std::string>* retained);

// `static_resources` followed by `dynamic` in one bootstrap, with the options that name errors
// of the dynamic part by type and name.
struct MergedConfig {
  sluice::config::v1::Bootstrap bootstrap;
  int first_dynamic_listener = 0;
  int first_dynamic_route_table = 0;
  int first_dynamic_cluster = 0;
  int first_dynamic_cluster_endpoints = 0;
  int first_dynamic_secret = 0;
  // By policy list ("auth_policies").
  absl::flat_hash_map<std::string, int> first_dynamic_policy;
};
MergedConfig mergeDynamic(const sluice::config::v1::Bootstrap& bootstrap,
                          const sluice::config::v1::StaticResources& dynamic);

}  // namespace Server
}  // namespace sluice
