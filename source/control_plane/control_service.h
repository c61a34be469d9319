#pragma once

#include <functional>

#include "absl/time/time.h"
#include "sluice/service/control/v1/control.grpc.pb.h"
#include "source/control_plane/mesh_resources.h"
#include "source/control_plane/node_registry.h"
#include "source/control_plane/snapshot_cache.h"

namespace sluice {
namespace ControlPlane {

// The operator API (sluicectl): Apply, Validate, Diff, Status, Get. Unary calls on the callback
// API; Apply blocks its callback thread while it validates and writes the state file.
class ControlServiceImpl final
    : public sluice::service::control::v1::ControlService::CallbackService {
 public:
  // `mesh`: the proxyless translation, for the groups' targets and notes and the proxyless
  // nodes' versions; nullptr = none.
  ControlServiceImpl(SnapshotCache& cache, const NodeRegistry& registry,
                     const MeshCache* mesh = nullptr)
      : cache_(cache), registry_(registry), mesh_(mesh) {}

  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* context,
                                  const sluice::service::control::v1::ApplyRequest* request,
                                  sluice::service::control::v1::ApplyResponse* response) override;
  grpc::ServerUnaryReactor* Validate(
      grpc::CallbackServerContext* context,
      const sluice::service::control::v1::ValidateRequest* request,
      sluice::service::control::v1::ValidateResponse* response) override;
  grpc::ServerUnaryReactor* Diff(grpc::CallbackServerContext* context,
                                 const sluice::service::control::v1::DiffRequest* request,
                                 sluice::service::control::v1::DiffResponse* response) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const sluice::service::control::v1::StatusRequest* request,
                                   sluice::service::control::v1::StatusResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const sluice::service::control::v1::GetRequest* request,
                                sluice::service::control::v1::GetResponse* response) override;

  // The handlers without gRPC (tests).
  grpc::Status apply(const sluice::service::control::v1::ApplyRequest& request,
                     const std::string& peer, sluice::service::control::v1::ApplyResponse& out);
  grpc::Status validate(const sluice::service::control::v1::ValidateRequest& request,
                        sluice::service::control::v1::ValidateResponse& out) const;
  grpc::Status diff(const sluice::service::control::v1::DiffRequest& request,
                    sluice::service::control::v1::DiffResponse& out) const;
  grpc::Status status(sluice::service::control::v1::StatusResponse& out) const;
  grpc::Status get(const sluice::service::control::v1::GetRequest& request,
                   sluice::service::control::v1::GetResponse& out) const;

 private:
  SnapshotCache& cache_;
  const NodeRegistry& registry_;
  const MeshCache* const mesh_;
};

}  // namespace ControlPlane
}  // namespace sluice
