#include "source/extensions/filters/http/rate_limit/redis_client.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/extensions/filters/http/rate_limit/redis_script.h"
#include "test/extensions/filters/http/rate_limit/redis_server.h"
#include "test/test_common/dns_server.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

using testing::HasSubstr;

// Records what a request got back.
struct Recorder : public RedisCallbacks {
  explicit Recorder(CompiledPolicyConstSharedPtr p) : policy(std::move(p)) {}
  void onRedisReply(const redisReply* reply, absl::string_view e) override {
    ++calls;
    if (reply == nullptr) {
      error = std::string(e);
      return;
    }
    std::string parse_error;
    parsed = parseScriptReply(*reply, *policy, decision, parse_error);
    if (!parsed) error = parse_error;
  }
  CompiledPolicyConstSharedPtr policy;
  int calls = 0;
  bool parsed = false;
  Decision decision;
  std::string error;
};

TEST(ScriptCommandTest, SameBytesAsHiredisFormatsThem) {
  PolicyProto proto;
  ASSERT_TRUE(Config::loadFromYaml("{name: fmt, second: 5, hour: 100, policy: REDIS}", proto).ok());
  auto p = *compilePolicy(proto, "p");
  const std::string identity = "header:t\r\n$5";  // RESP-looking bytes stay opaque
  std::vector<std::string> args = {"EVALSHA",
                                   scriptSha1(),
                                   "2",
                                   redisKey(*p, identity, p->windows[0]),
                                   redisKey(*p, identity, p->windows[1]),
                                   "10",
                                   "100",
                                   "5",
                                   "360000",
                                   "100"};
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* formatted = nullptr;
  const long long n = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(),
                                             lengths.data());
  ASSERT_GT(n, 0);
  EXPECT_EQ(scriptCommand(*p, identity), std::string(formatted, n));
  redisFreeCommand(formatted);
  EXPECT_EQ(redisKey(*p, "ip:1.2.3.4", p->windows[0]), "sluice:rl:{fmt/S/ip:1.2.3.4}:second");
}

class RedisClientTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!Testing::RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
    ASSERT_TRUE(redis_.start());
  }

  CompiledPolicyConstSharedPtr policy(const std::string& yaml, uint16_t port = 0) {
    PolicyProto p;
    EXPECT_TRUE(Config::loadFromYaml(yaml, p).ok()) << yaml;
    p.set_policy(PolicyProto::REDIS);
    p.mutable_redis()->set_port(port ? port : redis_.port());
    auto c = compilePolicy(p, "p");
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  }

  // Sends one request for `identity`; returns its recorder (never null) and runs nothing.
  std::unique_ptr<Recorder> send(RedisClient& client, const CompiledPolicyConstSharedPtr& p,
                                 const std::string& identity,
                                 RedisRequestSharedPtr* handle = nullptr) {
    auto r = std::make_unique<Recorder>(p);
    std::string error;
    auto req = client.send(scriptCommand(*p, identity), *r, error);
    if (req == nullptr) {
      r->calls = 1;
      r->error = error.empty() ? "failed at once" : error;
    }
    if (handle != nullptr) *handle = req;
    return r;
  }

  bool allAnswered(const std::vector<std::unique_ptr<Recorder>>& rs) {
    for (const auto& r : rs) {
      if (r->calls == 0) return false;
    }
    return true;
  }

  // Sends a request every 20 ms until one is answered by Redis (the client reconnected in the
  // background), for at most 5 s.
  bool worksAgain(RedisClient& client, const CompiledPolicyConstSharedPtr& p) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = send(client, p, "k");
      if (!Testing::runUntil(*dispatcher_, [&]() { return r->calls == 1; })) return false;
      if (r->parsed) return true;
      Testing::runUntil(
          *dispatcher_, []() { return false; }, std::chrono::milliseconds(20));
    }
    return false;
  }

  int64_t infoStat(const std::string& name) {
    for (absl::string_view line :
         absl::StrSplit(redis_.command("INFO stats"), absl::ByAnyChar("\r\n"))) {
      if (absl::StartsWith(line, name + ":")) {
        int64_t v = -1;
        if (absl::SimpleAtoi(line.substr(name.size() + 1), &v)) return v;
      }
    }
    return -1;
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Testing::RedisServer redis_;
};

TEST_F(RedisClientTest, AdmitsExactlyTheLimitInOrder) {
  auto p = policy("{name: exact, minute: 10}");
  RedisClient client(*dispatcher_, p->redis_settings);
  std::vector<std::unique_ptr<Recorder>> rs;
  for (int i = 0; i < 30; ++i) rs.push_back(send(client, p, "ip:a"));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return allAnswered(rs); }));
  int allowed = 0;
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(rs[i]->parsed) << i << ": " << rs[i]->error;
    const Decision& d = rs[i]->decision;
    if (i < 10) {
      EXPECT_TRUE(d.allowed) << i;
      EXPECT_EQ(d.windows[0].remaining, 9u - i);
      ++allowed;
    } else {
      EXPECT_FALSE(d.allowed) << i;
      EXPECT_EQ(d.windows[0].remaining, 0u);
      // The burst's bucket leaves the count up to 66 s later; the answer is capped at the
      // window (54 s and up if the burst straddled a bucket boundary).
      EXPECT_GT(d.retry_after_ms, 54000);
      EXPECT_LE(d.retry_after_ms, 60000);
    }
    EXPECT_GT(d.windows[0].reset_ms, 0);
    EXPECT_LE(d.windows[0].reset_ms, 60000);
  }
  EXPECT_EQ(allowed, 10);
  EXPECT_TRUE(client.connected());
  // The key expires on its own: TTL about a window plus a bucket.
  const std::string ttl = redis_.command("PTTL sluice:rl:{exact/S/ip:a}:minute");
  int64_t ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(ttl, &ms)) << ttl;
  EXPECT_GT(ms, 60000);
  EXPECT_LE(ms, 67000);
}

TEST_F(RedisClientTest, EveryWindowMustHaveRoomAndRejectionsCostNothing) {
  auto p = policy("{name: multi, hour: 3, day: 4, algorithm: FIXED_WINDOW}");
  RedisClient client(*dispatcher_, p->redis_settings);
  std::vector<std::unique_ptr<Recorder>> rs;
  for (int i = 0; i < 6; ++i) rs.push_back(send(client, p, "k"));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return allAnswered(rs); }));
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(rs[i]->parsed) << rs[i]->error;
    EXPECT_EQ(rs[i]->decision.allowed, i < 3) << i;
  }
  const Decision& last = rs[5]->decision;
  EXPECT_EQ(last.windows[0].remaining, 0u);
  EXPECT_EQ(last.windows[1].remaining, 1u) << "rejected requests are not counted in the day";
  EXPECT_EQ(redis_.command("HVALS sluice:rl:{multi/F/k}:day"), "3");
  // Fixed windows end on the hour: the reset is within the hour.
  EXPECT_LE(last.windows[0].reset_ms, 3600000);
  EXPECT_EQ(last.retry_after_ms, last.windows[0].reset_ms);
}

TEST_F(RedisClientTest, MonthAndYearAreCalendarWindows) {
  // Redis's clock decides; the window must end on the first of next month / year, UTC.
  auto p = policy("{name: cal, month: 3, year: 5}");
  RedisClient client(*dispatcher_, p->redis_settings);
  std::vector<std::unique_ptr<Recorder>> rs;
  for (int i = 0; i < 4; ++i) rs.push_back(send(client, p, "k"));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return allAnswered(rs); }));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(rs[i]->parsed) << rs[i]->error;
    EXPECT_EQ(rs[i]->decision.allowed, i < 3) << i;
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t month_end =
      WindowSpec::calendarBucketEnd(-1, WindowSpec::calendarBucket(-1, now_ms));
  const int64_t year_end =
      WindowSpec::calendarBucketEnd(-2, WindowSpec::calendarBucket(-2, now_ms));
  const Decision& last = rs[3]->decision;
  EXPECT_NEAR(last.windows[0].reset_ms, month_end - now_ms, 5000);
  EXPECT_NEAR(last.retry_after_ms, month_end - now_ms, 5000);
  EXPECT_NEAR(last.windows[1].reset_ms, std::min<int64_t>(year_end - now_ms, 366LL * 86400000),
              5000);
  EXPECT_EQ(last.windows[1].remaining, 2u);
  // The hash field is the month's index since 1970-01.
  EXPECT_EQ(redis_.command("HKEYS sluice:rl:{cal/S/k}:month"),
            absl::StrCat(WindowSpec::calendarBucket(-1, now_ms)));
}

TEST_F(RedisClientTest, ReloadsTheScriptAfterNoscript) {
  auto p = policy("{name: flush, minute: 100}");
  RedisClient client(*dispatcher_, p->redis_settings);
  auto first = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return first->calls == 1; }));
  ASSERT_TRUE(first->parsed) << first->error;
  ASSERT_EQ(redis_.command("SCRIPT FLUSH"), "OK");
  std::vector<std::unique_ptr<Recorder>> rs;
  for (int i = 0; i < 3; ++i) rs.push_back(send(client, p, "k"));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return allAnswered(rs); }));
  for (auto& r : rs) {
    ASSERT_TRUE(r->parsed) << r->error;
    EXPECT_TRUE(r->decision.allowed);
  }
  EXPECT_EQ(rs[2]->decision.windows[0].remaining, 100u - 4);
}

TEST_F(RedisClientTest, CancelledRequestsKeepTheOrder) {
  auto p = policy("{name: cancel, minute: 100}");
  RedisClient client(*dispatcher_, p->redis_settings);
  RedisRequestSharedPtr handle;
  auto a = send(client, p, "k", &handle);
  auto b = send(client, p, "k");
  ASSERT_NE(handle, nullptr);
  handle->cancel();
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return b->calls == 1; }));
  Testing::runPending(*dispatcher_);
  EXPECT_EQ(a->calls, 0);
  ASSERT_TRUE(b->parsed);
  EXPECT_EQ(b->decision.windows[0].remaining, 98u) << "b got its own reply, not a's";
}

TEST_F(RedisClientTest, DownFailsFastAndReconnectsWhenBack) {
  auto p = policy("{name: down, minute: 100}");
  RedisClient client(*dispatcher_, p->redis_settings);
  auto ok = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ok->calls == 1; }));
  ASSERT_TRUE(ok->parsed) << ok->error;

  redis_.stop();
  // The request in flight when the connection goes, or the next one, fails; none waits.
  auto lost = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return lost->calls == 1; }));
  EXPECT_FALSE(lost->parsed);
  EXPECT_FALSE(lost->error.empty());
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return !client.connected(); }));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = send(client, p, "k");
    ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return r->calls == 1; }));
    EXPECT_FALSE(r->parsed);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500))
      << "requests to a Redis that is down must fail at once";

  ASSERT_TRUE(redis_.start());  // same port, empty data
  // The client reconnects in the background (backoff at most 1 s): a request soon works again.
  EXPECT_TRUE(worksAgain(client, p));
}

TEST_F(RedisClientTest, AWorkingConnectionThatIsClosedReconnectsAtOnce) {
  auto p = policy("{name: kill, minute: 100}");
  RedisClient client(*dispatcher_, p->redis_settings);
  auto ok = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ok->calls == 1; }));
  ASSERT_TRUE(ok->parsed);
  ASSERT_EQ(redis_.command("CLIENT KILL TYPE normal"), "1");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return !client.connected(); }));
  // No backoff: the new connection is opened on the next loop iteration. A few iterations
  // (runPending: about 5 ms, far below the 25-50 ms of the first backoff) and a request is
  // taken on it (queued while it connects) instead of failing at once as during a backoff.
  // Counted in loop iterations, not wall time, so a busy machine cannot fail it.
  Testing::runPending(*dispatcher_);
  auto again = send(client, p, "k");
  EXPECT_EQ(again->calls, 0) << "failed at once (" << again->error
                             << "): the client is backing off after a working connection closed";
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return client.connected(); }));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return again->calls == 1; }));
  EXPECT_TRUE(again->parsed) << again->error;
}

TEST_F(RedisClientTest, NothingListeningFailsWithAReason) {
  uint16_t dead;
  {
    Testing::TcpListener l;
    dead = l.port();
  }
  auto p = policy("{name: none, minute: 100}", dead);
  RedisClient client(*dispatcher_, p->redis_settings);
  auto r = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return r->calls == 1; }));
  EXPECT_THAT(r->error, HasSubstr("refused"));
  // Backing off: the next one fails without trying.
  auto again = send(client, p, "k");
  EXPECT_EQ(again->calls, 1);
  EXPECT_THAT(again->error, HasSubstr("refused"));
}

TEST_F(RedisClientTest, CommandsOfOneLoopIterationLeaveInOneWrite) {
  auto p = policy("{name: batch, minute: 100000}");
  RedisClient client(*dispatcher_, p->redis_settings);
  auto warm = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return warm->calls == 1; }));
  const int64_t before = infoStat("total_reads_processed");
  std::vector<std::unique_ptr<Recorder>> rs;
  for (int i = 0; i < 200; ++i) rs.push_back(send(client, p, absl::StrCat("k", i % 7)));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return allAnswered(rs); }));
  const int64_t after = infoStat("total_reads_processed");
  ASSERT_GE(before, 0) << "INFO stats has no total_reads_processed";
  // 200 commands: a handful of reads on the server (one per write we made, plus INFO's own).
  EXPECT_LT(after - before, 10);
  for (auto& r : rs) EXPECT_TRUE(r->parsed && r->decision.allowed) << r->error;
}

TEST_F(RedisClientTest, CommandsFromSeparateCallbacksOfOneIterationShareAWrite) {
  // As under load: each request is parsed in its own connection's callback, and the dispatcher
  // runs deferred work after every callback. The commands must still leave together.
  auto p = policy("{name: cb, minute: 100000}");
  RedisClient client(*dispatcher_, p->redis_settings);
  auto warm = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return warm->calls == 1; }));
  const int64_t before = infoStat("total_reads_processed");
  std::vector<std::unique_ptr<Recorder>> rs(100);
  std::vector<Event::TimerPtr> timers;
  for (int i = 0; i < 100; ++i) {
    timers.push_back(dispatcher_->createTimer([&, i]() { rs[i] = send(client, p, "k"); }));
    timers.back()->enableTimer(std::chrono::milliseconds(0));
  }
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() {
    for (auto& r : rs) {
      if (r == nullptr || r->calls == 0) return false;
    }
    return true;
  }));
  EXPECT_LT(infoStat("total_reads_processed") - before, 10);
  for (auto& r : rs) EXPECT_TRUE(r->parsed) << r->error;
}

TEST_F(RedisClientTest, DatabaseAndPassword) {
  ASSERT_EQ(redis_.command("CONFIG SET requirepass s3cret"), "OK");
  PolicyProto proto;
  ASSERT_TRUE(Config::loadFromYaml(absl::StrCat("{name: auth, minute: 5, policy: REDIS, redis: "
                                                "{port: ",
                                                redis_.port(), ", password: s3cret, database: 3}}"),
                                   proto)
                  .ok());
  auto p = *compilePolicy(proto, "p");
  RedisClient client(*dispatcher_, p->redis_settings);
  auto r = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return r->calls == 1; }));
  EXPECT_TRUE(r->parsed) << r->error;

  // Wrong password: the script's reply is NOAUTH, an error the filter treats as Redis failing.
  proto.mutable_redis()->set_password("wrong");
  auto bad = *compilePolicy(proto, "p");
  RedisClient client2(*dispatcher_, bad->redis_settings);
  auto r2 = send(client2, bad, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return r2->calls == 1; }));
  EXPECT_FALSE(r2->parsed);
}

// A host name is resolved on the client's dispatcher (never with a blocking getaddrinfo), again
// on every reconnect; requests sent while it resolves wait for the connection.
class RedisHostNameTest : public RedisClientTest {
 protected:
  void SetUp() override {
    RedisClientTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(dns_.running());
    auto r = Network::createDnsResolver(*dispatcher_, dns_.resolverOptions());
    ASSERT_TRUE(r.ok()) << r.status();
    resolver_ = std::move(*r);
  }

  CompiledPolicyConstSharedPtr namedPolicy(const std::string& host) {
    PolicyProto p;
    EXPECT_TRUE(Config::loadFromYaml("{name: named, minute: 3, policy: REDIS}", p).ok());
    p.mutable_redis()->set_host(host);
    p.mutable_redis()->set_port(redis_.port());
    auto c = compilePolicy(p, "p");
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  }

  Testing::DnsServer dns_;
  Network::DnsResolverPtr resolver_;
};

TEST_F(RedisHostNameTest, ResolvesTheHostBeforeConnecting) {
  dns_.set("redis.sluice.test", {"127.0.0.1"});
  auto p = namedPolicy("redis.sluice.test");
  RedisClient client(*dispatcher_, p->redis_settings, resolver_.get());
  // Sent before the name resolved: they wait, then run in order.
  std::vector<std::unique_ptr<Recorder>> rs;
  for (int i = 0; i < 5; ++i) rs.push_back(send(client, p, "ip:a"));
  for (const auto& r : rs) EXPECT_EQ(0, r->calls) << r->error;
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return allAnswered(rs); }));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(rs[i]->parsed) << rs[i]->error;
    EXPECT_EQ(i < 3, rs[i]->decision.allowed) << i;
  }
  EXPECT_EQ(1, dns_.queries("redis.sluice.test"));

  // Reconnecting resolves again.
  ASSERT_EQ(redis_.command("CLIENT KILL TYPE normal"), "1");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return !client.connected(); }));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return client.connected(); }));
  EXPECT_EQ(2, dns_.queries("redis.sluice.test"));
}

TEST_F(RedisHostNameTest, UnresolvableHostFailsTheWaitingRequests) {
  dns_.set("redis.sluice.test", {"127.0.0.1"});
  dns_.mode("redis.sluice.test", "nxdomain");
  auto p = namedPolicy("redis.sluice.test");
  RedisClient client(*dispatcher_, p->redis_settings, resolver_.get());
  auto r = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return r->calls == 1; }));
  EXPECT_FALSE(r->parsed);
  EXPECT_THAT(r->error, HasSubstr("cannot resolve redis.sluice.test"));
  // Backing off now: the next one fails at once.
  auto again = send(client, p, "k");
  EXPECT_EQ(1, again->calls);
  // And once the name resolves, the client connects in the background.
  dns_.mode("redis.sluice.test", "answer");
  EXPECT_TRUE(worksAgain(client, p));
}

TEST_F(RedisHostNameTest, SilentDnsServerIsAConnectTimeout) {
  dns_.set("redis.sluice.test", {"127.0.0.1"});
  dns_.mode("redis.sluice.test", "silent");
  auto p = namedPolicy("redis.sluice.test");
  Network::DnsResolverOptions slow;
  slow.servers.push_back(dns_.address());  // c-ares' default timeout: longer than the client's
  auto resolver = Network::createDnsResolver(*dispatcher_, slow);
  ASSERT_TRUE(resolver.ok());
  RedisClient client(*dispatcher_, p->redis_settings, resolver->get());
  auto r = send(client, p, "k");
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Testing::runUntil(
      *dispatcher_, [&]() { return r->calls == 1; }, std::chrono::milliseconds(3000)));
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            RedisClient::kConnectTimeout + std::chrono::milliseconds(500));
  EXPECT_THAT(r->error, HasSubstr("timeout"));
}

// The worker's clients share one resolver, made on first use with the given servers.
TEST_F(RedisHostNameTest, ThreadClientsResolveWithTheGivenServers) {
  dns_.set("redis.sluice.test", {"127.0.0.1"});
  auto p = namedPolicy("redis.sluice.test");
  Network::DnsResolverOptions options;
  options.servers.push_back(dns_.address());
  RedisClient& client = RedisClient::get(*dispatcher_, p->redis_settings, &options);
  auto r = send(client, p, "k");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return r->calls == 1; }));
  EXPECT_TRUE(r->parsed) << r->error;
  RedisClient::clearThread();
}

}  // namespace
}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
