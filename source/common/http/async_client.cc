#include "source/common/http/async_client.h"

#include <cerrno>
#include <cstring>
#include <list>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "source/common/http/codec.h"
#include "source/common/http/http1/codec_impl.h"
#include "source/common/http/path.h"
#include "source/common/network/host_name.h"

namespace sluice {
namespace Http {

namespace {

// Percent-decodes `in` into `out`; false on a broken escape.
bool percentDecode(absl::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = Path::hexValue(in[i + 1]);
    const int lo = Path::hexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

}  // namespace

absl::StatusOr<HttpUri> parseHttpUri(absl::string_view uri) {
  absl::string_view rest = uri;
  HttpUri out;
  if (absl::ConsumePrefix(&rest, "https://")) {
    out.https = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError("must start with http:// or https://");
  }
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  out.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  for (char c : out.path) {
    if (c <= 0x20 || c == 0x7f || c == '#') {
      return absl::InvalidArgumentError("invalid character in the path");
    }
  }
  const size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    const absl::string_view userinfo = authority.substr(0, at);
    for (char c : userinfo) {
      if (c <= 0x20 || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '[' || c == ']') {
        return absl::InvalidArgumentError("invalid character in the user info");
      }
    }
    if (!percentDecode(userinfo, out.userinfo)) {
      return absl::InvalidArgumentError("invalid percent-encoding in the user info");
    }
    out.has_userinfo = true;
    authority = authority.substr(at + 1);
  }
  std::string host;
  uint32_t port = out.https ? 443 : 80;
  absl::string_view port_text;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("unclosed [ in host");
    host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return absl::InvalidArgumentError("unexpected text after ]");
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (!port_text.empty() || absl::EndsWith(authority, ":")) {
    if (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError("invalid port");
    }
  }
  if (host.empty()) return absl::InvalidArgumentError("host is required");
  const std::string ip = host == "localhost" ? "127.0.0.1" : host;
  out.port = port;
  if (!Network::Address::parse(ip, port, out.address)) {
    if (!Network::isValidHostName(host)) {
      return absl::InvalidArgumentError(
          absl::StrCat("host \"", host, "\" is not an IP address or a valid host name"));
    }
    out.host_name = host;  // resolved before each new connection
  }
  out.host_header = std::string(authority);
  return out;
}

std::string HttpUri::displayName() const {
  absl::string_view p = path;
  p = p.substr(0, p.find('?'));
  return absl::StrCat(https ? "https://" : "http://", host_header, p);
}

absl::StatusOr<Tls::ClientContextConstSharedPtr> createUriTlsContext(const HttpUri& uri,
                                                                     const std::string& ca_pem) {
  Tls::ClientContextConfig tls;
  const std::string host = uri.host_name.empty() ? uri.address.ip() : uri.host_name;
  if (!uri.host_name.empty()) tls.sni = host;
  tls.verify_names = {host};
  tls.ca_pem = ca_pem;
  return Tls::ClientContext::create(tls);
}

// ---------------------------------------------------------------------------------------------

class AsyncClient::Impl {
 public:
  Impl(Event::Dispatcher& dispatcher, HttpUri uri, Options options, Network::DnsResolver* resolver)
      : dispatcher_(dispatcher),
        uri_(std::move(uri)),
        options_(options),
        resolver_(resolver),
        kick_(dispatcher_.createTimer([this]() { onKick(); })) {}

  ~Impl() {
    // Silently: in-flight requests get no callback; connections close.
    while (!conns_.empty()) removeConn(*conns_.front());
    for (auto& r : pending_) r->detachQuietly();
    for (auto& r : completed_) r->detachQuietly();
    pending_.clear();
    completed_.clear();
  }

  class Conn;

  // One request from send() to its callback.
  class ActiveRequest : public Request, public ResponseDecoder, public StreamCallbacks {
   public:
    ActiveRequest(Impl& parent, AsyncRequest request, Callback cb)
        : parent_(parent), request_(std::move(request)), cb_(std::move(cb)) {
      timer_ = parent_.dispatcher_.createTimer(
          [this]() { parent_.fail(*this, absl::DeadlineExceededError("timeout")); });
      timer_->enableTimer(parent_.options_.timeout);
    }

    // Request
    void cancel() override { parent_.cancel(*this); }

    // ResponseDecoder
    void decodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) override {
      response_.status = headers->status;
      response_.headers = std::move(headers);
      if (end_stream) parent_.onResponseComplete(*this);
    }
    void decodeData(Buffer::Instance& data, bool end_stream) override {
      if (response_.body.size() + data.length() > parent_.options_.max_response_bytes) {
        data.drain(data.length());
        parent_.fail(*this, absl::ResourceExhaustedError(
                                absl::StrCat("response body larger than ",
                                             parent_.options_.max_response_bytes, " bytes")));
        return;
      }
      response_.body += data.toString();
      data.drain(data.length());
      if (end_stream) parent_.onResponseComplete(*this);
    }
    void decodeTrailers(HeaderMapPtr&&) override { parent_.onResponseComplete(*this); }

    // StreamCallbacks
    void onResetStream(StreamResetReason reason) override { parent_.onReset(*this, reason); }
    void onAboveWriteBufferHighWatermark() override {}
    void onBelowWriteBufferLowWatermark() override {}

    // Forgets its connection and timers without calling back (client going away).
    void detachQuietly() {
      timer_.reset();
      resolving_.reset();
      conn_ = nullptr;
    }

    Impl& parent_;
    AsyncRequest request_;
    Callback cb_;
    Event::TimerPtr timer_;
    Network::DnsQueryPtr resolving_;
    Conn* conn_ = nullptr;
    bool retried_ = false;       // already sent again once
    bool on_reused_ = false;     // sent on a connection that carried an earlier request
    uint64_t bytes_before_ = 0;  // connection bytes read before this request was sent
    bool response_done_ = false;
    bool finished_ = false;
    AsyncResponse response_;
    absl::StatusOr<AsyncResponse> result_ = absl::UnknownError("not finished");
  };

  // One connection with its codec; carries one request at a time, idle in between.
  class Conn : public Network::ConnectionCallbacks {
   public:
    Conn(Impl& parent, Network::ConnectionPtr conn) : parent_(parent), conn_(std::move(conn)) {
      conn_->setCallbacks(this);
      codec_ = std::make_unique<Http1::ClientConnectionImpl>(*conn_);
    }

    void onData(Buffer::Instance& data, bool end_stream) override {
      if (request_ == nullptr) {
        // Bytes nobody asked for on an idle connection: never reuse it.
        data.drain(data.length());
        parent_.removeConn(*this);
        return;
      }
      codec_->dispatch(data);
      if (end_stream && request_ != nullptr && !request_->response_done_) {
        codec_->onConnectionClose();  // completes a close-delimited body, or resets the stream
      }
      parent_.afterDispatch(*this);
    }
    void onEvent(Network::ConnectionEvent event) override {
      switch (event) {
        case Network::ConnectionEvent::Connected:
          connected_ = true;
          if (request_ != nullptr) parent_.encodeRequest(*request_, *this);
          return;
        case Network::ConnectionEvent::ConnectFailed:
          if (request_ != nullptr) {
            ActiveRequest& r = *request_;
            parent_.fail(r, absl::UnavailableError(
                                conn_->transportFailureReason().empty()
                                    ? std::string("connect failed")
                                    : absl::StrCat("TLS: ", conn_->transportFailureReason())));
          }
          parent_.removeConn(*this);
          return;
        case Network::ConnectionEvent::RemoteClose:
        case Network::ConnectionEvent::LocalClose:
          closed_ = true;
          if (request_ != nullptr && !request_->response_done_ && connected_) {
            codec_->onConnectionClose();  // resets the stream, or ends a close-delimited body
          }
          parent_.afterDispatch(*this);
          if (request_ != nullptr && !request_->response_done_) {
            // Closed before the request could be sent (during the TLS handshake).
            parent_.fail(*request_,
                         absl::UnavailableError("connection closed before the response"));
          }
          parent_.removeConn(*this);
          return;
      }
    }

    Impl& parent_;
    Network::ConnectionPtr conn_;
    std::unique_ptr<Http1::ClientConnectionImpl> codec_;
    ActiveRequest* request_ = nullptr;
    Event::TimerPtr idle_timer_;
    uint64_t requests_ = 0;  // requests sent on it
    bool connected_ = false;
    bool closed_ = false;
    bool removed_ = false;
    std::list<std::unique_ptr<Conn>>::iterator self_;
  };

  // What is left of a closed connection, deleted after the current callback (the codec first).
  struct Dead : public Event::DeferredDeletable {
    ~Dead() override {
      if (conn != nullptr) {
        conn->codec_.reset();
        conn->conn_.reset();
      }
    }
    std::unique_ptr<Conn> conn;
  };

  Request& send(AsyncRequest request, Callback cb) {
    auto r = std::make_unique<ActiveRequest>(*this, std::move(request), std::move(cb));
    ActiveRequest& ref = *r;
    pending_.push_back(std::move(r));
    kick_->enableTimer(std::chrono::milliseconds(0));
    return ref;
  }

  // Runs the callbacks of finished requests, then starts the pending ones. From a timer: never
  // inside send() nor inside a codec or connection callback.
  void onKick() {
    std::weak_ptr<bool> alive = alive_;
    while (!completed_.empty()) {
      std::unique_ptr<ActiveRequest> r = std::move(completed_.front());
      completed_.pop_front();
      Callback cb = std::move(r->cb_);
      absl::StatusOr<AsyncResponse> result = std::move(r->result_);
      r.reset();
      if (cb) cb(std::move(result));
      if (alive.expired()) return;  // the callback destroyed the client
    }
    // assign() may finish a request (moving it out of pending_): walk a copy.
    std::vector<ActiveRequest*> waiting;
    for (auto& r : pending_) {
      if (r->conn_ == nullptr && r->resolving_ == nullptr) waiting.push_back(r.get());
    }
    for (ActiveRequest* r : waiting) {
      if (!r->finished_ && r->conn_ == nullptr && r->resolving_ == nullptr) assign(*r);
    }
  }

  // Gives `r` a connection: an idle one, else a new one (after resolving a host name).
  void assign(ActiveRequest& r) {
    if (!r.retried_) {
      for (auto it = conns_.rbegin(); it != conns_.rend(); ++it) {
        Conn& c = **it;
        if (c.request_ == nullptr && c.connected_ && !c.closed_ && !c.conn_->closing()) {
          c.idle_timer_->disableTimer();
          attach(r, c);
          encodeRequest(r, c);
          return;
        }
      }
    }
    if (uri_.host_name.empty()) {
      connect(r, uri_.address);
      return;
    }
    if (resolver_ == nullptr) {
      fail(r, absl::UnavailableError("no DNS resolver for host names"));
      return;
    }
    r.resolving_ = resolver_->resolve(
        uri_.host_name, Network::DnsLookupFamily::V4Preferred,
        [this, &r](Network::DnsResolutionStatus status, absl::string_view details,
                   std::vector<Network::DnsResponse>&& answer) {
          r.resolving_.reset();
          Network::Address to;
          if (status != Network::DnsResolutionStatus::Success || answer.empty() ||
              !Network::Address::parse(answer.front().address.ip(), uri_.port, to)) {
            fail(r, absl::UnavailableError(absl::StrCat(
                        "cannot resolve ", uri_.host_name, ": ",
                        status == Network::DnsResolutionStatus::Success ? "no address" : details)));
            return;
          }
          connect(r, to);
        });
  }

  void connect(ActiveRequest& r, const Network::Address& to) {
    Network::ConnectionPtr conn = Network::Connection::connect(
        dispatcher_, to, uri_.tls != nullptr ? uri_.tls->newSocket() : nullptr);
    if (conn == nullptr) {
      fail(r, absl::UnavailableError(absl::StrCat("connect: ", strerror(errno))));
      return;
    }
    ++connections_opened_;
    conns_.push_back(std::make_unique<Conn>(*this, std::move(conn)));
    Conn& c = *conns_.back();
    c.self_ = std::prev(conns_.end());
    c.idle_timer_ = dispatcher_.createTimer([this, &c]() { removeConn(c); });
    attach(r, c);
  }

  void attach(ActiveRequest& r, Conn& c) {
    r.conn_ = &c;
    c.request_ = &r;
  }

  void encodeRequest(ActiveRequest& r, Conn& c) {
    r.on_reused_ = c.requests_ > 0;
    r.bytes_before_ = c.conn_->bytesRead();
    r.response_done_ = false;
    r.response_ = AsyncResponse();
    ++c.requests_;
    RequestEncoder& enc = c.codec_->newStream(r);
    enc.getStream().setCallbacks(&r);
    RequestHeaderMap h;
    h.method = r.request_.method;
    h.path = r.request_.path.empty() ? uri_.path : r.request_.path;
    h.add("host", uri_.host_header);
    for (const auto& [name, value] : r.request_.headers) {
      if (name == "host" || name == "content-length" || name == "connection" ||
          name == "transfer-encoding") {
        continue;
      }
      h.add(name, value);
    }
    if (r.request_.body.empty()) {
      enc.encodeHeaders(h, true);
      return;
    }
    h.add("content-length", std::to_string(r.request_.body.size()));
    enc.encodeHeaders(h, false);
    Buffer::OwnedImpl body;
    body.add(r.request_.body);
    enc.encodeData(body, true);
  }

  // The response ended (inside the codec's dispatch: the connection's fate is decided after it,
  // when the codec knows whether the connection stays open).
  void onResponseComplete(ActiveRequest& r) { r.response_done_ = true; }

  void afterDispatch(Conn& c) {
    ActiveRequest* r = c.request_;
    if (r == nullptr || !r->response_done_) return;
    c.request_ = nullptr;
    r->conn_ = nullptr;
    const bool reuse = options_.keepalive.count() > 0 && c.codec_->reusable() && !c.closed_ &&
                       !c.conn_->closing() && !c.codec_->busy();
    if (reuse) {
      c.idle_timer_->enableTimer(options_.keepalive);
      c.conn_->releaseIdleMemory();
    } else {
      removeConn(c);
    }
    succeed(*r);
  }

  void onReset(ActiveRequest& r, StreamResetReason reason) {
    Conn* c = r.conn_;
    const bool nothing_received = c != nullptr && c->conn_->bytesRead() == r.bytes_before_;
    if (c != nullptr) {
      c->request_ = nullptr;
      r.conn_ = nullptr;
      c->closed_ = true;  // a reset stream leaves the HTTP/1 connection unusable
      removeConn(*c);
    }
    if (reason == StreamResetReason::ConnectionTermination && r.on_reused_ && nothing_received &&
        !r.retried_) {
      // The peer closed a kept-alive connection as we used it: once more on a new one.
      r.retried_ = true;
      kick_->enableTimer(std::chrono::milliseconds(0));
      return;
    }
    fail(r, absl::UnavailableError(
                reason == StreamResetReason::ConnectionTermination
                    ? std::string("connection closed before the response ended")
                    : absl::StrCat("invalid HTTP response (", resetReasonName(reason), ")")));
  }

  void succeed(ActiveRequest& r) {
    AsyncResponse resp = std::move(r.response_);
    finish(r, std::move(resp));
  }
  void fail(ActiveRequest& r, absl::Status status) { finish(r, std::move(status)); }

  // Moves `r` to the finished list; its callback runs from the kick timer.
  void finish(ActiveRequest& r, absl::StatusOr<AsyncResponse> result) {
    if (r.finished_) return;
    r.finished_ = true;
    r.timer_->disableTimer();  // not destroyed: this may run from its own callback
    r.resolving_.reset();
    if (Conn* c = r.conn_; c != nullptr) {
      c->request_ = nullptr;
      r.conn_ = nullptr;
      c->closed_ = true;  // the exchange did not end cleanly: never reuse
      removeConn(*c);
    }
    r.result_ = std::move(result);
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->get() == &r) {
        completed_.push_back(std::move(*it));
        pending_.erase(it);
        break;
      }
    }
    kick_->enableTimer(std::chrono::milliseconds(0));
  }

  void cancel(ActiveRequest& r) {
    r.finished_ = true;
    if (r.timer_ != nullptr) r.timer_->disableTimer();
    r.resolving_.reset();
    if (Conn* c = r.conn_; c != nullptr) {
      c->request_ = nullptr;
      r.conn_ = nullptr;
      c->closed_ = true;
      removeConn(*c);
    }
    auto drop = [&r](std::list<std::unique_ptr<ActiveRequest>>& list) {
      for (auto it = list.begin(); it != list.end(); ++it) {
        if (it->get() == &r) {
          // Destroyed after the current callback: cancel() may be called from inside it.
          std::shared_ptr<ActiveRequest> keep(std::move(*it));
          list.erase(it);
          return keep;
        }
      }
      return std::shared_ptr<ActiveRequest>();
    };
    std::shared_ptr<ActiveRequest> dead = drop(pending_);
    if (dead == nullptr) dead = drop(completed_);
    if (dead != nullptr) {
      dead->cb_ = nullptr;
      dispatcher_.deferred([dead]() {});
    }
  }

  void removeConn(Conn& c) {
    if (c.removed_) return;
    c.removed_ = true;
    if (c.request_ != nullptr) {
      c.request_->conn_ = nullptr;
      c.request_ = nullptr;
    }
    if (c.idle_timer_ != nullptr) c.idle_timer_->disableTimer();  // may be its own callback
    c.conn_->setCallbacks(nullptr);
    c.conn_->close(Network::Connection::CloseType::NoFlush);
    auto dead = std::make_unique<Dead>();
    dead->conn = std::move(*c.self_);
    conns_.erase(c.self_);
    dispatcher_.deferredDelete(std::move(dead));
  }

  Event::Dispatcher& dispatcher_;
  const HttpUri uri_;
  const Options options_;
  Network::DnsResolver* const resolver_;
  Event::TimerPtr kick_;
  std::list<std::unique_ptr<ActiveRequest>> pending_;    // waiting or in flight
  std::list<std::unique_ptr<ActiveRequest>> completed_;  // callbacks to run
  std::list<std::unique_ptr<Conn>> conns_;
  uint64_t connections_opened_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

AsyncClient::AsyncClient(Event::Dispatcher& dispatcher, HttpUri uri, Options options,
                         Network::DnsResolver* resolver)
    : impl_(std::make_unique<Impl>(dispatcher, std::move(uri), options, resolver)) {}

AsyncClient::~AsyncClient() = default;

AsyncClient::Request& AsyncClient::send(AsyncRequest request, Callback callback) {
  return impl_->send(std::move(request), std::move(callback));
}

const HttpUri& AsyncClient::uri() const { return impl_->uri_; }

uint64_t AsyncClient::connectionsOpened() const { return impl_->connections_opened_; }

size_t AsyncClient::idleConnections() const {
  size_t n = 0;
  for (const auto& c : impl_->conns_) {
    if (c->request_ == nullptr && c->connected_ && !c->closed_) ++n;
  }
  return n;
}

}  // namespace Http
}  // namespace sluice
