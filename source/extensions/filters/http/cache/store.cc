#include "source/extensions/filters/http/cache/store.h"

#include <algorithm>
#include <limits>

#include "absl/hash/hash.h"

namespace sluice {
namespace Extensions {
namespace Cache {

CacheStats CacheStats::create(Stats::Store& store) {
  CacheStats s;
#define CACHE_MAKE_COUNTER(name) s.name = &store.counter("cache." #name, "cache_" #name);
#define CACHE_MAKE_GAUGE(name) s.name = &store.gauge("cache." #name, "cache_" #name);
  ALL_CACHE_COUNTERS(CACHE_MAKE_COUNTER)
  ALL_CACHE_GAUGES(CACHE_MAKE_GAUGE)
#undef CACHE_MAKE_COUNTER
#undef CACHE_MAKE_GAUGE
  return s;
}

CacheStats CacheStats::discarded() {
  // Enough writer slots for any worker count (at most 256, plus the main thread).
  static Stats::Counter counter_sink(Stats::StatName{}, 257);
  static Stats::Gauge gauge_sink(Stats::StatName{}, 257);
  CacheStats s;
#define CACHE_SINK_COUNTER(name) s.name = &counter_sink;
#define CACHE_SINK_GAUGE(name) s.name = &gauge_sink;
  ALL_CACHE_COUNTERS(CACHE_SINK_COUNTER)
  ALL_CACHE_GAUGES(CACHE_SINK_GAUGE)
#undef CACHE_SINK_COUNTER
#undef CACHE_SINK_GAUGE
  return s;
}

CapacityClaim::~CapacityClaim() { store_->releaseClaim(this); }

CacheStore::~CacheStore() {
  for (Shard& s : shards_) {
    absl::MutexLock lock(&s.mu);
    while (s.head != nullptr) removeNode(s, s.head);
  }
}

size_t CacheStore::shardOf(absl::string_view base_key) { return absl::HashOf(base_key) % kShards; }

void CacheStore::unlink(Shard& s, Node* n) {
  if (n->prev != nullptr) {
    n->prev->next = n->next;
  } else {
    s.head = n->next;
  }
  if (n->next != nullptr) {
    n->next->prev = n->prev;
  } else {
    s.tail = n->prev;
  }
  n->prev = n->next = nullptr;
}

void CacheStore::pushFront(Shard& s, Node* n) {
  n->prev = nullptr;
  n->next = s.head;
  if (s.head != nullptr) s.head->prev = n;
  s.head = n;
  if (s.tail == nullptr) s.tail = n;
}

void CacheStore::updateTailStamp(Shard& s) {
  s.tail_stamp.store(s.tail == nullptr ? std::numeric_limits<int64_t>::max() : s.tail->stamp,
                     std::memory_order_relaxed);
}

void CacheStore::removeNode(Shard& s, Node* n) {
  unlink(s, n);
  s.map.erase(absl::string_view(n->key));
  auto d = s.digests.find(n->entry->key_digest);
  if (d != s.digests.end()) {
    auto& nodes = d->second;
    nodes.erase(std::remove(nodes.begin(), nodes.end(), n), nodes.end());
    if (nodes.empty()) s.digests.erase(d);
  }
  const uint64_t charge = n->entry->charge;
  bytes_.fetch_sub(charge, std::memory_order_relaxed);
  entries_.fetch_sub(1, std::memory_order_relaxed);
  stats_.bytes->add(-static_cast<int64_t>(charge));
  stats_.entries->dec();
  updateTailStamp(s);
  delete n;  // the entry lives on while a hit still sends it
}

CachedResponseConstSharedPtr CacheStore::lookup(size_t shard, absl::string_view key,
                                                SteadyTime now) {
  Shard& s = shards_[shard];
  absl::MutexLock lock(&s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  Node* n = it->second;
  n->stamp = stampOf(now);
  const bool was_tail = s.tail == n;
  if (s.head != n) {
    unlink(s, n);
    pushFront(s, n);
  }
  if (was_tail) updateTailStamp(s);  // a new tail, or the same one used just now
  return n->entry;
}

CacheStore::Join CacheStore::joinFetch(size_t shard, absl::string_view key,
                                       const CachedResponse* seen, const WaiterSharedPtr& waiter,
                                       uint32_t max_waiters, uint64_t* fetch_id) {
  Shard& s = shards_[shard];
  absl::MutexLock lock(&s.mu);
  auto it = s.map.find(key);
  const CachedResponse* now_there = it == s.map.end() ? nullptr : it->second->entry.get();
  if (now_there != seen) return Join::Retry;
  auto f = s.fetches.find(key);
  if (f == s.fetches.end()) {
    Fetch& fetch = s.fetches[std::string(key)];
    fetch.id = next_fetch_id_.fetch_add(1, std::memory_order_relaxed);
    *fetch_id = fetch.id;
    return Join::Lead;
  }
  if (waiter == nullptr || f->second.waiters.size() >= max_waiters) return Join::Alone;
  f->second.waiters.push_back(waiter);
  return Join::Wait;
}

void CacheStore::endFetch(size_t shard, absl::string_view key, uint64_t fetch_id) {
  Shard& s = shards_[shard];
  absl::MutexLock lock(&s.mu);
  auto f = s.fetches.find(key);
  if (f == s.fetches.end() || f->second.id != fetch_id) return;
  // Posted under the lock: a waiter that leaves (its stream going away, before its worker and
  // dispatcher do) is then either still listed and posted to, or gone.
  wake(f->second.waiters);
  s.fetches.erase(f);
}

void CacheStore::leaveFetch(size_t shard, absl::string_view key, const Waiter* waiter) {
  Shard& s = shards_[shard];
  absl::MutexLock lock(&s.mu);
  auto f = s.fetches.find(key);
  if (f == s.fetches.end()) return;
  auto& w = f->second.waiters;
  w.erase(std::remove_if(w.begin(), w.end(),
                         [waiter](const WaiterSharedPtr& p) { return p.get() == waiter; }),
          w.end());
}

void CacheStore::wake(std::vector<WaiterSharedPtr>& waiters) {
  for (WaiterSharedPtr& w : waiters) {
    Event::Dispatcher* d = w->dispatcher;
    d->post([w = std::move(w)]() {
      if (w->wake) {
        std::function<void()> fn = std::move(w->wake);
        w->wake = nullptr;
        fn();
      }
    });
  }
}

bool CacheStore::insert(size_t shard, absl::string_view key, CachedResponseConstSharedPtr entry,
                        SteadyTime now) {
  const uint64_t charge = entry->charge;
  if (charge > capacity()) return false;
  {
    Shard& s = shards_[shard];
    absl::MutexLock lock(&s.mu);
    auto it = s.map.find(key);
    if (it != s.map.end()) removeNode(s, it->second);
    Node* n = new Node;
    n->key = std::string(key);
    n->stamp = stampOf(now);
    n->entry = std::move(entry);
    s.map.emplace(absl::string_view(n->key), n);
    s.digests[n->entry->key_digest].push_back(n);
    pushFront(s, n);
    updateTailStamp(s);
    bytes_.fetch_add(charge, std::memory_order_relaxed);
    entries_.fetch_add(1, std::memory_order_relaxed);
    stats_.bytes->add(static_cast<int64_t>(charge));
    stats_.entries->inc();
  }
  evictToCapacity();
  return true;
}

void CacheStore::eraseIf(size_t shard, absl::string_view key, const CachedResponse* expected) {
  Shard& s = shards_[shard];
  absl::MutexLock lock(&s.mu);
  auto it = s.map.find(key);
  if (it != s.map.end() && it->second->entry.get() == expected) removeNode(s, it->second);
}

void CacheStore::evictToCapacity() {
  // Victims are picked by their last use across the shards (each shard's LRU tail stamp, read
  // without its lock), one shard locked at a time. Bounded: a pass that finds every shard empty
  // (or keeps losing races) stops.
  for (int guard = 0; bytes() > capacity() && guard < 1 << 20; ++guard) {
    size_t victim = kShards;
    int64_t oldest = std::numeric_limits<int64_t>::max();
    for (size_t i = 0; i < kShards; ++i) {
      const int64_t t = shards_[i].tail_stamp.load(std::memory_order_relaxed);
      if (t < oldest) {
        oldest = t;
        victim = i;
      }
    }
    if (victim == kShards) return;  // empty
    Shard& s = shards_[victim];
    absl::MutexLock lock(&s.mu);
    if (s.tail == nullptr) continue;
    removeNode(s, s.tail);
    stats_.evictions->inc();
  }
}

size_t CacheStore::purgeAll() {
  size_t n = 0;
  for (Shard& s : shards_) {
    absl::MutexLock lock(&s.mu);
    while (s.head != nullptr) {
      removeNode(s, s.head);
      ++n;
    }
  }
  stats_.purged->inc(n);
  return n;
}

size_t CacheStore::purgeDigest(absl::string_view digest) {
  size_t n = 0;
  const std::string d(digest);
  for (Shard& s : shards_) {
    absl::MutexLock lock(&s.mu);
    auto it = s.digests.find(d);
    if (it == s.digests.end()) continue;
    // removeNode() edits the list it is in: take a copy.
    const absl::InlinedVector<Node*, 1> nodes = it->second;
    for (Node* node : nodes) {
      removeNode(s, node);
      ++n;
    }
  }
  stats_.purged->inc(n);
  return n;
}

std::shared_ptr<CapacityClaim> CacheStore::claimCapacity(uint64_t bytes) {
  auto claim = std::make_shared<CapacityClaim>(shared_from_this(), bytes);
  {
    absl::MutexLock lock(&claims_mu_);
    claims_.push_back(claim.get());
    uint64_t largest = 0;
    for (const CapacityClaim* c : claims_) largest = std::max(largest, c->bytes());
    capacity_.store(largest, std::memory_order_relaxed);
  }
  evictToCapacity();
  return claim;
}

void CacheStore::releaseClaim(const CapacityClaim* claim) {
  {
    absl::MutexLock lock(&claims_mu_);
    claims_.erase(std::remove(claims_.begin(), claims_.end(), claim), claims_.end());
    if (claims_.empty()) return;  // no config uses the cache: keep what it holds
    uint64_t largest = 0;
    for (const CapacityClaim* c : claims_) largest = std::max(largest, c->bytes());
    capacity_.store(largest, std::memory_order_relaxed);
  }
  evictToCapacity();
}

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
