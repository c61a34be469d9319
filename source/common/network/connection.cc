#include "source/common/network/connection.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace sluice {
namespace Network {

std::string Address::ip() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  } else if (ss.sa.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

uint16_t Address::port() const {
  if (ss.sa.sa_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  }
  if (ss.sa.sa_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  }
  return 0;
}

std::string Address::toString() const {
  if (ss.sa.sa_family == AF_INET6) {
    return absl::StrCat("[", ip(), "]:", port());
  }
  return absl::StrCat(ip(), ":", port());
}

bool Address::parse(const std::string& host_in, uint32_t port, Address& out) {
  if (port > 65535) {
    return false;
  }
  std::string host = host_in.empty() ? "0.0.0.0" : host_in;
  if (host == "localhost") {
    host = "127.0.0.1";
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  out = Address();
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

Connection::Connection(Event::Dispatcher& dispatcher, int fd, bool connecting,
                       TransportSocketPtr transport)
    : dispatcher_(dispatcher),
      fd_(fd),
      transport_(std::move(transport)),
      connecting_(connecting),
      client_(connecting) {
  if (transport_ != nullptr) {
    transport_->setFd(fd_);
    handshaking_ = true;
  }
  uint32_t events = Event::FileReadyType::Read;
  if (connecting) {
    events |= Event::FileReadyType::Write;
  }
  file_event_ = dispatcher_.createFileEvent(
      fd_, [this](uint32_t ev) { onFileEvent(ev); }, events);
}

Connection::~Connection() {
  file_event_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::unique_ptr<Connection> Connection::connect(Event::Dispatcher& dispatcher, const Address& to,
                                                TransportSocketPtr transport) {
  int fd = ::socket(to.ss.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return nullptr;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&to.ss), to.len);
  if (rc < 0 && errno != EINPROGRESS) {
    int err = errno;
    ::close(fd);
    errno = err;
    return nullptr;
  }
  auto conn = std::make_unique<Connection>(dispatcher, fd, true, std::move(transport));
  conn->peer_ = to;
  return conn;
}

void Connection::onFileEvent(uint32_t events) {
  if (state_ == State::Closed) {
    return;
  }
  if (connecting_) {
    if (events & (Event::FileReadyType::Write | Event::FileReadyType::Read)) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        errno = err;
        closeSocket(ConnectionEvent::ConnectFailed);
        return;
      }
      connecting_ = false;
      if (handshaking_) {
        continueHandshake();
        return;
      }
      updateEvents();
      if (callbacks_) callbacks_->onEvent(ConnectionEvent::Connected);
      if (state_ == State::Closed) return;
      if (!write_buffer_.empty()) flush();
      if (state_ == State::Closed) return;
    }
    if (!(events & Event::FileReadyType::Read)) {
      return;
    }
  }
  if (handshaking_) {
    continueHandshake();
    return;
  }
  if (events & Event::FileReadyType::Write) {
    onWriteReady();
    if (state_ == State::Closed) return;
  }
  if (events & Event::FileReadyType::Read) {
    onReadReady();
  }
}

void Connection::continueHandshake() {
  const HandshakeStatus status = transport_->handshake();
  switch (status) {
    case HandshakeStatus::WantRead:
    case HandshakeStatus::WantWrite:
      handshake_wants_write_ = status == HandshakeStatus::WantWrite;
      updateEvents();
      return;
    case HandshakeStatus::Failed:
      closeSocket(client_ ? ConnectionEvent::ConnectFailed : ConnectionEvent::RemoteClose);
      return;
    case HandshakeStatus::Done:
      break;
  }
  handshaking_ = false;
  handshake_wants_write_ = false;
  handshake_timer_.reset();
  updateEvents();
  if (client_ && callbacks_) {
    callbacks_->onEvent(ConnectionEvent::Connected);
    if (state_ == State::Closed) return;
  }
  if (!write_buffer_.empty()) {
    flush();
    if (state_ == State::Closed) return;
  }
  // The peer's first data may have come with its last handshake flight.
  onReadReady();
}

void Connection::setHandshakeTimeout(std::chrono::milliseconds timeout) {
  if (!handshaking_ || timeout.count() <= 0) return;
  handshake_timer_ = dispatcher_.createTimer([this]() {
    if (handshaking_)
      closeSocket(client_ ? ConnectionEvent::ConnectFailed : ConnectionEvent::LocalClose);
  });
  handshake_timer_->enableTimer(timeout);
}

const std::string& Connection::transportFailureReason() const {
  static const std::string kNone;
  return transport_ == nullptr ? kNone : transport_->failureReason();
}

void Connection::scheduleTransportRead() {
  if (transport_read_pending_) return;
  transport_read_pending_ = true;
  dispatcher_.deferred([this]() {
    transport_read_pending_ = false;
    if (state_ == State::Open && !handshaking_) onReadReady();
  });
}

void Connection::onReadReady() {
  if (read_disabled_ > 0 && state_ == State::Open) {
    return;
  }
  const ssize_t n = transport_ == nullptr ? read_buffer_.readFrom(fd_, 64 * 1024)
                                          : transport_->read(read_buffer_, 64 * 1024);
  if (n < 0) {
    if (n == -EAGAIN) {
      return;
    }
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  if (n == 0) {
    read_eof_ = true;
  }
  bytes_read_ += n;
  if (callbacks_) {
    callbacks_->onData(read_buffer_, read_eof_);
  }
  if (state_ == State::Open && read_eof_) {
    // The reader saw end_stream and did not close: nothing more will come; stop polling read.
    updateEvents();
  } else if (state_ == State::Open && transport_ != nullptr && transport_->hasPendingRead()) {
    // Decrypted bytes wait inside the transport: the socket will not say so again.
    scheduleTransportRead();
  }
}

void Connection::resumeRead() {
  if (state_ != State::Open || callbacks_ == nullptr) {
    return;
  }
  if (!read_buffer_.empty() || read_eof_) {
    callbacks_->onData(read_buffer_, read_eof_);
  }
}

void Connection::write(Buffer::Instance& data) {
  if (state_ != State::Open || data.empty()) {
    data.drain(data.length());
    return;
  }
  write_buffer_.move(data);
  scheduleFlush();
}

void Connection::write(absl::string_view data) {
  if (state_ != State::Open || data.empty()) {
    return;
  }
  write_buffer_.add(data);
  scheduleFlush();
}

void Connection::scheduleFlush() {
  if (!above_high_ && write_buffer_.length() > high_watermark_) {
    above_high_ = true;
    if (callbacks_) callbacks_->onAboveWriteBufferHighWatermark();
  }
  if (flush_scheduled_ || write_blocked_ || connecting_ || handshaking_) {
    return;
  }
  flush_scheduled_ = true;
  dispatcher_.deferred([this]() {
    flush_scheduled_ = false;
    flush();
  });
}

void Connection::flush() {
  if (state_ == State::Closed || connecting_ || handshaking_) {
    return;
  }
  if (transport_ != nullptr) {
    const ssize_t n = transport_->write(write_buffer_);
    if (n < 0) {
      closeSocket(ConnectionEvent::RemoteClose);
      return;
    }
    bytes_written_ += n;
  }
  while (transport_ == nullptr && !write_buffer_.empty()) {
    ssize_t n = write_buffer_.writeTo(fd_);
    if (n < 0) {
      if (n == -EAGAIN) {
        break;
      }
      closeSocket(ConnectionEvent::RemoteClose);
      return;
    }
    bytes_written_ += n;
    if (write_buffer_.length() > 0 && write_buffer_.sliceCount() <= 16) {
      // Partial write with everything in one writev: the socket is full.
      break;
    }
  }
  const bool blocked = !write_buffer_.empty();
  if (blocked != write_blocked_) {
    write_blocked_ = blocked;
    updateEvents();
  }
  checkLowWatermark();
  if (state_ == State::Flushing && write_buffer_.empty()) {
    closeSocket(ConnectionEvent::LocalClose);
  }
}

void Connection::onWriteReady() { flush(); }

void Connection::checkLowWatermark() {
  if (above_high_ && write_buffer_.length() <= high_watermark_ / 2) {
    above_high_ = false;
    if (callbacks_ && state_ == State::Open) callbacks_->onBelowWriteBufferLowWatermark();
  }
}

void Connection::updateEvents() {
  if (state_ == State::Closed) {
    return;
  }
  uint32_t ev = 0;
  if (connecting_) {
    ev = Event::FileReadyType::Write;
  } else if (handshaking_) {
    ev = Event::FileReadyType::Read;
    if (handshake_wants_write_) ev |= Event::FileReadyType::Write;
  } else {
    if (read_disabled_ == 0 && !read_eof_ && state_ == State::Open) {
      ev |= Event::FileReadyType::Read;
    }
    if (write_blocked_) {
      ev |= Event::FileReadyType::Write;
    }
  }
  file_event_->setEnabled(ev);
}

void Connection::readDisable(bool disable) {
  if (state_ != State::Open) {
    return;
  }
  if (disable) {
    if (++read_disabled_ == 1) updateEvents();
    return;
  }
  if (read_disabled_ == 0) {
    return;
  }
  if (--read_disabled_ == 0) {
    updateEvents();
    // Bytes read before the pause are still waiting: process them now (from the loop, not from
    // inside the caller's stack).
    if (transport_ != nullptr && transport_->hasPendingRead()) {
      scheduleTransportRead();
    } else if (!read_buffer_.empty() && !dispatch_pending_) {
      dispatch_pending_ = true;
      dispatcher_.deferred([this]() {
        dispatch_pending_ = false;
        if (read_disabled_ == 0) resumeRead();
      });
    }
  }
}

void Connection::close(CloseType type) {
  if (state_ == State::Closed) {
    return;
  }
  if (type == CloseType::FlushWrite && !write_buffer_.empty() && !connecting_ && !handshaking_) {
    // Stop reading; a peer that goes away makes the pending write fail, which ends the flush.
    state_ = State::Flushing;
    updateEvents();
    scheduleFlush();
    return;
  }
  closeSocket(ConnectionEvent::LocalClose);
}

void Connection::closeSocket(ConnectionEvent event) {
  if (state_ == State::Closed) {
    return;
  }
  state_ = State::Closed;
  file_event_->setEnabled(0);
  handshake_timer_.reset();
  if (transport_ != nullptr && !handshaking_ && event == ConnectionEvent::LocalClose) {
    transport_->shutdown();
  }
  ::close(fd_);
  fd_ = -1;
  read_buffer_.clear();
  write_buffer_.clear();
  if (callbacks_) {
    callbacks_->onEvent(event);
  }
}

}  // namespace Network
}  // namespace sluice
