#include "source/control_plane/resources.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "source/common/config/resource_lists.h"

namespace sluice {
namespace ControlPlane {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

struct TypeInfo {
  std::string short_name;
  std::string url;
  std::string field;
  std::string name_field;
  // The StaticResources list, and the name field of its message.
  const FieldDescriptor* list = nullptr;
  const FieldDescriptor* name = nullptr;
};

// A broken invariant of the API protos: nothing could be served correctly.
[[noreturn]] void fatal(const std::string& message) {
  std::fprintf(stderr, "sluice-cp: StaticResources: %s\n", message.c_str());
  std::abort();
}

TypeInfo makeInfo(const FieldDescriptor* list) {
  TypeInfo info;
  const Descriptor* type = list->message_type();
  info.short_name = type->name();
  info.url = Config::typeUrlOf(*list);
  info.field = list->name();
  info.list = list;
  // `name`, or `cluster_name` for ClusterEndpoints (as the data plane names resources).
  info.name = Config::nameFieldOf(*type);
  if (info.name == nullptr || info.name->is_repeated() ||
      info.name->type() != FieldDescriptor::TYPE_STRING) {
    fatal(absl::StrCat(type->full_name(), " (", list->name(),
                       ") has no string `name` or `cluster_name` field"));
  }
  info.name_field = info.name->name();
  return info;
}

// Every repeated message field of StaticResources, in send order (see ResourceType), indexed by
// ResourceType::index().
const std::vector<TypeInfo>& typeInfos() {
  static const auto* infos = [] {
    auto* out = new std::vector<TypeInfo>();
    for (const FieldDescriptor* list : Config::resourceLists()) {
      if (list == nullptr)
        fatal("Secret, Cluster, ClusterEndpoints, RouteTable or Listener has no list");
      out->push_back(makeInfo(list));
    }
    // A type URL names one list.
    for (size_t i = 0; i < out->size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if ((*out)[i].url == (*out)[j].url) {
          fatal(absl::StrCat((*out)[j].field, " and ", (*out)[i].field, " both hold ",
                             (*out)[i].short_name));
        }
      }
    }
    return out;
  }();
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
    for (ResourceType t : allTypes()) {
      const TypeInfo& i = info(t);
      m->insert_or_assign(normalize(i.short_name), t);
      m->insert_or_assign(normalize(i.field), t);
    }
    // The singular of a plural-only name ("clusterendpoint"), unless it names another type.
    for (ResourceType t : allTypes()) {
      absl::string_view name = info(t).short_name;
      if (absl::ConsumeSuffix(&name, "s")) {
        m->try_emplace(normalize(name), t);
      }
    }
    return m;
  }();
  return *aliases;
}

// The protobuf packages of the types, each with its trailing '.': "sluice.config.v1.".
const std::vector<std::string>& typePackages() {
  static const auto* packages = [] {
    auto* out = new std::vector<std::string>();
    for (const TypeInfo& i : typeInfos()) {
      std::string package = absl::StrCat(i.list->message_type()->file()->package(), ".");
      if (std::find(out->begin(), out->end(), package) == out->end()) {
        out->push_back(std::move(package));
      }
    }
    return out;
  }();
  return *packages;
}

}  // namespace

int typeCount() { return static_cast<int>(typeInfos().size()); }

const std::vector<ResourceType>& allTypes() {
  static const auto* types = [] {
    auto* out = new std::vector<ResourceType>();
    for (int i = 0; i < typeCount(); ++i) {
      out->push_back(ResourceType(i));
    }
    return out;
  }();
  return *types;
}

const std::string& shortName(ResourceType type) { return info(type).short_name; }
const std::string& typeUrl(ResourceType type) { return info(type).url; }
const std::string& fieldName(ResourceType type) { return info(type).field; }

std::optional<ResourceType> typeFromUrl(absl::string_view url) {
  for (ResourceType t : allTypes()) {
    if (url == info(t).url) {
      return t;
    }
  }
  return std::nullopt;
}

std::optional<ResourceType> parseTypeName(absl::string_view name) {
  name = absl::StripAsciiWhitespace(name);
  absl::ConsumePrefix(&name, "type.googleapis.com/");
  for (const std::string& package : typePackages()) {
    if (absl::StartsWithIgnoreCase(name, package)) {
      name.remove_prefix(package.size());
      break;
    }
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
  for (ResourceType t : allTypes()) {
    names.push_back(shortName(t));
  }
  return absl::StrJoin(names, ", ");
}

std::vector<const google::protobuf::Message*> resourcesOf(
    const sluice::config::v1::StaticResources& resources, ResourceType type) {
  const FieldDescriptor* field = info(type).list;
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
  return resource.GetReflection()->GetString(resource, info(type).name);
}

std::vector<std::string> checkNames(const sluice::config::v1::StaticResources& resources) {
  std::vector<std::string> errors;
  for (ResourceType t : allTypes()) {
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
