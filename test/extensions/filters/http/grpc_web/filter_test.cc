#include "source/extensions/filters/http/grpc_web/filter.h"

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/http/conn_manager.h"
#include "source/common/http/filter_config.h"
#include "source/common/router/config.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/cluster_manager.h"
#include "test/test_common/filter_callbacks.h"
#include "test/test_common/http_utility.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Extensions {
namespace GrpcWeb {
namespace {

using Testing::parseResponses;
using Testing::RawPeer;
using Testing::Response;

std::string frame(absl::string_view message, uint8_t flags = 0) {
  std::string f;
  f += static_cast<char>(flags);
  const uint32_t n = static_cast<uint32_t>(message.size());
  f += static_cast<char>(n >> 24);
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f.append(message.data(), message.size());
  return f;
}

// ---- base64 and trailer frames -------------------------------------------------------------

TEST(Base64StreamTest, DecodesAcrossPiecesAndPaddedGroups) {
  const std::string text = absl::Base64Escape("hello") + absl::Base64Escape("gRPC-Web!");
  for (size_t split = 0; split <= text.size(); ++split) {
    Base64StreamDecoder d;
    std::string out;
    ASSERT_TRUE(d.decode(text.substr(0, split), out));
    ASSERT_TRUE(d.decode(text.substr(split), out));
    EXPECT_TRUE(d.atGroupBoundary());
    EXPECT_EQ("hellogRPC-Web!", out) << split;
  }
}

TEST(Base64StreamTest, RejectsInvalidInput) {
  for (const char* bad : {"ab=c", "a===", "ab c", "ab-_", "=abc", "ab==cd=e", "\xff\xff\xff\xff"}) {
    Base64StreamDecoder d;
    std::string out;
    EXPECT_FALSE(d.decode(bad, out)) << bad;
  }
  Base64StreamDecoder d;
  std::string out;
  EXPECT_TRUE(d.decode("aGk", out));
  EXPECT_FALSE(d.atGroupBoundary());
}

TEST(Base64StreamTest, EncodesInPieces) {
  const std::string data = "The quick brown fox jumps over the lazy dog";
  for (size_t split = 0; split <= data.size(); ++split) {
    Base64StreamEncoder e;
    std::string out;
    e.encode(data.substr(0, split), out);
    EXPECT_EQ(0u, out.size() % 4);
    e.encode(data.substr(split), out);
    e.finish(out);
    EXPECT_EQ(absl::Base64Escape(data), out) << split;
  }
}

TEST(TrailerFrameTest, Format) {
  Http::HeaderMap t;
  t.add("grpc-status", "0");
  t.add("grpc-message", "ok");
  const std::string payload = "grpc-status:0\r\ngrpc-message:ok\r\n";
  EXPECT_EQ(frame(payload, 0x80), trailerFrame(t));
  EXPECT_EQ(frame("", 0x80), trailerFrame(Http::HeaderMap()));
}

// ---- The filter alone ----------------------------------------------------------------------

using FakeCallbacks = Testing::FakeFilterCallbacks;

class GrpcWebFilterTest : public testing::Test {
 protected:
  GrpcWebFilterTest() {
    filter_.setDecoderFilterCallbacks(cb_);
    filter_.setEncoderFilterCallbacks(cb_);
  }
  Http::RequestHeaderMap& request(absl::string_view content_type, absl::string_view accept = "") {
    cb_.request.method = "POST";
    cb_.request.path = "/svc.S/M";
    cb_.request.add("host", "h");
    if (!content_type.empty()) cb_.request.add("content-type", content_type);
    if (!accept.empty()) cb_.request.add("accept", accept);
    cb_.request.add("content-length", "12");
    EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_.decodeHeaders(cb_.request, false));
    return cb_.request;
  }
  std::string decode(absl::string_view in, bool end, Http::FilterDataStatus expect) {
    Buffer::OwnedImpl data(in);
    EXPECT_EQ(expect, filter_.decodeData(data, end));
    return data.toString();
  }
  std::string encode(absl::string_view in, bool end) {
    Buffer::OwnedImpl data(in);
    filter_.encodeData(data, end);
    return data.toString();
  }
  Http::ResponseHeaderMap grpcResponse(bool end_stream = false) {
    Http::ResponseHeaderMap h;
    h.status = 200;
    h.add("content-type", "application/grpc+proto");
    if (!end_stream) h.add("content-length", "100");
    EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_.encodeHeaders(h, end_stream));
    return h;
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  FakeCallbacks cb_{*dispatcher_};
  GrpcWebFilter filter_;
};

TEST_F(GrpcWebFilterTest, OtherRequestsPassUntouched) {
  Http::RequestHeaderMap& h = request("application/json");
  EXPECT_EQ("application/json", h.get("content-type"));
  EXPECT_EQ("12", h.get("content-length"));
  EXPECT_FALSE(h.has("te"));
  EXPECT_EQ("abc", decode("abc", false, Http::FilterDataStatus::Continue));
  Http::ResponseHeaderMap r;
  r.status = 500;
  r.add("content-type", "text/html");
  filter_.encodeHeaders(r, false);
  EXPECT_EQ("text/html", r.get("content-type"));
  EXPECT_FALSE(r.has("grpc-status"));
  Http::HeaderMap t;
  t.add("x", "y");
  filter_.encodeTrailers(t);
  EXPECT_EQ(1u, t.size());
  EXPECT_EQ("", cb_.added);
}

TEST_F(GrpcWebFilterTest, OptionsPreflightPassesUntouched) {
  cb_.request.method = "OPTIONS";
  cb_.request.add("access-control-request-method", "POST");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_.decodeHeaders(cb_.request, true));
  EXPECT_FALSE(cb_.request.has("te"));
  EXPECT_EQ(0u, cb_.local_status);
}

TEST_F(GrpcWebFilterTest, BinaryRequestAndResponse) {
  Http::RequestHeaderMap& h = request("application/grpc-web+proto");
  EXPECT_EQ("application/grpc+proto", h.get("content-type"));
  EXPECT_FALSE(h.has("content-length"));
  EXPECT_EQ("trailers", h.get("te"));
  const std::string msg = frame("hello");
  EXPECT_EQ(msg, decode(msg, true, Http::FilterDataStatus::Continue));

  Http::ResponseHeaderMap r = grpcResponse();
  EXPECT_EQ("application/grpc-web+proto", r.get("content-type"));
  EXPECT_FALSE(r.has("content-length"));
  EXPECT_EQ(msg, encode(msg, false));
  Http::HeaderMap t;
  t.add("grpc-status", "0");
  t.add("x-custom", "v");
  EXPECT_EQ(Http::FilterTrailersStatus::Continue, filter_.encodeTrailers(t));
  EXPECT_EQ(0u, t.size());
  EXPECT_EQ(frame("grpc-status:0\r\nx-custom:v\r\n", 0x80), cb_.added);
}

TEST_F(GrpcWebFilterTest, TextRequestIsDecodedIncrementally) {
  Http::RequestHeaderMap& h = request("application/grpc-web-text");
  EXPECT_EQ("application/grpc", h.get("content-type"));
  const std::string msg = frame("hello, world");
  const std::string text = absl::Base64Escape(msg);
  // 3 characters: nothing to pass on yet.
  EXPECT_EQ("", decode(text.substr(0, 3), false, Http::FilterDataStatus::StopIterationNoBuffer));
  std::string out = decode(text.substr(3, 6), false, Http::FilterDataStatus::Continue);
  out += decode(text.substr(9), true, Http::FilterDataStatus::Continue);
  EXPECT_EQ(msg, out);
  EXPECT_EQ(0u, cb_.local_status);
}

TEST_F(GrpcWebFilterTest, TextRequestWithPaddedMessagesOneAfterTheOther) {
  request("application/grpc-web-text+proto");
  const std::string a = frame("a");
  const std::string b = frame("bb");
  EXPECT_EQ(a + b, decode(absl::Base64Escape(a) + absl::Base64Escape(b), true,
                          Http::FilterDataStatus::Continue));
}

TEST_F(GrpcWebFilterTest, InvalidBase64Is400) {
  request("application/grpc-web-text");
  decode("abc!", false, Http::FilterDataStatus::StopIterationNoBuffer);
  EXPECT_EQ(400u, cb_.local_status);
  EXPECT_TRUE(cb_.info.response_flags.has(Http::ResponseFlag::DownstreamProtocolError));
}

TEST_F(GrpcWebFilterTest, TruncatedBase64Is400) {
  request("application/grpc-web-text");
  decode("aGVsbG8", true, Http::FilterDataStatus::StopIterationNoBuffer);
  EXPECT_EQ(400u, cb_.local_status);
}

TEST_F(GrpcWebFilterTest, TextResponseForTextAccept) {
  request("application/grpc-web", "application/grpc-web-text");
  Http::ResponseHeaderMap r = grpcResponse();
  EXPECT_EQ("application/grpc-web-text", r.get("content-type"));
  const std::string msg = frame("response message");
  std::string out = encode(msg.substr(0, 4), false);
  out += encode(msg.substr(4), false);
  Http::HeaderMap t;
  t.add("grpc-status", "0");
  filter_.encodeTrailers(t);
  out += cb_.added;
  std::string decoded;
  Base64StreamDecoder d;
  ASSERT_TRUE(d.decode(out, decoded)) << out;
  EXPECT_TRUE(d.atGroupBoundary());
  EXPECT_EQ(msg + frame("grpc-status:0\r\n", 0x80), decoded);
}

TEST_F(GrpcWebFilterTest, TextResponseEndingWithData) {
  request("application/grpc-web-text");
  grpcResponse();
  const std::string msg = frame("xy");
  const std::string out = encode(msg, true);
  EXPECT_EQ(absl::Base64Escape(msg), out);
}

TEST_F(GrpcWebFilterTest, TrailersOnlyResponseStaysHeaders) {
  request("application/grpc-web-text");
  Http::ResponseHeaderMap r;
  r.status = 200;
  r.add("content-type", "application/grpc");
  r.add("grpc-status", "5");
  r.add("grpc-message", "not%20found");
  filter_.encodeHeaders(r, true);
  EXPECT_EQ("application/grpc-web-text", r.get("content-type"));
  EXPECT_EQ("5", r.get("grpc-status"));
  EXPECT_EQ("not%20found", r.get("grpc-message"));
}

TEST_F(GrpcWebFilterTest, NonGrpcResponseBecomesAStatus) {
  request("application/grpc-web");
  Http::ResponseHeaderMap r;
  r.status = 503;
  r.add("content-type", "text/html");
  r.add("content-length", "5");
  filter_.encodeHeaders(r, false);
  EXPECT_EQ(503u, r.status);
  EXPECT_EQ("application/grpc-web", r.get("content-type"));
  EXPECT_EQ("14", r.get("grpc-status"));
  EXPECT_EQ("0", r.get("content-length"));
  EXPECT_EQ("", encode("<html", false));
  Http::HeaderMap t;
  t.add("x", "y");
  filter_.encodeTrailers(t);
  EXPECT_EQ(0u, t.size());
  EXPECT_EQ("", cb_.added);
}

// ---- Through the connection manager and the router -----------------------------------------

struct TestConfigSource : public Http::ConfigSource {
  const Http::ConnectionManagerConfigConstSharedPtr& config() const override { return current; }
  Http::ConnectionManagerConfigConstSharedPtr current;
};

class GrpcWebProxyTest : public testing::Test {
 protected:
  GrpcWebProxyTest() {
    signal(SIGPIPE, SIG_IGN);
    sluice::config::v1::Cluster c;
    EXPECT_TRUE(Config::loadFromYaml(absl::StrCat("name: backend\nendpoints: [{address: "
                                                  "127.0.0.1, port: ",
                                                  upstream_.port(), "}]\n"),
                                     c)
                    .ok());
    auto info = Upstream::ClusterInfo::create(c, "c", &store_);
    EXPECT_TRUE(info.ok()) << info.status();
    cm_.update({{"backend", *info}});
    sluice::config::v1::RouteTable rt;
    EXPECT_TRUE(Config::loadFromYaml(R"(
name: test
virtual_hosts:
- domains: ["*"]
  routes:
  - {match: {prefix: /svc.}, route: {cluster: backend}}
)",
                                     rt)
                    .ok());
    auto table = sluice::Router::RouteTableImpl::create(rt, "route_tables[0]", &store_);
    EXPECT_TRUE(table.ok()) << table.status();
    auto config = std::make_shared<Http::ConnectionManagerConfig>();
    config->route_table = *table;
    Http::FactoryContext fctx{&store_, "test"};
    for (const char* name : {"grpc_web", "router"}) {
      auto f = Http::FilterRegistry::get(name)->createFilterFactory(
          *Http::FilterTypeRegistry::get(name)->createEmptyConfigProto(), "f", fctx);
      EXPECT_TRUE(f.ok());
      config->filter_factories.push_back(*f);
    }
    source_->current = config;
    event_ = dispatcher_->createFileEvent(
        upstream_.fd(),
        [this](uint32_t) {
          int fd;
          while ((fd = upstream_.accept()) >= 0) {
            peers_.push_back(std::make_unique<RawPeer>(*dispatcher_, fd));
          }
        },
        Event::FileReadyType::Read);
  }

  ~GrpcWebProxyTest() override {
    for (auto& c : clients_) c->close();
    for (auto& u : peers_) u->close();
    EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ctx_.connectionCount() == 0; }));
    Testing::runPending(*dispatcher_);
    cm_.update({});
    Testing::runPending(*dispatcher_);
    event_.reset();
  }

  RawPeer& connect() {
    auto [server_fd, client_fd] = Testing::socketPair();
    auto conn = std::make_unique<Network::Connection>(*dispatcher_, server_fd, false);
    Network::Address peer;
    EXPECT_TRUE(Network::Address::parse("10.1.2.3", 50000, peer));
    conn->setPeerAddress(peer);
    new Http::ConnectionManagerImpl(ctx_, source_, std::move(conn));  // owns itself
    clients_.push_back(std::make_unique<RawPeer>(*dispatcher_, client_fd));
    return *clients_.back();
  }

  bool run(const std::function<bool()>& done) { return Testing::runUntil(*dispatcher_, done); }

  RawPeer* upstreamWith(absl::string_view needle) {
    RawPeer* found = nullptr;
    run([&]() {
      for (auto& p : peers_) {
        if (absl::StrContains(p->received(), needle)) found = p.get();
      }
      return found != nullptr;
    });
    return found;
  }

  Response waitForResponse(RawPeer& client) {
    EXPECT_TRUE(run([&]() { return !parseResponses(client.received()).empty(); }))
        << client.received();
    std::vector<Response> r = parseResponses(client.received());
    return r.empty() ? Response() : r[0];
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{1};
  Http::HttpStats stats_ = Http::HttpStats::create(store_);
  Upstream::ClusterManager cm_{*dispatcher_, 1};
  Http::WorkerContext ctx_{*dispatcher_, cm_, stats_, 7};
  std::shared_ptr<TestConfigSource> source_ = std::make_shared<TestConfigSource>();
  Testing::TcpListener upstream_;
  Event::FileEventPtr event_;
  std::vector<std::unique_ptr<RawPeer>> peers_;
  std::vector<std::unique_ptr<RawPeer>> clients_;
};

std::string chunk(absl::string_view data) {
  return absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
}

TEST_F(GrpcWebProxyTest, BinaryUnaryCallWithTrailers) {
  RawPeer& c = connect();
  const std::string request = frame("ping");
  c.write(absl::StrCat(
      "POST /svc.Echo/Call HTTP/1.1\r\nHost: h\r\nContent-Type: application/grpc-web+proto\r\n"
      "X-Grpc-Web: 1\r\nContent-Length: ",
      request.size(), "\r\n\r\n", request));
  RawPeer* up = upstreamWith(request);
  ASSERT_NE(nullptr, up);
  const std::string got = up->received();
  EXPECT_TRUE(absl::StrContains(got, "content-type: application/grpc+proto\r\n")) << got;
  // te: trailers reaches HTTP/2 upstreams only; the HTTP/1 codec drops it (hop-by-hop).
  EXPECT_FALSE(absl::StrContains(got, "te: trailers\r\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "transfer-encoding: chunked\r\n")) << got;
  EXPECT_FALSE(absl::StrContains(absl::AsciiStrToLower(got), "content-length")) << got;

  const std::string reply = frame("pong");
  up->write(absl::StrCat(
      "HTTP/1.1 200 OK\r\nContent-Type: application/grpc+proto\r\nTransfer-Encoding: chunked\r\n"
      "\r\n",
      chunk(reply), "0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"));
  Response r = waitForResponse(c);
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("application/grpc-web+proto", r.get("content-type"));
  EXPECT_EQ(reply + frame("grpc-status:0\r\ngrpc-message:fine\r\n", 0x80), r.body);
  // Nothing after the body (no trailer section), and the connection is reusable.
  EXPECT_TRUE(absl::EndsWith(c.received(), "\r\n0\r\n\r\n")) << c.received();
  EXPECT_FALSE(c.peerClosed());
}

TEST_F(GrpcWebProxyTest, TextCallInPieces) {
  RawPeer& c = connect();
  const std::string request = frame("ping-ping-ping");
  const std::string text = absl::Base64Escape(request);
  c.write(
      "POST /svc.Echo/Call HTTP/1.1\r\nHost: h\r\nContent-Type: application/grpc-web-text\r\n"
      "Accept: application/grpc-web-text\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (size_t i = 0; i < text.size(); i += 5) {
    c.write(chunk(text.substr(i, 5)));
    Testing::runPending(*dispatcher_);
  }
  c.write("0\r\n\r\n");
  RawPeer* up = upstreamWith("\r\n0\r\n\r\n");
  ASSERT_NE(nullptr, up);
  {
    // The upstream got the decoded bytes (chunked, in pieces).
    const std::string got = up->received();
    EXPECT_TRUE(absl::StrContains(got, "content-type: application/grpc\r\n")) << got;
    std::string body;
    absl::string_view rest = got;
    rest.remove_prefix(rest.find("\r\n\r\n") + 4);
    while (true) {
      const size_t eol = rest.find("\r\n");
      size_t n = 0;
      ASSERT_TRUE(absl::SimpleHexAtoi(rest.substr(0, eol), &n));
      if (n == 0) break;
      body.append(rest.data() + eol + 2, n);
      rest.remove_prefix(eol + 2 + n + 2);
    }
    EXPECT_EQ(request, body);
  }
  const std::string reply = frame("pong!");
  up->write(
      "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nTransfer-Encoding: chunked\r\n\r\n");
  up->write(chunk(reply.substr(0, 4)));
  Testing::runPending(*dispatcher_);
  up->write(chunk(reply.substr(4)));
  up->write("0\r\ngrpc-status: 0\r\n\r\n");
  Response r = waitForResponse(c);
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("application/grpc-web-text", r.get("content-type"));
  Base64StreamDecoder d;
  std::string decoded;
  ASSERT_TRUE(d.decode(r.body, decoded)) << r.body;
  EXPECT_TRUE(d.atGroupBoundary());
  EXPECT_EQ(reply + frame("grpc-status:0\r\n", 0x80), decoded);
}

TEST_F(GrpcWebProxyTest, LocalReplyIsTrailersOnlyGrpcWeb) {
  RawPeer& c = connect();
  c.write(
      "POST /nowhere HTTP/1.1\r\nHost: h\r\nContent-Type: application/grpc-web-text\r\n"
      "Content-Length: 0\r\n\r\n");
  Response r = waitForResponse(c);
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("application/grpc-web-text", r.get("content-type"));
  EXPECT_EQ("12", r.get("grpc-status"));
  EXPECT_EQ("0", r.get("content-length"));
}

TEST_F(GrpcWebProxyTest, InvalidBase64IsAGrpcWebError) {
  RawPeer& c = connect();
  c.write(
      "POST /svc.Echo/Call HTTP/1.1\r\nHost: h\r\nContent-Type: application/grpc-web-text\r\n"
      "Content-Length: 4\r\n\r\n!!!!");
  Response r = waitForResponse(c);
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("application/grpc-web-text", r.get("content-type"));
  EXPECT_EQ("13", r.get("grpc-status"));
}

}  // namespace
}  // namespace GrpcWeb
}  // namespace Extensions
}  // namespace sluice
