// The connection manager with a multiplexing codec: a fake ServerConnection opens several streams
// on one connection, and each must get its own filter chain, deadlines and access-log line, and
// complete (or be reset) independently of the others.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/conn_manager.h"
#include "source/common/network/connection.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster_manager.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Http {
namespace {

// One stream of the fake codec: records what the connection manager encodes.
class FakeStream : public ResponseEncoder, public Stream {
 public:
  void encode100Continue() override {}
  void encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) override {
    status = headers.status;
    complete = end_stream;
  }
  void encodeData(Buffer::Instance& data, bool end_stream) override {
    body += data.toString();
    data.drain(data.length());
    complete = end_stream;
  }
  void encodeTrailers(const HeaderMap&) override { complete = true; }
  Stream& getStream() override { return *this; }
  void setCallbacks(StreamCallbacks* cb) override { callbacks = cb; }
  void resetStream(StreamResetReason) override { reset = true; }
  void readDisable(bool) override {}

  StreamCallbacks* callbacks = nullptr;
  RequestDecoder* decoder = nullptr;
  uint32_t status = 0;
  std::string body;
  bool complete = false;
  bool reset = false;
};

// A multiplexing codec driven by the test: open() starts a stream whenever the test wants.
class FakeCodec : public ServerConnection {
 public:
  explicit FakeCodec(ServerConnectionCallbacks& cb) : callbacks_(cb) {}
  void dispatch(Buffer::Instance& data) override { data.drain(data.length()); }
  bool busy() const override { return false; }
  Protocol protocol() const override { return Protocol::Http2; }
  void setCloseAfterResponse() override { close_after_response = true; }
  bool closing() const override { return false; }
  void sendStreamlessResponse(const ResponseHeaderMap&, absl::string_view) override {}

  FakeStream& open(const std::string& path) {
    streams.push_back(std::make_unique<FakeStream>());
    FakeStream& s = *streams.back();
    s.decoder = &callbacks_.newStream(s);
    auto h = std::make_unique<RequestHeaderMap>();
    h->method = "GET";
    h->path = path;
    h->add("host", "example.com");
    s.decoder->decodeHeaders(std::move(h), true);
    return s;
  }

  std::vector<std::unique_ptr<FakeStream>> streams;
  bool close_after_response = false;

 private:
  ServerConnectionCallbacks& callbacks_;
};

// A terminal filter that holds each request until the test answers it.
class HoldFilter : public StreamDecoderFilter {
 public:
  FilterHeadersStatus decodeHeaders(RequestHeaderMap& h, bool) override {
    path = h.path;
    return FilterHeadersStatus::StopIteration;
  }
  FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return FilterDataStatus::StopIterationNoBuffer;
  }
  FilterTrailersStatus decodeTrailers(HeaderMap&) override {
    return FilterTrailersStatus::StopIteration;
  }
  void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& cb) override { callbacks = &cb; }
  void onDestroy() override { destroyed = true; }

  void respond(uint32_t status, const std::string& body) {
    auto h = std::make_unique<ResponseHeaderMap>();
    h->status = status;
    callbacks->encodeHeaders(std::move(h), false);
    Buffer::OwnedImpl data(body);
    callbacks->encodeData(data, true);
  }

  std::string path;
  StreamDecoderFilterCallbacks* callbacks = nullptr;
  bool destroyed = false;
};

struct TestConfigSource : public ConfigSource {
  const ConnectionManagerConfigConstSharedPtr& config() const override { return current; }
  ConnectionManagerConfigConstSharedPtr current;
};

class MultiStreamTest : public testing::Test {
 protected:
  MultiStreamTest() {
    signal(SIGPIPE, SIG_IGN);
    log_path_ = testing::TempDir() + "/multistream_access_" + std::to_string(getpid()) + ".log";
    unlink(log_path_.c_str());
    auto sink = AccessLog::FileSink::open(log_path_);
    EXPECT_TRUE(sink.ok()) << sink.status();
    sink_ = *sink;
    auto config = std::make_shared<ConnectionManagerConfig>();
    config->listener_name = "test";
    config->access_log = sink_;
    config->stream_idle_timeout = std::chrono::milliseconds(0);
    config->filter_factories = {[this](FilterChainFactoryCallbacks& cb) {
      filters_.push_back(std::make_shared<HoldFilter>());
      cb.addStreamDecoderFilter(filters_.back());
    }};
    config->codec_factory = [this](Network::Connection&, ServerConnectionCallbacks& cb,
                                   const CodecSettings&) -> ServerConnectionPtr {
      auto codec = std::make_unique<FakeCodec>(cb);
      codec_ = codec.get();
      return codec;
    };
    config_ = config;
  }

  ~MultiStreamTest() override {
    if (peer_ != nullptr) peer_->close();
    EXPECT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ctx_.connectionCount() == 0; }));
    Testing::runPending(*dispatcher_);
    unlink(log_path_.c_str());
  }

  ConnectionManagerImpl& connect() {
    auto [server_fd, client_fd] = Testing::socketPair();
    auto conn = std::make_unique<Network::Connection>(*dispatcher_, server_fd, false);
    Network::Address peer;
    EXPECT_TRUE(Network::Address::parse("127.0.0.1", 40000, peer));
    conn->setPeerAddress(peer);
    source_->current = config_;
    // Owns itself from here; deleted through the dispatcher when its connection closes.
    auto* cm = new ConnectionManagerImpl(ctx_, source_, std::move(conn));
    peer_ = std::make_unique<Testing::RawPeer>(*dispatcher_, client_fd);
    return *cm;
  }

  // The access log's lines so far.
  std::vector<std::string> accessLog() {
    ctx_.accessLogBuffer().flush();
    sink_->flush();
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<std::string> lines = absl::StrSplit(ss.str(), '\n', absl::SkipEmpty());
    return lines;
  }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{1};
  HttpStats stats_ = HttpStats::create(store_);
  Upstream::ClusterManager cm_{*dispatcher_, 1};
  WorkerContext ctx_{*dispatcher_, cm_, stats_, 42};
  std::string log_path_;
  AccessLog::FileSinkSharedPtr sink_;
  ConnectionManagerConfigConstSharedPtr config_;
  std::shared_ptr<TestConfigSource> source_ = std::make_shared<TestConfigSource>();
  std::vector<std::shared_ptr<HoldFilter>> filters_;  // kept past the streams' deletion
  FakeCodec* codec_ = nullptr;
  std::unique_ptr<Testing::RawPeer> peer_;
};

TEST_F(MultiStreamTest, TwoStreamsHaveTheirOwnChainsAndCompleteIndependently) {
  ConnectionManagerImpl& cm = connect();
  ASSERT_NE(nullptr, codec_);
  FakeStream& a = codec_->open("/a");
  FakeStream& b = codec_->open("/b");
  EXPECT_EQ(2u, cm.activeStreams());
  ASSERT_EQ(2u, filters_.size());
  EXPECT_NE(filters_[0], filters_[1]);
  EXPECT_EQ("/a", filters_[0]->path);
  EXPECT_EQ("/b", filters_[1]->path);
  EXPECT_EQ(2, store_.valueOf("downstream_rq_active"));

  // The second stream answers first; the first stays in flight.
  filters_[1]->respond(201, "bee");
  EXPECT_TRUE(b.complete);
  EXPECT_EQ(201u, b.status);
  EXPECT_EQ("bee", b.body);
  EXPECT_FALSE(a.complete);
  EXPECT_TRUE(filters_[1]->destroyed);
  EXPECT_FALSE(filters_[0]->destroyed);
  EXPECT_EQ(1u, cm.activeStreams());
  EXPECT_EQ(1, store_.valueOf("downstream_rq_active"));
  EXPECT_FALSE(cm.idle());

  filters_[0]->respond(200, "ay");
  EXPECT_TRUE(a.complete);
  EXPECT_EQ("ay", a.body);
  EXPECT_EQ(0u, cm.activeStreams());
  EXPECT_TRUE(cm.idle());
  EXPECT_EQ(0, store_.valueOf("downstream_rq_active"));
  EXPECT_EQ(2, store_.valueOf("downstream_rq_total"));
  EXPECT_EQ(2, store_.valueOf("downstream_rq_2xx"));

  // One access-log line per stream, in completion order.
  std::vector<std::string> lines = accessLog();
  ASSERT_EQ(2u, lines.size());
  EXPECT_NE(std::string::npos, lines[0].find("\"path\":\"/b\"")) << lines[0];
  EXPECT_NE(std::string::npos, lines[0].find("\"status\":201")) << lines[0];
  EXPECT_NE(std::string::npos, lines[1].find("\"path\":\"/a\"")) << lines[1];
  EXPECT_NE(std::string::npos, lines[1].find("\"status\":200")) << lines[1];
  EXPECT_NE(std::string::npos, lines[1].find("\"response_flags\":\"-\"")) << lines[1];
}

TEST_F(MultiStreamTest, ConnectionCloseResetsEveryStream) {
  ConnectionManagerImpl& cm = connect();
  codec_->open("/a");
  codec_->open("/b");
  FakeStream& c = codec_->open("/c");
  filters_[2]->respond(200, "done");
  EXPECT_TRUE(c.complete);
  EXPECT_EQ(2u, cm.activeStreams());

  peer_->close();
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ctx_.connectionCount() == 0; }));
  EXPECT_TRUE(filters_[0]->destroyed);
  EXPECT_TRUE(filters_[1]->destroyed);
  EXPECT_EQ(2, store_.valueOf("downstream_rq_reset"));
  EXPECT_EQ(0, store_.valueOf("downstream_rq_active"));
  std::vector<std::string> lines = accessLog();
  ASSERT_EQ(3u, lines.size());
  int dc = 0;
  for (const std::string& l : lines) {
    if (l.find("\"response_flags\":\"DC\"") != std::string::npos) ++dc;
  }
  EXPECT_EQ(2, dc);
  peer_.reset();
}

TEST_F(MultiStreamTest, DrainWaitsForEveryStream) {
  ConnectionManagerImpl& cm = connect();
  codec_->open("/a");
  codec_->open("/b");
  cm.onDrain();
  EXPECT_TRUE(codec_->close_after_response);
  filters_[0]->respond(200, "a");
  Testing::runPending(*dispatcher_);
  EXPECT_EQ(1u, ctx_.connectionCount());  // the other stream is still in flight
  filters_[1]->respond(200, "b");
  ASSERT_TRUE(Testing::runUntil(*dispatcher_, [&]() { return ctx_.connectionCount() == 0; }));
  EXPECT_EQ(0, store_.valueOf("downstream_rq_reset"));
}

// stream_idle_timeout is per stream: activity on one stream does not keep another alive.
TEST_F(MultiStreamTest, StreamIdleDeadlineIsPerStream) {
  auto config = std::make_shared<ConnectionManagerConfig>(*config_);
  config->stream_idle_timeout = std::chrono::milliseconds(200);
  config_ = config;
  ConnectionManagerImpl& cm = connect();
  const auto t0 = dispatcher_->now();
  FakeStream& a = codec_->open("/a");
  FakeStream& b = codec_->open("/b");
  // At 150 ms the first stream starts its response (activity), the second stays silent.
  ASSERT_TRUE(Testing::runUntil(
      *dispatcher_, [&]() { return dispatcher_->now() >= t0 + std::chrono::milliseconds(150); }));
  auto h = std::make_unique<ResponseHeaderMap>();
  h->status = 200;
  filters_[0]->callbacks->encodeHeaders(std::move(h), false);
  // At 250 ms only the second stream is past its deadline.
  ASSERT_TRUE(Testing::runUntil(
      *dispatcher_, [&]() { return dispatcher_->now() >= t0 + std::chrono::milliseconds(250); }));
  cm.checkDeadline(dispatcher_->now());
  EXPECT_TRUE(b.complete);
  EXPECT_EQ(408u, b.status);
  EXPECT_FALSE(a.complete);
  EXPECT_FALSE(a.reset);
  EXPECT_EQ(1u, cm.activeStreams());
  EXPECT_EQ(1, store_.valueOf("downstream_rq_idle_timeout"));
  Buffer::OwnedImpl rest("done");
  filters_[0]->callbacks->encodeData(rest, true);
  EXPECT_TRUE(a.complete);
  EXPECT_EQ(0u, cm.activeStreams());
  std::vector<std::string> lines = accessLog();
  ASSERT_EQ(2u, lines.size());
  EXPECT_NE(std::string::npos, lines[0].find("\"response_flags\":\"SI\"")) << lines[0];
  EXPECT_NE(std::string::npos, lines[1].find("\"response_flags\":\"-\"")) << lines[1];
}

}  // namespace
}  // namespace Http
}  // namespace sluice
