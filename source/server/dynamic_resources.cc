#include "source/server/dynamic_resources.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "source/server/snapshot.h"

namespace sluice {
namespace Server {

namespace v1 = sluice::config::v1;

namespace {

template <class M>
absl::Status unpackAll(const Config::ResourceSet& resources,
                       google::protobuf::RepeatedPtrField<M>* list) {
  list->Clear();
  for (const auto& [name, r] : resources) {
    if (!r.resource.UnpackTo(list->Add())) {
      return absl::InvalidArgumentError(
          absl::StrCat(M::descriptor()->name(), " \"", name, "\": cannot be decoded"));
    }
  }
  return absl::OkStatus();
}

template <class M>
absl::StatusOr<std::string> nameOf(const google::protobuf::Any& any) {
  M m;
  if (!any.UnpackTo(&m)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ", M::descriptor()->name(), " resource cannot be decoded"));
  }
  std::string name;
  if constexpr (std::is_same_v<M, v1::ClusterEndpoints>) {
    name = m.cluster_name();
  } else {
    name = m.name();
  }
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ", M::descriptor()->name(), " resource has no name"));
  }
  return name;
}

// Appends to `out` each resource of `previous` that `out` no longer has but `referenced` names.
template <class M, class NameFn>
void retain(const google::protobuf::RepeatedPtrField<M>& previous,
            google::protobuf::RepeatedPtrField<M>* out,
            const google::protobuf::RepeatedPtrField<M>& static_list,
            const absl::flat_hash_set<std::string>& referenced, NameFn name,
            std::vector<std::string>* retained) {
  absl::flat_hash_set<std::string> present;
  for (const M& m : *out) present.insert(name(m));
  for (const M& m : static_list) present.insert(name(m));
  for (const M& m : previous) {
    if (present.contains(name(m)) || !referenced.contains(name(m))) continue;
    *out->Add() = m;
    if (retained != nullptr) {
      retained->push_back(absl::StrCat(M::descriptor()->name(), "/", name(m)));
    }
  }
}

}  // namespace

absl::StatusOr<std::string> resourceName(const std::string& type_url,
                                         const google::protobuf::Any& resource) {
  const std::string type = Config::shortTypeName(type_url);
  if (type == "Cluster") return nameOf<v1::Cluster>(resource);
  if (type == "ClusterEndpoints") return nameOf<v1::ClusterEndpoints>(resource);
  if (type == "AuthPolicy") return nameOf<v1::AuthPolicy>(resource);
  if (type == "RateLimitPolicy") return nameOf<v1::RateLimitPolicy>(resource);
  if (type == "RouteTable") return nameOf<v1::RouteTable>(resource);
  if (type == "Listener") return nameOf<v1::Listener>(resource);
  return absl::InvalidArgumentError(absl::StrCat("unknown resource type \"", type_url, "\""));
}

absl::Status decodeResources(const std::string& type_url, const Config::ResourceSet& resources,
                             v1::StaticResources& out) {
  const std::string type = Config::shortTypeName(type_url);
  if (type == "Cluster") return unpackAll(resources, out.mutable_clusters());
  if (type == "ClusterEndpoints") return unpackAll(resources, out.mutable_cluster_endpoints());
  if (type == "AuthPolicy") return unpackAll(resources, out.mutable_auth_policies());
  if (type == "RateLimitPolicy") return unpackAll(resources, out.mutable_rate_limit_policies());
  if (type == "RouteTable") return unpackAll(resources, out.mutable_route_tables());
  if (type == "Listener") return unpackAll(resources, out.mutable_listeners());
  return absl::InvalidArgumentError(absl::StrCat("unknown resource type \"", type_url, "\""));
}

v1::StaticResources withRetained(const v1::StaticResources& declared,
                                 const v1::StaticResources& previous,
                                 const v1::StaticResources& static_resources,
                                 std::vector<std::string>* retained) {
  v1::StaticResources out = declared;
  auto by_name = [](const auto& m) -> const std::string& { return m.name(); };
  // Route tables named by listeners.
  absl::flat_hash_set<std::string> tables;
  for (const auto* list : {&static_resources.listeners(), &out.listeners()}) {
    for (const auto& l : *list) tables.insert(l.route_table());
  }
  retain(previous.route_tables(), out.mutable_route_tables(), static_resources.route_tables(),
         tables, by_name, retained);
  // Clusters and policies named by routes.
  absl::flat_hash_set<std::string> clusters;
  absl::flat_hash_set<std::string> auth;
  absl::flat_hash_set<std::string> rate_limit;
  for (const auto* list : {&static_resources.route_tables(), &out.route_tables()}) {
    for (const auto& t : *list) {
      forEachClusterReference(t, [&](const std::string& c) { clusters.insert(c); });
      for (const auto& vh : t.virtual_hosts()) {
        for (const auto& r : vh.routes()) {
          if (!r.auth().empty()) auth.insert(r.auth());
          if (!r.rate_limit().empty()) rate_limit.insert(r.rate_limit());
        }
      }
    }
  }
  retain(previous.clusters(), out.mutable_clusters(), static_resources.clusters(), clusters,
         by_name, retained);
  retain(previous.auth_policies(), out.mutable_auth_policies(), static_resources.auth_policies(),
         auth, by_name, retained);
  retain(previous.rate_limit_policies(), out.mutable_rate_limit_policies(),
         static_resources.rate_limit_policies(), rate_limit, by_name, retained);
  // Endpoints of eds clusters.
  absl::flat_hash_set<std::string> eds;
  for (const auto* list : {&static_resources.clusters(), &out.clusters()}) {
    for (const auto& c : *list) {
      if (c.eds()) eds.insert(c.name());
    }
  }
  retain(
      previous.cluster_endpoints(), out.mutable_cluster_endpoints(),
      static_resources.cluster_endpoints(), eds,
      [](const v1::ClusterEndpoints& ce) -> const std::string& { return ce.cluster_name(); },
      retained);
  return out;
}

MergedConfig mergeDynamic(const v1::Bootstrap& bootstrap, const v1::StaticResources& dynamic) {
  MergedConfig m;
  m.bootstrap = bootstrap;
  v1::StaticResources* sr = m.bootstrap.mutable_static_resources();
  m.first_dynamic_listener = sr->listeners_size();
  m.first_dynamic_route_table = sr->route_tables_size();
  m.first_dynamic_cluster = sr->clusters_size();
  m.first_dynamic_cluster_endpoints = sr->cluster_endpoints_size();
  m.first_dynamic_auth_policy = sr->auth_policies_size();
  m.first_dynamic_rate_limit_policy = sr->rate_limit_policies_size();
  sr->MergeFrom(dynamic);  // repeated fields append
  return m;
}

}  // namespace Server
}  // namespace sluice
