#include "source/common/network/dns_resolver.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/test_common/dns_server.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Network {
namespace {

using std::chrono::milliseconds;

TEST(HostNameTest, Valid) {
  for (const char* n : {"a", "api.internal", "user-service", "x1.example.com.", "3com.net",
                        "a.b-c.d", "localhost"}) {
    EXPECT_TRUE(isValidHostName(n)) << n;
  }
}

TEST(HostNameTest, Invalid) {
  const std::string long_label(64, 'a');
  const std::string long_name = std::string(250, 'a') + ".com";
  for (const std::string& n :
       {std::string(""), std::string("."), std::string("-a.com"), std::string("a-.com"),
        std::string("a..com"), std::string("a b"), std::string("a_b.com"),
        std::string("10.0.0.256"), std::string("1.2.3"), std::string("http://a"),
        std::string("a:80"), long_label, long_name, std::string("\xc3\xa9.com")}) {
    EXPECT_FALSE(isValidHostName(n)) << n;
  }
}

TEST(HostNameTest, IpLiterals) {
  EXPECT_TRUE(isIpLiteral("10.1.2.3"));
  EXPECT_TRUE(isIpLiteral("::1"));
  EXPECT_TRUE(isIpLiteral("[2001:db8::1]"));
  EXPECT_FALSE(isIpLiteral("localhost"));
  EXPECT_FALSE(isIpLiteral("10.0.0.256"));
  EXPECT_FALSE(isIpLiteral(""));
}

// What a resolve() call got.
struct Result {
  bool called = false;
  DnsResolutionStatus status = DnsResolutionStatus::Failure;
  std::string details;
  std::vector<DnsResponse> addresses;
  std::vector<std::string> ips() const {
    std::vector<std::string> out;
    for (const DnsResponse& r : addresses) out.push_back(r.address.ip());
    return out;
  }
};

DnsResolver::ResolveCb callback(std::shared_ptr<Result> result) {
  return [result](DnsResolutionStatus status, absl::string_view details,
                  std::vector<DnsResponse>&& addresses) {
    EXPECT_FALSE(result->called) << "called twice";
    result->called = true;
    result->status = status;
    result->details = std::string(details);
    result->addresses = std::move(addresses);
  };
}

class DnsResolverTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.running()) << "cannot start test/integration/dns_server.py";
    dispatcher_ = Event::createLibeventDispatcher();
    auto r = createDnsResolver(*dispatcher_, server_.resolverOptions());
    ASSERT_TRUE(r.ok()) << r.status();
    resolver_ = std::move(*r);
  }

  // Resolves and waits for the answer.
  Result resolve(const std::string& name, DnsLookupFamily family = DnsLookupFamily::V4Only) {
    auto result = std::make_shared<Result>();
    DnsQueryPtr q = resolver_->resolve(name, family, callback(result));
    EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return result->called; }))
        << "no answer for " << name;
    return *result;
  }

  Testing::DnsServer server_;
  Event::DispatcherPtr dispatcher_;
  DnsResolverPtr resolver_;
};

TEST_F(DnsResolverTest, ResolvesARecordsWithTtl) {
  server_.set("api.sluice.test", {"127.0.0.1", "127.0.0.2"}, {}, 7);
  Result r = resolve("api.sluice.test");
  EXPECT_EQ(DnsResolutionStatus::Success, r.status);
  EXPECT_EQ((std::vector<std::string>{"127.0.0.1", "127.0.0.2"}), r.ips());
  for (const DnsResponse& d : r.addresses) {
    EXPECT_EQ(std::chrono::seconds(7), d.ttl);
    EXPECT_EQ(0, d.address.port());
  }
  EXPECT_EQ(1, server_.queries("api.sluice.test", "A"));
  EXPECT_EQ(0, server_.queries("api.sluice.test", "AAAA"));
}

TEST_F(DnsResolverTest, V6Only) {
  server_.set("dual.sluice.test", {"127.0.0.1"}, {"::1", "2001:db8::7"}, 30);
  Result r = resolve("dual.sluice.test", DnsLookupFamily::V6Only);
  EXPECT_EQ(DnsResolutionStatus::Success, r.status);
  EXPECT_EQ((std::vector<std::string>{"::1", "2001:db8::7"}), r.ips());
  EXPECT_EQ(0, server_.queries("dual.sluice.test", "A"));
}

// AUTO is Envoy's: IPv6 first, IPv4 only when there is no IPv6 address.
TEST_F(DnsResolverTest, AutoPrefersV6) {
  server_.set("dual.sluice.test", {"127.0.0.1"}, {"::1"});
  Result r = resolve("dual.sluice.test", DnsLookupFamily::Auto);
  EXPECT_EQ((std::vector<std::string>{"::1"}), r.ips());
  EXPECT_EQ(0, server_.queries("dual.sluice.test", "A"));
}

TEST_F(DnsResolverTest, AutoFallsBackToV4) {
  server_.set("v4.sluice.test", {"127.0.0.3"});
  Result r = resolve("v4.sluice.test", DnsLookupFamily::Auto);
  EXPECT_EQ(DnsResolutionStatus::Success, r.status);
  EXPECT_EQ((std::vector<std::string>{"127.0.0.3"}), r.ips());
  EXPECT_EQ(1, server_.queries("v4.sluice.test", "AAAA"));
  EXPECT_EQ(1, server_.queries("v4.sluice.test", "A"));
}

TEST_F(DnsResolverTest, V4PreferredFallsBackToV6) {
  server_.set("v6.sluice.test", {}, {"::1"});
  Result r = resolve("v6.sluice.test", DnsLookupFamily::V4Preferred);
  EXPECT_EQ((std::vector<std::string>{"::1"}), r.ips());
  server_.set("dual.sluice.test", {"127.0.0.1"}, {"::1"});
  r = resolve("dual.sluice.test", DnsLookupFamily::V4Preferred);
  EXPECT_EQ((std::vector<std::string>{"127.0.0.1"}), r.ips());
}

TEST_F(DnsResolverTest, NoAddressOfTheFamilyIsAnEmptySuccess) {
  server_.set("v6.sluice.test", {}, {"::1"});
  Result r = resolve("v6.sluice.test", DnsLookupFamily::V4Only);
  EXPECT_TRUE(r.addresses.empty());
  EXPECT_EQ(DnsResolutionStatus::Success, r.status) << r.details;
}

TEST_F(DnsResolverTest, Failures) {
  Result r = resolve("unknown.sluice.test");
  EXPECT_EQ(DnsResolutionStatus::Failure, r.status);
  EXPECT_NE(std::string::npos, r.details.find("NXDOMAIN")) << r.details;

  server_.set("broken.sluice.test", {"127.0.0.1"});
  server_.mode("broken.sluice.test", "servfail");
  r = resolve("broken.sluice.test");
  EXPECT_EQ(DnsResolutionStatus::Failure, r.status);
  // c-ares tries the next server after a SERVFAIL, then says none answered.
  EXPECT_NE(std::string::npos, r.details.find("SERVFAIL")) << r.details;

  server_.mode("broken.sluice.test", "refused");
  r = resolve("broken.sluice.test");
  EXPECT_EQ(DnsResolutionStatus::Failure, r.status);

  server_.mode("broken.sluice.test", "silent");
  const auto start = std::chrono::steady_clock::now();
  r = resolve("broken.sluice.test");
  EXPECT_EQ(DnsResolutionStatus::Failure, r.status);
  EXPECT_EQ("timeout", r.details);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));

  // And it answers again afterwards.
  server_.mode("broken.sluice.test", "answer");
  r = resolve("broken.sluice.test");
  EXPECT_EQ((std::vector<std::string>{"127.0.0.1"}), r.ips());
}

// The channel reset after a refused answer waits for the lookups in flight: one started right
// after it ends on its own terms (here a timeout), not "channel destroyed".
TEST_F(DnsResolverTest, ResetAfterRefusalSparesLookupsInFlight) {
  server_.set("broken.sluice.test", {"127.0.0.1"});
  server_.mode("broken.sluice.test", "refused");
  server_.set("slow.sluice.test", {"127.0.0.1"});
  server_.mode("slow.sluice.test", "silent");
  server_.set("fast.sluice.test", {"127.0.0.2"});
  auto refused = std::make_shared<Result>();
  auto slow = std::make_shared<Result>();
  auto fast = std::make_shared<Result>();
  DnsQueryPtr q1 = resolver_->resolve(
      "broken.sluice.test", DnsLookupFamily::V4Only,
      [&](DnsResolutionStatus s, absl::string_view d, std::vector<DnsResponse>&& a) {
        callback(refused)(s, d, std::move(a));
        // Started from the callback, before any reset can run.
        q1 = resolver_->resolve("slow.sluice.test", DnsLookupFamily::V4Only, callback(slow));
      });
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return slow->called; }));
  EXPECT_EQ(DnsResolutionStatus::Failure, refused->status);
  EXPECT_EQ("timeout", slow->details);
  // And the reset channel works.
  DnsQueryPtr q2 = resolver_->resolve("fast.sluice.test", DnsLookupFamily::V4Only, callback(fast));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return fast->called; }));
  EXPECT_EQ((std::vector<std::string>{"127.0.0.2"}), fast->ips());
}

TEST_F(DnsResolverTest, IpLiteralsNeedNoDns) {
  auto result = std::make_shared<Result>();
  DnsQueryPtr q = resolver_->resolve("10.1.2.3", DnsLookupFamily::V6Only, callback(result));
  EXPECT_FALSE(result->called);  // never from inside resolve()
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return result->called; }));
  EXPECT_EQ((std::vector<std::string>{"10.1.2.3"}), result->ips());
  Result r = resolve("[::1]");
  EXPECT_EQ((std::vector<std::string>{"::1"}), r.ips());
}

// c-ares reads the hosts file before asking a server; an answer it finds there is still never
// delivered from inside resolve().
TEST_F(DnsResolverTest, HostsFile) {
  auto result = std::make_shared<Result>();
  DnsQueryPtr q = resolver_->resolve("localhost", DnsLookupFamily::V4Only, callback(result));
  EXPECT_FALSE(result->called);
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return result->called; }));
  EXPECT_EQ(DnsResolutionStatus::Success, result->status);
  EXPECT_EQ((std::vector<std::string>{"127.0.0.1"}), result->ips());
  EXPECT_EQ(0, server_.queries("localhost", "A"));
}

TEST_F(DnsResolverTest, CancelledQueryNeverCallsBack) {
  server_.set("slow.sluice.test", {"127.0.0.1"});
  server_.mode("slow.sluice.test", "silent");
  server_.set("fast.sluice.test", {"127.0.0.1"});
  auto cancelled = std::make_shared<Result>();
  DnsQueryPtr q =
      resolver_->resolve("slow.sluice.test", DnsLookupFamily::V4Only, callback(cancelled));
  auto literal = std::make_shared<Result>();
  DnsQueryPtr q2 = resolver_->resolve("127.0.0.9", DnsLookupFamily::V4Only, callback(literal));
  q.reset();
  q2.reset();
  // Past the timeout of the cancelled lookup.
  Result other = resolve("fast.sluice.test");
  Testing::runUntil(
      *dispatcher_, []() { return false; }, milliseconds(400));
  EXPECT_FALSE(cancelled->called);
  EXPECT_FALSE(literal->called);
  EXPECT_TRUE(other.called);
}

TEST_F(DnsResolverTest, QueryDestroyedInsideItsCallback) {
  server_.set("api.sluice.test", {"127.0.0.1"});
  DnsQueryPtr q;
  bool called = false;
  q = resolver_->resolve("api.sluice.test", DnsLookupFamily::V4Only,
                         [&](DnsResolutionStatus, absl::string_view, std::vector<DnsResponse>&&) {
                           called = true;
                           q.reset();
                         });
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return called; }));
  EXPECT_EQ(nullptr, q);
}

TEST_F(DnsResolverTest, ResolvingAgainFromInsideACallback) {
  server_.set("a.sluice.test", {"127.0.0.1"});
  server_.set("b.sluice.test", {"127.0.0.2"});
  auto second = std::make_shared<Result>();
  DnsQueryPtr q1;
  DnsQueryPtr q2;
  q1 = resolver_->resolve("a.sluice.test", DnsLookupFamily::V4Only,
                          [&](DnsResolutionStatus, absl::string_view, std::vector<DnsResponse>&&) {
                            q2 = resolver_->resolve("b.sluice.test", DnsLookupFamily::V4Only,
                                                    callback(second));
                          });
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return second->called; }));
  EXPECT_EQ((std::vector<std::string>{"127.0.0.2"}), second->ips());
}

TEST_F(DnsResolverTest, ManyConcurrentQueries) {
  std::vector<std::shared_ptr<Result>> results;
  std::vector<DnsQueryPtr> queries;
  for (int i = 0; i < 50; ++i) {
    const std::string name = "host" + std::to_string(i) + ".sluice.test";
    server_.set(name, {"127.0.1." + std::to_string(i)});
  }
  for (int i = 0; i < 50; ++i) {
    results.push_back(std::make_shared<Result>());
    queries.push_back(resolver_->resolve("host" + std::to_string(i) + ".sluice.test",
                                         DnsLookupFamily::V4Only, callback(results.back())));
  }
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() {
    return std::all_of(results.begin(), results.end(), [](auto& r) { return r->called; });
  }));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ((std::vector<std::string>{"127.0.1." + std::to_string(i)}), results[i]->ips());
  }
}

// Destroying the resolver with lookups in flight: their callbacks never run, and their handles
// may still be destroyed afterwards.
TEST_F(DnsResolverTest, DestroyedWithQueriesInFlight) {
  server_.set("slow.sluice.test", {"127.0.0.1"});
  server_.mode("slow.sluice.test", "silent");
  auto pending = std::make_shared<Result>();
  auto literal = std::make_shared<Result>();
  DnsQueryPtr q = resolver_->resolve("slow.sluice.test", DnsLookupFamily::Auto, callback(pending));
  DnsQueryPtr q2 = resolver_->resolve("127.0.0.1", DnsLookupFamily::V4Only, callback(literal));
  Testing::runPending(*dispatcher_);
  resolver_.reset();
  Testing::runUntil(
      *dispatcher_, []() { return false; }, milliseconds(300));
  EXPECT_FALSE(pending->called);
  q.reset();
  q2.reset();
}

// A server that refuses (ICMP port unreachable): the lookup fails, and later lookups work once
// a server answers again (c-ares' channel is reset after ECONNREFUSED).
TEST(DnsResolverNoServerTest, RefusedConnectionThenRecovery) {
  Testing::DnsServer server;
  ASSERT_TRUE(server.running());
  auto dispatcher = Event::createLibeventDispatcher();
  DnsResolverOptions options = server.resolverOptions();
  Address closed;
  Address::parse("127.0.0.1", 1, closed);  // nothing listens on UDP port 1
  options.servers.insert(options.servers.begin(), closed);
  auto resolver = createDnsResolver(*dispatcher, options);
  ASSERT_TRUE(resolver.ok());
  server.set("api.sluice.test", {"127.0.0.5"});
  for (int i = 0; i < 3; ++i) {
    auto result = std::make_shared<Result>();
    DnsQueryPtr q =
        (*resolver)->resolve("api.sluice.test", DnsLookupFamily::V4Only, callback(result));
    ASSERT_TRUE(Testing::runUntil(*dispatcher, [&]() { return result->called; }));
    EXPECT_EQ((std::vector<std::string>{"127.0.0.5"}), result->ips()) << result->details;
  }
}

TEST(DnsResolverCreateTest, RejectsNonIpServers) {
  auto dispatcher = Event::createLibeventDispatcher();
  DnsResolverOptions options;
  options.servers.emplace_back();  // family unset
  EXPECT_FALSE(createDnsResolver(*dispatcher, options).ok());
}

}  // namespace
}  // namespace Network
}  // namespace sluice
