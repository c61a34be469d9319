#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sluice/service/discovery/v1/ads.grpc.pb.h"
#include "source/control_plane/node_registry.h"
#include "source/control_plane/snapshot_cache.h"

namespace sluice {
namespace ControlPlane {

// A data-plane stream, as the service sees it.
class DiscoveryStream {
 public:
  virtual ~DiscoveryStream() = default;
  // Sends what changed in the stream's group config since it was last pushed. Any thread.
  virtual void push() = 0;
};
using DiscoveryStreamSharedPtr = std::shared_ptr<DiscoveryStream>;

// AggregatedDiscoveryService on gRPC's callback API: no thread per stream. Each stream is a
// reactor with one read and at most one write in flight and its own queue of responses; pushes
// come from whichever thread published a config (see SnapshotCache::setOnPublish).
class AdsService final
    : public sluice::service::discovery::v1::AggregatedDiscoveryService::CallbackService {
 public:
  using Clock = std::function<absl::Time()>;

  AdsService(const SnapshotCache& cache, NodeRegistry& registry, Clock clock = absl::Now);

  grpc::ServerBidiReactor<sluice::service::discovery::v1::DiscoveryRequest,
                          sluice::service::discovery::v1::DiscoveryResponse>*
  StreamAggregatedResources(grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<sluice::service::discovery::v1::DeltaDiscoveryRequest,
                          sluice::service::discovery::v1::DeltaDiscoveryResponse>*
  DeltaAggregatedResources(grpc::CallbackServerContext* context) override;

  // Pushes the current config to every open stream (each sends only what changed for it).
  void pushAll();
  size_t streamCount() const;

  // Used by the streams.
  const SnapshotCache& cache() const { return cache_; }
  NodeRegistry& registry() { return registry_; }
  absl::Time now() const { return clock_(); }
  void add(uint64_t id, DiscoveryStreamSharedPtr stream);
  void remove(uint64_t id);

 private:
  const SnapshotCache& cache_;
  NodeRegistry& registry_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, DiscoveryStreamSharedPtr> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ControlPlane
}  // namespace sluice
