#include "source/server/dynamic_resources.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "source/common/config/policy_registry.h"
#include "source/common/config/resource_lists.h"
#include "source/common/http/filter_config.h"
#include "source/server/config/snapshot.h"

namespace sluice {
namespace Server {

namespace v1 = sluice::config::v1;

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// A resource's name: `name`, or `cluster_name` for ClusterEndpoints.
std::string nameOf(const Message& m) {
  const FieldDescriptor* f = Config::nameFieldOf(*m.GetDescriptor());
  return f == nullptr ? "" : m.GetReflection()->GetString(m, f);
}

// Appends to `out` each resource of `previous` in list `field` that `out` no longer has but
// `referenced` names.
void retain(const FieldDescriptor* field, const v1::StaticResources& previous,
            v1::StaticResources& out, const v1::StaticResources& static_resources,
            const absl::flat_hash_set<std::string>& referenced,
            std::vector<std::string>* retained) {
  const auto* r = out.GetReflection();
  absl::flat_hash_set<std::string> present;
  for (const v1::StaticResources* list :
       std::initializer_list<const v1::StaticResources*>{&out, &static_resources}) {
    for (int i = 0; i < r->FieldSize(*list, field); ++i) {
      present.insert(nameOf(r->GetRepeatedMessage(*list, field, i)));
    }
  }
  for (int i = 0; i < r->FieldSize(previous, field); ++i) {
    const Message& m = r->GetRepeatedMessage(previous, field, i);
    const std::string name = nameOf(m);
    if (present.contains(name) || !referenced.contains(name)) continue;
    r->AddMessage(&out, field)->CopyFrom(m);
    if (retained != nullptr) {
      retained->push_back(absl::StrCat(m.GetDescriptor()->name(), "/", name));
    }
  }
}

const FieldDescriptor* field(const char* name) {
  return v1::StaticResources::descriptor()->FindFieldByName(name);
}

}  // namespace

absl::StatusOr<std::string> resourceName(const std::string& type_url,
                                         const google::protobuf::Any& resource) {
  const FieldDescriptor* list = Config::resourceListOf(type_url);
  if (list == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown resource type \"", type_url, "\""));
  }
  const std::string& type = list->message_type()->name();
  v1::StaticResources scratch;
  Message* m = scratch.GetReflection()->AddMessage(&scratch, list);
  if (!resource.UnpackTo(m)) {
    return absl::InvalidArgumentError(absl::StrCat("a ", type, " resource cannot be decoded"));
  }
  std::string name = nameOf(*m);
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("a ", type, " resource has no name"));
  }
  return name;
}

absl::Status decodeResources(const std::string& type_url, const Config::ResourceSet& resources,
                             v1::StaticResources& out) {
  const FieldDescriptor* list = Config::resourceListOf(type_url);
  if (list == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown resource type \"", type_url, "\""));
  }
  const auto* r = out.GetReflection();
  r->ClearField(&out, list);
  for (const auto& [name, res] : resources) {
    if (!res.resource.UnpackTo(r->AddMessage(&out, list))) {
      return absl::InvalidArgumentError(
          absl::StrCat(list->message_type()->name(), " \"", name, "\": cannot be decoded"));
    }
  }
  return absl::OkStatus();
}

const Message* firstResource(const std::string& type_url, const v1::StaticResources& resources) {
  const FieldDescriptor* list = Config::resourceListOf(type_url);
  const auto* r = resources.GetReflection();
  if (list == nullptr || r->FieldSize(resources, list) == 0) return nullptr;
  return &r->GetRepeatedMessage(resources, list, 0);
}

v1::StaticResources withRetained(const v1::StaticResources& declared,
                                 const v1::StaticResources& previous,
                                 const v1::StaticResources& static_resources,
                                 std::vector<std::string>* retained) {
  v1::StaticResources out = declared;
  // Route tables named by listeners.
  absl::flat_hash_set<std::string> tables;
  for (const auto* list : {&static_resources.listeners(), &out.listeners()}) {
    for (const auto& l : *list) tables.insert(l.route_table());
  }
  retain(field("route_tables"), previous, out, static_resources, tables, retained);
  // Clusters and policies named by routes (and policies named by listeners).
  absl::flat_hash_set<std::string> clusters;
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> policies;
  auto policy = [&](const std::string& type, const std::string& name) {
    policies[type].insert(name);
  };
  for (const auto* list : {&static_resources.route_tables(), &out.route_tables()}) {
    for (const auto& t : *list) {
      forEachClusterReference(t, [&](const std::string& c) { clusters.insert(c); });
      Http::forEachRouteReference(t, policy);
    }
  }
  // And policies named by listeners' filter configs (a default policy).
  for (const auto* list : {&static_resources.listeners(), &out.listeners()}) {
    for (const auto& l : *list) Http::forEachListenerReference(l, policy);
  }
  retain(field("clusters"), previous, out, static_resources, clusters, retained);
  for (const Config::PolicyType* type : Config::PolicyTypeRegistry::all()) {
    retain(Config::PolicyTypeRegistry::fieldOf(*type), previous, out, static_resources,
           policies[Config::PolicyTypeRegistry::typeName(*type)], retained);
  }
  // Endpoints of eds clusters.
  absl::flat_hash_set<std::string> eds;
  for (const auto* list : {&static_resources.clusters(), &out.clusters()}) {
    for (const auto& c : *list) {
      if (c.eds()) eds.insert(c.name());
    }
  }
  retain(field("cluster_endpoints"), previous, out, static_resources, eds, retained);
  // Secrets named by listeners and clusters (those kept above included).
  absl::flat_hash_set<std::string> secrets;
  auto certificate = [&secrets](const v1::TlsCertificate& c) {
    if (!c.secret().empty()) secrets.insert(c.secret());
  };
  for (const auto* list : {&static_resources.listeners(), &out.listeners()}) {
    for (const auto& l : *list) {
      for (const auto& c : l.tls().certificates()) certificate(c);
      if (!l.tls().client_ca_secret().empty()) secrets.insert(l.tls().client_ca_secret());
    }
  }
  for (const auto* list : {&static_resources.clusters(), &out.clusters()}) {
    for (const auto& c : *list) {
      certificate(c.tls().certificate());
      if (!c.tls().ca_secret().empty()) secrets.insert(c.tls().ca_secret());
    }
  }
  retain(field("secrets"), previous, out, static_resources, secrets, retained);
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
  m.first_dynamic_secret = sr->secrets_size();
  for (const Config::PolicyType* type : Config::PolicyTypeRegistry::all()) {
    m.first_dynamic_policy[type->field()] =
        sr->GetReflection()->FieldSize(*sr, Config::PolicyTypeRegistry::fieldOf(*type));
  }
  sr->MergeFrom(dynamic);  // repeated fields append
  return m;
}

}  // namespace Server
}  // namespace sluice
