#pragma once

#include <cstdint>
#include <memory>

#include "sluice/service/discovery/v1/ads.grpc.pb.h"
#include "source/control_plane/ads_stream.h"
#include "source/control_plane/node_registry.h"
#include "source/control_plane/snapshot_cache.h"

namespace sluice {
namespace ControlPlane {

// AggregatedDiscoveryService on gRPC's callback API: no thread per stream. Each stream is a
// reactor with one read and at most one write in flight and its own queue of responses; pushes
// come from whichever thread published a config (see SnapshotCache::setOnPublish).
class AdsService final
    : public StreamHost,
      public sluice::service::discovery::v1::AggregatedDiscoveryService::CallbackService {
 public:
  AdsService(const SnapshotCache& cache, NodeRegistry& registry, Clock clock = absl::Now);

  grpc::ServerBidiReactor<sluice::service::discovery::v1::DiscoveryRequest,
                          sluice::service::discovery::v1::DiscoveryResponse>*
  StreamAggregatedResources(grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<sluice::service::discovery::v1::DeltaDiscoveryRequest,
                          sluice::service::discovery::v1::DeltaDiscoveryResponse>*
  DeltaAggregatedResources(grpc::CallbackServerContext* context) override;
};

}  // namespace ControlPlane
}  // namespace sluice
