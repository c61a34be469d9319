#include "test/test_common/test_http_server.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sluice {
namespace Testing {

std::string TestHttpServer::Request::header(const std::string& name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

class TestHttpServer::Peer : public Network::ConnectionCallbacks {
 public:
  Peer(TestHttpServer& server, Network::ConnectionPtr conn, int index)
      : server_(server), conn_(std::move(conn)), index_(index) {
    conn_->setCallbacks(this);
  }
  ~Peer() override { conn_->setCallbacks(nullptr); }

  void onData(Buffer::Instance& data, bool end_stream) override {
    buffer_ += data.toString();
    data.drain(data.length());
    server_.process(*this);
    if (end_stream && !conn_->closing()) close();
  }
  void onEvent(Network::ConnectionEvent event) override {
    if (event == Network::ConnectionEvent::RemoteClose ||
        event == Network::ConnectionEvent::LocalClose ||
        event == Network::ConnectionEvent::ConnectFailed) {
      closed_ = true;
    }
  }
  void close() {
    closed_ = true;
    conn_->close(Network::Connection::CloseType::FlushWrite);
  }

  TestHttpServer& server_;
  Network::ConnectionPtr conn_;
  const int index_;
  std::string buffer_;
  int requests_ = 0;
  bool closed_ = false;
  bool holding_ = false;
};

TestHttpServer::TestHttpServer(Event::Dispatcher& dispatcher, Handler handler,
                               Tls::ServerContextConstSharedPtr tls)
    : dispatcher_(dispatcher), handler_(std::move(handler)), tls_(std::move(tls)) {
  accept_ = dispatcher_.createFileEvent(
      listener_.fd(), [this](uint32_t) { onAccept(); }, Event::FileReadyType::Read);
}

TestHttpServer::~TestHttpServer() {
  accept_.reset();
  peers_.clear();
}

void TestHttpServer::onAccept() {
  for (;;) {
    int fd = listener_.accept();
    if (fd < 0) return;
    auto conn = std::make_unique<Network::Connection>(
        dispatcher_, fd, false, tls_ != nullptr ? tls_->newSocket() : nullptr);
    peers_.push_back(std::make_unique<Peer>(*this, std::move(conn), accepted_++));
  }
}

void TestHttpServer::closeAll() {
  for (auto& p : peers_) {
    if (!p->closed_) p->close();
  }
}

int TestHttpServer::openConnections() const {
  int n = 0;
  for (const auto& p : peers_) n += p->closed_ ? 0 : 1;
  return n;
}

void TestHttpServer::process(Peer& p) {
  while (!p.closed_ && !p.holding_) {
    const size_t end = p.buffer_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    Request r;
    std::vector<absl::string_view> lines =
        absl::StrSplit(absl::string_view(p.buffer_).substr(0, end), "\r\n");
    std::vector<absl::string_view> first = absl::StrSplit(lines[0], ' ');
    if (first.size() >= 2) {
      r.method = std::string(first[0]);
      r.path = std::string(first[1]);
    }
    size_t length = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == absl::string_view::npos) continue;
      std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
      std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      if (name == "content-length") absl::SimpleAtoi(value, &length);
      r.headers.emplace_back(std::move(name), std::move(value));
    }
    if (p.buffer_.size() < end + 4 + length) return;
    r.body = p.buffer_.substr(end + 4, length);
    p.buffer_.erase(0, end + 4 + length);
    r.connection = p.index_;
    r.index = p.requests_++;
    requests_.push_back(r);
    const Action a = handler_(r);
    switch (a.kind) {
      case Kind::CloseNow:
        p.conn_->close(Network::Connection::CloseType::NoFlush);
        p.closed_ = true;
        return;
      case Kind::PartialThenClose:
        p.conn_->write(a.raw_prefix);
        p.close();
        return;
      case Kind::Hold:
        p.holding_ = true;
        return;
      case Kind::Respond: {
        std::string out =
            absl::StrCat("HTTP/1.1 ", a.status, " X\r\ncontent-length: ", a.body.size(), "\r\n");
        for (const auto& [n, v] : a.headers) absl::StrAppend(&out, n, ": ", v, "\r\n");
        if (a.close) out += "connection: close\r\n";
        out += "\r\n";
        out += a.body;
        p.conn_->write(out);
        if (a.close) {
          p.close();
          return;
        }
        break;
      }
    }
  }
}

}  // namespace Testing
}  // namespace sluice
