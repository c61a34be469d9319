// Http::BatchSink against a collector (TestHttpServer) on the test's dispatcher: what arrives
// (bodies, batching, headers), when (flush_timeout), retries with backoff, drops with their
// counters, hand-over from many threads, and the shutdown drain.
#include "source/common/http/batch_sink.h"

#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/test_common/network_utility.h"
#include "test/test_common/test_http_server.h"

namespace sluice {
namespace Http {
namespace {

using Server = Testing::TestHttpServer;
using std::chrono::milliseconds;

const bool kSigpipeIgnored = signal(SIGPIPE, SIG_IGN) != SIG_ERR;

class BatchSinkTest : public testing::Test {
 protected:
  BatchSinkSettings settings(const Server& server) {
    BatchSinkSettings s;
    auto uri = parseHttpUri("http://127.0.0.1:" + std::to_string(server.port()) + "/logs");
    EXPECT_TRUE(uri.ok());
    s.endpoint = *uri;
    s.headers = {{"content-type", "application/json"}, {"x-token", "t"}};
    s.flush_timeout = milliseconds(100);
    s.initial_retry_delay = milliseconds(50);
    s.max_retry_delay = milliseconds(400);
    return s;
  }

  BatchSinkSharedPtr sink(const BatchSinkSettings& s) {
    auto made = BatchSink::create(s, std::make_shared<JsonArrayBatchEncoder>(s.queue_size == 1),
                                  &store_, "test_sink", nullptr);
    EXPECT_TRUE(made.ok()) << made.status();
    return *made;
  }

  // Entries received by the collector (bodies split: an array, or one object).
  static std::vector<std::string> split(absl::string_view b) {
    if (b.empty() || b.front() != '[') return {std::string(b)};
    std::vector<std::string> out;
    int depth = 0;
    size_t start = 0;
    for (size_t i = 1; i + 1 < b.size(); ++i) {
      if (b[i] == '{' && depth++ == 0) start = i;
      if (b[i] == '}' && --depth == 0) out.emplace_back(b.substr(start, i - start + 1));
    }
    return out;
  }
  static std::vector<std::string> entries(const Server& server) {
    std::vector<std::string> out;
    for (const auto& r : server.requests()) {
      for (std::string& e : split(r.body)) out.push_back(std::move(e));
    }
    return out;
  }

  bool waitFor(const std::function<bool()>& done, milliseconds timeout = milliseconds(5000)) {
    return Testing::runUntil(*dispatcher_, done, timeout);
  }

  uint64_t value(Stats::Counter* c) { return c->value(store_.slots()); }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{3};
};

Server::Action status(uint32_t code) {
  Server::Action a;
  a.status = code;
  return a;
}

TEST_F(BatchSinkTest, QueueSizeOneSendsEachEntryAloneOnOneConnection) {
  Server server(*dispatcher_, [](const Server::Request&) { return status(200); });
  BatchSinkSettings s = settings(server);
  s.method = "PUT";
  auto k = sink(s);
  for (int i = 0; i < 5; ++i) k->enqueue(absl::StrCat(R"({"n":)", i, "}"));
  ASSERT_TRUE(waitFor([&]() { return server.requests().size() == 5; }));
  for (int i = 0; i < 5; ++i) {
    const auto& r = server.requests()[i];
    EXPECT_EQ(absl::StrCat(R"({"n":)", i, "}"), r.body);  // the object itself, in order
    EXPECT_EQ("PUT", r.method);
    EXPECT_EQ("/logs", r.path);
    EXPECT_EQ("application/json", r.header("content-type"));
    EXPECT_EQ("t", r.header("x-token"));
  }
  EXPECT_EQ(1, server.connections());  // kept alive
  ASSERT_TRUE(waitFor([&]() { return value(k->stats().entries_sent) == 5; }));
  EXPECT_EQ(5u, value(k->stats().batches_sent));
  EXPECT_EQ(0u, value(k->stats().send_failures));
  EXPECT_EQ(0, k->stats().queued_entries->value(store_.slots()));
  EXPECT_EQ(5, store_.valueOf("test_sink.127.0.0.1:" + std::to_string(server.port()) +
                              "/logs.entries_sent"));
}

TEST_F(BatchSinkTest, BatchesOfQueueSizeThenTheRestAfterFlushTimeout) {
  Server server(*dispatcher_, [](const Server::Request&) { return status(204); });
  BatchSinkSettings s = settings(server);
  s.queue_size = 3;
  s.flush_timeout = milliseconds(400);
  auto k = sink(s);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 7; ++i) k->enqueue(absl::StrCat(R"({"n":)", i, "}"));
  ASSERT_TRUE(waitFor([&]() { return server.requests().size() == 2; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(350));  // full: at once
  EXPECT_EQ(R"([{"n":0},{"n":1},{"n":2}])", server.requests()[0].body);
  EXPECT_EQ(R"([{"n":3},{"n":4},{"n":5}])", server.requests()[1].body);
  ASSERT_TRUE(waitFor([&]() { return server.requests().size() == 3; }));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(380));  // the last one waited for flush_timeout
  EXPECT_LT(took, milliseconds(1500));
  EXPECT_EQ(R"([{"n":6}])", server.requests()[2].body);  // an array even for one
  ASSERT_TRUE(waitFor([&]() { return value(k->stats().entries_sent) == 7; }));
  EXPECT_EQ(3u, value(k->stats().batches_sent));
}

TEST_F(BatchSinkTest, FailedBatchRetriedWithBackoff) {
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  Server server(*dispatcher_, [&](const Server::Request&) {
    arrivals.push_back(std::chrono::steady_clock::now());
    return status(arrivals.size() <= 3 ? 500 : 200);
  });
  BatchSinkSettings s = settings(server);
  auto k = sink(s);
  k->enqueue(R"({"a":1})");
  ASSERT_TRUE(waitFor([&]() { return value(k->stats().entries_sent) == 1; }));
  ASSERT_EQ(4u, server.requests().size());
  for (const auto& r : server.requests()) EXPECT_EQ(R"({"a":1})", r.body);  // the same batch
  // 50, 100, 200 ms apart (exponential), give or take the loop's timing.
  EXPECT_GE(arrivals[1] - arrivals[0], milliseconds(45));
  EXPECT_GE(arrivals[2] - arrivals[1], milliseconds(95));
  EXPECT_GE(arrivals[3] - arrivals[2], milliseconds(190));
  EXPECT_EQ(3u, value(k->stats().send_failures));
  EXPECT_EQ(3u, value(k->stats().retries));
  EXPECT_EQ(0u, value(k->stats().entries_dropped));
}

TEST_F(BatchSinkTest, BatchDroppedWhenItsRetriesRunOut) {
  Server server(*dispatcher_, [](const Server::Request&) { return status(503); });
  BatchSinkSettings s = settings(server);
  s.retry_count = 2;
  s.initial_retry_delay = milliseconds(10);
  auto k = sink(s);
  k->enqueue(R"({"a":1})");
  ASSERT_TRUE(waitFor([&]() { return value(k->stats().entries_dropped) == 1; }));
  EXPECT_EQ(3u, server.requests().size());  // the first try and 2 retries
  EXPECT_EQ(3u, value(k->stats().send_failures));
  EXPECT_EQ(2u, value(k->stats().retries));
  EXPECT_EQ(0u, value(k->stats().entries_sent));
  EXPECT_EQ(0, k->stats().queued_entries->value(store_.slots()));
}

TEST_F(BatchSinkTest, OldestDroppedBeyondMaxQueuedEntriesWhileDown) {
  bool up = false;
  std::vector<std::string> accepted;
  Server server(*dispatcher_, [&](const Server::Request& r) {
    if (!up) return status(503);
    for (std::string& e : split(r.body)) accepted.push_back(std::move(e));
    return status(200);
  });
  BatchSinkSettings s = settings(server);
  s.queue_size = 2;
  s.max_queued_entries = 6;
  s.flush_timeout = milliseconds(20);
  s.initial_retry_delay = milliseconds(300);
  s.max_retry_delay = milliseconds(300);
  s.retry_count = 100;
  auto k = sink(s);
  // The first batch (0, 1) fails and waits to be tried again; 2..29 queue up behind it and
  // only the newest 4 of them fit.
  k->enqueue(R"({"n":0})");
  k->enqueue(R"({"n":1})");
  ASSERT_TRUE(waitFor([&]() { return server.requests().size() == 1; }));
  for (int i = 2; i < 30; ++i) k->enqueue(absl::StrCat(R"({"n":)", i, "}"));
  k->collectNow();
  ASSERT_TRUE(waitFor([&]() { return value(k->stats().entries_dropped) == 24; }));
  EXPECT_EQ(6, k->stats().queued_entries->value(store_.slots()));
  up = true;
  ASSERT_TRUE(waitFor([&]() { return value(k->stats().entries_sent) == 6; }));
  // What the collector accepted: the retried first batch, then the newest four.
  EXPECT_THAT(accepted, testing::ElementsAre(R"({"n":0})", R"({"n":1})", R"({"n":26})",
                                             R"({"n":27})", R"({"n":28})", R"({"n":29})"));
  EXPECT_EQ(30u, value(k->stats().entries_sent) + value(k->stats().entries_dropped));
}

TEST_F(BatchSinkTest, BytesBoundDropsTheOldestToo) {
  Server server(*dispatcher_, [](const Server::Request&) {
    Server::Action a;
    a.kind = Server::Kind::Hold;
    return a;
  });
  BatchSinkSettings s = settings(server);
  s.queue_size = 1;
  s.max_queued_bytes = 1000;
  auto k = sink(s);
  for (int i = 0; i < 10; ++i) k->enqueue(std::string(300, 'a' + i));
  k->collectNow();
  // One in flight (held by the server) + 2 queued fit in 1000 bytes.
  ASSERT_TRUE(waitFor([&]() { return value(k->stats().entries_dropped) == 7; }));
  EXPECT_EQ(3, k->stats().queued_entries->value(store_.slots()));
}

TEST_F(BatchSinkTest, ManyThreadsHandOverWithoutLoss) {
  Server server(*dispatcher_, [&](const Server::Request&) { return status(200); });
  BatchSinkSettings s = settings(server);
  s.queue_size = 500;
  s.max_queued_entries = 100000;
  s.flush_timeout = milliseconds(50);
  auto k = sink(s);
  constexpr int kThreads = 4;
  constexpr int kEach = 10000;  // more than a hand-over queue holds: it wraps around
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&k, t]() {
      for (int i = 0; i < kEach; ++i) {
        k->enqueue(absl::StrCat(R"({"t":)", t, R"(,"i":)", i, "}"));
        if (i % 1000 == 999) std::this_thread::sleep_for(milliseconds(2));
      }
    });
  }
  // Threads that exit leave their queues to the sink, which empties them.
  for (auto& th : threads) th.join();
  ASSERT_TRUE(waitFor([&]() { return value(k->stats().entries_sent) == kThreads * kEach; },
                      milliseconds(20000)))
      << value(k->stats().entries_sent) << " sent, " << value(k->stats().entries_dropped)
      << " dropped";
  std::vector<std::string> got = entries(server);
  EXPECT_EQ(static_cast<size_t>(kThreads * kEach), got.size());
  // Each thread's entries arrive in the order it gave them.
  std::vector<int> next(kThreads, 0);
  for (const std::string& e : got) {
    int t = e[e.find("\"t\":") + 4] - '0';
    const size_t ipos = e.find("\"i\":") + 4;
    int i = std::stoi(e.substr(ipos));
    EXPECT_EQ(next[t], i);
    next[t] = i + 1;
  }
}

TEST_F(BatchSinkTest, DrainSendsWhatIsQueuedAtOnce) {
  Server server(*dispatcher_, [](const Server::Request&) { return status(200); });
  BatchSinkSettings s = settings(server);
  s.queue_size = 100;
  s.flush_timeout = milliseconds(60000);  // would wait a minute without the drain
  auto k = sink(s);
  for (int i = 0; i < 150; ++i) k->enqueue(absl::StrCat(R"({"n":)", i, "}"));
  k->startDrain();
  // waitDrained() blocks: let the collector run on another thread meanwhile.
  std::atomic<bool> drained{false};
  std::thread waiter(
      [&]() { drained = k->waitDrained(std::chrono::steady_clock::now() + milliseconds(3000)); });
  ASSERT_TRUE(waitFor([&]() { return server.requests().size() == 2; }));
  waiter.join();
  EXPECT_TRUE(drained);
  EXPECT_EQ(150u, entries(server).size());
}

TEST_F(BatchSinkTest, DrainGivesUpAtTheDeadlineAndCountsWhatIsLeft) {
  Server server(*dispatcher_, [](const Server::Request&) { return status(500); });
  BatchSinkSettings s = settings(server);
  s.initial_retry_delay = milliseconds(60000);  // the drain retries sooner than that
  s.max_retry_delay = milliseconds(60000);
  auto k = sink(s);
  k->enqueue(R"({"a":1})");
  k->enqueue(R"({"a":2})");
  ASSERT_TRUE(waitFor([&]() { return server.requests().size() == 1; }));
  k->startDrain();
  std::atomic<bool> drained{true};
  const auto start = std::chrono::steady_clock::now();
  std::thread waiter(
      [&]() { drained = k->waitDrained(std::chrono::steady_clock::now() + milliseconds(700)); });
  // Retries come at most 200 ms apart while draining.
  ASSERT_TRUE(waitFor([&]() { return server.requests().size() >= 3; }));
  waiter.join();
  EXPECT_FALSE(drained);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(650));
  Stats::Counter* dropped = k->stats().entries_dropped;
  k.reset();  // stops the thread: both entries are counted
  EXPECT_EQ(2u, value(dropped));
}

TEST_F(BatchSinkTest, RefusesQueueSizeAboveTheBound) {
  Server server(*dispatcher_, [](const Server::Request&) { return status(200); });
  BatchSinkSettings s = settings(server);
  s.queue_size = 10;
  s.max_queued_entries = 5;
  EXPECT_FALSE(
      BatchSink::create(s, std::make_shared<JsonArrayBatchEncoder>(false), nullptr, "x", nullptr)
          .ok());
}

TEST(JsonArrayBatchEncoderTest, Bodies) {
  EXPECT_EQ(R"({"a":1})", JsonArrayBatchEncoder(true).encode({R"({"a":1})"}));
  EXPECT_EQ(R"([{"a":1}])", JsonArrayBatchEncoder(false).encode({R"({"a":1})"}));
  EXPECT_EQ(R"([{"a":1},{"b":2}])",
            JsonArrayBatchEncoder(false).encode({R"({"a":1})", R"({"b":2})"}));
}

}  // namespace
}  // namespace Http
}  // namespace sluice
