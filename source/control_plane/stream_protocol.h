#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "google/rpc/status.pb.h"
#include "sluice/service/discovery/v1/ads.pb.h"
#include "source/control_plane/group_snapshot.h"
#include "source/control_plane/resources.h"

namespace sluice {
namespace ControlPlane {

// Where one node stands for one resource type (what `sluicectl status` shows).
struct TypeProgress {
  // The node asked for this type on its stream.
  bool subscribed = false;
  // Version of the last response sent (or, after a reconnect, the version the node said it has).
  std::string sent_version;
  std::string acked_version;
  // Set while the node's last answer for the type was a NACK.
  std::string nacked_version;
  std::string nack_reason;
  absl::Time nack_time = absl::InfinitePast();
};
// Indexed by ResourceType::index(); typeCount() entries.
using Progress = std::vector<TypeProgress>;

// The xDS state machine of one stream, without any gRPC: requests and new snapshots in,
// responses (in ResourceType order) out. Not thread-safe; the stream serializes calls.
//
// Rules shared by both variants:
// - Nonces are unique per stream. A request naming a nonce that is not the latest sent for its
//   type is stale and changes nothing.
// - A request naming the latest nonce is an ACK, or a NACK when it carries error_detail. A NACK
//   is recorded (version, reason, time) and nothing is resent: the type is pushed again only
//   when its version changes (unlike go-control-plane, which answers the NACK's old
//   version_info with the same rejected snapshot, in a loop).
// - onSnapshot() pushes every subscribed type whose version differs from the one the stream
//   was last sent, in ResourceType order, whether or not the previous push was ACKed.
class StreamProtocol {
 public:
  StreamProtocol() : progress_(typeCount()), nonces_(typeCount()) {}

  const Progress& progress() const { return progress_; }
  // For log lines.
  void setNode(std::string id, std::string group) {
    node_id_ = std::move(id);
    group_ = std::move(group);
  }

 protected:
  struct Nonces {
    // The latest nonce sent for the type and the version it carried.
    std::string last_nonce;
    std::string last_nonce_version;
    // The first response for the type went out (an initial request is always answered).
    bool answered = false;
  };

  std::string nextNonce() { return std::to_string(++nonce_counter_); }
  // Handles a request that names a nonce. Returns false for a stale nonce.
  bool ackOrNack(ResourceType type, const std::string& nonce, const google::rpc::Status* error,
                 absl::Time now);
  // A type URL this server does not serve: logged once per stream, otherwise ignored.
  void unknownType(const std::string& type_url);
  // The type a subscription request is for; nullopt when the request was an ACK or NACK, or
  // names a type this server does not serve (both handled here).
  template <class Request>
  std::optional<ResourceType> subscriptionType(const Request& request, absl::Time now) {
    auto type = typeFromUrl(request.type_url());
    if (!type) {
      unknownType(request.type_url());
      return std::nullopt;
    }
    if (!request.response_nonce().empty()) {
      ackOrNack(*type, request.response_nonce(),
                request.has_error_detail() ? &request.error_detail() : nullptr, now);
      return std::nullopt;
    }
    return type;
  }
  // A request naming resources: sluice serves every resource of a type (wildcard).
  void namedSubscription(const std::string& type_url);

  Progress progress_;
  std::vector<Nonces> nonces_;  // Indexed by ResourceType::index().
  std::string node_id_;
  std::string group_;

 private:
  uint64_t nonce_counter_ = 0;
  absl::flat_hash_set<std::string> logged_;
};

// State of the world: every response carries all resources of its type.
class SotwProtocol : public StreamProtocol {
 public:
  using Request = sluice::service::discovery::v1::DiscoveryRequest;
  using Response = sluice::service::discovery::v1::DiscoveryResponse;
  using Snapshot = GroupSnapshot;
  static constexpr char kApi[] = "sotw";

  // Adds `responses` to a stream's queue of responses waiting to be written. A waiting
  // response is superseded by a newer one of its type (each carries the whole set), and what
  // waits is kept in type order: each is the latest of its type, so a resource always arrives
  // after those it names (make-before-break), whatever versions the queue mixed.
  static void enqueue(std::deque<Response>& queue, std::vector<Response> responses);

  // `snapshot`: the node group's current config, nullptr when there is none yet (requests are
  // then answered once there is).
  std::vector<Response> onRequest(const Request& request, const GroupSnapshot* snapshot,
                                  absl::Time now);
  std::vector<Response> onSnapshot(const GroupSnapshot* snapshot);
};

// Incremental: responses carry the resources whose content version differs from what the
// stream has, and the names it has that are gone.
class DeltaProtocol : public StreamProtocol {
 public:
  using Request = sluice::service::discovery::v1::DeltaDiscoveryRequest;
  using Response = sluice::service::discovery::v1::DeltaDiscoveryResponse;
  using Snapshot = GroupSnapshot;
  static constexpr char kApi[] = "delta";

  // Adds `responses` to a stream's queue, in order (each delta builds on the previous one).
  static void enqueue(std::deque<Response>& queue, std::vector<Response> responses) {
    for (Response& r : responses) {
      queue.push_back(std::move(r));
    }
  }

  std::vector<Response> onRequest(const Request& request, const GroupSnapshot* snapshot,
                                  absl::Time now);
  std::vector<Response> onSnapshot(const GroupSnapshot* snapshot);

  // name -> content version the stream is known to have, per type.
  const absl::flat_hash_map<std::string, std::string>& known(ResourceType type) const {
    return known_[typeIndex(type)];
  }

 private:
  // Indexed by ResourceType::index().
  std::vector<absl::flat_hash_map<std::string, std::string>> known_ =
      std::vector<absl::flat_hash_map<std::string, std::string>>(typeCount());
};

}  // namespace ControlPlane
}  // namespace sluice
