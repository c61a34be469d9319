// Fuzz driver for the HTTP/2 server and client codecs (nghttp2 underneath, our stream mapping,
// flow control and flood limits on top): arbitrary frames, split into arbitrary reads, must
// never crash, hang or leak, and memory stays bounded. The server side answers every request
// (headers, a body, sometimes trailers) as soon as its headers arrive and consumes any body;
// the client side sends one request and takes whatever the "server" bytes say.
//
// The server input is the connection preface followed by the fuzz bytes (so libFuzzer spends
// its time on frames, not on the 24-byte magic).
//
// libFuzzer (clang):  bazel build --config=fuzz //tools/fuzz:http2_codec_fuzzer
//                     bazel-bin/tools/fuzz/http2_codec_fuzzer -max_total_time=300 CORPUS_DIR
// Replay (gcc build): bazel-bin/tools/fuzz/http2_codec_fuzzer FILE...
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "source/common/event/dispatcher.h"
#include "source/common/http/http2/codec_impl.h"
#include "source/common/network/connection.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace {

class Server : public Http::ServerConnectionCallbacks {
 public:
  struct Stream : public Http::RequestDecoder, public Http::StreamCallbacks {
    void decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool) override {
      if (reset) return;
      Http::ResponseHeaderMap response;
      response.status = headers->path.size() % 2 ? 200 : 204;
      response.add("x-path-length", std::to_string(headers->path.size()));
      if (response.status == 204) {
        encoder->encodeHeaders(response, true);
        return;
      }
      encoder->encodeHeaders(response, false);
      if (reset) return;
      Buffer::OwnedImpl body(headers->path);
      const bool trailers = headers->method.size() % 2 == 0;
      encoder->encodeData(body, !trailers);
      if (trailers && !reset) {
        Http::HeaderMap t;
        t.add("grpc-status", "0");
        encoder->encodeTrailers(t);
      }
    }
    void decodeData(Buffer::Instance& data, bool) override { data.drain(data.length()); }
    void decodeTrailers(Http::HeaderMapPtr&&) override {}
    void onResetStream(Http::StreamResetReason) override { reset = true; }
    void onAboveWriteBufferHighWatermark() override {}
    void onBelowWriteBufferLowWatermark() override {}
    Http::ResponseEncoder* encoder = nullptr;
    bool reset = false;
  };

  Http::RequestDecoder& newStream(Http::ResponseEncoder& encoder) override {
    streams_.push_back(std::make_unique<Stream>());
    Stream& s = *streams_.back();
    s.encoder = &encoder;
    encoder.getStream().setCallbacks(&s);
    return s;
  }
  void onCodecError(const Http::CodecError&) override {}
  std::vector<std::unique_ptr<Stream>> streams_;
};

class Client : public Http::ResponseDecoder, public Http::StreamCallbacks {
 public:
  void decodeHeaders(Http::ResponseHeaderMapPtr&&, bool) override {}
  void decodeData(Buffer::Instance& data, bool) override { data.drain(data.length()); }
  void decodeTrailers(Http::HeaderMapPtr&&) override {}
  void onResetStream(Http::StreamResetReason) override {}
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}
};

// Feeds `data` to `dispatch` in pieces whose sizes come from the input's first byte.
template <class F>
void feed(const uint8_t* data, size_t size, F&& dispatch) {
  if (size == 0) return;
  const size_t step = 1 + (data[0] % 64) * 16;
  Buffer::OwnedImpl pending;
  for (size_t off = 1; off < size; off += step) {
    pending.add(data + off, std::min(step, size - off));
    dispatch(pending);
  }
}

void runDeferred(Event::Dispatcher& d) {
  d.post([&d]() { d.exit(); });
  d.run();
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static Event::DispatcherPtr dispatcher = Event::createLibeventDispatcher();
  static Stats::Store* store = new Stats::Store(1);
  static Http::Http2::CodecStats stats = Http::Http2::CodecStats::create(*store);
  {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return 0;
    Network::Connection conn(*dispatcher, fds[0], false);
    conn.setBufferLimits(1 << 30);
    Server server;
    Http::CodecSettings settings;
    settings.max_headers_count = 32;
    settings.max_request_body_bytes = 1 << 16;
    settings.http2.max_header_list_size = 4096;
    settings.http2.max_concurrent_streams = 16;
    settings.http2.max_requests_per_connection = 64;
    auto codec =
        std::make_unique<Http::Http2::ServerConnectionImpl>(conn, server, settings, &stats);
    Buffer::OwnedImpl preface(Http::Http2::connectionPreface());
    codec->dispatch(preface);
    feed(data, size, [&](Buffer::Instance& b) { codec->dispatch(b); });
    runDeferred(*dispatcher);
    codec.reset();
    runDeferred(*dispatcher);
    close(fds[1]);
  }
  {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return 0;
    Network::Connection conn(*dispatcher, fds[0], false);
    conn.setBufferLimits(1 << 30);
    Http::CodecSettings settings;
    auto codec = std::make_unique<Http::Http2::ClientConnectionImpl>(conn, settings, false);
    Client client;
    Http::RequestHeaderMap request;
    request.method = size % 3 == 0 ? "HEAD" : "POST";
    request.path = "/";
    request.add("host", "fuzz");
    request.add("te", "trailers");
    Http::RequestEncoder& enc = codec->newStream(client);
    enc.getStream().setCallbacks(&client);
    enc.encodeHeaders(request, false);
    Buffer::OwnedImpl body("request body");
    enc.encodeData(body, true);
    feed(data, size, [&](Buffer::Instance& b) { codec->dispatch(b); });
    codec->onConnectionClose();
    runDeferred(*dispatcher);
    codec.reset();
    runDeferred(*dispatcher);
    close(fds[1]);
  }
  return 0;
}
