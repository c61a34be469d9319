#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "source/control_plane/stream_protocol.h"

namespace sluice {
namespace ControlPlane {

// What is known about a data plane, by node id.
struct NodeRecord {
  std::string id;
  std::string group;
  bool connected = false;
  // "sluice" (a Sluice data plane on sluice.service.discovery.v1) or "grpc" (a proxyless gRPC
  // client on envoy.service.discovery.v3, docs/mesh.md).
  std::string kind = "sluice";
  // "sotw" or "delta".
  std::string api;
  // Proxyless nodes: the xDS client named by the node (user_agent_name and version), e.g.
  // "gRPC C-core 1.51.1".
  std::string client;
  // Names of the entries of `types` when they are not Sluice's ResourceTypes (proxyless nodes:
  // meshTypeName() order); empty for Sluice data planes.
  std::vector<std::string> type_names;
  std::string peer;
  std::string user_agent;
  absl::Time connected_since;
  absl::Time last_seen;
  Progress types = Progress(typeCount());
  // The stream the record follows: the newest one of the node id.
  uint64_t stream_id = 0;
};

// Every data plane seen, connected or not. When one node id has two streams, the newest wins:
// updates and the disconnect of the older one are ignored. Disconnected nodes are kept (with
// connected = false) up to `max_disconnected`, the longest gone dropped first. Thread-safe.
class NodeRegistry {
 public:
  explicit NodeRegistry(size_t max_disconnected = 10000) : max_disconnected_(max_disconnected) {}

  uint64_t newStreamId();
  // `record` carries the identity; its stream_id names the stream.
  void connected(NodeRecord record);
  void update(uint64_t stream_id, const std::string& id, const Progress& types, absl::Time now);
  void disconnected(uint64_t stream_id, const std::string& id, absl::Time now);

  // Sorted by group, then id.
  std::vector<NodeRecord> nodes() const;

 private:
  void pruneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_disconnected_;
  mutable absl::Mutex mu_;
  uint64_t last_stream_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, NodeRecord> nodes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ControlPlane
}  // namespace sluice
