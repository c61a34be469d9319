#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Upstream {

// Health flags of an endpoint (EndpointState::flags). An endpoint with none set is healthy.
enum HealthFlag : uint32_t {
  // Active health checking says unhealthy.
  kFailedActiveHealthCheck = 0x1,
  // Ejected by outlier detection.
  kFailedOutlierCheck = 0x2,
};

// What one upstream attempt says about its endpoint, for outlier detection.
enum class Outcome : uint8_t {
  // Any response below 500.
  Success,
  // 500, 501 or 505-599.
  Http5xx,
  // 502, 503 or 504.
  GatewayError,
  // Connect failure or timeout, connection reset before the response, per-try timeout.
  LocalFailure,
};

enum class OutlierReason : uint8_t { Consecutive5xx, ConsecutiveGatewayFailure };

// The outlier-detection settings of a cluster, compiled from its config (see ClusterInfo).
struct OutlierConfig {
  bool enabled = false;
  uint32_t consecutive_5xx = 5;              // 0 = off
  uint32_t consecutive_gateway_failure = 0;  // 0 = off
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds base_ejection_time{30000};
  std::chrono::milliseconds max_ejection_time{300000};
  uint32_t max_ejection_percent = 10;
};

// The health of one endpoint of one cluster, shared by every config version that has this
// endpoint (keyed by cluster name + address in ClusterStateRegistry), so a config push never
// resets it.
//
// Threads: `flags` is written by the main thread only and read by workers (relaxed: a worker
// that sees a change one request late is fine). The consecutive-failure counters are written
// by workers with relaxed atomics. Everything under "main thread only" is touched by the main
// thread alone (health checker, outlier detector, /clusters).
class EndpointState {
 public:
  EndpointState(std::string cluster, std::string address)
      : cluster_(std::move(cluster)), address_(std::move(address)) {}

  const std::string& cluster() const { return cluster_; }
  const std::string& address() const { return address_; }
  uint32_t flags() const { return flags_.load(std::memory_order_relaxed); }
  bool healthy() const { return flags() == 0; }

  // Main thread: sets or clears `flag`; returns true if that changed the flags.
  bool setFlag(uint32_t flag, bool on) {
    const uint32_t old = flags_.load(std::memory_order_relaxed);
    const uint32_t next = on ? (old | flag) : (old & ~flag);
    if (next == old) {
      return false;
    }
    flags_.store(next, std::memory_order_relaxed);
    return true;
  }

  // Worker-written.
  std::atomic<uint32_t> consecutive_5xx{0};
  std::atomic<uint32_t> consecutive_gateway_failure{0};

  // Main thread only.
  struct ActiveHealth {
    bool checked = false;  // a check has finished since the endpoint appeared
    uint32_t successes_in_row = 0;
    uint32_t failures_in_row = 0;
    uint64_t checks = 0;
    uint64_t failures = 0;
    std::string last_failure;  // "connect failed", "timeout", "status 503", ...
  } hc;
  struct Outlier {
    uint32_t ejection_multiplier = 0;  // grows with each ejection, decays while back in
    uint64_t ejections = 0;
    std::chrono::milliseconds last_ejection_time{0};
    std::chrono::steady_clock::time_point ejected_until;
    std::chrono::steady_clock::time_point returned_at;
    std::string last_reason;
  } outlier;
  Stats::Gauge* healthy_gauge = nullptr;
  int64_t healthy_gauge_value = 0;

 private:
  const std::string cluster_;
  const std::string address_;
  std::atomic<uint32_t> flags_{0};
};
using EndpointStateSharedPtr = std::shared_ptr<EndpointState>;

// Told on the main thread when an endpoint's consecutive failures reach a threshold.
class OutlierEventSink {
 public:
  virtual ~OutlierEventSink() = default;
  virtual void onConsecutiveFailures(const EndpointStateSharedPtr& endpoint,
                                     OutlierReason reason) = 0;
};

// Process-wide mutable state of a cluster, shared by every config version of the cluster (by
// name) and by all workers: the health generation and the circuit-breaker counters. Workers
// use only atomics here; no lock is ever taken on the request path.
class ClusterState {
 public:
  // `main`/`sink` null: nobody is told about outlier events (validation, unit tests).
  ClusterState(std::string name, Event::Dispatcher* main, OutlierEventSink* sink)
      : name_(std::move(name)), main_(main), sink_(sink) {}

  const std::string& name() const { return name_; }

  // Bumped by the main thread after it changed any endpoint's flags: a worker's load balancer
  // rebuilds its healthy set when the generation it saw last differs.
  uint64_t healthGeneration() const { return health_generation_.load(std::memory_order_acquire); }
  void bumpHealthGeneration() { health_generation_.fetch_add(1, std::memory_order_release); }

  // Circuit breakers: takes one unit of `counter` unless that would pass `max`.
  static bool tryAcquire(std::atomic<uint32_t>& counter, uint32_t max) {
    if (counter.fetch_add(1, std::memory_order_relaxed) >= max) {
      counter.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  static void release(std::atomic<uint32_t>& counter) {
    counter.fetch_sub(1, std::memory_order_relaxed);
  }
  std::atomic<uint32_t> rq_active{0};
  std::atomic<uint32_t> rq_pending{0};
  std::atomic<uint32_t> rq_queued{0};  // waiting for an rq_active slot
  std::atomic<uint32_t> cx_active{0};
  std::atomic<uint32_t> retries_active{0};

  // Worker: records an attempt's outcome for outlier detection. Crossing a threshold posts an
  // event to the main thread, which decides about the ejection.
  void reportOutcome(const EndpointStateSharedPtr& endpoint, Outcome outcome,
                     const OutlierConfig& config);

 private:
  void notify(const EndpointStateSharedPtr& endpoint, OutlierReason reason);

  const std::string name_;
  Event::Dispatcher* const main_;
  OutlierEventSink* const sink_;
  std::atomic<uint64_t> health_generation_{0};
};
using ClusterStateSharedPtr = std::shared_ptr<ClusterState>;

// Owns the state objects by cluster name and endpoint address, so new config versions find the
// state of their unchanged endpoints. Main thread only.
class ClusterStateRegistry {
 public:
  ClusterStateRegistry(Event::Dispatcher* main, OutlierEventSink* sink)
      : main_(main), sink_(sink) {}

  ClusterStateSharedPtr cluster(const std::string& name);
  EndpointStateSharedPtr endpoint(const std::string& cluster, const std::string& address);
  // Existing state or null.
  EndpointStateSharedPtr findEndpoint(const std::string& cluster, const std::string& address) const;
  // Forgets states that no config (snapshot, in-flight request) uses any more. `on_drop` runs
  // for each dropped endpoint first.
  void prune(const std::function<void(EndpointState&)>& on_drop);

 private:
  Event::Dispatcher* const main_;
  OutlierEventSink* const sink_;
  absl::flat_hash_map<std::string, ClusterStateSharedPtr> clusters_;
  absl::flat_hash_map<std::string, EndpointStateSharedPtr> endpoints_;  // "cluster\naddress"
};

}  // namespace Upstream
}  // namespace sluice
