#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Stats {

// Requests per (route, consumer) for listeners with `metrics.per_consumer` (Kong prometheus's
// per_consumer). Consumers are only known when requests arrive (a JWT's subject, say), so the
// counters are made on first sight, on the worker that sees the pair first: that one time it
// takes this registry's lock and the store's. Every later request finds them in its worker's
// own map, without a lock. At most `max_consumers` distinct consumers get labels of their own,
// process-wide and for the process's life; requests of the others count as consumer "other".
// One per process (it outlives config versions, like the store).
class ConsumerStats {
 public:
  struct Counters {
    Counter* rq_class[6] = {};  // index by status / 100 (1..5)
    Counter* bytes_received = nullptr;
    Counter* bytes_sent = nullptr;
  };

  ConsumerStats(Store& store) : store_(store), caches_(store.slots()) {}

  // The counters of `consumer` on `route`, from the calling thread's slot (Stats::t_slot).
  Counters& get(absl::string_view route, absl::string_view consumer, uint32_t max_consumers);
  // Distinct consumers with labels of their own so far.
  size_t consumers() const;

 private:
  // The counters for the pair; `*own` false when they are the route's "other" ones.
  Counters& create(absl::string_view route, absl::string_view consumer, uint32_t max_consumers,
                   bool* own);

  Store& store_;
  // Per writer slot; only that slot's thread touches it. Keyed "route\0consumer"; consumers
  // over the cap map to their route's "other" counters, and at most kMaxRememberedOthers of
  // them are remembered.
  static constexpr size_t kMaxRememberedOthers = 4096;
  struct alignas(64) Cache {
    absl::flat_hash_map<std::string, Counters*> map;
    size_t others = 0;
  };
  std::vector<Cache> caches_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> consumers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<Counters>> all_ ABSL_GUARDED_BY(mu_);
};

}  // namespace Stats
}  // namespace sluice
