#include "source/control_plane/mesh_protocol.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "source/control_plane/snapshot_cache.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace ControlPlane {
namespace {

// "grpc-python 1.51.1" from gRPC's user_agent_name / user_agent_version: C-core's name is
// "gRPC C-core <platform>" followed by the wrapping language's suffix ("... Python"), other
// implementations' "gRPC Go", "gRPC Java". Anything else is shown as sent.
std::string clientName(const std::string& name, const std::string& version) {
  std::vector<std::string> words = absl::StrSplit(name, ' ', absl::SkipEmpty());
  if (words.size() >= 2 && words[0] == "gRPC") {
    std::string lang = words.back();
    if (words[1] == "C-core") {
      lang = words.size() > 3 ? words.back() : "c++";
    }
    // C-core wrappers send "C-core 29.0.0 Python 1.51.1": the last word is the wrapper's.
    const size_t space = version.rfind(' ');
    const std::string v = space == std::string::npos ? version : version.substr(space + 1);
    return absl::StrCat("grpc-", absl::AsciiStrToLower(lang), v.empty() ? "" : " ", v);
  }
  if (version.empty() || absl::StrContains(name, version)) {
    return name;
  }
  return name.empty() ? version : absl::StrCat(name, " ", version);
}

}  // namespace

NodeRecord MeshProtocolBase::identify(const envoy::config::core::v3::Node& node,
                                      const std::string& peer, const std::string& grpc_user_agent) {
  NodeRecord record;
  record.kind = "grpc";
  record.id = node.id().empty() ? peer : node.id();
  record.group = node.cluster();
  auto it = node.metadata().fields().find("sluice_group");
  if (it != node.metadata().fields().end() && it->second.has_string_value() &&
      !it->second.string_value().empty()) {
    record.group = it->second.string_value();
  }
  if (record.group.empty()) {
    record.group = kDefaultGroup;
  }
  std::string version = node.user_agent_version();
  if (version.empty() && node.has_user_agent_build_version()) {
    const auto& v = node.user_agent_build_version().version();
    version = absl::StrCat(v.major_number(), ".", v.minor_number(), ".", v.patch());
  }
  record.client = clientName(node.user_agent_name(), version);
  record.user_agent = grpc_user_agent;
  record.peer = peer;
  record.types = Progress(kMeshTypeCount);
  for (MeshType t : allMeshTypes()) {
    record.type_names.push_back(meshTypeName(t));
  }
  return record;
}

bool MeshProtocolBase::ackOrNack(MeshType type, const std::string& nonce,
                                 const google::rpc::Status* error, absl::Time now) {
  TypeState& s = state_[meshIndex(type)];
  TypeProgress& p = progress_[meshIndex(type)];
  if (nonce != s.last_nonce) {
    spdlog::debug("proxyless node \"{}\": stale nonce {} for {} (latest {}), ignored", node_id_,
                  nonce, meshTypeName(type), s.last_nonce);
    return false;
  }
  if (error != nullptr) {
    p.nacked_version = s.last_nonce_version;
    p.nack_reason =
        error->message().empty() ? absl::StrCat("code ", error->code()) : error->message();
    p.nack_time = now;
    spdlog::warn("NACK from proxyless node \"{}\" (group \"{}\"): {} version {}: {}", node_id_,
                 group_, meshTypeName(type), p.nacked_version, p.nack_reason);
  } else {
    p.acked_version = s.last_nonce_version;
    p.nacked_version.clear();
    p.nack_reason.clear();
    p.nack_time = absl::InfinitePast();
  }
  return true;
}

void MeshProtocolBase::unknownType(const std::string& type_url) {
  if (logged_.insert(type_url).second) {
    spdlog::warn(
        "proxyless node \"{}\": request for type \"{}\" ignored (served: Listener, "
        "RouteConfiguration, Cluster, ClusterLoadAssignment of envoy v3)",
        node_id_, type_url);
  }
}

void MeshSotwProtocol::enqueue(std::deque<Response>& queue, std::vector<Response> responses) {
  for (Response& r : responses) {
    for (auto it = queue.begin(); it != queue.end();) {
      it = it->type_url() == r.type_url() ? queue.erase(it) : it + 1;
    }
    queue.push_back(std::move(r));
  }
  auto order = [](const Response& r) {
    auto t = meshTypeFromUrl(r.type_url());
    return t ? meshIndex(*t) : kMeshTypeCount;
  };
  std::stable_sort(queue.begin(), queue.end(),
                   [&order](const Response& a, const Response& b) { return order(a) < order(b); });
}

std::vector<MeshSotwProtocol::Response> MeshSotwProtocol::onRequest(const Request& request,
                                                                    const MeshSnapshot* snapshot,
                                                                    absl::Time now) {
  auto type = meshTypeFromUrl(request.type_url());
  if (!type) {
    unknownType(request.type_url());
    return {};
  }
  const int i = meshIndex(*type);
  TypeState& s = state_[i];
  TypeProgress& p = progress_[i];
  const bool initial = request.response_nonce().empty();
  if (!initial && !ackOrNack(*type, request.response_nonce(),
                             request.has_error_detail() ? &request.error_detail() : nullptr, now)) {
    return {};
  }
  s.names = std::set<std::string>(request.resource_names().begin(), request.resource_names().end());
  s.names.erase("*");
  s.wildcard = request.resource_names().empty() ||
               std::find(request.resource_names().begin(), request.resource_names().end(), "*") !=
                   request.resource_names().end();
  if (initial) {
    p.subscribed = true;
    if (!request.version_info().empty()) {
      p.acked_version = request.version_info();
    }
    pending_[i] = true;
  } else if (s.names != sent_names_[i] || s.wildcard != sent_wildcard_[i]) {
    pending_[i] = true;
  }
  return onSnapshot(snapshot);
}

MeshSotwProtocol::Response MeshSotwProtocol::build(MeshType t, const MeshSnapshot& snapshot) {
  const int i = meshIndex(t);
  const MeshTypeSnapshot& ts = snapshot.type(t);
  TypeState& s = state_[i];
  Response r;
  r.set_version_info(ts.version);
  r.set_type_url(meshTypeUrl(t));
  if (s.wildcard) {
    for (const auto& [name, res] : ts.resources) {
      *r.add_resources() = res.any;
    }
  } else {
    for (const std::string& name : s.names) {
      if (const MeshResource* res = ts.find(name)) {
        *r.add_resources() = res->any;
      }
    }
  }
  r.set_nonce(nextNonce());
  s.last_nonce = r.nonce();
  s.last_nonce_version = ts.version;
  sent_names_[i] = s.names;
  sent_wildcard_[i] = s.wildcard;
  pending_[i] = false;
  progress_[i].sent_version = ts.version;
  return r;
}

std::vector<MeshSotwProtocol::Response> MeshSotwProtocol::onSnapshot(const MeshSnapshot* snapshot) {
  std::vector<Response> out;
  if (snapshot == nullptr) {
    return out;
  }
  for (MeshType t : allMeshTypes()) {
    const int i = meshIndex(t);
    const TypeProgress& p = progress_[i];
    if (!p.subscribed) {
      continue;
    }
    if (pending_[i] || p.sent_version != snapshot->type(t).version) {
      out.push_back(build(t, *snapshot));
    }
  }
  return out;
}

std::vector<MeshDeltaProtocol::Response> MeshDeltaProtocol::onRequest(const Request& request,
                                                                      const MeshSnapshot* snapshot,
                                                                      absl::Time now) {
  auto type = meshTypeFromUrl(request.type_url());
  if (!type) {
    unknownType(request.type_url());
    return {};
  }
  const int i = meshIndex(*type);
  TypeState& s = state_[i];
  TypeProgress& p = progress_[i];
  if (!request.response_nonce().empty()) {
    ackOrNack(*type, request.response_nonce(),
              request.has_error_detail() ? &request.error_detail() : nullptr, now);
  }
  // Subscription changes apply whatever the nonce (delta xDS).
  bool changed = false;
  const bool first = !p.subscribed;
  if (first) {
    p.subscribed = true;
    s.wildcard = request.resource_names_subscribe().empty();
    for (const auto& [name, version] : request.initial_resource_versions()) {
      known_[i][name] = version;
    }
    changed = true;
  }
  for (const std::string& name : request.resource_names_subscribe()) {
    if (name == "*") {
      changed = changed || !s.wildcard;
      s.wildcard = true;
    } else if (s.names.insert(name).second) {
      changed = true;
    }
  }
  for (const std::string& name : request.resource_names_unsubscribe()) {
    if (name == "*") {
      s.wildcard = false;
    } else {
      s.names.erase(name);
    }
    known_[i].erase(name);
  }
  std::vector<Response> out;
  if (snapshot != nullptr && changed) {
    update(*type, *snapshot, /*force=*/first && !answered_[i], out);
  }
  for (Response& r : onSnapshot(snapshot)) {
    out.push_back(std::move(r));
  }
  return out;
}

void MeshDeltaProtocol::update(MeshType t, const MeshSnapshot& snapshot, bool force,
                               std::vector<Response>& out) {
  const int i = meshIndex(t);
  const MeshTypeSnapshot& ts = snapshot.type(t);
  TypeState& s = state_[i];
  Response r;
  r.set_system_version_info(ts.version);
  r.set_type_url(meshTypeUrl(t));
  for (const auto& [name, res] : ts.resources) {
    if (!wants(s, name)) {
      continue;
    }
    auto it = known_[i].find(name);
    if (it != known_[i].end() && it->second == res.version) {
      continue;
    }
    auto* out_res = r.add_resources();
    out_res->set_name(name);
    out_res->set_version(res.version);
    *out_res->mutable_resource() = res.any;
    known_[i][name] = res.version;
  }
  std::vector<std::string> removed;
  for (const auto& [name, version] : known_[i]) {
    if (ts.find(name) == nullptr) {
      removed.push_back(name);
    }
  }
  std::sort(removed.begin(), removed.end());
  for (std::string& name : removed) {
    known_[i].erase(name);
    r.add_removed_resources(std::move(name));
  }
  progress_[i].sent_version = ts.version;
  if (r.resources().empty() && r.removed_resources().empty() && !force) {
    // Nothing new for this stream: it is as far as the type's version.
    if (progress_[i].acked_version == s.last_nonce_version && progress_[i].nacked_version.empty()) {
      progress_[i].acked_version = ts.version;
    }
    s.last_nonce_version = ts.version;
    return;
  }
  r.set_nonce(nextNonce());
  s.last_nonce = r.nonce();
  s.last_nonce_version = ts.version;
  answered_[i] = true;
  out.push_back(std::move(r));
}

std::vector<MeshDeltaProtocol::Response> MeshDeltaProtocol::onSnapshot(
    const MeshSnapshot* snapshot) {
  std::vector<Response> out;
  if (snapshot == nullptr) {
    return out;
  }
  for (MeshType t : allMeshTypes()) {
    const int i = meshIndex(t);
    if (!progress_[i].subscribed || progress_[i].sent_version == snapshot->type(t).version) {
      continue;
    }
    update(t, *snapshot, /*force=*/false, out);
  }
  return out;
}

}  // namespace ControlPlane
}  // namespace sluice
