#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "source/common/stats/stats.h"
#include "source/extensions/filters/http/rate_limit/policy.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

// The counts of one window of one key: a ring of the current bucket and `older_buckets` older
// ones (FIXED_WINDOW: just the current one). The Redis script keeps the same buckets in a hash.
struct WindowCounter {
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::min();
  int64_t last = kNever;  // index of the newest bucket the ring holds
  uint64_t total = 0;     // sum of counts
  std::array<uint32_t, kSlidingBuckets + 1> counts{};

  // Moves the ring to bucket `k` (forgets buckets older than k - older). A clock that went
  // backwards keeps counting in the newest bucket. Returns the bucket now current.
  int64_t advance(int64_t k, uint32_t older);
  // Requests counted in buckets [last - older, last].
  uint64_t sum() const { return total; }
  void add(int64_t bucket, uint32_t older) {
    ++counts[bucket % (older + 1)];
    ++total;
  }
  uint32_t at(int64_t bucket, uint32_t older) const { return counts[bucket % (older + 1)]; }
};

// Test-and-test-and-set spinlock for critical sections of a few hundred instructions (a hash
// lookup and a handful of additions), where absl::Mutex's bookkeeping costs as much as the work.
// A waiter that spins too long yields its core (the holder may have been preempted).
class ABSL_LOCKABLE SpinLock {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < 128) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#elif defined(__aarch64__)
          asm volatile("yield");
#endif
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() ABSL_UNLOCK_FUNCTION() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

class ABSL_SCOPED_LOCKABLE SpinLockHolder {
 public:
  explicit SpinLockHolder(SpinLock& l) ABSL_EXCLUSIVE_LOCK_FUNCTION(l) : l_(l) { l_.lock(); }
  ~SpinLockHolder() ABSL_UNLOCK_FUNCTION() { l_.unlock(); }

 private:
  SpinLock& l_;
};

// Decides one request against `windows` and, if every window has room, counts it in each.
// `state[w.kind]` is the counter of window `w`. Pure arithmetic: the caller holds the lock.
// Returns the latest time (ms) at which any touched counter still matters (for expiry).
int64_t decide(const std::vector<WindowSpec>& windows, WindowCounter* state, int64_t now_ms,
               Decision& out);

// LOCAL counters: one budget per key for the whole process, shared by all workers. Keys are
// spread over kShards shards, each with its own spinlock and hash map, so workers contend only
// when they hit the same shard at the same moment; a decision and its increment happen under
// one lock, which makes FIXED_WINDOW exact under any concurrency. Keys expire once their
// newest bucket has left every window (swept per shard at most once a second).
//
// Thread-safe. Process-wide: created once through the SingletonManager and kept across config
// snapshots (a config push never resets counters).
class LocalStore {
 public:
  static constexpr size_t kShards = 64;

  // `stats` may be null (validation, tests): then no `rate_limit.local_keys` gauge.
  explicit LocalStore(Stats::Store* stats);

  // Decides and counts one request of `identity` under `policy` at wall time `now_ms`.
  void consume(const CompiledPolicy& policy, absl::string_view identity, int64_t now_ms,
               Decision& out);
  Decision consume(const CompiledPolicy& policy, absl::string_view identity, int64_t now_ms) {
    Decision d;
    consume(policy, identity, now_ms, d);
    return d;
  }

  // Keys held (locks every shard; tests and admin).
  size_t size() const;

 private:
  struct Entry {
    int64_t expires_ms = 0;
    std::array<WindowCounter, 6> windows;  // by WindowSpec::kind
  };
  struct alignas(64) Shard {
    mutable SpinLock mu;
    absl::flat_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
    int64_t last_sweep_ms ABSL_GUARDED_BY(mu) = 0;
  };

  void sweepLocked(Shard& shard, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  std::unique_ptr<Shard[]> shards_;
  Stats::Gauge* keys_ = nullptr;
};
using LocalStoreSharedPtr = std::shared_ptr<LocalStore>;

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
