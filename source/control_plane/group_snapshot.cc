#include "source/control_plane/group_snapshot.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "openssl/evp.h"

namespace sluice {
namespace ControlPlane {
namespace {

// Deterministic wire encoding (map entries sorted), so equal messages hash equally.
std::string encodeDeterministic(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace

std::string sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(len)));
}

std::string contentVersion(absl::string_view bytes) { return sha256Hex(bytes).substr(0, 16); }

const NamedResource* TypeSnapshot::find(absl::string_view name) const {
  auto it = std::lower_bound(
      resources.begin(), resources.end(), name,
      [](const NamedResource& r, absl::string_view n) { return absl::string_view(r.name) < n; });
  if (it == resources.end() || it->name != name) {
    return nullptr;
  }
  return &*it;
}

std::shared_ptr<GroupSnapshot> GroupSnapshot::encode(std::string group, uint64_t version,
                                                     sluice::config::v1::StaticResources declared) {
  auto snap = std::make_shared<GroupSnapshot>(PrivateTag{});
  snap->group_ = std::move(group);
  snap->version_number_ = version;
  snap->version_ = std::to_string(version);
  snap->declared_ = std::move(declared);
  for (ResourceType t : allTypes()) {
    TypeSnapshot& ts = snap->types_[typeIndex(t)];
    std::vector<NamedResource> list;
    absl::flat_hash_set<std::string> seen;
    for (const google::protobuf::Message* m : resourcesOf(snap->declared_, t)) {
      std::string name = resourceName(*m, t);
      if (!seen.insert(name).second) {
        continue;
      }
      NamedResource r;
      r.name = std::move(name);
      r.message = m;
      list.push_back(std::move(r));
    }
    std::sort(list.begin(), list.end(),
              [](const NamedResource& a, const NamedResource& b) { return a.name < b.name; });
    ts.response.set_type_url(typeUrl(t));
    ts.response.mutable_resources()->Reserve(static_cast<int>(list.size()));
    std::string hash_input;
    for (size_t i = 0; i < list.size(); ++i) {
      google::protobuf::Any* any = ts.response.add_resources();
      any->set_type_url(typeUrl(t));
      any->set_value(encodeDeterministic(*list[i].message));
      list[i].version = contentVersion(any->value());
      list[i].index = static_cast<int>(i);
      hash_input.append(list[i].name).push_back('\0');
      hash_input.append(list[i].version).push_back('\n');
    }
    ts.content_hash = contentVersion(hash_input);
    ts.resources = std::move(list);
  }
  return snap;
}

GroupSnapshotConstSharedPtr GroupSnapshot::create(std::string group, uint64_t version,
                                                  sluice::config::v1::StaticResources declared,
                                                  const GroupSnapshot* previous) {
  auto snap = encode(std::move(group), version, std::move(declared));
  for (ResourceType t : allTypes()) {
    TypeSnapshot& ts = snap->types_[typeIndex(t)];
    if (previous != nullptr && previous->type(t).content_hash == ts.content_hash) {
      ts.version = previous->type(t).version;
    } else {
      ts.version = snap->version_;
    }
    ts.response.set_version_info(ts.version);
  }
  return snap;
}

GroupSnapshotConstSharedPtr GroupSnapshot::create(std::string group, uint64_t version,
                                                  sluice::config::v1::StaticResources declared,
                                                  const TypeVersions& type_versions) {
  auto snap = encode(std::move(group), version, std::move(declared));
  for (ResourceType t : allTypes()) {
    TypeSnapshot& ts = snap->types_[typeIndex(t)];
    const size_t i = typeIndex(t);
    ts.version =
        i < type_versions.size() && !type_versions[i].empty() ? type_versions[i] : snap->version_;
    ts.response.set_version_info(ts.version);
  }
  return snap;
}

GroupSnapshot::TypeVersions GroupSnapshot::typeVersions() const {
  TypeVersions out(typeCount());
  for (ResourceType t : allTypes()) {
    out[typeIndex(t)] = type(t).version;
  }
  return out;
}

std::vector<bool> GroupSnapshot::changedTypes(const GroupSnapshot* other) const {
  std::vector<bool> out(typeCount());
  for (ResourceType t : allTypes()) {
    out[typeIndex(t)] = other == nullptr || other->type(t).content_hash != type(t).content_hash;
  }
  return out;
}

bool GroupSnapshot::sameContent(const GroupSnapshot& other) const {
  for (ResourceType t : allTypes()) {
    if (other.type(t).content_hash != type(t).content_hash) {
      return false;
    }
  }
  return true;
}

DeltaUpdate computeDelta(const TypeSnapshot& type,
                         const absl::flat_hash_map<std::string, std::string>& known) {
  DeltaUpdate update;
  for (const NamedResource& r : type.resources) {
    auto it = known.find(r.name);
    if (it == known.end() || it->second != r.version) {
      update.updated.push_back(&r);
    }
  }
  for (const auto& [name, version] : known) {
    if (type.find(name) == nullptr) {
      update.removed.push_back(name);
    }
  }
  std::sort(update.removed.begin(), update.removed.end());
  return update;
}

}  // namespace ControlPlane
}  // namespace sluice
