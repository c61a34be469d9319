#include "source/extensions/filters/http/cache/store.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

using std::chrono::seconds;

class StoreTest : public testing::Test {
 protected:
  StoreTest() : stats_(8), store_(std::make_shared<CacheStore>(CacheStats::create(stats_))) {}

  CachedResponseConstSharedPtr entry(uint64_t charge, const std::string& digest = "d") {
    auto e = std::make_shared<CachedResponse>();
    e->charge = charge;
    e->key_digest = digest;
    return e;
  }
  bool put(const std::string& key, uint64_t charge, const std::string& digest = "d") {
    return store_->insert(CacheStore::shardOf(key), key, entry(charge, digest), tick());
  }
  bool has(const std::string& key) {
    return store_->lookup(CacheStore::shardOf(key), key, tick()) != nullptr;
  }
  // A clock that moves 1 ms per use: every touch is newer than the last.
  SteadyTime tick() { return t0_ + std::chrono::milliseconds(++ticks_); }
  int64_t stat(const std::string& name) { return stats_.valueOf("cache." + name); }

  // Keys that fall in distinct shards (the global LRU order must hold across them).
  std::vector<std::string> keysInDistinctShards(size_t n) {
    std::vector<std::string> out;
    std::set<size_t> used;
    for (int i = 0; out.size() < n && i < 100000; ++i) {
      const std::string k = absl::StrCat("key-", i);
      if (used.insert(CacheStore::shardOf(k)).second) out.push_back(k);
    }
    return out;
  }

  Stats::Store stats_;
  CacheStoreSharedPtr store_;
  SteadyTime t0_ = std::chrono::steady_clock::now();
  int ticks_ = 0;
};

TEST_F(StoreTest, LeastRecentlyUsedByBytesAcrossShards) {
  auto claim = store_->claimCapacity(1000);
  const std::vector<std::string> k = keysInDistinctShards(5);
  ASSERT_EQ(5u, k.size());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(put(k[i], 250));
  EXPECT_EQ(1000u, store_->bytes());
  EXPECT_EQ(4u, store_->entries());
  EXPECT_TRUE(has(k[0]));  // k[0] is now the most recently used: k[1] is the oldest
  ASSERT_TRUE(put(k[4], 250));
  EXPECT_FALSE(has(k[1]));
  EXPECT_TRUE(has(k[0]) && has(k[2]) && has(k[3]) && has(k[4]));
  EXPECT_EQ(1000u, store_->bytes());
  EXPECT_EQ(1, stat("evictions"));
  // A big entry evicts as many as it needs, oldest first.
  ASSERT_TRUE(put("big", 600));
  EXPECT_LE(store_->bytes(), 1000u);
  EXPECT_FALSE(has(k[2]));
  EXPECT_FALSE(has(k[3]));
  EXPECT_FALSE(has(k[0]));  // touched before k[4]
  EXPECT_TRUE(has(k[4]));
  EXPECT_TRUE(has("big"));
  EXPECT_EQ(850, stat("bytes"));
  EXPECT_EQ(2, stat("entries"));
}

TEST_F(StoreTest, ReplacingAKeyAndOversizedEntries) {
  auto claim = store_->claimCapacity(1000);
  ASSERT_TRUE(put("a", 300));
  ASSERT_TRUE(put("a", 500));  // replaced: counted once
  EXPECT_EQ(500u, store_->bytes());
  EXPECT_EQ(1u, store_->entries());
  EXPECT_FALSE(put("huge", 1001));  // larger than the whole store: refused, nothing evicted
  EXPECT_TRUE(has("a"));
  EXPECT_FALSE(has("huge"));
  // eraseIf only removes the entry it was given.
  auto e = store_->lookup(CacheStore::shardOf("a"), "a", tick());
  store_->eraseIf(CacheStore::shardOf("a"), "a", nullptr);
  EXPECT_TRUE(has("a"));
  store_->eraseIf(CacheStore::shardOf("a"), "a", e.get());
  EXPECT_FALSE(has("a"));
  EXPECT_EQ(0u, store_->bytes());
  // An entry a hit still holds outlives its removal.
  EXPECT_EQ(500u, e->charge);
}

TEST_F(StoreTest, CapacityIsTheLargestLiveClaim) {
  auto small = store_->claimCapacity(1000);
  {
    auto big = store_->claimCapacity(5000);
    EXPECT_EQ(5000u, store_->capacity());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(put(absl::StrCat("k", i), 400));
    EXPECT_EQ(4000u, store_->bytes());
  }
  // The big config went: the store shrinks to the small one's bound, oldest entries first.
  EXPECT_EQ(1000u, store_->capacity());
  EXPECT_LE(store_->bytes(), 1000u);
  EXPECT_TRUE(has("k9"));
  EXPECT_TRUE(has("k8"));
  EXPECT_FALSE(has("k0"));
}

TEST_F(StoreTest, PurgeAllAndByDigest) {
  auto claim = store_->claimCapacity(100000);
  ASSERT_TRUE(put("base", 10, "d1"));
  ASSERT_TRUE(put(std::string("base\0variant-a", 14), 10, "d1"));
  ASSERT_TRUE(put(std::string("base\0variant-b", 14), 10, "d1"));
  ASSERT_TRUE(put("other", 10, "d2"));
  EXPECT_EQ(3u, store_->purgeDigest("d1"));  // a key's marker and every variant
  EXPECT_FALSE(has("base"));
  EXPECT_TRUE(has("other"));
  EXPECT_EQ(0u, store_->purgeDigest("d1"));
  EXPECT_EQ(1u, store_->purgeAll());
  EXPECT_EQ(0u, store_->entries());
  EXPECT_EQ(0u, store_->bytes());
  EXPECT_EQ(4, stat("purged"));
}

TEST_F(StoreTest, KeysSpreadOverEveryShard) {
  std::vector<int> per_shard(CacheStore::kShards);
  for (int i = 0; i < 16000; ++i) ++per_shard[CacheStore::shardOf(absl::StrCat("/path/", i))];
  for (int n : per_shard) {
    EXPECT_GT(n, 700);  // 1000 each on average
    EXPECT_LT(n, 1300);
  }
}

TEST_F(StoreTest, CollapsingLeadWaitAloneRetry) {
  auto claim = store_->claimCapacity(100000);
  Event::DispatcherPtr d = Event::createLibeventDispatcher();
  const size_t shard = CacheStore::shardOf("k");
  uint64_t id = 0;
  EXPECT_EQ(CacheStore::Join::Lead, store_->joinFetch(shard, "k", nullptr, nullptr, 10, &id));
  int woken = 0;
  std::vector<WaiterSharedPtr> waiters;
  for (int i = 0; i < 3; ++i) {
    auto w = std::make_shared<Waiter>();
    w->dispatcher = d.get();
    w->wake = [&woken]() { ++woken; };
    uint64_t unused = 0;
    EXPECT_EQ(CacheStore::Join::Wait, store_->joinFetch(shard, "k", nullptr, w, 3, &unused));
    waiters.push_back(w);
  }
  uint64_t unused = 0;
  // Past max_waiters, or without a waiter: alone.
  auto extra = std::make_shared<Waiter>();
  extra->dispatcher = d.get();
  EXPECT_EQ(CacheStore::Join::Alone, store_->joinFetch(shard, "k", nullptr, extra, 3, &unused));
  EXPECT_EQ(CacheStore::Join::Alone, store_->joinFetch(shard, "k", nullptr, nullptr, 3, &unused));
  // One waiter leaves; another one's stream went away (its wake cleared).
  store_->leaveFetch(shard, "k", waiters[0].get());
  waiters[1]->wake = nullptr;
  // The leader stored something: a request that saw nothing must look again.
  ASSERT_TRUE(store_->insert(shard, "k", entry(10), tick()));
  EXPECT_EQ(CacheStore::Join::Retry, store_->joinFetch(shard, "k", nullptr, nullptr, 3, &unused));
  store_->endFetch(shard, "k", id + 1);  // not its fetch: nothing happens
  store_->endFetch(shard, "k", id);
  d->post([&d]() { d->exit(); });
  d->run();
  EXPECT_EQ(1, woken);  // only the one still waiting
  // The fetch is over: the next one leads again.
  auto seen = store_->lookup(shard, "k", tick());
  EXPECT_EQ(CacheStore::Join::Lead, store_->joinFetch(shard, "k", seen.get(), nullptr, 3, &id));
  store_->endFetch(shard, "k", id);
}

TEST_F(StoreTest, ThreadsOnEveryShard) {
  // Workers inserting, looking up and purging at once: the byte bound and the counts hold.
  auto claim = store_->claimCapacity(64 * 1024);
  std::atomic<int> lookups_hit{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t, &lookups_hit]() {
      Stats::t_slot = t + 1;  // each worker writes its own stats slot, as in sluice
      const SteadyTime base = std::chrono::steady_clock::now();
      for (int i = 0; i < 20000; ++i) {
        const std::string key = absl::StrCat("t", t, "/", i % 500);
        const size_t shard = CacheStore::shardOf(key);
        const SteadyTime now = base + std::chrono::microseconds(i);
        if (store_->lookup(shard, key, now) != nullptr) {
          ++lookups_hit;
        } else {
          auto e = std::make_shared<CachedResponse>();
          e->charge = 100 + i % 400;
          e->key_digest = key;
          store_->insert(shard, key, std::move(e), now);
        }
        if (i % 5000 == 4999 && t == 0) store_->purgeDigest("t1/7");
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(store_->bytes(), 64u * 1024u);
  EXPECT_GT(lookups_hit.load(), 0);
  EXPECT_EQ(static_cast<int64_t>(store_->bytes()), stat("bytes"));
  EXPECT_EQ(static_cast<int64_t>(store_->entries()), stat("entries"));
  const size_t n = store_->purgeAll();
  EXPECT_EQ(0u, store_->bytes());
  EXPECT_GT(n, 0u);
}

}  // namespace
}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
