#include "source/common/http/conn_manager.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/filter.h"
#include "source/common/http/filter_config.h"
#include "source/common/http/gateway_response_config.h"
#include "source/common/network/connection.h"
#include "source/common/router/config.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster_manager.h"
#include "test/test_common/http_utility.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Http {
namespace {

using testing::HasSubstr;
using testing::Not;
using Testing::parseResponses;
using Testing::Response;

google::protobuf::Struct parseJson(const std::string& json) {
  google::protobuf::Struct s;
  auto status = google::protobuf::util::JsonStringToMessage(json, &s);
  EXPECT_TRUE(status.ok()) << status.ToString() << ": " << json;
  return s;
}

bool isUuid(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(s[i])) {
      return false;
    }
  }
  return s[14] == '4';
}

// ---- Test filters --------------------------------------------------------------------------

// What the test filters saw and did.
struct FilterLog {
  int pause_started = 0;
  int pause_resumed = 0;
  int denied = 0;
  int observed_at_pause = -1;  // observer calls when the pause filter stopped iteration
  std::vector<RequestHeaderMap> observed_headers;
  std::string observed_body;
  bool observed_end = false;
  int observed_trailers = 0;
  int destroyed = 0;
};

class DecoderFilterBase : public StreamDecoderFilter {
 public:
  explicit DecoderFilterBase(FilterLog& log) : log_(log) {}
  FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return FilterDataStatus::Continue;
  }
  FilterTrailersStatus decodeTrailers(HeaderMap&) override {
    return FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& cb) override { callbacks_ = &cb; }

 protected:
  FilterLog& log_;
  StreamDecoderFilterCallbacks* callbacks_ = nullptr;
};

// With `x-pause: <ms>`, holds the request headers and resumes from a timer.
class PauseFilter : public DecoderFilterBase {
 public:
  using DecoderFilterBase::DecoderFilterBase;
  FilterHeadersStatus decodeHeaders(RequestHeaderMap& h, bool) override {
    int ms = 0;
    if (!h.has("x-pause") || !absl::SimpleAtoi(h.get("x-pause"), &ms)) {
      return FilterHeadersStatus::Continue;
    }
    ++log_.pause_started;
    log_.observed_at_pause = static_cast<int>(log_.observed_headers.size());
    if (ms >= 0) {
      timer_ = callbacks_->dispatcher().createTimer([this]() {
        ++log_.pause_resumed;
        callbacks_->continueDecoding();
      });
      timer_->enableTimer(std::chrono::milliseconds(ms));
    }
    return FilterHeadersStatus::StopIteration;
  }
  void onDestroy() override {
    ++log_.destroyed;
    if (timer_) timer_->disableTimer();
  }

 private:
  Event::TimerPtr timer_;
};

// With `x-deny`, answers 403 itself.
class DenyFilter : public DecoderFilterBase {
 public:
  using DecoderFilterBase::DecoderFilterBase;
  FilterHeadersStatus decodeHeaders(RequestHeaderMap& h, bool) override {
    if (!h.has("x-deny")) {
      return FilterHeadersStatus::Continue;
    }
    ++log_.denied;
    callbacks_->sendLocalReply(403, "denied by \"test\" filter",
                               ResponseFlag::UnauthorizedExternalService);
    return FilterHeadersStatus::StopIteration;
  }
};

class AddHeaderFilter : public DecoderFilterBase {
 public:
  using DecoderFilterBase::DecoderFilterBase;
  FilterHeadersStatus decodeHeaders(RequestHeaderMap& h, bool) override {
    h.add("x-added", "yes");
    return FilterHeadersStatus::Continue;
  }
};

// Records what reaches it.
class ObserverFilter : public DecoderFilterBase {
 public:
  using DecoderFilterBase::DecoderFilterBase;
  FilterHeadersStatus decodeHeaders(RequestHeaderMap& h, bool) override {
    log_.observed_headers.push_back(h);
    return FilterHeadersStatus::Continue;
  }
  FilterDataStatus decodeData(Buffer::Instance& data, bool end_stream) override {
    log_.observed_body += data.toString();
    log_.observed_end = log_.observed_end || end_stream;
    return FilterDataStatus::Continue;
  }
  FilterTrailersStatus decodeTrailers(HeaderMap&) override {
    ++log_.observed_trailers;
    return FilterTrailersStatus::Continue;
  }
};

// With `x-echo`, acts as the terminal filter: collects the request body and trailers and answers
// with the body (streamed: no content-length) and the number of trailers it saw. It answers from
// the next loop iteration, or with `x-echo: sync` from inside the callback that ends the request.
class EchoFilter : public DecoderFilterBase {
 public:
  using DecoderFilterBase::DecoderFilterBase;
  FilterHeadersStatus decodeHeaders(RequestHeaderMap& h, bool end_stream) override {
    if (!h.has("x-echo")) {
      return FilterHeadersStatus::Continue;
    }
    echo_ = true;
    sync_ = h.get("x-echo") == "sync";
    response_trailers_ = h.has("x-echo-trailers");
    if (end_stream) {
      respond();
    }
    return FilterHeadersStatus::StopIteration;
  }
  FilterDataStatus decodeData(Buffer::Instance& data, bool end_stream) override {
    body_ += data.toString();
    data.drain(data.length());
    if (end_stream) {
      respond();
    }
    return FilterDataStatus::StopIterationNoBuffer;
  }
  FilterTrailersStatus decodeTrailers(HeaderMap& trailers) override {
    trailers_ = trailers.size();
    respond();
    return FilterTrailersStatus::StopIteration;
  }

 private:
  void respond() {
    if (!sync_) {
      timer_ = callbacks_->dispatcher().createTimer([this]() { respondNow(); });
      timer_->enableTimer(std::chrono::milliseconds(0));
      return;
    }
    respondNow();
  }
  void respondNow() {
    auto h = std::make_unique<ResponseHeaderMap>();
    h->status = 200;
    h->add("x-trailers", absl::StrCat(trailers_));
    callbacks_->encodeHeaders(std::move(h), false);
    Buffer::OwnedImpl body(body_);
    callbacks_->encodeData(body, !response_trailers_);
    if (response_trailers_) {
      auto t = std::make_unique<HeaderMap>();
      t->add("x-echo-trailer", "1");
      callbacks_->encodeTrailers(std::move(t));
    }
  }
  bool echo_ = false;
  bool sync_ = false;
  bool response_trailers_ = false;
  std::string body_;
  size_t trailers_ = 0;
  Event::TimerPtr timer_;
};

// With `x-rewrite: request` / `response`, holds the headers until the whole body is in, then
// hands on "<" + the body in upper case + ">" with a fixed content-length, the way a body
// transformer does (from the last decodeData()/encodeData(), or ahead of the trailers).
class RewriteBodyFilter : public StreamFilter {
 public:
  FilterHeadersStatus decodeHeaders(RequestHeaderMap& h, bool end_stream) override {
    request_ = h.get("x-rewrite") == "request" && !end_stream;
    response_ = h.get("x-rewrite") == "response";
    if (!request_) return FilterHeadersStatus::Continue;
    request_headers_ = &h;
    return FilterHeadersStatus::StopIteration;
  }
  FilterDataStatus decodeData(Buffer::Instance& data, bool end_stream) override {
    if (!request_) return FilterDataStatus::Continue;
    body_.move(data);
    if (!end_stream) return FilterDataStatus::StopIterationNoBuffer;
    rewrite(*request_headers_, data);
    decoder_callbacks_->continueDecoding();
    return FilterDataStatus::Continue;
  }
  FilterTrailersStatus decodeTrailers(HeaderMap&) override {
    if (!request_) return FilterTrailersStatus::Continue;
    Buffer::OwnedImpl data;
    rewrite(*request_headers_, data);
    decoder_callbacks_->addDecodedData(data);
    decoder_callbacks_->continueDecoding();
    return FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& cb) override {
    decoder_callbacks_ = &cb;
  }
  FilterHeadersStatus encodeHeaders(ResponseHeaderMap& h, bool end_stream) override {
    if (!response_ || end_stream) return FilterHeadersStatus::Continue;
    response_headers_ = &h;
    return FilterHeadersStatus::StopIteration;
  }
  FilterDataStatus encodeData(Buffer::Instance& data, bool end_stream) override {
    if (!response_) return FilterDataStatus::Continue;
    body_.move(data);
    if (!end_stream) return FilterDataStatus::StopIterationNoBuffer;
    rewrite(*response_headers_, data);
    encoder_callbacks_->continueEncoding();
    return FilterDataStatus::Continue;
  }
  FilterTrailersStatus encodeTrailers(HeaderMap&) override {
    if (!response_ || response_headers_ == nullptr) return FilterTrailersStatus::Continue;
    // Ahead of the trailers, without a length (an HTTP/1.1 client then gets them chunked).
    Buffer::OwnedImpl data;
    rewrite(*response_headers_, data, false);
    response_headers_ = nullptr;
    encoder_callbacks_->addEncodedData(data);
    encoder_callbacks_->continueEncoding();
    return FilterTrailersStatus::Continue;
  }
  void setEncoderFilterCallbacks(StreamEncoderFilterCallbacks& cb) override {
    encoder_callbacks_ = &cb;
  }

 private:
  void rewrite(HeaderMap& headers, Buffer::Instance& out, bool length = true) {
    const std::string body = absl::StrCat("<", absl::AsciiStrToUpper(body_.toString()), ">");
    body_.drain(body_.length());
    if (length) {
      headers.set("content-length", absl::StrCat(body.size()));
    } else {
      headers.remove("content-length");
    }
    headers.remove("transfer-encoding");
    out.add(body);
  }
  StreamDecoderFilterCallbacks* decoder_callbacks_ = nullptr;
  StreamEncoderFilterCallbacks* encoder_callbacks_ = nullptr;
  RequestHeaderMap* request_headers_ = nullptr;
  ResponseHeaderMap* response_headers_ = nullptr;
  Buffer::OwnedImpl body_;
  bool request_ = false;
  bool response_ = false;
};

// Adds a response header on the way out.
class ResponseHeaderFilter : public StreamEncoderFilter {
 public:
  FilterHeadersStatus encodeHeaders(ResponseHeaderMap& h, bool) override {
    h.add("x-encoded", "1");
    return FilterHeadersStatus::Continue;
  }
  FilterDataStatus encodeData(Buffer::Instance&, bool) override {
    return FilterDataStatus::Continue;
  }
  FilterTrailersStatus encodeTrailers(HeaderMap&) override {
    return FilterTrailersStatus::Continue;
  }
  void setEncoderFilterCallbacks(StreamEncoderFilterCallbacks&) override {}
};

constexpr char kRoutes[] = R"(
name: test
virtual_hosts:
- name: main
  domains: ["*"]
  routes:
  - name: direct
    match: {prefix: /direct}
    direct_response: {status: 200, body: "{\"hello\":\"world\"}", content_type: application/json}
  - name: empty
    match: {path: /empty}
    direct_response: {status: 204}
  - name: redirect
    match: {prefix: /old}
    redirect: {path_redirect: /new, response_code: 308}
  - name: missing_cluster
    match: {prefix: /upstream}
    route: {cluster: missing}
)";

// ---- Fixture -------------------------------------------------------------------------------

// The listener slot a worker would own: a new stream reads `current`.
struct TestConfigSource : public ConfigSource {
  const ConnectionManagerConfigConstSharedPtr& config() const override { return current; }
  ConnectionManagerConfigConstSharedPtr current;
};

class ConnectionManagerTest : public testing::Test {
 protected:
  ConnectionManagerTest() {
    signal(SIGPIPE, SIG_IGN);
    sluice::config::v1::RouteTable rt;
    absl::Status s = Config::loadFromYaml(kRoutes, rt);
    EXPECT_TRUE(s.ok()) << s;
    auto table = Router::RouteTableImpl::create(rt, "route_tables[0]", &store_);
    EXPECT_TRUE(table.ok()) << table.status();
    config_ = std::make_shared<ConnectionManagerConfig>();
    config_->listener_name = "test";
    config_->route_table = *table;
    config_->filter_factories = {
        [this](FilterChainFactoryCallbacks& cb) {
          cb.addStreamDecoderFilter(std::make_shared<PauseFilter>(log_));
        },
        [this](FilterChainFactoryCallbacks& cb) {
          cb.addStreamDecoderFilter(std::make_shared<DenyFilter>(log_));
        },
        [this](FilterChainFactoryCallbacks& cb) {
          cb.addStreamDecoderFilter(std::make_shared<AddHeaderFilter>(log_));
        },
        [](FilterChainFactoryCallbacks& cb) {
          cb.addStreamFilter(std::make_shared<RewriteBodyFilter>());
        },
        [this](FilterChainFactoryCallbacks& cb) {
          cb.addStreamDecoderFilter(std::make_shared<ObserverFilter>(log_));
        },
        [this](FilterChainFactoryCallbacks& cb) {
          cb.addStreamDecoderFilter(std::make_shared<EchoFilter>(log_));
        },
        [](FilterChainFactoryCallbacks& cb) {
          cb.addStreamEncoderFilter(std::make_shared<ResponseHeaderFilter>());
        },
    };
    FactoryContext fctx{&store_, "test"};
    NamedHttpFilterConfigFactory* router = FilterRegistry::get("router");
    EXPECT_NE(nullptr, router);
    auto router_cb = router->createFilterFactory(
        *FilterTypeRegistry::get("router")->createEmptyConfigProto(), "http_filters[7]", fctx);
    EXPECT_TRUE(router_cb.ok());
    config_->filter_factories.push_back(*router_cb);
  }

  ~ConnectionManagerTest() override {
    // Let every connection manager close and be deleted while the context still exists.
    for (auto& c : clients_) c->close();
    EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ctx_.connectionCount() == 0; }));
    Testing::runPending(*dispatcher_);
    clients_.clear();
  }

  // Opens a downstream connection served by a new ConnectionManagerImpl.
  Testing::RawPeer& connect() {
    auto [server_fd, client_fd] = Testing::socketPair();
    auto conn = std::make_unique<Network::Connection>(*dispatcher_, server_fd, false);
    Network::Address peer;
    EXPECT_TRUE(Network::Address::parse("127.0.0.1", 40000, peer));
    conn->setPeerAddress(peer);
    if (source_->current == nullptr) {
      source_->current = config_;
    }
    // Owns itself from here; deleted through the dispatcher when its connection closes.
    new ConnectionManagerImpl(ctx_, source_, std::move(conn));
    clients_.push_back(std::make_unique<Testing::RawPeer>(*dispatcher_, client_fd));
    return *clients_.back();
  }

  // Runs until `client` has received `n` complete responses.
  std::vector<Response> waitForResponses(Testing::RawPeer& client, size_t n,
                                         const std::vector<bool>& head = {}) {
    EXPECT_TRUE(Testing::runUntil(
        *dispatcher_, [&]() { return parseResponses(client.received(), head).size() >= n; }))
        << "received: " << client.received();
    return parseResponses(client.received(), head);
  }

  Response roundTrip(const std::string& request) {
    Testing::RawPeer& c = connect();
    c.write(request);
    std::vector<Response> r = waitForResponses(c, 1);
    return r.empty() ? Response() : r[0];
  }

  bool run(const std::function<bool()>& done) { return Testing::runUntil(*dispatcher_, done); }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{1};
  HttpStats stats_ = HttpStats::create(store_);
  Upstream::ClusterManager cm_{*dispatcher_, 1};
  WorkerContext ctx_{*dispatcher_, cm_, stats_, 42};
  std::shared_ptr<ConnectionManagerConfig> config_;
  std::shared_ptr<TestConfigSource> source_ = std::make_shared<TestConfigSource>();
  FilterLog log_;
  std::vector<std::unique_ptr<Testing::RawPeer>> clients_;
};

// ---- Direct responses through the router ---------------------------------------------------

TEST_F(ConnectionManagerTest, DirectResponse) {
  Response r = roundTrip("GET /direct HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("{\"hello\":\"world\"}", r.body);
  EXPECT_EQ("application/json", r.get("content-type"));
  EXPECT_EQ("17", r.get("content-length"));
  EXPECT_TRUE(isUuid(r.get("x-request-id"))) << r.get("x-request-id");
  EXPECT_EQ("1", r.get("x-encoded"));
  EXPECT_EQ(1, store_.valueOf("downstream_rq_total"));
  EXPECT_EQ(1, store_.valueOf("downstream_rq_2xx"));
  EXPECT_EQ(1, store_.valueOf("route.direct.rq_total"));
}

TEST_F(ConnectionManagerTest, DirectResponseWithoutBody) {
  Testing::RawPeer& c = connect();
  c.write("GET /empty HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(run([&]() { return absl::StrContains(c.received(), "\r\n\r\n"); }));
  std::vector<Response> r = parseResponses(c.received());
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(204u, r[0].status);
  EXPECT_FALSE(r[0].has("content-type"));
  EXPECT_EQ("", r[0].body);
}

TEST_F(ConnectionManagerTest, HeadGetsHeadersOnly) {
  Testing::RawPeer& c = connect();
  c.write("HEAD /direct HTTP/1.1\r\nHost: a\r\n\r\nGET /direct HTTP/1.1\r\nHost: a\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 2, {true, false});
  ASSERT_EQ(2u, r.size());
  EXPECT_EQ("17", r[0].get("content-length"));
  EXPECT_EQ("", r[0].body);
  EXPECT_EQ("{\"hello\":\"world\"}", r[1].body);
}

TEST_F(ConnectionManagerTest, ClientRequestIdIsKeptWhenValid) {
  Response r = roundTrip("GET /direct HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-123_x.y\r\n\r\n");
  EXPECT_EQ("abc-123_x.y", r.get("x-request-id"));
  ASSERT_EQ(1u, log_.observed_headers.size());
  EXPECT_EQ("abc-123_x.y", log_.observed_headers[0].get("x-request-id"));
}

TEST_F(ConnectionManagerTest, InvalidClientRequestIdIsReplaced) {
  Response r = roundTrip("GET /direct HTTP/1.1\r\nHost: a\r\nX-Request-Id: has space\r\n\r\n");
  EXPECT_TRUE(isUuid(r.get("x-request-id"))) << r.get("x-request-id");
  ASSERT_EQ(1u, log_.observed_headers.size());
  EXPECT_EQ(r.get("x-request-id"), log_.observed_headers[0].get("x-request-id"));
  EXPECT_EQ(1u, log_.observed_headers[0].count("x-request-id"));
}

TEST_F(ConnectionManagerTest, Redirect) {
  Response r = roundTrip("GET /old/page HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  EXPECT_EQ(308u, r.status);
  EXPECT_EQ("http://example.com:8080/new", r.get("location"));
  EXPECT_EQ("0", r.get("content-length"));
}

// ---- Local replies -------------------------------------------------------------------------

TEST_F(ConnectionManagerTest, FilterLocalReply403) {
  Response r = roundTrip("GET /direct HTTP/1.1\r\nHost: a\r\nX-Deny: 1\r\n\r\n");
  EXPECT_EQ(403u, r.status);
  EXPECT_EQ("application/json", r.get("content-type"));
  EXPECT_EQ(std::to_string(r.body.size()), r.get("content-length"));
  const std::string request_id = r.get("x-request-id");
  EXPECT_TRUE(isUuid(request_id)) << request_id;
  google::protobuf::Struct body = parseJson(r.body);
  EXPECT_EQ("denied by \"test\" filter", body.fields().at("message").string_value());
  EXPECT_EQ(request_id, body.fields().at("request_id").string_value());
  // Later filters never saw the request; encoder filters did see the reply.
  EXPECT_EQ(1, log_.denied);
  EXPECT_TRUE(log_.observed_headers.empty());
  EXPECT_EQ("1", r.get("x-encoded"));
  EXPECT_EQ(1, store_.valueOf("downstream_rq_4xx"));
}

TEST_F(ConnectionManagerTest, LocalReplyKeepsTheConnection) {
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\nX-Deny: 1\r\n\r\n");
  ASSERT_EQ(1u, waitForResponses(c, 1).size());
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 2);
  ASSERT_EQ(2u, r.size());
  EXPECT_EQ(403u, r[0].status);
  EXPECT_EQ(200u, r[1].status);
  EXPECT_NE(r[0].get("x-request-id"), r[1].get("x-request-id"));
  EXPECT_FALSE(c.peerClosed());
}

TEST_F(ConnectionManagerTest, NoRouteIs404) {
  Response r = roundTrip("GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(404u, r.status);
  google::protobuf::Struct body = parseJson(r.body);
  EXPECT_EQ("no route matched", body.fields().at("message").string_value());
  EXPECT_EQ(r.get("x-request-id"), body.fields().at("request_id").string_value());
}

TEST_F(ConnectionManagerTest, UnknownClusterIs503) {
  Response r = roundTrip("GET /upstream HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(503u, r.status);
  EXPECT_EQ("cluster \"missing\" not found",
            parseJson(r.body).fields().at("message").string_value());
}

TEST_F(ConnectionManagerTest, CodecErrorIs400AndCloses) {
  Testing::RawPeer& c = connect();
  c.write("GET / HTTP/1.1\r\nHost : a\r\n\r\n");
  ASSERT_TRUE(run([&]() { return c.peerClosed(); }));
  std::vector<Response> r = parseResponses(c.received());
  ASSERT_EQ(1u, r.size()) << c.received();
  EXPECT_EQ(400u, r[0].status);
  EXPECT_EQ("close", r[0].get("connection"));
  EXPECT_TRUE(isUuid(r[0].get("x-request-id")));
  google::protobuf::Struct body = parseJson(r[0].body);
  EXPECT_EQ(r[0].get("x-request-id"), body.fields().at("request_id").string_value());
  EXPECT_FALSE(body.fields().at("message").string_value().empty());
  EXPECT_EQ(1, store_.valueOf("downstream_rq_protocol_error"));
}

TEST_F(ConnectionManagerTest, HeadersTooLargeIs431) {
  config_->codec.max_request_headers_bytes = 512;
  Testing::RawPeer& c = connect();
  c.write(absl::StrCat("GET / HTTP/1.1\r\nHost: a\r\nX-Big: ", std::string(1000, 'x'), "\r\n\r\n"));
  ASSERT_TRUE(run([&]() { return c.peerClosed(); }));
  std::vector<Response> r = parseResponses(c.received());
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(431u, r[0].status);
}

TEST_F(ConnectionManagerTest, BodyTooLargeIs413) {
  config_->codec.max_request_body_bytes = 10;
  Testing::RawPeer& c = connect();
  c.write("POST /direct HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n01234567890");
  ASSERT_TRUE(run([&]() { return c.peerClosed(); }));
  std::vector<Response> r = parseResponses(c.received());
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(413u, r[0].status);
  EXPECT_EQ("close", r[0].get("connection"));
}

// ---- Filter chain --------------------------------------------------------------------------

TEST_F(ConnectionManagerTest, FilterAddsRequestHeaderSeenByLaterFilters) {
  Response r = roundTrip(
      "GET /direct HTTP/1.1\r\nHost: example.com\r\nConnection: x-hop\r\nX-Hop: 1\r\n"
      "Keep-Alive: timeout=5\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n");
  EXPECT_EQ(200u, r.status);
  ASSERT_EQ(1u, log_.observed_headers.size());
  const RequestHeaderMap& h = log_.observed_headers[0];
  EXPECT_EQ("yes", h.get("x-added"));
  EXPECT_EQ("10.0.0.1, 127.0.0.1", h.get("x-forwarded-for"));
  EXPECT_EQ("http", h.get("x-forwarded-proto"));
  EXPECT_EQ("example.com", h.get("x-forwarded-host"));
  EXPECT_EQ(r.get("x-request-id"), h.get("x-request-id"));
  // Hop-by-hop headers, including those named by Connection, are gone.
  EXPECT_FALSE(h.has("connection"));
  EXPECT_FALSE(h.has("x-hop"));
  EXPECT_FALSE(h.has("keep-alive"));
}

TEST_F(ConnectionManagerTest, StopIterationThenContinueFromTimer) {
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\nX-Pause: 20\r\n\r\n");
  ASSERT_TRUE(run([&]() { return log_.pause_started == 1; }));
  // Iteration stopped at the pause filter: nothing later ran, nothing was answered.
  EXPECT_EQ(0, log_.observed_at_pause);
  EXPECT_TRUE(log_.observed_headers.empty());
  EXPECT_EQ("", c.received());

  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(1, log_.pause_resumed);
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("{\"hello\":\"world\"}", r[0].body);
  // The filters after the pause ran once, in order (the header added after the pause is there).
  ASSERT_EQ(1u, log_.observed_headers.size());
  EXPECT_EQ("yes", log_.observed_headers[0].get("x-added"));
}

TEST_F(ConnectionManagerTest, BodyIsHeldWhileHeadersAreStopped) {
  Testing::RawPeer& c = connect();
  c.write(
      "POST /upstream HTTP/1.1\r\nHost: a\r\nX-Pause: 30\r\nX-Deny: 1\r\nContent-Length: 5\r\n"
      "\r\nhello");
  ASSERT_TRUE(run([&]() { return log_.pause_started == 1; }));
  Testing::runPending(*dispatcher_);
  EXPECT_EQ(0, log_.denied);
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  // After the pause the deny filter answered; the observer after it never saw headers or body.
  EXPECT_EQ(403u, r[0].status);
  EXPECT_EQ(1, log_.denied);
  EXPECT_TRUE(log_.observed_headers.empty());
  EXPECT_EQ("", log_.observed_body);
}

TEST_F(ConnectionManagerTest, BodyReachesTheTerminalFilter) {
  Response r = roundTrip(
      "POST /nowhere HTTP/1.1\r\nHost: a\r\nX-Echo: 1\r\nContent-Length: 11\r\n\r\nhello world");
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("hello world", r.body);
  EXPECT_EQ("chunked", r.get("transfer-encoding"));
  EXPECT_EQ("0", r.get("x-trailers"));
  EXPECT_EQ("hello world", log_.observed_body);
  EXPECT_TRUE(log_.observed_end);
}

// Regression (fixed, codec): a filter answering from inside decodeData(end_stream) crashes the
// worker: see ServerCodecTest.SynchronousResponseAtEndOfBody (codec_impl.cc onMessageComplete calls
// onResponseComplete() a second time with stream_ already freed).
TEST_F(ConnectionManagerTest, TerminalFilterAnsweringAtEndOfBody) {
  Response r = roundTrip(
      "POST /nowhere HTTP/1.1\r\nHost: a\r\nX-Echo: sync\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("hello", r.body);
}

TEST_F(ConnectionManagerTest, BodyAndTrailersFollowHeadersAfterContinue) {
  Testing::RawPeer& c = connect();
  c.write(
      "POST /nowhere HTTP/1.1\r\nHost: a\r\nX-Pause: 20\r\nX-Echo: 1\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  ASSERT_TRUE(run([&]() { return log_.pause_started == 1; }));
  c.write("6\r\n world\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(1, log_.pause_resumed);
  EXPECT_EQ(200u, r[0].status);
  // Held while stopped, then delivered in order: headers, body, trailers.
  EXPECT_EQ("hello world", r[0].body);
  EXPECT_EQ("2", r[0].get("x-trailers"));
  ASSERT_EQ(1u, log_.observed_headers.size());
  EXPECT_EQ("hello world", log_.observed_body);
  EXPECT_EQ(1, log_.observed_trailers);
  EXPECT_FALSE(log_.observed_end);  // the trailers ended the request
}

TEST_F(ConnectionManagerTest, FilterRewritesTheWholeRequestBodyBeforeTheHeadersGoOn) {
  Testing::RawPeer& c = connect();
  c.write(
      "POST /nowhere HTTP/1.1\r\nHost: a\r\nX-Rewrite: request\r\nX-Echo: 1\r\n"
      "Content-Length: 11\r\n\r\nhello");
  Testing::runPending(*dispatcher_);
  EXPECT_TRUE(log_.observed_headers.empty());  // held until the body is complete
  c.write(" world");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("<HELLO WORLD>", r[0].body);
  ASSERT_EQ(1u, log_.observed_headers.size());
  // Later filters saw the headers once, with the new length, then the new body in one piece.
  EXPECT_EQ("13", log_.observed_headers[0].get("content-length"));
  EXPECT_EQ("<HELLO WORLD>", log_.observed_body);
  EXPECT_TRUE(log_.observed_end);
}

TEST_F(ConnectionManagerTest, FilterHandsOnARewrittenBodyAheadOfTheTrailers) {
  Testing::RawPeer& c = connect();
  c.write(
      "POST /nowhere HTTP/1.1\r\nHost: a\r\nX-Rewrite: request\r\nX-Echo: 1\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("<HELLO>", r[0].body);
  EXPECT_EQ("1", r[0].get("x-trailers"));
  ASSERT_EQ(1u, log_.observed_headers.size());
  EXPECT_EQ("7", log_.observed_headers[0].get("content-length"));
  EXPECT_EQ("<HELLO>", log_.observed_body);
  EXPECT_EQ(1, log_.observed_trailers);
}

TEST_F(ConnectionManagerTest, FilterRewritesTheWholeResponseBodyBeforeTheHeadersGoOut) {
  Response r = roundTrip(
      "POST /nowhere HTTP/1.1\r\nHost: a\r\nX-Rewrite: response\r\nX-Echo: 1\r\n"
      "Content-Length: 5\r\n\r\nhello");
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("<HELLO>", r.body);
  // The echo streams its answer; the held response goes out with its length instead.
  EXPECT_EQ("7", r.get("content-length"));
  EXPECT_EQ("", r.get("transfer-encoding"));
  EXPECT_EQ("1", r.get("x-encoded"));
}

// The rewriting filter is the last encoder filter (the one next to the codec): the body it hands
// on from encodeTrailers() waits for the headers it still holds, and the trailers follow it.
// The body may be bigger than the listener's buffer limit: the filter bounded what it kept.
TEST_F(ConnectionManagerTest, FilterHandsOnARewrittenResponseBodyAheadOfTheTrailers) {
  config_->buffer_limit = 16384;
  for (const size_t size : {size_t{5}, size_t{40000}}) {
    Testing::RawPeer& c = connect();
    c.write(
        absl::StrCat("POST /nowhere HTTP/1.1\r\nHost: a\r\nX-Rewrite: response\r\nX-Echo: 1\r\n"
                     "X-Echo-Trailers: 1\r\nContent-Length: ",
                     size, "\r\n\r\n", std::string(size, 'h')));
    std::vector<Response> r = waitForResponses(c, 1);
    ASSERT_EQ(1u, r.size()) << size;
    EXPECT_TRUE(absl::StartsWith(c.received(), "HTTP/1.1 200 ")) << size;
    EXPECT_EQ(200u, r[0].status);
    EXPECT_EQ(absl::StrCat("<", std::string(size, 'H'), ">"), r[0].body);
    EXPECT_EQ("chunked", r[0].get("transfer-encoding"));
    EXPECT_EQ("1", r[0].get("x-encoded"));
    EXPECT_TRUE(absl::EndsWith(c.received(), "\r\n0\r\nx-echo-trailer: 1\r\n\r\n")) << size;
  }
}

TEST_F(ConnectionManagerTest, BodyBufferedWhileStoppedIsBoundedBy413) {
  config_->buffer_limit = 1024;
  Testing::RawPeer& c = connect();
  c.write(absl::StrCat("POST /direct HTTP/1.1\r\nHost: a\r\nX-Pause: -1\r\nContent-Length: 4096",
                       "\r\n\r\n", std::string(2048, 'b')));
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(413u, r[0].status);
  EXPECT_EQ("request body too large", parseJson(r[0].body).fields().at("message").string_value());
  EXPECT_TRUE(log_.observed_headers.empty());
  // The rest of the body is read and dropped; the connection goes on.
  c.write(std::string(2048, 'b') + "GET /direct HTTP/1.1\r\nHost: a\r\n\r\n");
  r = waitForResponses(c, 2);
  ASSERT_EQ(2u, r.size());
  EXPECT_EQ(200u, r[1].status);
}

// Regression (fixed, codec): the same 413, when the over-limit chunk is also the end of the
// request, comes from inside onMessageComplete and crashes (see
// TerminalFilterAnsweringAtEndOfBody).
TEST_F(ConnectionManagerTest, BodyBufferedWhileStoppedIsBoundedBy413InOneRead) {
  config_->buffer_limit = 1024;
  Testing::RawPeer& c = connect();
  c.write(absl::StrCat("POST /direct HTTP/1.1\r\nHost: a\r\nX-Pause: -1\r\nContent-Length: 4096",
                       "\r\n\r\n", std::string(4096, 'b')));
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(413u, r[0].status);
  EXPECT_EQ("request body too large", parseJson(r[0].body).fields().at("message").string_value());
  EXPECT_TRUE(log_.observed_headers.empty());
}

TEST_F(ConnectionManagerTest, PausedStreamIsDestroyedWhenTheClientLeaves) {
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\nX-Pause: -1\r\n\r\n");  // never resumes
  ASSERT_TRUE(run([&]() { return log_.pause_started == 1; }));
  c.close();
  ASSERT_TRUE(run([&]() { return ctx_.connectionCount() == 0; }));
  EXPECT_EQ(1, log_.destroyed);
  EXPECT_EQ(1, store_.valueOf("downstream_rq_reset"));
  EXPECT_EQ(0, store_.valueOf("downstream_rq_active"));
}

TEST_F(ConnectionManagerTest, RequestTimeoutWhileFilterHolds) {
  config_->request_timeout = std::chrono::milliseconds(30);
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\nX-Pause: -1\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  // The request was complete: the gateway timed out -> 504.
  EXPECT_EQ(504u, r[0].status);
  EXPECT_EQ("request timeout", parseJson(r[0].body).fields().at("message").string_value());
  EXPECT_EQ(1, store_.valueOf("downstream_rq_timeout"));
}

TEST_F(ConnectionManagerTest, RequestTimeoutBeforeTheBodyIs408) {
  config_->request_timeout = std::chrono::milliseconds(30);
  Testing::RawPeer& c = connect();
  c.write("POST /direct HTTP/1.1\r\nHost: a\r\nX-Pause: -1\r\nContent-Length: 10\r\n\r\nab");
  std::vector<Response> r = waitForResponses(c, 1);
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(408u, r[0].status);
}

// ---- Connection behaviour ------------------------------------------------------------------

TEST_F(ConnectionManagerTest, KeepAliveAndPipelining) {
  Testing::RawPeer& c = connect();
  c.write(
      "GET /direct HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /direct HTTP/1.1\r\nHost: a\r\nX-Pause: 10\r\n\r\n"
      "GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 3);
  ASSERT_EQ(3u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ(200u, r[1].status);
  EXPECT_EQ(404u, r[2].status);
  EXPECT_EQ(3, store_.valueOf("downstream_rq_total"));
  EXPECT_EQ(1, store_.valueOf("downstream_cx_total"));
  EXPECT_EQ(1, store_.valueOf("downstream_cx_active"));
  EXPECT_FALSE(c.peerClosed());
}

TEST_F(ConnectionManagerTest, ConnectionCloseRequest) {
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(run([&]() { return c.peerClosed(); }));
  std::vector<Response> r = parseResponses(c.received());
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ("close", r[0].get("connection"));
  ASSERT_TRUE(run([&]() { return ctx_.connectionCount() == 0; }));
  EXPECT_EQ(0, store_.valueOf("downstream_cx_active"));
}

TEST_F(ConnectionManagerTest, Http10) {
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(run([&]() { return c.peerClosed(); }));
  std::vector<Response> r = parseResponses(c.received());
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("{\"hello\":\"world\"}", r[0].body);
}

TEST_F(ConnectionManagerTest, HeaderTimeoutIs408) {
  config_->request_headers_timeout = std::chrono::milliseconds(20);
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\n");  // headers never finish
  Testing::runPending(*dispatcher_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(25);
  // The worker sweeps every 100 ms; here the test sweeps.
  ASSERT_TRUE(run([&]() {
    if (std::chrono::steady_clock::now() > deadline) ctx_.sweep();
    return c.peerClosed();
  }));
  std::vector<Response> r = parseResponses(c.received());
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(408u, r[0].status);
  EXPECT_EQ(1, store_.valueOf("downstream_cx_header_timeout"));
}

TEST_F(ConnectionManagerTest, IdleTimeoutCloses) {
  config_->idle_timeout = std::chrono::milliseconds(20);
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(1u, waitForResponses(c, 1).size());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(25);
  ASSERT_TRUE(run([&]() {
    if (std::chrono::steady_clock::now() > deadline) ctx_.sweep();
    return c.peerClosed();
  }));
  EXPECT_EQ(1, store_.valueOf("downstream_cx_idle_timeout"));
}

TEST_F(ConnectionManagerTest, DrainClosesIdleAndFinishesBusy) {
  Testing::RawPeer& idle = connect();
  Testing::RawPeer& busy = connect();
  busy.write("GET /direct HTTP/1.1\r\nHost: a\r\nX-Pause: 20\r\n\r\n");
  ASSERT_TRUE(run([&]() { return log_.pause_started == 1; }));
  ctx_.drain();
  ASSERT_TRUE(run([&]() { return idle.peerClosed() && busy.peerClosed(); }));
  EXPECT_EQ("", idle.received());
  std::vector<Response> r = parseResponses(busy.received());
  ASSERT_EQ(1u, r.size());
  EXPECT_EQ(200u, r[0].status);
  EXPECT_EQ("close", r[0].get("connection"));
}

TEST_F(ConnectionManagerTest, ClientFinDuringRequestResetsTheStream) {
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\nX-Pause: -1\r\n\r\n");
  c.shutdownWrite();
  ASSERT_TRUE(run([&]() { return c.peerClosed(); }));
  EXPECT_EQ("", c.received());
  EXPECT_EQ(1, log_.destroyed);
}

TEST_F(ConnectionManagerTest, NewStreamsUseTheNewestConfig) {
  Testing::RawPeer& c = connect();
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(1u, waitForResponses(c, 1).size());
  // Swap in a config without filters: the deny header no longer matters.
  auto next = std::make_shared<ConnectionManagerConfig>(*config_);
  next->filter_factories = {config_->filter_factories.back()};  // router only
  source_->current = next;
  c.write("GET /direct HTTP/1.1\r\nHost: a\r\nX-Deny: 1\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 2);
  ASSERT_EQ(2u, r.size());
  EXPECT_EQ(200u, r[1].status);
  EXPECT_FALSE(r[1].has("x-encoded"));
}

// ---- Gateway responses ---------------------------------------------------------------------

constexpr char kGatewayRoutes[] = R"yaml(
name: test
virtual_hosts:
- name: api
  domains: [api.test]
  gateway_responses:
    RESOURCE_NOT_FOUND: {body: "api: $message", content_type: text/plain}
    BAD_REQUEST_PARAMETERS: {status_code: 422, body: "bad: $message", content_type: text/plain}
  routes:
  - name: api-direct
    match: {prefix: /direct}
    direct_response: {status: 200, body: "api"}
- name: main
  domains: ["*"]
  routes:
  - name: direct
    match: {prefix: /direct}
    direct_response: {status: 200, body: "{\"hello\":\"world\"}", content_type: application/json}
  - name: redirect
    match: {prefix: /old}
    redirect: {path_redirect: /new, response_code: 308}
  - name: missing_cluster
    match: {prefix: /upstream}
    route: {cluster: missing}
  - name: own404
    match: {prefix: /own404}
    direct_response: {status: 404, body: "mine"}
)yaml";

constexpr char kListenerGatewayResponses[] = R"yaml(
gateway_responses:
  RESOURCE_NOT_FOUND:
    status_code: 410
    headers: {X-Gone: "$status/$route"}
    body: '{"error":"$message","id":"$request_id","route":"$route","status":$status}'
  ACCESS_DENIED:
    headers: {X-Route: "$route", X-Encoded: "configured"}
    body: '{"error":"$message"}'
    content_type: application/problem+json
  DEFAULT_5XX:
    headers: {Access-Control-Allow-Origin: "*"}
  REQUEST_TOO_LARGE:
    status_code: 400
    body: 'too big: $message'
    content_type: text/plain
)yaml";

class GatewayResponsesTest : public ConnectionManagerTest {
 protected:
  GatewayResponsesTest() {
    sluice::config::v1::RouteTable rt;
    absl::Status s = Config::loadFromYaml(kGatewayRoutes, rt);
    EXPECT_TRUE(s.ok()) << s;
    auto table = Router::RouteTableImpl::create(rt, "route_tables[0]", &store_);
    EXPECT_TRUE(table.ok()) << table.status();
    config_->route_table = *table;
    sluice::config::v1::Listener listener;
    s = Config::loadFromYaml(kListenerGatewayResponses, listener);
    EXPECT_TRUE(s.ok()) << s;
    Config::ErrorList errors;
    config_->gateway_responses =
        GatewayResponses::create(listener.gateway_responses(), "gateway_responses", errors);
    EXPECT_TRUE(errors.empty()) << errors.status();
  }
};

TEST_F(GatewayResponsesTest, ListenerTemplateForNoRoute) {
  Response r = roundTrip("GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(410u, r.status);
  EXPECT_EQ("application/json", r.get("content-type"));
  EXPECT_EQ(std::to_string(r.body.size()), r.get("content-length"));
  const std::string id = r.get("x-request-id");
  EXPECT_TRUE(isUuid(id)) << id;
  EXPECT_EQ(
      absl::StrCat(R"({"error":"no route matched","id":")", id, R"(","route":"","status":410})"),
      r.body);
  EXPECT_EQ("410/", r.get("x-gone"));
  EXPECT_EQ("1", r.get("x-encoded"));  // encoder filters still see the reply
  EXPECT_EQ(1, store_.valueOf("downstream_rq_4xx"));
}

TEST_F(GatewayResponsesTest, VirtualHostBeatsListenerEvenWithoutARoute) {
  Response r = roundTrip("GET /nowhere HTTP/1.1\r\nHost: API.test:8080\r\n\r\n");
  EXPECT_EQ(404u, r.status);
  EXPECT_EQ("api: no route matched", r.body);
  EXPECT_EQ("text/plain", r.get("content-type"));
  EXPECT_FALSE(r.has("x-gone"));
}

TEST_F(GatewayResponsesTest, RefusedPathUsesTheHostsVirtualHost) {
  // Answered before routing: the virtual host still comes from the Host header.
  Response api = roundTrip("GET /a%2Fb HTTP/1.1\r\nHost: api.test\r\n\r\n");
  EXPECT_EQ(422u, api.status);
  EXPECT_EQ("bad: escaped slash (%2F or %5C) in path", api.body);
  // Elsewhere nothing is configured for it: the built-in reply.
  Response other = roundTrip("GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(400u, other.status);
  EXPECT_EQ("escaped slash (%2F or %5C) in path",
            parseJson(other.body).fields().at("message").string_value());
}

TEST_F(GatewayResponsesTest, FilterReplyWithRouteAndReplacedHeaders) {
  Response r = roundTrip("GET /direct HTTP/1.1\r\nHost: a\r\nX-Deny: 1\r\n\r\n");
  EXPECT_EQ(403u, r.status);
  EXPECT_EQ("application/problem+json", r.get("content-type"));
  EXPECT_EQ(R"({"error":"denied by \"test\" filter"})", r.body);  // JSON-escaped message
  EXPECT_EQ("direct", r.get("x-route"));
  // The encoder filter ran after the configured headers were set.
  ASSERT_EQ(2u, std::count_if(r.headers.begin(), r.headers.end(),
                              [](const auto& h) { return h.first == "x-encoded"; }));
}

TEST_F(GatewayResponsesTest, FallbackToDefault5xxKeepsTheBuiltInBody) {
  Response r = roundTrip("GET /upstream HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(503u, r.status);
  EXPECT_EQ("*", r.get("access-control-allow-origin"));
  EXPECT_EQ("application/json", r.get("content-type"));
  google::protobuf::Struct body = parseJson(r.body);
  EXPECT_EQ("cluster \"missing\" not found", body.fields().at("message").string_value());
  EXPECT_EQ(r.get("x-request-id"), body.fields().at("request_id").string_value());
}

TEST_F(GatewayResponsesTest, HeadGetsNoBody) {
  Testing::RawPeer& c = connect();
  c.write("HEAD /nowhere HTTP/1.1\r\nHost: a\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
  std::vector<Response> r = waitForResponses(c, 2, {true, false});
  ASSERT_EQ(2u, r.size());
  EXPECT_EQ(410u, r[0].status);
  EXPECT_EQ("", r[0].body);
  EXPECT_EQ(410u, r[1].status);
  EXPECT_FALSE(r[1].body.empty());
  EXPECT_NE(std::string::npos, c.received().find("HTTP/1.1 410")) << c.received();
  // The HEAD response's headers are followed directly by the next response.
  EXPECT_NE(std::string::npos, c.received().find("\r\n\r\nHTTP/1.1 410")) << c.received();
}

TEST_F(GatewayResponsesTest, GrpcKeepsItsStatusReply) {
  Response r = roundTrip(
      "POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc\r\n"
      "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("12", r.get("grpc-status"));
  EXPECT_EQ("no route matched", r.get("grpc-message"));
  EXPECT_FALSE(r.has("x-gone"));
  EXPECT_EQ("", r.body);
}

TEST_F(GatewayResponsesTest, RedirectsAndDirectResponsesAreUntouched) {
  Response redirect = roundTrip("GET /old HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(308u, redirect.status);
  EXPECT_EQ("http://a/new", redirect.get("location"));
  Response own = roundTrip("GET /own404 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(404u, own.status);
  EXPECT_EQ("mine", own.body);
  EXPECT_FALSE(own.has("x-gone"));
}

TEST_F(GatewayResponsesTest, StreamlessReplyUsesTheListenersResponses) {
  config_->codec.max_request_body_bytes = 10;
  Testing::RawPeer& c = connect();
  c.write("POST /direct HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n01234567890");
  ASSERT_TRUE(run([&]() { return c.peerClosed(); }));
  std::vector<Response> r = parseResponses(c.received());
  ASSERT_EQ(1u, r.size()) << c.received();
  EXPECT_EQ(400u, r[0].status);
  EXPECT_EQ("too big: request body too large", r[0].body);
  EXPECT_EQ("text/plain", r[0].get("content-type"));
  EXPECT_TRUE(isUuid(r[0].get("x-request-id")));
  EXPECT_EQ("close", r[0].get("connection"));
  EXPECT_EQ(1, store_.valueOf("downstream_rq_4xx"));
}

}  // namespace
}  // namespace Http
}  // namespace sluice
