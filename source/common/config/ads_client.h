#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "sluice/service/discovery/v1/ads.pb.h"
#include "source/common/config/grpc_tls.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Config {

// Every resource type, in make-before-break order: what a route or listener refers to arrives
// before it (Config::resourceLists(): Secret, Cluster, ClusterEndpoints, the policy lists,
// RouteTable, Listener).
const std::vector<std::string>& resourceTypeUrls();
// "Cluster" for ".../sluice.config.v1.Cluster".
std::string shortTypeName(const std::string& type_url);

struct ReceivedResource {
  // Per-resource version (delta); empty with state of the world.
  std::string version;
  google::protobuf::Any resource;
};
// Resources of one type by name.
using ResourceSet = std::map<std::string, ReceivedResource>;

class AdsCallbacks {
 public:
  virtual ~AdsCallbacks() = default;
  // Main thread. `resources` is the complete new set of `type_url` (a delta already applied to
  // the last accepted set). OK: accepted (ACK). An error: rejected (NACK with its message) and
  // the last accepted set of the type stays.
  virtual absl::Status onConfigUpdate(const std::string& type_url, const ResourceSet& resources,
                                      const std::string& version) = 0;
  // The name of a resource (decoding it), or why it can't be decoded.
  virtual absl::StatusOr<std::string> resourceName(const std::string& type_url,
                                                   const google::protobuf::Any& resource) = 0;
};

struct AdsOptions {
  std::string address;
  bool delta = false;
  // TLS to the control plane (bootstrap control_plane.tls); cleartext when unset.
  std::optional<GrpcTlsPem> tls;
  // The name the server certificate must carry; empty: the host of `address`.
  std::string tls_server_name;
  sluice::config::v1::Node node;
  std::chrono::milliseconds retry_interval{250};
  std::chrono::milliseconds max_retry_interval{10000};
};

class AdsStreamBase;

// The data plane's end of the ADS stream (xDS v3 semantics): subscribes to every type, hands
// each response to the callbacks on the main thread, ACKs or NACKs it, and reconnects with
// jittered exponential backoff when the stream breaks, resuming from what it has (state of the
// world: the version of each type; delta: the version of each resource). gRPC runs the stream
// on its own threads; everything here runs on the main dispatcher.
class AdsClient {
 public:
  struct TypeState {
    std::string version;  // last accepted
    ResourceSet resources;
    bool received = false;  // a response was accepted (or rejected) since start
    std::string last_error;
    std::string rejected_version;
    std::chrono::system_clock::time_point last_update{};
    uint64_t accepted = 0;
    uint64_t rejected = 0;
  };

  AdsClient(Event::Dispatcher& main, AdsOptions options, AdsCallbacks& callbacks,
            Stats::Store* stats);
  // Cancels the stream and waits until gRPC has let go of it.
  ~AdsClient();

  void start();
  bool connected() const { return connected_; }
  // Every type has had its first response.
  bool initialized() const;
  const TypeState& state(const std::string& type_url) const { return types_.at(type_url); }
  const AdsOptions& options() const { return options_; }
  uint64_t reconnects() const { return reconnects_; }

  // Called by the transport (through the main dispatcher).
  void onSotwResponse(uint64_t stream_id,
                      const sluice::service::discovery::v1::DiscoveryResponse& response);
  void onDeltaResponse(uint64_t stream_id,
                       const sluice::service::discovery::v1::DeltaDiscoveryResponse& response);
  void onClosed(uint64_t stream_id, int code, const std::string& message);

 private:
  void connect();
  void scheduleReconnect();
  // The server answered (initial metadata or a response): connected; backoff resets.
  void onStreamUp();
  // Validates and applies `candidate` (rejected at once with `decode_errors` when there are
  // any); returns the NACK reason or "" on success. Counts and logs either way.
  std::string apply(const std::string& type_url, const ResourceSet& candidate,
                    const std::string& version, const std::vector<std::string>& decode_errors);
  void setConnected(bool c);

  Event::Dispatcher& main_;
  AdsOptions options_;
  AdsCallbacks& callbacks_;
  // A fresh channel (and subchannel) for the next attempt.
  void newChannel();
  std::shared_ptr<void> channel_;  // grpc::Channel (keeps grpc++ headers out of this one)
  std::unique_ptr<AdsStreamBase> stream_;
  uint64_t stream_id_ = 0;
  bool sent_node_ = false;
  bool connected_ = false;
  bool shutting_down_ = false;
  std::chrono::milliseconds backoff_{0};
  Event::TimerPtr retry_timer_;
  uint64_t reconnects_ = 0;
  // Why the last attempt failed (logged once per distinct reason).
  std::string last_failure_;
  std::map<std::string, TypeState> types_;
  Stats::Gauge* connected_gauge_ = nullptr;
  Stats::Counter* stream_opened_ = nullptr;
  Stats::Counter* stream_closed_ = nullptr;
  absl::flat_hash_map<std::string, Stats::Counter*> accepted_stat_;
  absl::flat_hash_map<std::string, Stats::Counter*> rejected_stat_;
};

}  // namespace Config
}  // namespace sluice
