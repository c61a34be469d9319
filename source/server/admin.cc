#include "source/server/admin.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "source/common/http/http1/codec_impl.h"

namespace sluice {
namespace Server {
namespace {

// One admin client connection: HTTP/1.1 through the same codec as the data plane.
class AdminConnection : public Network::ConnectionCallbacks,
                        public Http::ServerConnectionCallbacks,
                        public Http::RequestDecoder,
                        public Http::StreamCallbacks,
                        public Event::DeferredDeletable {
 public:
  AdminConnection(Event::Dispatcher& d, int fd, AdminServer::Handler& handler)
      : dispatcher_(d), handler_(handler) {
    conn_ = std::make_unique<Network::Connection>(d, fd, false);
    conn_->setCallbacks(this);
    codec_ = std::make_unique<Http::Http1::ServerConnectionImpl>(*conn_, *this,
                                                                 Http::Http1::CodecSettings{});
  }

  void onData(Buffer::Instance& data, bool end_stream) override {
    codec_->dispatch(data);
    if (end_stream && !conn_->closed() && encoder_ == nullptr) {
      conn_->close(Network::Connection::CloseType::FlushWrite);
    }
  }
  void onEvent(Network::ConnectionEvent e) override {
    if (e == Network::ConnectionEvent::RemoteClose || e == Network::ConnectionEvent::LocalClose) {
      if (!dead_) {
        dead_ = true;
        dispatcher_.deferredDelete(std::unique_ptr<Event::DeferredDeletable>(this));
      }
    }
  }
  Http::RequestDecoder& newStream(Http::ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    encoder.getStream().setCallbacks(this);
    return *this;
  }
  void onCodecError(const Http::CodecError& error) override {
    if (encoder_ == nullptr) {
      conn_->write(absl::StrCat("HTTP/1.1 ", error.status, " ",
                                Http::Http1::reasonPhrase(error.status),
                                "\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"));
    }
    conn_->close(Network::Connection::CloseType::FlushWrite);
  }
  void decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) override {
    headers_ = std::move(headers);
    if (end_stream) respond();
  }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    data.drain(data.length());
    if (end_stream) respond();
  }
  void decodeTrailers(Http::HeaderMapPtr&&) override { respond(); }
  void onResetStream(Http::StreamResetReason) override {}
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}

 private:
  void respond() {
    std::string path(headers_->pathOnly());
    std::string query(headers_->query());
    AdminResponse r = handler_(headers_->method, path, query);
    Http::ResponseHeaderMap h;
    h.status = r.status;
    h.add("content-type", r.content_type);
    h.add("content-length", absl::StrCat(r.body.size()));
    h.add("cache-control", "no-cache");
    Http::ResponseEncoder* enc = encoder_;
    encoder_ = nullptr;
    Buffer::OwnedImpl body(r.body);
    enc->encodeHeaders(h, r.body.empty());
    if (!r.body.empty()) enc->encodeData(body, true);
  }

  Event::Dispatcher& dispatcher_;
  AdminServer::Handler& handler_;
  Network::ConnectionPtr conn_;
  std::unique_ptr<Http::Http1::ServerConnectionImpl> codec_;
  Http::ResponseEncoder* encoder_ = nullptr;
  Http::RequestHeaderMapPtr headers_;
  bool dead_ = false;
};

}  // namespace

AdminServer::AdminServer(Event::Dispatcher& dispatcher, Handler handler)
    : dispatcher_(dispatcher), handler_(std::move(handler)) {}

AdminServer::~AdminServer() {
  event_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool AdminServer::listen(const Network::Address& address, std::string& error) {
  fd_ = socket(address.ss.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd_, reinterpret_cast<const sockaddr*>(&address.ss), address.len) != 0 ||
      ::listen(fd_, 128) != 0) {
    error = absl::StrCat("admin: cannot listen on ", address.toString(), ": ", strerror(errno));
    return false;
  }
  bound_.len = sizeof(bound_.ss);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&bound_.ss), &bound_.len);
  event_ = dispatcher_.createFileEvent(
      fd_, [this](uint32_t) { onAccept(); }, Event::FileReadyType::Read);
  return true;
}

void AdminServer::onAccept() {
  for (;;) {
    int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      return;
    }
    // Owned by itself until its connection closes (deferred delete).
    (void)std::make_unique<AdminConnection>(dispatcher_, fd, handler_).release();
  }
}

}  // namespace Server
}  // namespace sluice
