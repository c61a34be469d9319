#include "source/common/event/dispatcher.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Event {
namespace {

TEST(DispatcherTest, TimerFiresOnceAndCanBeDisabled) {
  DispatcherPtr d = createLibeventDispatcher();
  int fired = 0;
  TimerPtr t = d->createTimer([&]() { ++fired; });
  EXPECT_FALSE(t->enabled());
  t->enableTimer(std::chrono::milliseconds(1));
  EXPECT_TRUE(t->enabled());
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return fired == 1; }));
  EXPECT_FALSE(t->enabled());
  Testing::runPending(*d);
  EXPECT_EQ(1, fired);

  TimerPtr never = d->createTimer([&]() { ++fired; });
  never->enableTimer(std::chrono::milliseconds(1));
  never->disableTimer();
  EXPECT_FALSE(never->enabled());
  Testing::runPending(*d);
  EXPECT_EQ(1, fired);
}

TEST(DispatcherTest, TimersFireInDeadlineOrder) {
  DispatcherPtr d = createLibeventDispatcher();
  std::vector<int> order;
  TimerPtr late = d->createTimer([&]() { order.push_back(2); });
  TimerPtr early = d->createTimer([&]() { order.push_back(1); });
  late->enableTimer(std::chrono::milliseconds(20));
  early->enableTimer(std::chrono::milliseconds(1));
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return order.size() == 2; }));
  EXPECT_EQ((std::vector<int>{1, 2}), order);
}

TEST(DispatcherTest, PostFromAnotherThreadRunsOnTheLoop) {
  DispatcherPtr d = createLibeventDispatcher();
  std::atomic<int> ran{0};
  std::thread::id loop_thread;
  std::thread::id ran_on;
  TimerPtr start = d->createTimer([&]() { loop_thread = std::this_thread::get_id(); });
  start->enableTimer(std::chrono::milliseconds(0));
  Testing::runPending(*d);
  std::thread poster([&]() {
    for (int i = 0; i < 100; ++i) {
      d->post([&]() {
        ran_on = std::this_thread::get_id();
        ++ran;
      });
    }
  });
  poster.join();
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return ran == 100; }));
  EXPECT_EQ(loop_thread, ran_on);
}

TEST(DispatcherTest, DeferredRunsAfterTheCallbackInOrder) {
  DispatcherPtr d = createLibeventDispatcher();
  std::vector<std::string> events;
  TimerPtr t = d->createTimer([&]() {
    d->deferred([&]() {
      events.push_back("deferred1");
      d->deferred([&]() { events.push_back("nested"); });
    });
    d->deferred([&]() { events.push_back("deferred2"); });
    events.push_back("callback");
  });
  t->enableTimer(std::chrono::milliseconds(0));
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return events.size() == 4; }));
  EXPECT_EQ((std::vector<std::string>{"callback", "deferred1", "deferred2", "nested"}), events);
}

struct Tracked : public DeferredDeletable {
  explicit Tracked(bool& deleted) : deleted_(deleted) {}
  ~Tracked() override { deleted_ = true; }
  bool& deleted_;
};

TEST(DispatcherTest, DeferredDeleteAfterTheCallback) {
  DispatcherPtr d = createLibeventDispatcher();
  bool deleted = false;
  bool deleted_inside = true;
  TimerPtr t = d->createTimer([&]() {
    d->deferredDelete(std::make_unique<Tracked>(deleted));
    deleted_inside = deleted;
  });
  t->enableTimer(std::chrono::milliseconds(0));
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return deleted; }));
  EXPECT_FALSE(deleted_inside);
}

TEST(DispatcherTest, DestructorRunsPendingDeletes) {
  bool deleted = false;
  {
    DispatcherPtr d = createLibeventDispatcher();
    d->deferredDelete(std::make_unique<Tracked>(deleted));
  }
  EXPECT_TRUE(deleted);
}

TEST(DispatcherTest, FileEventsReportReadAndWrite) {
  DispatcherPtr d = createLibeventDispatcher();
  auto [a, b] = Testing::socketPair();
  uint32_t seen = 0;
  FileEventPtr ev = d->createFileEvent(
      a, [&](uint32_t events) { seen |= events; }, FileReadyType::Write);
  EXPECT_EQ(FileReadyType::Write, ev->enabled());
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return (seen & FileReadyType::Write) != 0; }));
  ev->setEnabled(FileReadyType::Read);
  seen = 0;
  Testing::runPending(*d);
  EXPECT_EQ(0u, seen & FileReadyType::Read);
  ASSERT_EQ(1, ::write(b, "x", 1));
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return (seen & FileReadyType::Read) != 0; }));
  ev.reset();
  ::close(a);
  ::close(b);
}

TEST(DispatcherTest, ExitStopsRun) {
  DispatcherPtr d = createLibeventDispatcher();
  // A timer far in the future keeps the loop alive: run() only returns because of exit().
  bool far_fired = false;
  TimerPtr far = d->createTimer([&]() { far_fired = true; });
  far->enableTimer(std::chrono::seconds(60));
  int exits = 0;
  bool deferred_ran = false;
  TimerPtr t = d->createTimer([&]() {
    ++exits;
    d->deferred([&]() { deferred_ran = true; });
    d->exit();
  });
  t->enableTimer(std::chrono::milliseconds(1));
  const auto start = std::chrono::steady_clock::now();
  d->run();
  EXPECT_EQ(1, exits);
  EXPECT_TRUE(deferred_ran) << "work deferred by the last callback runs before run() returns";
  EXPECT_FALSE(far_fired);
  EXPECT_TRUE(far->enabled()) << "exit() leaves other timers armed";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30))
      << "run() waited for the far timer instead of returning at exit()";

  // The loop can run again after an exit, with its timers intact.
  t->enableTimer(std::chrono::milliseconds(1));
  d->run();
  EXPECT_EQ(2, exits);
  EXPECT_FALSE(far_fired);
}

TEST(DispatcherTest, NowIsMonotonic) {
  DispatcherPtr d = createLibeventDispatcher();
  auto a = d->now();
  auto b = d->now();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace Event
}  // namespace sluice
