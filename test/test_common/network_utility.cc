#include "test/test_common/network_utility.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace sluice {
namespace Testing {

bool runUntil(Event::Dispatcher& dispatcher, const std::function<bool()>& done,
              std::chrono::milliseconds timeout) {
  if (done()) {
    // Still let deferred work (write flushes) queued by the caller run.
    runPending(dispatcher);
    return done();
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Event::TimerPtr poll;
  poll = dispatcher.createTimer([&]() {
    if (done() || std::chrono::steady_clock::now() >= deadline) {
      dispatcher.exit();
      return;
    }
    poll->enableTimer(std::chrono::milliseconds(1));
  });
  poll->enableTimer(std::chrono::milliseconds(0));
  dispatcher.run();
  return done();
}

void runPending(Event::Dispatcher& dispatcher) {
  int iterations = 0;
  Event::TimerPtr tick;
  tick = dispatcher.createTimer([&]() {
    if (++iterations >= 5) {
      dispatcher.exit();
      return;
    }
    tick->enableTimer(std::chrono::milliseconds(1));
  });
  tick->enableTimer(std::chrono::milliseconds(0));
  dispatcher.run();
}

std::pair<int, int> socketPair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    std::abort();
  }
  return {fds[0], fds[1]};
}

RawPeer::RawPeer(Event::Dispatcher& dispatcher, int fd)
    : connection_(std::make_unique<Network::Connection>(dispatcher, fd, false)) {
  connection_->setCallbacks(this);
}

RawPeer::~RawPeer() { connection_->setCallbacks(nullptr); }

void RawPeer::shutdownWrite() {
  // After the writes queued so far are flushed (deferred callbacks run in order).
  const int fd = connection_->fd();
  connection_->dispatcher().deferred([fd]() { ::shutdown(fd, SHUT_WR); });
}

void RawPeer::onData(Buffer::Instance& data, bool end_stream) {
  received_.append(data.toString());
  data.drain(data.length());
  if (end_stream) {
    peer_closed_ = true;
  }
}

void RawPeer::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::RemoteClose) {
    peer_closed_ = true;
  }
}

TcpListener::TcpListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd_, 64) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::abort();
  }
  port_ = ntohs(addr.sin_port);
}

int TcpListener::accept() {
  return fd_ < 0 ? -1 : ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void TcpListener::close() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = -1;
}

}  // namespace Testing
}  // namespace sluice
