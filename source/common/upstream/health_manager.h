#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/cluster_state.h"
#include "source/common/upstream/health_checker.h"

namespace sluice {
namespace Upstream {

// The main thread's side of upstream health: owns the state registry (health that survives
// config swaps), runs the active health checks of every cluster that configures them, decides
// outlier ejections (reported by workers through ClusterState::reportOutcome) and their end,
// and keeps the health gauges. Workers only read the endpoints' atomic flags.
//
// Main thread only.
class HealthManager : public OutlierEventSink {
 public:
  // `stats` may be null (tests).
  HealthManager(Event::Dispatcher& main, Stats::Store* stats);
  ~HealthManager() override;

  // Where ClusterInfo::create gets the shared state objects.
  ClusterStateRegistry& registry() { return registry_; }

  // After each config publish: starts, keeps or stops health checks and outlier detection for
  // the clusters of the new config. Checks of endpoints whose cluster and health_check config
  // are unchanged keep running undisturbed.
  void update(const absl::flat_hash_map<std::string, ClusterInfoConstSharedPtr>& clusters);

  // OutlierEventSink
  void onConsecutiveFailures(const EndpointStateSharedPtr& endpoint, OutlierReason reason) override;

  // Healthy endpoints of `cluster` right now (/clusters).
  static size_t healthyCount(const ClusterInfo& cluster);

 private:
  struct Managed {
    std::string name;
    ClusterInfoConstSharedPtr info;
    std::shared_ptr<const HealthCheckConfig> health_check;  // null: no active checks
    std::string health_check_config;                        // serialized, to tell changes
    absl::flat_hash_map<std::string, HealthCheckSessionPtr> sessions;  // by endpoint address
    absl::flat_hash_map<std::string, Event::TimerPtr> uneject_timers;  // by endpoint address
    Event::TimerPtr outlier_timer;
    std::chrono::milliseconds outlier_interval{0};
    Stats::Counter* hc_attempt = nullptr;
    Stats::Counter* hc_success = nullptr;
    Stats::Counter* hc_failure = nullptr;
    Stats::Counter* ejections_enforced = nullptr;
    Stats::Counter* ejections_overflow = nullptr;
    Stats::Gauge* ejections_active = nullptr;
    Stats::Gauge* membership_healthy = nullptr;
    int64_t ejections_active_value = 0;
    int64_t membership_healthy_value = 0;
  };

  void updateHealthChecks(Managed& m);
  void updateOutlierDetection(Managed& m);
  void onHealthCheckResult(Managed& m, EndpointState& endpoint, bool healthy,
                           const std::string& failure);
  void eject(Managed& m, EndpointState& endpoint, const std::string& reason);
  void uneject(Managed& m, const std::string& address);
  void onOutlierInterval(Managed& m);
  // After flags changed: workers rebuild their healthy sets; gauges follow.
  void healthChanged(Managed& m);
  void refreshGauges(Managed& m);
  void setEndpointGauge(EndpointState& endpoint, int64_t value);

  Event::Dispatcher& main_;
  Stats::Store* stats_;
  ClusterStateRegistry registry_;
  absl::flat_hash_map<std::string, std::unique_ptr<Managed>> clusters_;
  uint64_t seed_ = 0x5eed;
};

}  // namespace Upstream
}  // namespace sluice
