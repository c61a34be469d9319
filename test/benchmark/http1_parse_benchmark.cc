// HTTP/1 request parsing: llhttp plus our header collection, for a typical API request.
#include <sys/socket.h>

#include "benchmark/benchmark.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/http1/codec_impl.h"
#include "source/common/network/connection.h"

namespace sluice {
namespace {

constexpr char kRequest[] =
    "GET /api/v1/users/12345/orders?limit=20&offset=40 HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NSJ9.c2ln\r\n"
    "Cookie: session=abcdef0123456789; theme=dark\r\n"
    "X-Forwarded-For: 203.0.113.7\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

class NullDecoder : public Http::RequestDecoder {
 public:
  void decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool) override {
    headers_ = std::move(headers);
  }
  void decodeData(Buffer::Instance& data, bool) override { data.drain(data.length()); }
  void decodeTrailers(Http::HeaderMapPtr&&) override {}
  Http::RequestHeaderMapPtr headers_;
};

class Callbacks : public Http::ServerConnectionCallbacks {
 public:
  Http::RequestDecoder& newStream(Http::ResponseEncoder&) override { return decoder_; }
  void onCodecError(const Http::CodecError& e) override { std::abort(); }
  NullDecoder decoder_;
};

void BM_Http1ParseRequest(benchmark::State& state) {
  auto dispatcher = Event::createLibeventDispatcher();
  int fds[2];
  socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds);
  Network::Connection conn(*dispatcher, fds[0], false);
  Callbacks cb;
  Http::Http1::CodecSettings settings;
  for (auto _ : state) {
    // A codec per request: the cost of the first request on a connection (parser set-up
    // included); a kept-alive connection reuses its codec.
    Http::Http1::ServerConnectionImpl codec(conn, cb, settings);
    Buffer::OwnedImpl data(kRequest);
    codec.dispatch(data);
    benchmark::DoNotOptimize(cb.decoder_.headers_.get());
  }
  state.SetBytesProcessed(state.iterations() * (sizeof(kRequest) - 1));
  close(fds[1]);
}
BENCHMARK(BM_Http1ParseRequest);

}  // namespace
}  // namespace sluice
