// The remote JWKS fetcher: URIs with host names, resolved on the fetcher's dispatcher.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/extensions/filters/http/auth/jwks.h"
#include "test/test_common/dns_server.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace {

using testing::HasSubstr;

TEST(HttpUriTest, HostNames) {
  auto u = parseHttpUri("http://idp.sluice.test:8080/.well-known/jwks.json");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ("idp.sluice.test", u->host_name);
  EXPECT_EQ(8080u, u->port);
  EXPECT_EQ("idp.sluice.test:8080", u->host_header);
  EXPECT_EQ("/.well-known/jwks.json", u->path);

  u = parseHttpUri("http://10.0.0.1/jwks");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->host_name.empty());
  EXPECT_EQ("10.0.0.1:80", u->address.toString());
  u = parseHttpUri("http://localhost:9/jwks");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->host_name.empty());

  EXPECT_THAT(std::string(parseHttpUri("http://idp_x/jwks").status().message()),
              HasSubstr("is not an IP address or a valid host name"));
  EXPECT_FALSE(parseHttpUri("http://10.0.0.256/jwks").ok());
}

// Answers every HTTP request on 127.0.0.1 with `body` (one request per connection).
class JwksHttpServer {
 public:
  JwksHttpServer(Event::Dispatcher& dispatcher, std::string body)
      : dispatcher_(dispatcher), body_(std::move(body)) {
    accept_ = dispatcher_.createFileEvent(
        listener_.fd(),
        [this](uint32_t) {
          int fd = listener_.accept();
          if (fd < 0) return;
          ++connections_;
          peers_.push_back(std::make_unique<Testing::RawPeer>(dispatcher_, fd));
        },
        Event::FileReadyType::Read);
    poll_ = dispatcher_.createTimer([this]() { answer(); });
    poll_->enableTimer(std::chrono::milliseconds(1));
  }
  uint16_t port() const { return listener_.port(); }
  int connections() const { return connections_; }
  const std::string& lastRequest() const { return last_request_; }

 private:
  void answer() {
    for (auto& p : peers_) {
      if (!p->closed() && absl::StrContains(p->received(), "\r\n\r\n")) {
        last_request_ = p->received();
        p->clearReceived();
        p->write("HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body_.size()) +
                 "\r\nconnection: close\r\n\r\n" + body_);
        p->shutdownWrite();
      }
    }
    poll_->enableTimer(std::chrono::milliseconds(1));
  }

  Event::Dispatcher& dispatcher_;
  std::string body_;
  Testing::TcpListener listener_;
  Event::FileEventPtr accept_;
  Event::TimerPtr poll_;
  std::vector<std::unique_ptr<Testing::RawPeer>> peers_;
  int connections_ = 0;
  std::string last_request_;
};

class JwksFetcherTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dns_.running());
    auto r = Network::createDnsResolver(*dispatcher_, dns_.resolverOptions());
    ASSERT_TRUE(r.ok()) << r.status();
    resolver_ = std::move(*r);
  }

  absl::StatusOr<std::string> fetch(JwksFetcher& fetcher) {
    bool done = false;
    absl::StatusOr<std::string> out = absl::UnknownError("not called");
    fetcher.fetch([&](absl::StatusOr<std::string> body) {
      out = std::move(body);
      done = true;
    });
    EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return done; }));
    return out;
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Testing::DnsServer dns_;
  Network::DnsResolverPtr resolver_;
};

TEST_F(JwksFetcherTest, FetchesFromAHostName) {
  JwksHttpServer server(*dispatcher_, R"({"keys":[]})");
  dns_.set("idp.sluice.test", {"127.0.0.1"});
  auto uri = parseHttpUri("http://idp.sluice.test:" + std::to_string(server.port()) + "/jwks");
  ASSERT_TRUE(uri.ok());
  auto fetcher =
      createHttpJwksFetcher(*dispatcher_, *uri, std::chrono::milliseconds(2000), resolver_.get());
  auto body = fetch(*fetcher);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(R"({"keys":[]})", *body);
  EXPECT_THAT(server.lastRequest(), HasSubstr("host: idp.sluice.test:"));
  // Every fetch resolves again.
  body = fetch(*fetcher);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(2, dns_.queries("idp.sluice.test"));
}

TEST_F(JwksFetcherTest, UnresolvableHostFails) {
  auto uri = parseHttpUri("http://missing.sluice.test/jwks");
  ASSERT_TRUE(uri.ok());
  auto fetcher =
      createHttpJwksFetcher(*dispatcher_, *uri, std::chrono::milliseconds(2000), resolver_.get());
  auto body = fetch(*fetcher);
  ASSERT_FALSE(body.ok());
  EXPECT_THAT(std::string(body.status().message()),
              HasSubstr("cannot resolve missing.sluice.test"));
}

TEST_F(JwksFetcherTest, TimeoutCoversTheResolution) {
  dns_.set("slow.sluice.test", {"127.0.0.1"});
  dns_.mode("slow.sluice.test", "silent");
  Network::DnsResolverOptions slow;
  slow.servers.push_back(dns_.address());  // c-ares' default timeout, longer than the fetch's
  auto resolver = Network::createDnsResolver(*dispatcher_, slow);
  ASSERT_TRUE(resolver.ok());
  auto uri = parseHttpUri("http://slow.sluice.test/jwks");
  ASSERT_TRUE(uri.ok());
  auto fetcher =
      createHttpJwksFetcher(*dispatcher_, *uri, std::chrono::milliseconds(300), resolver->get());
  auto body = fetch(*fetcher);
  ASSERT_FALSE(body.ok());
  EXPECT_THAT(std::string(body.status().message()), HasSubstr("timeout"));
  // Destroyed with nothing in flight any more; and a fetcher destroyed while resolving is fine.
  auto again =
      createHttpJwksFetcher(*dispatcher_, *uri, std::chrono::milliseconds(300), resolver->get());
  again->fetch([](absl::StatusOr<std::string>) { ADD_FAILURE() << "called after destruction"; });
  again.reset();
  Testing::runPending(*dispatcher_);
}

TEST_F(JwksFetcherTest, HostNameWithoutResolverFails) {
  auto uri = parseHttpUri("http://idp.sluice.test/jwks");
  ASSERT_TRUE(uri.ok());
  auto fetcher = createHttpJwksFetcher(*dispatcher_, *uri, std::chrono::milliseconds(300));
  auto body = fetch(*fetcher);
  ASSERT_FALSE(body.ok());
  EXPECT_THAT(std::string(body.status().message()), HasSubstr("no DNS resolver"));
}

}  // namespace
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
