#include "source/control_plane/stream_protocol.h"

#include <algorithm>

#include "spdlog/spdlog.h"

namespace sluice {
namespace ControlPlane {

bool StreamProtocol::ackOrNack(ResourceType type, const std::string& nonce,
                               const google::rpc::Status* error, absl::Time now) {
  Nonces& n = nonces_[typeIndex(type)];
  TypeProgress& p = progress_[typeIndex(type)];
  if (nonce != n.last_nonce) {
    spdlog::debug("node \"{}\": stale nonce {} for {} (latest {}), ignored", node_id_, nonce,
                  shortName(type), n.last_nonce);
    return false;
  }
  if (error != nullptr) {
    p.nacked_version = n.last_nonce_version;
    p.nack_reason = error->message();
    p.nack_time = now;
    spdlog::warn("NACK from node \"{}\" (group \"{}\"): {} version {}: {}", node_id_, group_,
                 shortName(type), p.nacked_version, p.nack_reason);
  } else {
    p.acked_version = n.last_nonce_version;
    p.nacked_version.clear();
    p.nack_reason.clear();
    p.nack_time = absl::InfinitePast();
    spdlog::debug("ACK from node \"{}\": {} version {}", node_id_, shortName(type),
                  p.acked_version);
  }
  return true;
}

void StreamProtocol::unknownType(const std::string& type_url) {
  if (logged_.insert("type:" + type_url).second) {
    spdlog::warn("node \"{}\": request for unknown type \"{}\" ignored", node_id_, type_url);
  }
}

void StreamProtocol::namedSubscription(const std::string& type_url) {
  if (logged_.insert("names:" + type_url).second) {
    spdlog::info("node \"{}\": {} request names resources; every resource is sent (wildcard)",
                 node_id_, type_url);
  }
}

void SotwProtocol::enqueue(std::deque<Response>& queue, std::vector<Response> responses) {
  if (responses.empty()) {
    return;
  }
  for (Response& r : responses) {
    for (auto it = queue.begin(); it != queue.end();) {
      it = it->type_url() == r.type_url() ? queue.erase(it) : it + 1;
    }
    queue.push_back(std::move(r));
  }
  auto order = [](const Response& r) {
    auto t = typeFromUrl(r.type_url());
    return t ? typeIndex(*t) : typeCount();
  };
  std::stable_sort(queue.begin(), queue.end(),
                   [&order](const Response& a, const Response& b) { return order(a) < order(b); });
}

std::vector<SotwProtocol::Response> SotwProtocol::onRequest(const Request& request,
                                                            const GroupSnapshot* snapshot,
                                                            absl::Time now) {
  auto type = subscriptionType(request, now);
  if (!type) return {};
  const int i = typeIndex(*type);
  // A first request for the type (or a new subscription on the same stream): the node has
  // `version_info` (empty = nothing), so it is answered only when that is not current.
  if (!request.resource_names().empty()) {
    namedSubscription(request.type_url());
  }
  TypeProgress& p = progress_[i];
  p.subscribed = true;
  p.sent_version = request.version_info();
  if (!request.version_info().empty()) {
    p.acked_version = request.version_info();
  }
  nonces_[i].last_nonce.clear();
  return onSnapshot(snapshot);
}

std::vector<SotwProtocol::Response> SotwProtocol::onSnapshot(const GroupSnapshot* snapshot) {
  std::vector<Response> out;
  if (snapshot == nullptr) {
    return out;
  }
  for (ResourceType t : allTypes()) {
    const int i = typeIndex(t);
    TypeProgress& p = progress_[i];
    const TypeSnapshot& ts = snapshot->type(t);
    if (!p.subscribed || p.sent_version == ts.version) {
      continue;
    }
    Response r = ts.response;
    r.set_nonce(nextNonce());
    nonces_[i].last_nonce = r.nonce();
    nonces_[i].last_nonce_version = ts.version;
    nonces_[i].answered = true;
    p.sent_version = ts.version;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<DeltaProtocol::Response> DeltaProtocol::onRequest(const Request& request,
                                                              const GroupSnapshot* snapshot,
                                                              absl::Time now) {
  auto type = subscriptionType(request, now);
  if (!type) return {};
  const int i = typeIndex(*type);
  for (const std::string& name : request.resource_names_subscribe()) {
    if (name != "*") {
      namedSubscription(request.type_url());
      break;
    }
  }
  TypeProgress& p = progress_[i];
  if (p.subscribed) {
    // A subscription change on a wildcard subscription: nothing to do.
    return {};
  }
  p.subscribed = true;
  for (const auto& [name, version] : request.initial_resource_versions()) {
    known_[i][name] = version;
  }
  return onSnapshot(snapshot);
}

std::vector<DeltaProtocol::Response> DeltaProtocol::onSnapshot(const GroupSnapshot* snapshot) {
  std::vector<Response> out;
  if (snapshot == nullptr) {
    return out;
  }
  for (ResourceType t : allTypes()) {
    const int i = typeIndex(t);
    TypeProgress& p = progress_[i];
    Nonces& n = nonces_[i];
    const TypeSnapshot& ts = snapshot->type(t);
    if (!p.subscribed || (n.answered && p.sent_version == ts.version)) {
      continue;
    }
    DeltaUpdate update = computeDelta(ts, known_[i]);
    if (update.empty() && n.answered) {
      // The stream already holds exactly this content (e.g. the same resources under a new
      // version after a group switch): nothing to send. The node is as far as it was.
      if (p.acked_version == p.sent_version && p.nacked_version.empty()) {
        p.acked_version = ts.version;
      }
      n.last_nonce_version = ts.version;
      p.sent_version = ts.version;
      continue;
    }
    Response r;
    r.set_system_version_info(ts.version);
    r.set_type_url(typeUrl(t));
    r.set_nonce(nextNonce());
    r.mutable_resources()->Reserve(static_cast<int>(update.updated.size()));
    for (const NamedResource* res : update.updated) {
      auto* out_res = r.add_resources();
      out_res->set_name(res->name);
      out_res->set_version(res->version);
      *out_res->mutable_resource() = ts.any(*res);
      known_[i][res->name] = res->version;
    }
    for (std::string& name : update.removed) {
      known_[i].erase(name);
      r.add_removed_resources(std::move(name));
    }
    n.last_nonce = r.nonce();
    n.last_nonce_version = ts.version;
    n.answered = true;
    p.sent_version = ts.version;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ControlPlane
}  // namespace sluice
