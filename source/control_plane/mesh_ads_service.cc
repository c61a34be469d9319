#include "source/control_plane/mesh_ads_service.h"

#include "source/control_plane/mesh_protocol.h"

namespace sluice {
namespace ControlPlane {

MeshAdsService::MeshAdsService(const SnapshotCache& cache, const MeshCache& mesh,
                               NodeRegistry& registry, Clock clock)
    : StreamHost(cache, &mesh, registry, std::move(clock)) {}

grpc::ServerBidiReactor<envoy::service::discovery::v3::DiscoveryRequest,
                        envoy::service::discovery::v3::DiscoveryResponse>*
MeshAdsService::StreamAggregatedResources(grpc::CallbackServerContext* context) {
  return AdsStream<MeshSotwProtocol>::start(*this, context);
}

grpc::ServerBidiReactor<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                        envoy::service::discovery::v3::DeltaDiscoveryResponse>*
MeshAdsService::DeltaAggregatedResources(grpc::CallbackServerContext* context) {
  return AdsStream<MeshDeltaProtocol>::start(*this, context);
}

}  // namespace ControlPlane
}  // namespace sluice
