#include "source/control_plane/ads_service.h"

#include <vector>

#include "source/control_plane/mesh_protocol.h"
#include "source/control_plane/stream_protocol.h"

namespace sluice {
namespace ControlPlane {

NodeRecord identifyNode(const sluice::config::v1::Node& node, const std::string& peer,
                        const std::string& grpc_user_agent) {
  NodeRecord record;
  record.id = node.id().empty() ? peer : node.id();
  record.group = node.cluster().empty() ? kDefaultGroup : node.cluster();
  record.peer = peer;
  record.user_agent = node.user_agent().empty() ? grpc_user_agent : node.user_agent();
  return record;
}

NodeRecord identifyNode(const envoy::config::core::v3::Node& node, const std::string& peer,
                        const std::string& grpc_user_agent) {
  return MeshProtocolBase::identify(node, peer, grpc_user_agent);
}

void StreamHost::add(uint64_t id, DiscoveryStreamSharedPtr stream) {
  absl::MutexLock lock(&mu_);
  streams_[id] = std::move(stream);
}

void StreamHost::remove(uint64_t id) {
  DiscoveryStreamSharedPtr stream;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) {
      return;
    }
    stream = std::move(it->second);
    streams_.erase(it);
  }
  // Released outside mu_ (it may be the last reference).
}

void StreamHost::pushAll() {
  std::vector<DiscoveryStreamSharedPtr> streams;
  {
    absl::MutexLock lock(&mu_);
    streams.reserve(streams_.size());
    for (const auto& [id, s] : streams_) {
      streams.push_back(s);
    }
  }
  for (const auto& s : streams) {
    s->push();
  }
}

size_t StreamHost::streamCount() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

AdsService::AdsService(const SnapshotCache& cache, NodeRegistry& registry, Clock clock)
    : StreamHost(cache, nullptr, registry, std::move(clock)) {}

grpc::ServerBidiReactor<sluice::service::discovery::v1::DiscoveryRequest,
                        sluice::service::discovery::v1::DiscoveryResponse>*
AdsService::StreamAggregatedResources(grpc::CallbackServerContext* context) {
  return AdsStream<SotwProtocol>::start(*this, context);
}

grpc::ServerBidiReactor<sluice::service::discovery::v1::DeltaDiscoveryRequest,
                        sluice::service::discovery::v1::DeltaDiscoveryResponse>*
AdsService::DeltaAggregatedResources(grpc::CallbackServerContext* context) {
  return AdsStream<DeltaProtocol>::start(*this, context);
}

}  // namespace ControlPlane
}  // namespace sluice
