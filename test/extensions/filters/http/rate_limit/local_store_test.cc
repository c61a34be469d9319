#include "source/extensions/filters/http/rate_limit/local_store.h"

#include <atomic>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

// A wall time well inside a day, on a minute boundary: tests add offsets to it.
constexpr int64_t kT0 = 1767225600000;  // 2026-01-01T00:00:00Z

CompiledPolicyConstSharedPtr policy(const std::string& yaml) {
  PolicyProto p;
  EXPECT_TRUE(Config::loadFromYaml(yaml, p).ok()) << yaml;
  auto c = compilePolicy(p, "p");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

TEST(LocalStoreTest, FixedWindowIsExactAndResetsAtTheBoundary) {
  LocalStore store(nullptr);
  auto p = policy("{name: f, second: 3, algorithm: FIXED_WINDOW}");
  for (int i = 0; i < 3; ++i) {
    Decision d = store.consume(*p, "ip:a", kT0 + 100 + i);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.windows[0].remaining, 2u - i);
    EXPECT_EQ(d.windows[0].reset_ms, 1000 - 100 - i);  // the end of the second
  }
  Decision d = store.consume(*p, "ip:a", kT0 + 500);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.windows[0].remaining, 0u);
  EXPECT_EQ(d.retry_after_ms, 500);
  EXPECT_TRUE(store.consume(*p, "ip:b", kT0 + 500).allowed) << "keys are independent";
  EXPECT_FALSE(store.consume(*p, "ip:a", kT0 + 999).allowed);
  // The next second: a fresh budget (a fixed window admits 2x the limit across a boundary).
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(store.consume(*p, "ip:a", kT0 + 1000 + i).allowed);
  }
  EXPECT_FALSE(store.consume(*p, "ip:a", kT0 + 1003).allowed);
}

TEST(CalendarTest, CivilDaysRoundTrip) {
  int64_t y;
  unsigned m;
  for (int64_t days = -800000; days <= 800000; days += 17) {
    civilFromDays(days, y, m);
    const int64_t first = daysFromCivil(y, m, 1);
    EXPECT_LE(first, days);
    EXPECT_GT(first + 31, days);
  }
  EXPECT_EQ(daysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(daysFromCivil(2000, 3, 1), 11017);  // after a leap day of a year divisible by 400
  EXPECT_EQ(daysFromCivil(2100, 3, 1) - daysFromCivil(2100, 2, 1), 28);  // not a leap year
  EXPECT_EQ(daysFromCivil(2028, 3, 1) - daysFromCivil(2028, 2, 1), 29);
}

TEST(CalendarTest, MonthAndYearBuckets) {
  constexpr int64_t kDay = 86400000;
  const int64_t jan = daysFromCivil(2026, 1, 1) * kDay;
  const int64_t feb = daysFromCivil(2026, 2, 1) * kDay;
  const int64_t mar = daysFromCivil(2026, 3, 1) * kDay;
  const int64_t y2027 = daysFromCivil(2027, 1, 1) * kDay;
  EXPECT_EQ(WindowSpec::calendarBucket(-1, jan), (2026 - 1970) * 12);
  EXPECT_EQ(WindowSpec::calendarBucket(-1, feb - 1), (2026 - 1970) * 12);
  EXPECT_EQ(WindowSpec::calendarBucket(-1, feb), (2026 - 1970) * 12 + 1);
  EXPECT_EQ(WindowSpec::calendarBucketEnd(-1, WindowSpec::calendarBucket(-1, feb + 5)), mar);
  // December ends on January 1st of the next year.
  const int64_t dec = daysFromCivil(2026, 12, 15) * kDay;
  EXPECT_EQ(WindowSpec::calendarBucketEnd(-1, WindowSpec::calendarBucket(-1, dec)), y2027);
  EXPECT_EQ(WindowSpec::calendarBucket(-2, y2027 - 1), 2026 - 1970);
  EXPECT_EQ(WindowSpec::calendarBucketEnd(-2, 2026 - 1970), y2027);
}

TEST(LocalStoreTest, MonthAndYearAreCalendarFixedWindows) {
  constexpr int64_t kDay = 86400000;
  LocalStore store(nullptr);
  // SLIDING_WINDOW (the default) still counts calendar windows as fixed ones.
  auto sliding = policy("{name: s, day: 5, month: 6}");
  EXPECT_EQ(sliding->windows[0].older_buckets, kSlidingBuckets);
  EXPECT_EQ(sliding->windows[1].older_buckets, 0u);
  auto p = policy("{name: quota, day: 5, month: 6, year: 100, algorithm: FIXED_WINDOW}");
  ASSERT_EQ(p->windows.size(), 3u);
  EXPECT_EQ(p->windows[1].older_buckets, 0u);
  EXPECT_EQ(p->windows[1].bucket_ms, -1);
  EXPECT_EQ(p->windows[2].bucket_ms, -2);
  EXPECT_EQ(p->ietf_policy_value,
            "\"quota-day\";q=5;w=86400, \"quota-month\";q=6;w=2592000, "
            "\"quota-year\";q=100;w=31536000");
  const int64_t jan30 = daysFromCivil(2026, 1, 30) * kDay;
  const int64_t feb = daysFromCivil(2026, 2, 1) * kDay;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(store.consume(*p, "k", jan30 + i).allowed) << i;
  // The day is full; the next day the month has one left.
  EXPECT_FALSE(store.consume(*p, "k", jan30 + 10).allowed);
  Decision d = store.consume(*p, "k", jan30 + kDay);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.windows[1].remaining, 0u);
  EXPECT_EQ(d.windows[1].reset_ms, feb - (jan30 + kDay)) << "the month ends on February 1st";
  EXPECT_EQ(d.windows[2].remaining, 94u);
  EXPECT_EQ(d.windows[2].reset_ms,
            std::min<int64_t>(daysFromCivil(2027, 1, 1) * kDay - (jan30 + kDay), 366 * kDay));
  d = store.consume(*p, "k", jan30 + kDay + 1);
  EXPECT_FALSE(d.allowed);
  // Both the day and the month are full: the month ends first (at midnight, with the day).
  EXPECT_EQ(d.retry_after_ms, feb - (jan30 + kDay + 1));
  // February: a new month; the year keeps counting.
  d = store.consume(*p, "k", feb);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.windows[1].remaining, 5u);
  EXPECT_EQ(d.windows[2].remaining, 93u);
}

TEST(LocalStoreTest, RejectedRequestsCostNothingInAnyWindow) {
  LocalStore store(nullptr);
  auto p = policy("{name: m, second: 2, minute: 3, algorithm: FIXED_WINDOW}");
  EXPECT_TRUE(store.consume(*p, "k", kT0).allowed);
  EXPECT_TRUE(store.consume(*p, "k", kT0 + 1).allowed);
  // The second is full; this rejection must not use up the minute.
  Decision d = store.consume(*p, "k", kT0 + 2);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.windows[0].remaining, 0u);
  EXPECT_EQ(d.windows[1].remaining, 1u);
  EXPECT_EQ(d.retry_after_ms, 998);
  d = store.consume(*p, "k", kT0 + 1000);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.windows[0].remaining, 1u);
  EXPECT_EQ(d.windows[1].remaining, 0u);
  d = store.consume(*p, "k", kT0 + 2000);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.windows[0].remaining, 2u) << "the second has room";
  EXPECT_EQ(d.retry_after_ms, 58000) << "the minute decides";
  EXPECT_EQ(d.windows[1].reset_ms, 58000);
}

TEST(LocalStoreTest, SlidingWindowHoldsAcrossTheFixedBoundary) {
  LocalStore store(nullptr);
  auto p = policy("{name: s, second: 5}");
  // Five at .75 of a second: allowed.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(store.consume(*p, "k", kT0 + 750 + i).allowed);
  // Just after the second boundary a fixed window would have a fresh budget; this one has not.
  Decision d = store.consume(*p, "k", kT0 + 1100);
  EXPECT_FALSE(d.allowed);
  // The bucket [700, 800) leaves the count when bucket 18 starts (1800): 700 ms from now.
  EXPECT_EQ(d.retry_after_ms, 700);
  EXPECT_EQ(d.windows[0].reset_ms, 700);
  EXPECT_FALSE(store.consume(*p, "k", kT0 + 1799).allowed);
  EXPECT_TRUE(store.consume(*p, "k", kT0 + 1800).allowed);
}

TEST(LocalStoreTest, RetryAfterIsExact) {
  int capped = 0;
  for (const char* yaml : {"{name: r, second: 4}", "{name: r, second: 4, algorithm: FIXED_WINDOW}",
                           "{name: r, minute: 7, hour: 20}"}) {
    LocalStore store(nullptr);
    auto p = policy(yaml);
    std::mt19937_64 rng(42);
    int64_t now = kT0 + 123;
    int rejections = 0;
    for (int i = 0; i < 3000 && rejections < 200; ++i) {
      now += rng() % 700;
      Decision d = store.consume(*p, "k", now);
      if (d.allowed) continue;
      ++rejections;
      ASSERT_GT(d.retry_after_ms, 0) << yaml;
      // One millisecond early is still too early (a rejection changes nothing); on time works.
      Decision early = store.consume(*p, "k", now + d.retry_after_ms - 1);
      ASSERT_FALSE(early.allowed) << yaml << " at +" << d.retry_after_ms - 1;
      Decision on_time = store.consume(*p, "k", now + d.retry_after_ms);
      now += d.retry_after_ms;
      if (!on_time.allowed) {
        // Only when the exact wait was longer than a window, which the answer is capped at:
        // then the rest is less than one of its buckets, and exact.
        bool window_length = false;
        for (const WindowSpec& w : p->windows) window_length |= d.retry_after_ms == w.length_ms;
        ASSERT_TRUE(window_length) << yaml << " at +" << d.retry_after_ms;
        ASSERT_LE(on_time.retry_after_ms, d.retry_after_ms / static_cast<int>(kSlidingBuckets));
        ++capped;
        Decision rest = store.consume(*p, "k", now + on_time.retry_after_ms);
        ASSERT_TRUE(rest.allowed) << yaml << " at +" << on_time.retry_after_ms;
        now += on_time.retry_after_ms;
      }
    }
    EXPECT_GT(rejections, 10) << yaml;
  }
  EXPECT_GT(capped, 0) << "the cap was never exercised";
}

// Retry-After and the reset of a window never say more than the window, though a sliding window
// counts up to one bucket more (docs/decisions.md): a burst's bucket leaves the count up to 1.1
// windows later.
TEST(LocalStoreTest, RetryAfterAndResetNeverExceedTheWindow) {
  LocalStore store(nullptr);
  auto p = policy("{name: m, minute: 3}");  // buckets of 6 s
  // A burst 1.5 s into a bucket: it leaves the count 64.5 s later.
  const int64_t t = kT0 + 1500;
  for (int i = 0; i < 3; ++i) {
    Decision d = store.consume(*p, "k", t);
    ASSERT_TRUE(d.allowed);
    EXPECT_EQ(d.windows[0].reset_ms, 60000);
  }
  Decision d = store.consume(*p, "k", t);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ms, 60000);
  EXPECT_EQ(d.windows[0].reset_ms, 60000);
  // A client that waits the 60 s is told the exact rest.
  d = store.consume(*p, "k", t + 60000);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ms, 4500);
  EXPECT_EQ(d.windows[0].reset_ms, 4500);
  EXPECT_FALSE(store.consume(*p, "k", t + 64499).allowed);
  EXPECT_TRUE(store.consume(*p, "k", t + 64500).allowed);

  // Random traffic on every kind of window: always 0 < reset <= window, 0 < retry <= window.
  for (const char* yaml :
       {"{name: r, second: 4}", "{name: r, minute: 7, hour: 20}",
        "{name: r, second: 3, algorithm: FIXED_WINDOW}", "{name: r, hour: 5, day: 9}"}) {
    LocalStore s(nullptr);
    auto q = policy(yaml);
    std::mt19937_64 rng(3);
    int64_t now = kT0 + 77;
    int rejected = 0;
    for (int i = 0; i < 5000; ++i) {
      now += rng() % 4 == 0 ? rng() % (q->windows.back().length_ms / 5) : rng() % 50;
      Decision r = s.consume(*q, "k", now);
      int64_t longest_full = 0;
      for (size_t w = 0; w < r.windows.size(); ++w) {
        ASSERT_GT(r.windows[w].reset_ms, 0) << yaml;
        ASSERT_LE(r.windows[w].reset_ms, q->windows[w].length_ms) << yaml;
        if (r.windows[w].remaining == 0) {
          longest_full = std::max(longest_full, q->windows[w].length_ms);
        }
      }
      if (!r.allowed) {
        ++rejected;
        ASSERT_GT(r.retry_after_ms, 0) << yaml;
        ASSERT_LE(r.retry_after_ms, longest_full) << yaml;
      }
    }
    EXPECT_GT(rejected, 100) << yaml;
  }
}

// The documented bound of SLIDING_WINDOW, checked on random traffic: never more than `limit`
// admitted in any span of one window; and a rejection only when at least `limit` were admitted
// within one window plus one bucket.
TEST(LocalStoreTest, SlidingWindowBound) {
  LocalStore store(nullptr);
  auto p = policy("{name: b, second: 20}");
  const int64_t window = 1000, bucket = 100;
  std::mt19937_64 rng(7);
  std::deque<int64_t> admitted;  // admission times
  std::vector<int64_t> all;
  int64_t now = kT0 + 17;
  int rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    now += rng() % 3 == 0 ? rng() % 120 : rng() % 15;  // bursts and gaps
    const bool ok = store.consume(*p, "k", now).allowed;
    while (!admitted.empty() && admitted.front() <= now - window - bucket) admitted.pop_front();
    if (ok) {
      // Admitted: fewer than 20 in (now - window, now) before it.
      int in_window = 0;
      for (int64_t t : admitted) in_window += t > now - window;
      ASSERT_LT(in_window, 20) << "over-admission at " << now - kT0;
      admitted.push_back(now);
      all.push_back(now);
    } else {
      ++rejected;
      // Rejected: at least 20 in (now - window - bucket, now].
      ASSERT_GE(admitted.size(), 20u) << "under-admission beyond one bucket at " << now - kT0;
    }
  }
  EXPECT_GT(rejected, 1000);
  // And over the whole run: every span of one window holds at most 20.
  size_t lo = 0;
  for (size_t hi = 0; hi < all.size(); ++hi) {
    while (all[lo] <= all[hi] - window) ++lo;
    ASSERT_LE(hi - lo + 1, 20u);
  }
}

TEST(LocalStoreTest, ExactUnderConcurrency) {
  LocalStore store(nullptr);  // no gauge: these threads would all write stats slot 0
  auto fixed = policy("{name: c, hour: 1000, algorithm: FIXED_WINDOW}");
  auto sliding = policy("{name: c2, minute: 1000}");
  for (const auto& p : {fixed, sliding}) {
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&]() {
        for (int i = 0; i < 500; ++i) {
          if (store.consume(*p, "shared", kT0 + 1000 + i).allowed) allowed.fetch_add(1);
          // Other keys in the same shards at the same time.
          store.consume(*p, absl::StrCat("other-", i % 37), kT0 + 1000 + i);
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(allowed.load(), 1000) << p->name;
  }
}

TEST(LocalStoreTest, KeysExpireSoMemoryStaysBounded) {
  LocalStore store(nullptr);
  auto p = policy("{name: e, second: 5}");
  for (int i = 0; i < 5000; ++i) store.consume(*p, absl::StrCat("ip:", i), kT0 + i % 50);
  EXPECT_EQ(store.size(), 5000u);
  // 1.1 s later every bucket of those keys has left the window: the next touch of each shard
  // sweeps it.
  for (int i = 0; i < 2000; ++i) store.consume(*p, absl::StrCat("new:", i), kT0 + 1200);
  EXPECT_EQ(store.size(), 2000u);
}

TEST(LocalStoreTest, CountersSurviveAConfigPushThatKeepsNameAndAlgorithm) {
  LocalStore store(nullptr);
  auto before = policy("{name: keep, minute: 10, algorithm: FIXED_WINDOW}");
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(store.consume(*before, "k", kT0 + i).allowed);
  auto after = policy("{name: keep, minute: 9, algorithm: FIXED_WINDOW}");  // recompiled
  EXPECT_TRUE(store.consume(*after, "k", kT0 + 100).allowed);
  Decision d = store.consume(*after, "k", kT0 + 101);
  EXPECT_FALSE(d.allowed) << "8 + 1 counted: the new limit of 9 is reached";
  // A different algorithm starts new counters.
  auto sliding = policy("{name: keep, minute: 9}");
  EXPECT_TRUE(store.consume(*sliding, "k", kT0 + 102).allowed);
}

TEST(LocalStoreTest, KeysGauge) {
  Stats::Store stats(1);
  LocalStore store(&stats);
  auto p = policy("{name: g, second: 1}");
  store.consume(*p, "a", kT0);
  store.consume(*p, "b", kT0);
  EXPECT_EQ(stats.valueOf("rate_limit.local_keys"), 2);
  store.consume(*p, "c", kT0 + 5000);  // sweeps a and b if they share c's shard; not counted
  EXPECT_EQ(stats.valueOf("rate_limit.local_keys"), static_cast<int64_t>(store.size()));
}

TEST(WindowCounterTest, AdvanceForgetsOnlyWhatLeftTheWindow) {
  WindowCounter c;
  EXPECT_EQ(c.advance(100, 3), 100);
  c.add(100, 3);
  c.advance(101, 3);
  c.add(101, 3);
  c.add(101, 3);
  c.advance(103, 3);
  for (int i = 0; i < 4; ++i) c.add(103, 3);
  EXPECT_EQ(c.sum(), 7u);
  c.advance(104, 3);  // bucket 100 leaves [101, 104]
  EXPECT_EQ(c.sum(), 6u);
  EXPECT_EQ(c.at(101, 3), 2u);
  EXPECT_EQ(c.advance(90, 3), 104) << "a clock that went back counts in the newest bucket";
  EXPECT_EQ(c.sum(), 6u);
  c.advance(106, 3);  // 101 and 102 leave
  EXPECT_EQ(c.sum(), 4u);
  c.advance(200, 3);
  EXPECT_EQ(c.sum(), 0u);
}

}  // namespace
}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
