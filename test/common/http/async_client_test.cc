// Http::AsyncClient against a scriptable server on the same dispatcher: requests as received,
// keep-alive reuse and idle close, the one transparent retry when a kept-alive connection was
// closed under it (and none otherwise), timeouts, size caps, cancel, TLS.
#include "source/common/http/async_client.h"

#include <signal.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/test_common/network_utility.h"
#include "test/test_common/test_http_server.h"

namespace sluice {
namespace Http {
namespace {

using testing::HasSubstr;
using Server = Testing::TestHttpServer;

// As sluice does: a write to a connection the peer closed is an error, not a signal.
const bool kSigpipeIgnored = signal(SIGPIPE, SIG_IGN) != SIG_ERR;

TEST(HttpUriTest, Parses) {
  auto u = parseHttpUri("http://idp.sluice.test:8080/.well-known/jwks.json?x=1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ("idp.sluice.test", u->host_name);
  EXPECT_EQ(8080u, u->port);
  EXPECT_EQ("idp.sluice.test:8080", u->host_header);
  EXPECT_EQ("/.well-known/jwks.json?x=1", u->path);
  EXPECT_FALSE(u->has_userinfo);
  EXPECT_EQ("http://idp.sluice.test:8080/.well-known/jwks.json", u->displayName());

  u = parseHttpUri("https://bob:p%40ss%3Aw@127.0.0.1/logs");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->has_userinfo);
  EXPECT_EQ("bob:p@ss:w", u->userinfo);
  EXPECT_EQ("127.0.0.1", u->host_header);
  EXPECT_EQ(443u, u->port);
  EXPECT_EQ("https://127.0.0.1/logs", u->displayName());  // never the password

  u = parseHttpUri("http://[::1]:9/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ("[::1]:9", u->address.toString());

  EXPECT_THAT(std::string(parseHttpUri("ftp://x/").status().message()),
              HasSubstr("http:// or https://"));
  EXPECT_THAT(std::string(parseHttpUri("http://idp_x/jwks").status().message()),
              HasSubstr("is not an IP address or a valid host name"));
  EXPECT_FALSE(parseHttpUri("http://10.0.0.256/").ok());
  EXPECT_FALSE(parseHttpUri("http://a:%zz@host/").ok());
  EXPECT_FALSE(parseHttpUri("http://host:0/").ok());
  EXPECT_FALSE(parseHttpUri("http:///x").ok());
  EXPECT_FALSE(parseHttpUri("http://host/a b").ok());
}

class AsyncClientTest : public testing::Test {
 protected:
  std::unique_ptr<AsyncClient> client(const Server& server, AsyncClient::Options options = {}) {
    auto uri = parseHttpUri("http://127.0.0.1:" + std::to_string(server.port()) + "/base");
    EXPECT_TRUE(uri.ok());
    return std::make_unique<AsyncClient>(*dispatcher_, *uri, options);
  }

  absl::StatusOr<AsyncResponse> call(AsyncClient& c, AsyncRequest req = {}) {
    bool done = false;
    absl::StatusOr<AsyncResponse> out = absl::UnknownError("not called");
    c.send(std::move(req), [&](absl::StatusOr<AsyncResponse> r) {
      out = std::move(r);
      done = true;
    });
    EXPECT_FALSE(done);  // never from inside send()
    EXPECT_TRUE(Testing::runUntil(
        *dispatcher_, [&]() { return done; }, std::chrono::milliseconds(5000)));
    return out;
  }

  static AsyncRequest post(std::string body) {
    AsyncRequest r;
    r.method = "POST";
    r.body = std::move(body);
    return r;
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
};

Server::Action ok(std::string body = "ok") {
  Server::Action a;
  a.body = std::move(body);
  return a;
}

TEST_F(AsyncClientTest, SendsMethodHeadersAndBody) {
  Server server(*dispatcher_, [](const Server::Request&) {
    Server::Action a;
    a.status = 201;
    a.body = "created";
    a.headers.emplace_back("x-reply", "yes");
    return a;
  });
  auto c = client(server);
  AsyncRequest req;
  req.method = "PATCH";
  req.path = "/other?q=1";
  req.headers = {{"content-type", "application/json"}, {"x-custom", "v"}, {"host", "evil"}};
  req.body = R"({"a":1})";
  auto r = call(*c, req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(201u, r->status);
  EXPECT_EQ("created", r->body);
  EXPECT_EQ("yes", r->headers->get("x-reply"));
  ASSERT_EQ(1u, server.requests().size());
  const Server::Request& got = server.requests()[0];
  EXPECT_EQ("PATCH", got.method);
  EXPECT_EQ("/other?q=1", got.path);
  EXPECT_EQ(R"({"a":1})", got.body);
  EXPECT_EQ("7", got.header("content-length"));
  EXPECT_EQ("application/json", got.header("content-type"));
  EXPECT_EQ("v", got.header("x-custom"));
  EXPECT_EQ("127.0.0.1:" + std::to_string(server.port()), got.header("host"));  // not the caller's

  // The URI's path when the request names none; a GET without a body has no content-length.
  r = call(*c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ("GET", server.requests()[1].method);
  EXPECT_EQ("/base", server.requests()[1].path);
  EXPECT_EQ("", server.requests()[1].header("content-length"));
}

TEST_F(AsyncClientTest, ReusesAKeptAliveConnectionAndClosesItWhenIdle) {
  Server server(*dispatcher_, [](const Server::Request&) { return ok(); });
  AsyncClient::Options o;
  o.keepalive = std::chrono::milliseconds(200);
  auto c = client(server, o);
  for (int i = 0; i < 3; ++i) {
    auto r = call(*c, post("entry " + std::to_string(i)));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_EQ(1, server.connections());
  EXPECT_EQ(1u, c->connectionsOpened());
  EXPECT_EQ(2, server.requests()[2].index);  // the third request on the first connection
  EXPECT_EQ(1u, c->idleConnections());
  // Idle longer than keepalive: the client closes it, the next request opens another.
  EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return server.openConnections() == 0; }));
  EXPECT_EQ(0u, c->idleConnections());
  ASSERT_TRUE(call(*c, post("later")).ok());
  EXPECT_EQ(2, server.connections());
}

TEST_F(AsyncClientTest, ConnectionCloseFromTheServerIsNotReused) {
  Server server(*dispatcher_, [](const Server::Request&) {
    Server::Action a = ok();
    a.close = true;
    return a;
  });
  auto c = client(server);
  ASSERT_TRUE(call(*c, post("1")).ok());
  ASSERT_TRUE(call(*c, post("2")).ok());
  EXPECT_EQ(2, server.connections());
  EXPECT_EQ(0, server.requests()[1].index);
}

TEST_F(AsyncClientTest, NoKeepaliveClosesAfterEachRequest) {
  Server server(*dispatcher_, [](const Server::Request&) { return ok(); });
  AsyncClient::Options o;
  o.keepalive = std::chrono::milliseconds(0);
  auto c = client(server, o);
  ASSERT_TRUE(call(*c, post("1")).ok());
  ASSERT_TRUE(call(*c, post("2")).ok());
  EXPECT_EQ(2, server.connections());
  EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return server.openConnections() == 0; }));
  EXPECT_EQ(0u, c->idleConnections());
}

TEST_F(AsyncClientTest, IdleConnectionClosedByTheServerIsNotUsed) {
  Server server(*dispatcher_, [](const Server::Request&) { return ok(); });
  auto c = client(server);
  ASSERT_TRUE(call(*c, post("1")).ok());
  server.closeAll();
  EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return c->idleConnections() == 0; }));
  ASSERT_TRUE(call(*c, post("2")).ok());
  EXPECT_EQ(2, server.connections());
  EXPECT_EQ(2u, server.requests().size());  // no retry was needed
}

TEST_F(AsyncClientTest, KeptAliveConnectionClosedUnderTheRequestIsRetriedOnce) {
  // The second request on the first connection finds it closed (the server's keep-alive timeout
  // racing our reuse): nothing of a response arrived, so it goes again on a new connection.
  Server server(*dispatcher_, [](const Server::Request& r) {
    if (r.connection == 0 && r.index == 1) {
      Server::Action a;
      a.kind = Server::Kind::CloseNow;
      return a;
    }
    return ok("from " + std::to_string(r.connection));
  });
  auto c = client(server);
  ASSERT_TRUE(call(*c, post("1")).ok());
  auto r = call(*c, post("2"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ("from 1", r->body);
  ASSERT_EQ(3u, server.requests().size());
  EXPECT_EQ("2", server.requests()[1].body);
  EXPECT_EQ("2", server.requests()[2].body);
  EXPECT_EQ(1, server.requests()[2].connection);
  EXPECT_EQ(2u, c->connectionsOpened());
}

TEST_F(AsyncClientTest, RetriedOnlyOnce) {
  // Every request after the first on any connection, and every first request of a later
  // connection, is dropped: the retry (on a fresh connection) fails too, and that is final.
  Server server(*dispatcher_, [](const Server::Request& r) {
    if (r.connection == 0 && r.index == 0) return ok();
    Server::Action a;
    a.kind = Server::Kind::CloseNow;
    return a;
  });
  auto c = client(server);
  ASSERT_TRUE(call(*c, post("1")).ok());
  auto r = call(*c, post("2"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("connection closed"));
  EXPECT_EQ(3u, server.requests().size());
}

TEST_F(AsyncClientTest, NoRetryOnceTheResponseStarted) {
  Server server(*dispatcher_, [](const Server::Request& r) {
    if (r.index == 1) {
      Server::Action a;
      a.kind = Server::Kind::PartialThenClose;
      a.raw_prefix = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc";
      return a;
    }
    return ok();
  });
  auto c = client(server);
  ASSERT_TRUE(call(*c, post("1")).ok());
  auto r = call(*c, post("2"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(2u, server.requests().size());  // not sent again: the server may have acted on it
  // Even a few bytes of a status line count as a started response.
  Server server2(*dispatcher_, [](const Server::Request& r) {
    if (r.index == 1) {
      Server::Action a;
      a.kind = Server::Kind::PartialThenClose;
      a.raw_prefix = "HTTP/1.";
      return a;
    }
    return ok();
  });
  auto c2 = client(server2);
  ASSERT_TRUE(call(*c2, post("1")).ok());
  EXPECT_FALSE(call(*c2, post("2")).ok());
  EXPECT_EQ(2u, server2.requests().size());
}

TEST_F(AsyncClientTest, NoRetryOnAFreshConnection) {
  Server server(*dispatcher_, [](const Server::Request&) {
    Server::Action a;
    a.kind = Server::Kind::CloseNow;
    return a;
  });
  auto c = client(server);
  auto r = call(*c, post("1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(1u, server.requests().size());
}

TEST_F(AsyncClientTest, TimeoutClosesTheConnection) {
  Server server(*dispatcher_, [](const Server::Request&) {
    Server::Action a;
    a.kind = Server::Kind::Hold;
    return a;
  });
  AsyncClient::Options o;
  o.timeout = std::chrono::milliseconds(200);
  auto c = client(server, o);
  const auto start = std::chrono::steady_clock::now();
  auto r = call(*c, post("1"));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_GE(took, std::chrono::milliseconds(190));
  EXPECT_LT(took, std::chrono::milliseconds(2000));
  EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return server.openConnections() == 0; }));
  EXPECT_EQ(0u, c->idleConnections());
}

TEST_F(AsyncClientTest, ResponseLargerThanTheCapFails) {
  Server server(*dispatcher_, [](const Server::Request&) { return ok(std::string(5000, 'x')); });
  AsyncClient::Options o;
  o.max_response_bytes = 4096;
  auto c = client(server, o);
  auto r = call(*c, post("1"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(r.status()));
  EXPECT_EQ(0u, c->idleConnections());
}

TEST_F(AsyncClientTest, ConnectionRefused) {
  Testing::TcpListener closed;
  const uint16_t port = closed.port();
  closed.close();
  auto uri = parseHttpUri("http://127.0.0.1:" + std::to_string(port) + "/");
  ASSERT_TRUE(uri.ok());
  AsyncClient c(*dispatcher_, *uri, {});
  auto r = call(c, post("1"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
}

TEST_F(AsyncClientTest, HostNameWithoutResolverFails) {
  auto uri = parseHttpUri("http://collector.sluice.test/");
  ASSERT_TRUE(uri.ok());
  AsyncClient c(*dispatcher_, *uri, {});
  auto r = call(c);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no DNS resolver"));
}

TEST_F(AsyncClientTest, ConcurrentRequestsEachGetAConnection) {
  Server server(*dispatcher_, [](const Server::Request& r) { return ok(r.body); });
  auto c = client(server);
  int done = 0;
  std::vector<std::string> bodies;
  for (int i = 0; i < 3; ++i) {
    c->send(post(std::to_string(i)), [&](absl::StatusOr<AsyncResponse> r) {
      ASSERT_TRUE(r.ok()) << r.status();
      bodies.push_back(r->body);
      ++done;
    });
  }
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return done == 3; }));
  EXPECT_THAT(bodies, testing::UnorderedElementsAre("0", "1", "2"));
  EXPECT_EQ(3, server.connections());
  // All three are kept; the next ones reuse them.
  EXPECT_EQ(3u, c->idleConnections());
  ASSERT_TRUE(call(*c, post("again")).ok());
  EXPECT_EQ(3, server.connections());
}

TEST_F(AsyncClientTest, CancelAndDestroyWithoutCallbacks) {
  Server server(*dispatcher_, [](const Server::Request&) {
    Server::Action a;
    a.kind = Server::Kind::Hold;
    return a;
  });
  auto c = client(server);
  AsyncClient::Request& r =
      c->send(post("1"), [](absl::StatusOr<AsyncResponse>) { ADD_FAILURE() << "cancelled"; });
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return server.requests().size() == 1; }));
  r.cancel();
  EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return server.openConnections() == 0; }));
  c->send(post("2"), [](absl::StatusOr<AsyncResponse>) { ADD_FAILURE() << "destroyed"; });
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return server.requests().size() == 2; }));
  c.reset();
  Testing::runPending(*dispatcher_);
  EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return server.openConnections() == 0; }));
}

TEST_F(AsyncClientTest, CallbackMayDestroyTheClient) {
  Server server(*dispatcher_, [](const Server::Request&) { return ok(); });
  auto c = client(server);
  bool done = false;
  c->send(post("1"), [&](absl::StatusOr<AsyncResponse> r) {
    EXPECT_TRUE(r.ok());
    c.reset();
    done = true;
  });
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return done; }));
  Testing::runPending(*dispatcher_);
}

std::string readTestFile(const std::string& name) {
  std::ifstream f("test/common/tls/testdata/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class AsyncClientTlsTest : public AsyncClientTest {
 protected:
  void SetUp() override {
    Tls::ServerContextConfig sc;
    sc.certificates.push_back(Tls::CertificateMaterial{readTestFile("default.crt"),
                                                       readTestFile("default.key"), "", "t"});
    auto ctx = Tls::ServerContext::create(sc, nullptr);
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    server_tls_ = *ctx;
  }

  // https://default.test:<port>/ pointed at 127.0.0.1 (no DNS: the address is set by hand).
  HttpUri uriFor(const Server& server, const std::string& name, const std::string& ca) {
    auto uri = parseHttpUri("https://" + name + ":" + std::to_string(server.port()) + "/logs");
    EXPECT_TRUE(uri.ok());
    auto tls = createUriTlsContext(*uri, ca);
    EXPECT_TRUE(tls.ok()) << tls.status();
    uri->tls = *tls;
    Network::Address::parse("127.0.0.1", server.port(), uri->address);
    uri->host_name.clear();
    return *uri;
  }

  Tls::ServerContextConstSharedPtr server_tls_;
};

TEST_F(AsyncClientTlsTest, HttpsWithATestCaAndReuse) {
  Server server(
      *dispatcher_, [](const Server::Request& r) { return ok("tls " + r.body); }, server_tls_);
  AsyncClient c(*dispatcher_, uriFor(server, "default.test", readTestFile("unit-ca.crt")), {});
  auto r = call(c, post("1"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ("tls 1", r->body);
  ASSERT_TRUE(call(c, post("2")).ok());
  EXPECT_EQ(1, server.connections());
  EXPECT_EQ("default.test:" + std::to_string(server.port()), server.requests()[0].header("host"));
}

TEST_F(AsyncClientTlsTest, CertificateNotForTheHostFails) {
  Server server(
      *dispatcher_, [](const Server::Request&) { return ok(); }, server_tls_);
  AsyncClient c(*dispatcher_, uriFor(server, "other.test", readTestFile("unit-ca.crt")), {});
  auto r = call(c, post("1"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("TLS"));
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(AsyncClientTlsTest, UnknownCaFails) {
  Server server(
      *dispatcher_, [](const Server::Request&) { return ok(); }, server_tls_);
  AsyncClient c(*dispatcher_, uriFor(server, "default.test", ""), {});  // the system's CAs
  auto r = call(c, post("1"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("TLS"));
}

}  // namespace
}  // namespace Http
}  // namespace sluice
