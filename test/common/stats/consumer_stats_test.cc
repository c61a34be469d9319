#include "source/common/stats/consumer_stats.h"

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace Stats {
namespace {

template <class F>
void onSlot(uint32_t slot, F f) {
  std::thread t([slot, &f]() {
    t_slot = slot;
    f();
  });
  t.join();
}

TEST(ConsumerStatsTest, CountersPerRouteAndConsumer) {
  Store store(3);
  ConsumerStats stats(store);
  stats.get("api", "alice", 10).rq_class[2]->inc();
  stats.get("api", "alice", 10).rq_class[2]->inc();
  stats.get("api", "bob", 10).rq_class[4]->inc();
  stats.get("web", "alice", 10).bytes_sent->inc(7);
  EXPECT_EQ(store.valueOf("route.api.consumer.alice.rq_2xx"), 2);
  EXPECT_EQ(store.valueOf("route.api.consumer.bob.rq_4xx"), 1);
  EXPECT_EQ(store.valueOf("route.web.consumer.alice.bytes_sent"), 7);
  EXPECT_EQ(stats.consumers(), 2u);
  // The same pair from another worker: the same counters.
  onSlot(2, [&]() { stats.get("api", "alice", 10).rq_class[2]->inc(); });
  EXPECT_EQ(store.valueOf("route.api.consumer.alice.rq_2xx"), 3);
}

TEST(ConsumerStatsTest, OverTheCapCountsAsOther) {
  Store store(2);
  ConsumerStats stats(store);
  stats.get("api", "a", 2).rq_class[2]->inc();
  stats.get("api", "b", 2).rq_class[2]->inc();
  stats.get("api", "c", 2).rq_class[2]->inc();
  stats.get("api", "d", 2).rq_class[2]->inc();
  // A consumer labelled before the cap keeps its own counters, on any route.
  stats.get("web", "a", 2).rq_class[2]->inc();
  EXPECT_EQ(store.valueOf("route.api.consumer.other.rq_2xx"), 2);
  EXPECT_EQ(store.valueOf("route.api.consumer.c.rq_2xx"), -1);
  EXPECT_EQ(store.valueOf("route.web.consumer.a.rq_2xx"), 1);
  EXPECT_EQ(stats.consumers(), 2u);
}

TEST(ConsumerStatsTest, ManyConsumersOverTheCapStayBounded) {
  Store store(2);
  ConsumerStats stats(store);
  // A client choosing ever new consumer names (JWT subjects) must not grow anything without
  // bound: all of them share "other", and each worker forgets them past a bound.
  for (int i = 0; i < 20000; ++i) {
    stats.get("api", absl::StrCat("user-", i), 5).rq_class[2]->inc();
  }
  EXPECT_EQ(store.valueOf("route.api.consumer.other.rq_2xx"), 20000 - 5);
  EXPECT_EQ(stats.consumers(), 5u);
  // Store entries: 5 labelled consumers + other, 7 counters each.
  EXPECT_EQ(store.valueOf("route.api.consumer.user-19999.rq_2xx"), -1);
}

}  // namespace
}  // namespace Stats
}  // namespace sluice
