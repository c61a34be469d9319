#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "source/common/grpc/common.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Extensions {
namespace GrpcStats {

// The counters of one gRPC service/method (or of the `other` bucket):
//   grpc.<service>.<method>.total          sluice_grpc_requests_total{grpc_service,grpc_method}
//   grpc.<service>.<method>.status.<code>  sluice_grpc_responses_total{...,grpc_status="<code>"}
// Status counters are made on first use: most methods only ever see a couple of codes.
class MethodStats {
 public:
  MethodStats(Stats::Store& store, std::string flat_prefix, Stats::Labels labels);
  Stats::Counter& total() { return *total_; }

 private:
  friend class MethodStatsRegistry;
  const std::string flat_prefix_;  // "grpc.<service>.<method>"
  const Stats::Labels labels_;
  Stats::Counter* total_;
  std::atomic<Stats::Counter*> status_[Grpc::kMaxStatus + 1] = {};
};

// Every service/method counted by the grpc_stats filters of the process (one registry, shared
// by every listener and config version, as the counters outlive config). At most `max_methods`
// pairs are counted on their own; any other call counts under `grpc.other`
// (grpc_service="other", grpc_method=""), and so does a path that is not /<service>/<method> in
// protobuf identifier characters.
//
// Thread safety: lookups on a worker hit that worker's own cache (indexed like the stats'
// writer slots, Stats::t_slot), with no lock and no shared write; a miss takes the registry's
// lock once per name and worker. Counters are the store's per-slot counters.
class MethodStatsRegistry {
 public:
  explicit MethodStatsRegistry(Stats::Store& store);

  // The counters of the call to `path` ("/package.Service/Method").
  MethodStats& forPath(absl::string_view path, uint32_t max_methods);
  // Counts a response with `code` (codes past 16 count as 2, UNKNOWN).
  void chargeStatus(MethodStats& stats, uint32_t code);
  // Distinct pairs counted on their own so far.
  size_t size() const;

 private:
  struct alignas(64) SlotCache {
    absl::flat_hash_map<std::string, MethodStats*> methods;
  };

  Stats::Store& store_;
  std::unique_ptr<SlotCache[]> caches_;  // one per writer slot
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodStats>> methods_ ABSL_GUARDED_BY(mu_);
  MethodStats other_;
};

}  // namespace GrpcStats
}  // namespace Extensions
}  // namespace sluice
