#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "source/common/event/dispatcher.h"
#include "source/common/network/connection.h"

namespace sluice {
namespace Testing {

// Runs `dispatcher` until `done()` holds or `timeout` passes (the condition is checked from the
// loop itself every millisecond, never by sleeping). Returns done().
bool runUntil(Event::Dispatcher& dispatcher, const std::function<bool()>& done,
              std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

// Runs `dispatcher` for a few loop iterations so that work that is already possible (pending
// reads, deferred flushes) happens. For asserting that something did NOT happen.
void runPending(Event::Dispatcher& dispatcher);

// A connected pair of non-blocking AF_UNIX stream sockets.
std::pair<int, int> socketPair();

// The far end of a socket pair, as seen by a test: sends raw bytes and collects everything the
// other side writes until it closes.
class RawPeer : public Network::ConnectionCallbacks {
 public:
  RawPeer(Event::Dispatcher& dispatcher, int fd);
  ~RawPeer() override;

  void write(absl::string_view data) { connection_->write(data); }
  // Half-closes the write side (the other end reads EOF) but keeps reading.
  void shutdownWrite();
  void close() { connection_->close(Network::Connection::CloseType::NoFlush); }

  const std::string& received() const { return received_; }
  void clearReceived() { received_.clear(); }
  // The other end closed (EOF or error).
  bool peerClosed() const { return peer_closed_; }
  bool closed() const { return connection_->closed(); }
  Network::Connection& connection() { return *connection_; }

  // Network::ConnectionCallbacks
  void onData(Buffer::Instance& data, bool end_stream) override;
  void onEvent(Network::ConnectionEvent event) override;

 private:
  Network::ConnectionPtr connection_;
  std::string received_;
  bool peer_closed_ = false;
};

// A TCP listen socket on 127.0.0.1 with an ephemeral port (non-blocking).
class TcpListener {
 public:
  TcpListener();
  ~TcpListener() { close(); }
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // Accepts one pending connection: its non-blocking fd, or -1.
  int accept();
  void close();
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace Testing
}  // namespace sluice
