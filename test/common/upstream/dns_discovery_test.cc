// DnsDiscovery against a real resolver and test/integration/dns_server.py.
#include "source/common/upstream/dns_discovery.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/stats/stats.h"
#include "test/test_common/dns_server.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Upstream {
namespace {

using std::chrono::milliseconds;

class DnsDiscoveryTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.running());
    dispatcher_ = Event::createLibeventDispatcher();
    auto r = Network::createDnsResolver(*dispatcher_, server_.resolverOptions());
    ASSERT_TRUE(r.ok()) << r.status();
    resolver_ = std::move(*r);
    discovery_ = std::make_unique<DnsDiscovery>(*dispatcher_, *resolver_, &stats_,
                                                [this]() { ++notified_; });
  }

  void TearDown() override {
    discovery_.reset();
    resolver_.reset();
  }

  // Publishes one cluster (YAML) to the discovery, as the server does after each publish.
  void publish(const std::string& yaml) {
    sluice::config::v1::Cluster config;
    absl::Status s = Config::loadFromYaml(yaml, config);
    ASSERT_TRUE(s.ok()) << s;
    auto info = ClusterInfo::create(config, "c", nullptr);
    ASSERT_TRUE(info.ok()) << info.status();
    clusters_[config.name()] = *info;
    discovery_->update(clusters_);
  }

  int64_t stat(const std::string& name) { return stats_.valueOf("cluster.c.dns." + name); }

  std::vector<std::string> addresses(const std::string& host, const std::string& cluster = "c") {
    auto c = discovery_->resolved().find(cluster);
    if (c == discovery_->resolved().end()) return {};
    auto h = c->second.find(host);
    return h == c->second.end() ? std::vector<std::string>{} : h->second;
  }

  // Runs the loop until `n` more resolutions of cluster c have ended.
  void waitAnswers(int64_t n) {
    const int64_t target =
        stat("update_success") + stat("update_failure") + stat("update_empty") + n;
    ASSERT_TRUE(Testing::runUntil(
        *dispatcher_,
        [&]() {
          return stat("update_success") + stat("update_failure") + stat("update_empty") >= target;
        },
        milliseconds(5000)));
  }

  // Cluster c of `type` resolves a.sluice.test every 30 ms: first to `first`; then `same` is no
  // change (no notification), and `other` is one.
  void expectChangeOnlyWith(const std::string& type, const std::vector<std::string>& first,
                            const std::vector<std::string>& same,
                            const std::vector<std::string>& other) {
    server_.set("a.sluice.test", first);
    publish("name: c\ntype: " + type +
            "\ndns_refresh_rate: 30ms\nrespect_dns_ttl: false\n"
            "endpoints: [{address: a.sluice.test, port: 80}]\n");
    ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return notified_ > 0; }));
    const int notified = notified_;
    server_.set("a.sluice.test", same);
    waitAnswers(3);
    EXPECT_EQ(notified, notified_);
    server_.set("a.sluice.test", other);
    ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return notified_ > notified; }));
    EXPECT_EQ(other, addresses("a.sluice.test"));
  }

  Testing::DnsServer server_;
  Stats::Store stats_{1};
  Event::DispatcherPtr dispatcher_;
  Network::DnsResolverPtr resolver_;
  std::unique_ptr<DnsDiscovery> discovery_;
  absl::flat_hash_map<std::string, ClusterInfoConstSharedPtr> clusters_;
  int notified_ = 0;
};

TEST_F(DnsDiscoveryTest, ResolvesEveryNameOfNewClusters) {
  server_.set("a.sluice.test", {"127.0.0.1", "127.0.0.2"});
  server_.set("b.sluice.test", {"127.0.0.3"});
  publish(R"(
name: c
type: STRICT_DNS
endpoints:
- {address: a.sluice.test, port: 80}
- {address: b.sluice.test, port: 81}
- {address: b.sluice.test, port: 82}
- {address: 10.0.0.1, port: 80}
)");
  EXPECT_FALSE(discovery_->initialized());
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return notified_ > 0; }));
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return discovery_->initialized(); }));
  EXPECT_EQ((std::vector<std::string>{"127.0.0.1", "127.0.0.2"}), addresses("a.sluice.test"));
  EXPECT_EQ((std::vector<std::string>{"127.0.0.3"}), addresses("b.sluice.test"));
  // One lookup per name; none for the IP literal.
  EXPECT_EQ(1, server_.queries("b.sluice.test"));
  EXPECT_EQ(2, stat("update_attempt"));
  EXPECT_EQ(2, stat("update_success"));
  EXPECT_EQ(2, stat("update_changed"));
  // Both answers in one loop iteration or two: at most one rebuild each.
  EXPECT_LE(notified_, 2);
}

TEST_F(DnsDiscoveryTest, FailedAndEmptyAnswersKeepTheLastAddresses) {
  server_.set("a.sluice.test", {"127.0.0.1"});
  publish(R"(
name: c
type: STRICT_DNS
dns_refresh_rate: 50ms
respect_dns_ttl: false
endpoints: [{address: a.sluice.test, port: 80}]
)");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return notified_ > 0; }));
  ASSERT_EQ((std::vector<std::string>{"127.0.0.1"}), addresses("a.sluice.test"));
  const int notified = notified_;

  server_.mode("a.sluice.test", "servfail");
  waitAnswers(1);
  EXPECT_GE(stat("update_failure"), 1);
  server_.mode("a.sluice.test", "nxdomain");
  waitAnswers(1);
  server_.set("a.sluice.test", {});  // NODATA: the name has no A record
  waitAnswers(1);
  EXPECT_GE(stat("update_empty"), 1);
  server_.mode("a.sluice.test", "silent");
  waitAnswers(1);  // a timeout (200 ms here)
  EXPECT_EQ((std::vector<std::string>{"127.0.0.1"}), addresses("a.sluice.test"));
  Testing::runPending(*dispatcher_);
  EXPECT_EQ(notified, notified_);

  server_.set("a.sluice.test", {"127.0.0.2"});
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return notified_ > notified; }));
  EXPECT_EQ((std::vector<std::string>{"127.0.0.2"}), addresses("a.sluice.test"));
}

TEST_F(DnsDiscoveryTest, NameNeverResolvedHasNoAddresses) {
  publish(R"(
name: c
type: STRICT_DNS
endpoints: [{address: missing.sluice.test, port: 80}]
)");
  waitAnswers(1);
  EXPECT_TRUE(discovery_->initialized());
  EXPECT_EQ(1, stat("update_failure"));
  EXPECT_FALSE(discovery_->resolved().contains("c"));
  EXPECT_EQ(0, notified_);
}

// Servers rotate the order of their answers: the same set is no change for STRICT_DNS.
TEST_F(DnsDiscoveryTest, OnlyAnotherSetOfAddressesIsAChange) {
  expectChangeOnlyWith("STRICT_DNS", {"127.0.0.1", "127.0.0.2"}, {"127.0.0.2", "127.0.0.1"},
                       {"127.0.0.2", "127.0.0.3"});
  EXPECT_EQ(2, stat("update_changed"));
}

// LOGICAL_DNS uses the first address only: only another first address is a change.
TEST_F(DnsDiscoveryTest, LogicalDnsChangesWithTheFirstAddress) {
  expectChangeOnlyWith("LOGICAL_DNS", {"127.0.0.1", "127.0.0.2"}, {"127.0.0.1", "127.0.0.3"},
                       {"127.0.0.3", "127.0.0.1"});
}

TEST_F(DnsDiscoveryTest, TtlIsTheRefreshIntervalWhenRespected) {
  server_.set("a.sluice.test", {"127.0.0.1"}, {}, 1);
  publish(R"(
name: c
type: STRICT_DNS
dns_refresh_rate: 60s
endpoints: [{address: a.sluice.test, port: 80}]
)");
  // TTL 1s: asked again after about a second, although dns_refresh_rate is a minute.
  const auto start = std::chrono::steady_clock::now();
  waitAnswers(2);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, milliseconds(3000));
}

TEST_F(DnsDiscoveryTest, TtlIgnoredWithoutRespectDnsTtl) {
  server_.set("a.sluice.test", {"127.0.0.1"}, {}, 1);
  publish(R"(
name: c
type: STRICT_DNS
dns_refresh_rate: 60s
respect_dns_ttl: false
endpoints: [{address: a.sluice.test, port: 80}]
)");
  waitAnswers(1);
  Testing::runUntil(
      *dispatcher_, []() { return false; }, milliseconds(1500));
  EXPECT_EQ(1, server_.queries("a.sluice.test"));
}

TEST_F(DnsDiscoveryTest, LookupFamily) {
  server_.set("a.sluice.test", {"127.0.0.1"}, {"::1"});
  publish(R"(
name: c
type: STRICT_DNS
dns_lookup_family: AUTO
endpoints: [{address: a.sluice.test, port: 80}]
)");
  waitAnswers(1);
  EXPECT_EQ((std::vector<std::string>{"::1"}), addresses("a.sluice.test"));
  // Another family: asked again at once.
  publish(R"(
name: c
type: STRICT_DNS
dns_lookup_family: V4_ONLY
endpoints: [{address: a.sluice.test, port: 80}]
)");
  waitAnswers(1);
  EXPECT_EQ((std::vector<std::string>{"127.0.0.1"}), addresses("a.sluice.test"));
}

TEST_F(DnsDiscoveryTest, NamesAndClustersThatGoAreForgotten) {
  server_.set("a.sluice.test", {"127.0.0.1"});
  server_.set("b.sluice.test", {"127.0.0.2"});
  publish(R"(
name: c
type: STRICT_DNS
dns_refresh_rate: 50ms
respect_dns_ttl: false
endpoints: [{address: a.sluice.test, port: 80}, {address: b.sluice.test, port: 80}]
)");
  waitAnswers(2);
  publish(R"(
name: c
type: STRICT_DNS
dns_refresh_rate: 50ms
respect_dns_ttl: false
endpoints: [{address: b.sluice.test, port: 80}]
)");
  EXPECT_TRUE(addresses("a.sluice.test").empty());
  EXPECT_EQ((std::vector<std::string>{"127.0.0.2"}), addresses("b.sluice.test"));
  const int a_queries = server_.queries("a.sluice.test");
  waitAnswers(2);
  EXPECT_EQ(a_queries, server_.queries("a.sluice.test"));

  // Now STATIC: nothing is resolved any more.
  publish("name: c\nendpoints: [{address: 127.0.0.1, port: 80}]\n");
  EXPECT_FALSE(discovery_->resolved().contains("c"));
  const int b_queries = server_.queries("b.sluice.test");
  Testing::runUntil(
      *dispatcher_, []() { return false; }, milliseconds(200));
  EXPECT_EQ(b_queries, server_.queries("b.sluice.test"));
}

// A new config that arrives while a first lookup is in flight does not wait for it, and a
// target removed meanwhile never reports.
TEST_F(DnsDiscoveryTest, RemovedWhileResolving) {
  server_.set("slow.sluice.test", {"127.0.0.1"});
  server_.mode("slow.sluice.test", "silent");
  publish(R"(
name: c
type: STRICT_DNS
endpoints: [{address: slow.sluice.test, port: 80}]
)");
  EXPECT_FALSE(discovery_->initialized());
  clusters_.clear();
  discovery_->update(clusters_);
  EXPECT_TRUE(discovery_->initialized());
  Testing::runUntil(
      *dispatcher_, []() { return false; }, milliseconds(400));
  EXPECT_EQ(0, notified_);
  EXPECT_EQ(0, stat("update_failure"));
}

}  // namespace
}  // namespace Upstream
}  // namespace sluice
