#pragma once

#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "source/control_plane/ads_stream.h"
#include "source/control_plane/mesh_resources.h"

namespace sluice {
namespace ControlPlane {

// envoy.service.discovery.v3.AggregatedDiscoveryService for proxyless gRPC clients (a bootstrap
// with `server_features: ["xds_v3"]`), on the same port as Sluice's own ADS: each node's group
// config, translated by MeshCache, as Listener / RouteConfiguration / Cluster /
// ClusterLoadAssignment. State of the world and delta; streams as AdsService's.
class MeshAdsService final
    : public StreamHost,
      public envoy::service::discovery::v3::AggregatedDiscoveryService::CallbackService {
 public:
  MeshAdsService(const SnapshotCache& cache, const MeshCache& mesh, NodeRegistry& registry,
                 Clock clock = absl::Now);

  grpc::ServerBidiReactor<envoy::service::discovery::v3::DiscoveryRequest,
                          envoy::service::discovery::v3::DiscoveryResponse>*
  StreamAggregatedResources(grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                          envoy::service::discovery::v3::DeltaDiscoveryResponse>*
  DeltaAggregatedResources(grpc::CallbackServerContext* context) override;
};

}  // namespace ControlPlane
}  // namespace sluice
