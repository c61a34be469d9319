#pragma once

#include <array>
#include <deque>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "source/control_plane/mesh_resources.h"
#include "source/control_plane/node_registry.h"
#include "source/control_plane/stream_protocol.h"

namespace sluice {
namespace ControlPlane {

// The Envoy xDS v3 state machine of one proxyless gRPC stream, without any gRPC: requests and
// new mesh snapshots in, responses (in MeshType order) out. Not thread-safe.
//
// Unlike Sluice's own protocol, clients name the resources they want (gRPC's client always
// does): a response carries the subscribed resources that exist (an empty subscription is the
// wildcard: all of the type). Rules:
// - A request naming a nonce that is not the latest sent for its type is stale: ignored whole
//   (its subscription is repeated on the ACK of the newer response).
// - The latest nonce: ACK, or NACK with error_detail (recorded for `sluicectl status`; nothing
//   is resent until the type's content changes).
// - The first request of a type on a stream is always answered (a client reconnecting after a
//   sluice-cp restart gets its resources again), and so is a request that changes the names.
// - onSnapshot() pushes every subscribed type whose version changed.
class MeshProtocolBase {
 public:
  MeshProtocolBase() : progress_(kMeshTypeCount) {}

  const Progress& progress() const { return progress_; }
  void setNode(std::string id, std::string group) {
    node_id_ = std::move(id);
    group_ = std::move(group);
  }
  // The identity of a proxyless node from its first request (see docs/mesh.md): group from the
  // node metadata's "sluice_group", else node.cluster, else "default"; client from
  // user_agent_name / user_agent_version.
  static NodeRecord identify(const envoy::config::core::v3::Node& node, const std::string& peer,
                             const std::string& grpc_user_agent);

 protected:
  struct TypeState {
    // Names subscribed; empty with `wildcard` = all.
    std::set<std::string> names;
    bool wildcard = false;
    std::string last_nonce;
    std::string last_nonce_version;
  };

  std::string nextNonce() { return std::to_string(++nonce_counter_); }
  // ACK/NACK of the latest nonce; false for a stale one.
  bool ackOrNack(MeshType type, const std::string& nonce, const google::rpc::Status* error,
                 absl::Time now);
  void unknownType(const std::string& type_url);
  bool wants(const TypeState& s, const std::string& name) const {
    return s.wildcard || s.names.count(name) != 0;
  }

  Progress progress_;
  std::array<TypeState, kMeshTypeCount> state_;
  std::string node_id_;
  std::string group_;

 private:
  uint64_t nonce_counter_ = 0;
  absl::flat_hash_set<std::string> logged_;
};

// State of the world (what gRPC's client speaks).
class MeshSotwProtocol : public MeshProtocolBase {
 public:
  using Request = envoy::service::discovery::v3::DiscoveryRequest;
  using Response = envoy::service::discovery::v3::DiscoveryResponse;
  using Snapshot = MeshSnapshot;
  static constexpr char kApi[] = "sotw";

  // As SotwProtocol::enqueue: a waiting response is superseded by a newer one of its type.
  static void enqueue(std::deque<Response>& queue, std::vector<Response> responses);

  std::vector<Response> onRequest(const Request& request, const MeshSnapshot* snapshot,
                                  absl::Time now);
  std::vector<Response> onSnapshot(const MeshSnapshot* snapshot);

 private:
  Response build(MeshType t, const MeshSnapshot& snapshot);
  // Per type: the subscription the last response answered.
  std::array<std::set<std::string>, kMeshTypeCount> sent_names_;
  std::array<bool, kMeshTypeCount> sent_wildcard_ = {};
  std::array<bool, kMeshTypeCount> pending_ = {};
};

// Incremental.
class MeshDeltaProtocol : public MeshProtocolBase {
 public:
  using Request = envoy::service::discovery::v3::DeltaDiscoveryRequest;
  using Response = envoy::service::discovery::v3::DeltaDiscoveryResponse;
  using Snapshot = MeshSnapshot;
  static constexpr char kApi[] = "delta";

  static void enqueue(std::deque<Response>& queue, std::vector<Response> responses) {
    for (Response& r : responses) {
      queue.push_back(std::move(r));
    }
  }

  std::vector<Response> onRequest(const Request& request, const MeshSnapshot* snapshot,
                                  absl::Time now);
  std::vector<Response> onSnapshot(const MeshSnapshot* snapshot);

 private:
  // Sends what `t`'s subscription lacks; nothing when it is up to date (unless `force`).
  void update(MeshType t, const MeshSnapshot& snapshot, bool force, std::vector<Response>& out);
  // name -> content version the stream has, per type.
  std::array<absl::flat_hash_map<std::string, std::string>, kMeshTypeCount> known_;
  std::array<bool, kMeshTypeCount> answered_ = {};
};

}  // namespace ControlPlane
}  // namespace sluice
