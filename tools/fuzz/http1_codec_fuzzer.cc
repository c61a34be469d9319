// Fuzz driver for the HTTP/1 server and client codecs: arbitrary bytes, split into arbitrary
// reads, must never crash, hang or leak; every request that parses gets an answer. The server
// side also checks the codec's error contract (ServerConnectionCallbacks::onCodecError): at most
// one error per connection, with a 4xx status and a reason, and once it is reported nothing
// more is delivered (no new request, no headers, body or trailers). A violation aborts, which
// libFuzzer reports as a crash and the corpus replay as a failed test.
//
// libFuzzer (clang):  bazel build --config=fuzz //tools/fuzz:http1_codec_fuzzer
//                     bazel-bin/tools/fuzz/http1_codec_fuzzer -max_total_time=300 CORPUS_DIR
// Replay (gcc build): bazel-bin/tools/fuzz/http1_codec_fuzzer FILE...
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "source/common/event/dispatcher.h"
#include "source/common/http/http1/codec_impl.h"
#include "source/common/network/connection.h"

namespace sluice {
namespace {

// Answers every request as soon as its headers arrive (exercises pipelining, early responses
// and body discarding) and consumes whatever body follows.
[[noreturn]] void violation(const char* what) {
  std::fprintf(stderr, "http1_codec_fuzzer: invariant violated: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

class Server : public Http::ServerConnectionCallbacks, public Http::RequestDecoder {
 public:
  Http::RequestDecoder& newStream(Http::ResponseEncoder& encoder) override {
    if (errored) violation("newStream after onCodecError");
    encoder_ = &encoder;
    return *this;
  }
  void onCodecError(const Http::CodecError& error) override {
    if (errored) violation("onCodecError twice on one connection");
    if (error.status < 400 || error.status > 499) violation("codec error status is not a 4xx");
    if (error.details.empty()) violation("codec error without details");
    errored = true;
  }
  void decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) override {
    if (errored) violation("decodeHeaders after onCodecError");
    Http::ResponseHeaderMap response;
    response.status = headers->path.size() % 2 ? 200 : 204;
    Buffer::OwnedImpl body(headers->path);
    const bool with_body = response.status == 200 && !end_stream;
    encoder_->encodeHeaders(response, !with_body);
    if (with_body) encoder_->encodeData(body, true);
  }
  void decodeData(Buffer::Instance& data, bool) override {
    if (errored) violation("decodeData after onCodecError");
    data.drain(data.length());
  }
  void decodeTrailers(Http::HeaderMapPtr&&) override {
    if (errored) violation("decodeTrailers after onCodecError");
  }
  Http::ResponseEncoder* encoder_ = nullptr;
  bool errored = false;
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
  const size_t step = 1 + data[0] % 64;
  Buffer::OwnedImpl pending;
  for (size_t off = 1; off < size; off += step) {
    pending.add(data + off, std::min(step, size - off));
    dispatch(pending);
  }
}

// Runs what the codec deferred (write flushes, stream deletions) while the connection is still
// alive, so nothing accumulates across inputs.
void runDeferred(Event::Dispatcher& d) {
  d.post([&d]() { d.exit(); });
  d.run();
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static Event::DispatcherPtr dispatcher = Event::createLibeventDispatcher();
  {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return 0;
    Network::Connection conn(*dispatcher, fds[0], false);
    conn.setBufferLimits(1 << 30);
    Server server;
    Http::Http1::CodecSettings settings;
    settings.max_request_headers_bytes = 4096;
    settings.max_headers_count = 32;
    settings.max_request_body_bytes = 1 << 16;
    Http::Http1::ServerConnectionImpl codec(conn, server, settings);
    feed(data, size, [&](Buffer::Instance& b) { codec.dispatch(b); });
    // Once it has failed the codec stays failed: more bytes deliver nothing (checked above).
    if (server.errored) {
      Buffer::OwnedImpl more("GET /after-error HTTP/1.1\r\nhost: fuzz\r\n\r\n");
      codec.dispatch(more);
    }
    runDeferred(*dispatcher);
    close(fds[1]);
  }
  {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return 0;
    Network::Connection conn(*dispatcher, fds[0], false);
    Http::Http1::ClientConnectionImpl codec(conn);
    Client client;
    Http::RequestHeaderMap request;
    request.method = size % 3 == 0 ? "HEAD" : "GET";
    request.path = "/";
    request.add("host", "fuzz");
    Http::RequestEncoder& enc = codec.newStream(client);
    enc.getStream().setCallbacks(&client);
    enc.encodeHeaders(request, true);
    feed(data, size, [&](Buffer::Instance& b) { codec.dispatch(b); });
    codec.onConnectionClose();
    runDeferred(*dispatcher);
    close(fds[1]);
  }
  return 0;
}
