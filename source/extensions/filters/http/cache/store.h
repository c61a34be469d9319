#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "source/common/buffer/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/headers.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Extensions {
namespace Cache {

using SteadyTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

// One stored response, or a Vary marker (the names a response varied on: its variants are
// stored under the key extended with those request headers). Immutable once in the store;
// shared by the hits of every worker (a hit holds a reference while it sends the body).
struct CachedResponse {
  // -- the response
  uint32_t status = 200;
  // Without framing (content-length, transfer-encoding), hop-by-hop fields, Age, Set-Cookie,
  // X-Cache-*, X-Request-Id; with a Date.
  std::vector<Http::HeaderEntry> headers;
  Buffer::SharedSlicePtr body{nullptr, nullptr};  // null for an empty body
  uint64_t body_size = 0;
  std::string content_length;  // body_size as text
  // Validators (empty: none) and Last-Modified as seconds since the epoch (-1: none).
  std::string etag;
  std::string last_modified;
  int64_t last_modified_epoch = -1;
  // -- freshness (RFC 9111 4.2): `initial_age` old at `stored_at` (the corrected initial age;
  // 0 with cache_control off), fresh for `lifetime`; then served stale for up to
  // `stale_while_revalidate` while one request refreshes it, and up to `stale_if_error` when the
  // upstream fails. `no_stale`: must-revalidate, proxy-revalidate or s-maxage (never stale).
  SteadyTime stored_at;
  Millis initial_age{0};
  Millis lifetime{0};
  Millis stale_while_revalidate{0};
  Millis stale_if_error{0};
  bool no_stale = false;
  // public, must-revalidate or s-maxage (RFC 9111 3.5): may answer a request that carries
  // Authorization (with cache_control on).
  bool authorized_reuse = false;
  // -- Vary marker
  bool vary_marker = false;
  std::vector<std::string> vary;  // lower-case request header names
  // -- bookkeeping
  std::string key_digest;  // SHA-256 (hex) of the base key: X-Cache-Key, DELETE /cache?key=
  uint64_t charge = 0;     // bytes counted against the store's capacity

  Millis age(SteadyTime now) const {
    return initial_age + std::chrono::duration_cast<Millis>(now - stored_at);
  }
  // How long ago it went stale (<= 0: still fresh).
  Millis staleness(SteadyTime now) const { return age(now) - lifetime; }
};
using CachedResponseConstSharedPtr = std::shared_ptr<const CachedResponse>;

#define ALL_CACHE_COUNTERS(COUNTER) \
  COUNTER(hits)                     \
  COUNTER(misses)                   \
  COUNTER(refreshes)                \
  COUNTER(bypasses)                 \
  COUNTER(stored)                   \
  COUNTER(revalidated)              \
  COUNTER(evictions)                \
  COUNTER(collapsed_waits)          \
  COUNTER(stale_served)             \
  COUNTER(purged)
#define ALL_CACHE_GAUGES(GAUGE) \
  GAUGE(bytes)                  \
  GAUGE(entries)

// Process-wide: `cache.<name>` / `sluice_cache_<name>_total` (counters), `sluice_cache_<name>`
// (gauges). See docs/operations.md.
struct CacheStats {
#define CACHE_DECLARE_COUNTER(name) Stats::Counter* name = nullptr;
#define CACHE_DECLARE_GAUGE(name) Stats::Gauge* name = nullptr;
  ALL_CACHE_COUNTERS(CACHE_DECLARE_COUNTER)
  ALL_CACHE_GAUGES(CACHE_DECLARE_GAUGE)
#undef CACHE_DECLARE_COUNTER
#undef CACHE_DECLARE_GAUGE
  static CacheStats create(Stats::Store& store);
  // Every stat pointing at one sink: for a store without a stats store (tests, validation).
  static CacheStats discarded();
};

class CacheStore;

// A request waiting for another request's fetch of the same key. Created and read by the
// waiting filter on its worker; the fetching one (any worker) only posts `wake` to `dispatcher`.
struct Waiter {
  Event::Dispatcher* dispatcher = nullptr;
  // Run on `dispatcher` when the fetch ended (stored or not). Cleared by the waiting filter when
  // its stream goes away (its own thread): a wake posted meanwhile then does nothing.
  std::function<void()> wake;
};
using WaiterSharedPtr = std::shared_ptr<Waiter>;

// The bytes the store may hold while a config that asks for them is alive: the store's
// capacity is the largest claim (each listener's max_bytes), set again when claims come and go.
class CapacityClaim {
 public:
  CapacityClaim(std::shared_ptr<CacheStore> store, uint64_t bytes)
      : store_(std::move(store)), bytes_(bytes) {}
  ~CapacityClaim();
  uint64_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<CacheStore> store_;
  uint64_t bytes_;
};

// The response cache of the process, shared by every worker: a hash table of keys split into
// kShards shards, each with its own mutex, its own entries in LRU order, and the fetches in
// flight for its keys (request collapsing). The byte bound is global: inserting past it
// evicts the least recently used entry of the whole store (the oldest of the shards' LRU
// tails), one shard lock at a time. A key's Vary marker and its variants share a shard (the
// shard is chosen by the base key). Thread-safe.
class CacheStore : public std::enable_shared_from_this<CacheStore> {
 public:
  static constexpr size_t kShards = 16;

  explicit CacheStore(CacheStats stats) : stats_(stats) {}
  ~CacheStore();

  // The shard of a base key.
  static size_t shardOf(absl::string_view base_key);

  // The entry under `key` (in `shard`), made the most recently used; null when there is none.
  CachedResponseConstSharedPtr lookup(size_t shard, absl::string_view key, SteadyTime now);

  // Request collapsing. Called by a request that must go upstream for `key`, after lookup()
  // returned `seen` (null or an entry it can't use):
  //  - Retry: the entry changed since (another fetch finished): look again;
  //  - Lead: nobody fetches the key; this request does, and calls endFetch() when done;
  //  - Wait: another request fetches it; `waiter` (when given) is woken when that ends;
  //  - Alone: another request fetches it but this one may not wait (no waiter given, or
  //    max_waiters wait already): it goes upstream without collapsing.
  enum class Join { Retry, Lead, Wait, Alone };
  Join joinFetch(size_t shard, absl::string_view key, const CachedResponse* seen,
                 const WaiterSharedPtr& waiter, uint32_t max_waiters, uint64_t* fetch_id);
  // The leader's fetch of `key` ended: the waiters are woken (on their own workers).
  void endFetch(size_t shard, absl::string_view key, uint64_t fetch_id);
  // A waiter gives up (its stream went away, or it waited too long).
  void leaveFetch(size_t shard, absl::string_view key, const Waiter* waiter);

  // Stores `entry` under `key` (in `shard`), replacing what was there, then evicts the least
  // recently used entries until the store fits its capacity. False (nothing stored) when the
  // entry alone is larger than the capacity.
  bool insert(size_t shard, absl::string_view key, CachedResponseConstSharedPtr entry,
              SteadyTime now);
  // Removes `key` when it still holds `expected` (an entry found unusable).
  void eraseIf(size_t shard, absl::string_view key, const CachedResponse* expected);

  // Purges every entry (returns how many) / every entry whose key_digest is `digest` (a base
  // key's marker and variants; returns how many, 0 when none).
  size_t purgeAll();
  size_t purgeDigest(absl::string_view digest);

  // Capacity: the largest live claim (kDefault until the first one).
  std::shared_ptr<CapacityClaim> claimCapacity(uint64_t bytes);
  uint64_t capacity() const { return capacity_.load(std::memory_order_relaxed); }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  size_t entries() const { return entries_.load(std::memory_order_relaxed); }
  const CacheStats& stats() const { return stats_; }

 private:
  friend class CapacityClaim;
  struct Node {
    std::string key;
    CachedResponseConstSharedPtr entry;
    int64_t stamp = 0;  // last use, steady clock nanoseconds
    Node* prev = nullptr;
    Node* next = nullptr;
  };
  struct Fetch {
    uint64_t id = 0;
    std::vector<WaiterSharedPtr> waiters;
  };
  struct alignas(64) Shard {
    absl::Mutex mu;
    absl::flat_hash_map<absl::string_view, Node*> map ABSL_GUARDED_BY(mu);
    // key_digest -> the nodes with it (a marker and its variants).
    absl::flat_hash_map<std::string, absl::InlinedVector<Node*, 1>> digests ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, Fetch> fetches ABSL_GUARDED_BY(mu);
    Node* head ABSL_GUARDED_BY(mu) = nullptr;  // most recently used
    Node* tail ABSL_GUARDED_BY(mu) = nullptr;  // least recently used
    // The tail's stamp (INT64_MAX when empty), read without the lock to pick a victim shard.
    std::atomic<int64_t> tail_stamp{INT64_MAX};
  };

  static int64_t stampOf(SteadyTime t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  void unlink(Shard& s, Node* n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  void pushFront(Shard& s, Node* n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Removes and frees `n` (accounting included).
  void removeNode(Shard& s, Node* n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  void updateTailStamp(Shard& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Evicts least recently used entries while the store is over its capacity.
  void evictToCapacity();
  void releaseClaim(const CapacityClaim* claim);
  void wake(std::vector<WaiterSharedPtr>& waiters);  // with the shard's lock held

  CacheStats stats_;
  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> bytes_{0};
  std::atomic<size_t> entries_{0};
  std::atomic<uint64_t> capacity_{64 << 20};
  std::atomic<uint64_t> next_fetch_id_{1};
  absl::Mutex claims_mu_;
  std::vector<const CapacityClaim*> claims_ ABSL_GUARDED_BY(claims_mu_);
};
using CacheStoreSharedPtr = std::shared_ptr<CacheStore>;

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
