#include "source/control_plane/resources.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace sluice {
namespace ControlPlane {
namespace {

struct TypeInfo {
  std::string short_name;
  std::string url;
  std::string field;
  std::string name_field;
};

TypeInfo makeInfo(const char* short_name, const char* field, const char* name_field) {
  return {short_name, absl::StrCat("type.googleapis.com/sluice.config.v1.", short_name), field,
          name_field};
}

// Indexed by ResourceType.
const std::array<TypeInfo, kTypeCount>& typeInfos() {
  static const auto* infos = new std::array<TypeInfo, kTypeCount>{{
      makeInfo("Cluster", "clusters", "name"),
      makeInfo("ClusterEndpoints", "cluster_endpoints", "cluster_name"),
      makeInfo("AuthPolicy", "auth_policies", "name"),
      makeInfo("RateLimitPolicy", "rate_limit_policies", "name"),
      makeInfo("RouteTable", "route_tables", "name"),
      makeInfo("Listener", "listeners", "name"),
  }};
  return *infos;
}

const TypeInfo& info(ResourceType type) { return typeInfos()[typeIndex(type)]; }

// Lower case without '_', '-', ' ' and '.': "Route_Tables" -> "routetables".
std::string normalize(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '_' || c == '-' || c == ' ' || c == '.') {
      continue;
    }
    out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

const absl::flat_hash_map<std::string, ResourceType>& typeAliases() {
  static const auto* aliases = [] {
    auto* m = new absl::flat_hash_map<std::string, ResourceType>();
    for (ResourceType t : kAllTypes) {
      const TypeInfo& i = info(t);
      (*m)[normalize(i.short_name)] = t;
      (*m)[normalize(i.field)] = t;
    }
    // Singular of the plural-only name.
    (*m)["clusterendpoint"] = ResourceType::ClusterEndpoints;
    return m;
  }();
  return *aliases;
}

}  // namespace

const std::string& shortName(ResourceType type) { return info(type).short_name; }
const std::string& typeUrl(ResourceType type) { return info(type).url; }
const std::string& fieldName(ResourceType type) { return info(type).field; }

std::optional<ResourceType> typeFromUrl(absl::string_view url) {
  for (ResourceType t : kAllTypes) {
    if (url == info(t).url) {
      return t;
    }
  }
  return std::nullopt;
}

std::optional<ResourceType> parseTypeName(absl::string_view name) {
  name = absl::StripAsciiWhitespace(name);
  absl::ConsumePrefix(&name, "type.googleapis.com/");
  if (absl::StartsWithIgnoreCase(name, "sluice.config.v1.")) {
    name.remove_prefix(sizeof("sluice.config.v1.") - 1);
  }
  const auto& aliases = typeAliases();
  auto it = aliases.find(normalize(name));
  if (it == aliases.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::string typeNameList() {
  std::vector<std::string> names;
  for (ResourceType t : kAllTypes) {
    names.push_back(shortName(t));
  }
  return absl::StrJoin(names, ", ");
}

std::vector<const google::protobuf::Message*> resourcesOf(
    const sluice::config::v1::StaticResources& resources, ResourceType type) {
  const auto* field = resources.GetDescriptor()->FindFieldByName(fieldName(type));
  const auto* reflection = resources.GetReflection();
  const int n = reflection->FieldSize(resources, field);
  std::vector<const google::protobuf::Message*> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    out.push_back(&reflection->GetRepeatedMessage(resources, field, i));
  }
  return out;
}

std::string resourceName(const google::protobuf::Message& resource, ResourceType type) {
  const auto* field = resource.GetDescriptor()->FindFieldByName(info(type).name_field);
  return resource.GetReflection()->GetString(resource, field);
}

std::vector<std::string> checkNames(const sluice::config::v1::StaticResources& resources) {
  std::vector<std::string> errors;
  for (ResourceType t : kAllTypes) {
    absl::flat_hash_map<std::string, size_t> first;
    const auto list = resourcesOf(resources, t);
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string name = resourceName(*list[i], t);
      const std::string field = absl::StrCat(fieldName(t), "[", i, "].", info(t).name_field);
      if (name.empty()) {
        errors.push_back(absl::StrCat(field, ": is required"));
        continue;
      }
      auto [it, inserted] = first.emplace(name, i);
      if (!inserted) {
        errors.push_back(absl::StrCat(field, ": duplicate ", shortName(t), " name \"", name,
                                      "\" (first at ", fieldName(t), "[", it->second, "])"));
      }
    }
  }
  return errors;
}

}  // namespace ControlPlane
}  // namespace sluice
