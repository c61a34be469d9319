#include "source/common/upstream/health_checker.h"

#include <string.h>

#include "absl/strings/str_cat.h"
#include "source/common/http/codec_factory.h"

namespace sluice {
namespace Upstream {

namespace {
// The connection and codec of a check, deleted after the callback that closed them returns.
struct DeadConnection : public Event::DeferredDeletable {
  Network::ConnectionPtr connection;
  Http::ClientConnectionPtr codec;
};
}  // namespace

HealthCheckSession::HealthCheckSession(Event::Dispatcher& dispatcher,
                                       std::shared_ptr<const HealthCheckConfig> config,
                                       Network::Address address, EndpointStateSharedPtr endpoint,
                                       ResultCb on_result, uint64_t seed)
    : dispatcher_(dispatcher),
      config_(std::move(config)),
      address_(address),
      endpoint_(std::move(endpoint)),
      on_result_(std::move(on_result)),
      rng_(seed) {
  interval_timer_ = dispatcher_.createTimer([this]() { startCheck(); });
  timeout_timer_ = dispatcher_.createTimer([this]() {
    finish(false, "timeout");
    closeConnection();
  });
  request_.method = "GET";
  request_.path = config_->path;
  request_.add("host", config_->host);
  request_.add("user-agent", "sluice-health-check");
}

HealthCheckSession::~HealthCheckSession() {
  interval_timer_.reset();
  timeout_timer_.reset();
  in_check_ = false;
  closeConnection();
}

void HealthCheckSession::start(std::chrono::milliseconds delay) {
  interval_timer_->enableTimer(delay);
}

void HealthCheckSession::startCheck() {
  in_check_ = true;
  status_ = 0;
  timeout_timer_->enableTimer(config_->timeout);
  if (connection_ != nullptr && connected_ && !config_->tcp && codec_->reusable() &&
      !connection_->closing()) {
    sendRequest();
    return;
  }
  closeConnection();
  connected_ = false;
  connection_ = Network::Connection::connect(
      dispatcher_, address_, config_->tls != nullptr ? config_->tls->newSocket() : nullptr);
  if (connection_ == nullptr) {
    finish(false, absl::StrCat("connect failed: ", strerror(errno)));
    return;
  }
  connection_->setCallbacks(this);
  codec_ = Http::createClientConnection(
      *connection_, config_->http2 ? Http::Protocol::Http2 : Http::Protocol::Http11);
}

void HealthCheckSession::sendRequest() {
  Http::RequestEncoder& encoder = codec_->newStream(*this);
  encoder.getStream().setCallbacks(this);
  encoder.encodeHeaders(request_, true);
}

void HealthCheckSession::onEvent(Network::ConnectionEvent event) {
  switch (event) {
    case Network::ConnectionEvent::Connected:
      connected_ = true;
      if (config_->tcp) {
        finish(true, "");
        closeConnection();
      } else if (in_check_) {
        sendRequest();
      }
      return;
    case Network::ConnectionEvent::ConnectFailed:
      connected_ = false;
      if (in_check_) {
        const std::string& tls = connection_->transportFailureReason();
        finish(false, tls.empty() ? absl::StrCat("connect failed: ", strerror(errno))
                                  : absl::StrCat("TLS: ", tls));
      }
      closeConnection();
      return;
    case Network::ConnectionEvent::RemoteClose:
    case Network::ConnectionEvent::LocalClose:
      connected_ = false;
      if (in_check_ && codec_ != nullptr) {
        // Completes a close-delimited response or resets the check's stream.
        codec_->onConnectionClose();
      }
      if (in_check_) {
        finish(false, "connection closed");
      }
      closeConnection();
      return;
  }
}

void HealthCheckSession::onData(Buffer::Instance& data, bool end_stream) {
  if (!in_check_ || codec_ == nullptr) {
    // Bytes or EOF on an idle kept-alive connection: it is finished.
    data.drain(data.length());
    closeConnection();
    return;
  }
  codec_->dispatch(data);
  if (end_stream && connection_ != nullptr && !connection_->closed()) {
    connection_->close(Network::Connection::CloseType::NoFlush);
  }
}

void HealthCheckSession::decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) {
  status_ = headers->status;
  if (end_stream) {
    Buffer::OwnedImpl empty;
    decodeData(empty, true);
  }
}

void HealthCheckSession::decodeData(Buffer::Instance& data, bool end_stream) {
  data.drain(data.length());
  if (!end_stream || !in_check_) {
    return;
  }
  if (config_->expected(status_)) {
    finish(true, "");
  } else {
    finish(false, absl::StrCat("status ", status_));
  }
  // The codec completes the exchange after this returns; the next check reuses the
  // connection if it stays open and keep-alive.
}

void HealthCheckSession::decodeTrailers(Http::HeaderMapPtr&&) {
  Buffer::OwnedImpl empty;
  decodeData(empty, true);
}

void HealthCheckSession::onResetStream(Http::StreamResetReason reason) {
  if (in_check_) {
    finish(false, reason == Http::StreamResetReason::ProtocolError ? "invalid response"
                                                                   : "connection closed");
  }
}

void HealthCheckSession::finish(bool healthy, const std::string& failure) {
  if (!in_check_) {
    return;
  }
  in_check_ = false;
  timeout_timer_->disableTimer();
  std::chrono::milliseconds next = config_->interval;
  if (config_->interval_jitter.count() > 0) {
    next += std::chrono::milliseconds(rng_() % (config_->interval_jitter.count() + 1));
  }
  interval_timer_->enableTimer(next);
  on_result_(*endpoint_, healthy, failure);
}

void HealthCheckSession::closeConnection() {
  if (connection_ == nullptr) {
    codec_.reset();
    return;
  }
  auto dead = std::make_unique<DeadConnection>();
  dead->connection = std::move(connection_);
  dead->codec = std::move(codec_);
  connected_ = false;
  dead->connection->setCallbacks(nullptr);
  if (!dead->connection->closed()) {
    dead->connection->close(Network::Connection::CloseType::NoFlush);
  }
  dispatcher_.deferredDelete(std::move(dead));
}

}  // namespace Upstream
}  // namespace sluice
