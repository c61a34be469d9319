#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "source/common/buffer/buffer.h"
#include "source/common/event/dispatcher.h"

namespace sluice {
namespace Tls {
class ConnectionInfo;
}
namespace Network {

struct Address {
  // IPv4 or IPv6 only: 28 bytes instead of sockaddr_storage's 128 (one per connection).
  union Storage {
    sockaddr sa;
    sockaddr_in in4;
    sockaddr_in6 in6;
  };
  Storage ss{};
  socklen_t len = 0;
  std::string toString() const;  // "127.0.0.1:80" / "[::1]:80"
  std::string ip() const;        // "127.0.0.1"
  uint16_t port() const;
  static bool parse(const std::string& host, uint32_t port, Address& out);
};

enum class ConnectionEvent { RemoteClose, LocalClose, Connected, ConnectFailed };

// What a TLS handshake step asks for.
enum class HandshakeStatus { Done, WantRead, WantWrite, Failed };

// A security layer between the socket and the connection's buffers (TLS). A connection without
// one reads and writes the socket directly (the cleartext fast path). Worker-local.
class TransportSocket {
 public:
  virtual ~TransportSocket() = default;
  // Binds to the connection's socket; called once, before anything else.
  virtual void setFd(int fd) = 0;
  // Advances the handshake (non-blocking).
  virtual HandshakeStatus handshake() = 0;
  // Why the handshake or the connection failed ("certificate verify failed: certificate has
  // expired"), for logs and responses; empty when nothing failed.
  virtual const std::string& failureReason() const = 0;
  // Decrypts into `out`, at most about `max` bytes. Returns bytes read (> 0), 0 at the peer's
  // end of stream, -EAGAIN when nothing is available, another -errno on failure.
  virtual ssize_t read(Buffer::Instance& out, size_t max) = 0;
  // Decrypted bytes held inside the layer that the socket will not signal again.
  virtual bool hasPendingRead() const = 0;
  // Encrypts and sends from `in` (drained by what was sent) until it is empty or the socket is
  // full. Returns bytes taken (>= 0; less than in.length() means the socket is full), or -errno
  // on failure.
  virtual ssize_t write(Buffer::Instance& in) = 0;
  // Sends the close alert (best effort, never blocks), before the socket is closed.
  virtual void shutdown() = 0;
  // What an idle connection can give back.
  virtual void releaseIdleMemory() {}
  // TLS details once the handshake is done; null for a layer that is not TLS.
  virtual const Tls::ConnectionInfo* ssl() const { return nullptr; }
};
using TransportSocketPtr = std::unique_ptr<TransportSocket>;

class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  // Bytes arrived in `data` (the connection's read buffer; consume what you use).
  // `end_stream`: the peer half-closed.
  virtual void onData(Buffer::Instance& data, bool end_stream) = 0;
  virtual void onEvent(ConnectionEvent event) = 0;
  virtual void onAboveWriteBufferHighWatermark() {}
  virtual void onBelowWriteBufferLowWatermark() {}
};

// A non-blocking TCP connection on one dispatcher. Reads stay enabled (no epoll_ctl per request);
// writes are queued and flushed once per loop iteration with one writev, and write interest is
// registered only while the socket is full.
class Connection : public Event::DeferredDeletable {
 public:
  // Takes ownership of `fd`. `connecting`: a client socket whose connect() is in progress.
  // `transport` (optional, e.g. TLS): its handshake runs first; a client connection raises
  // Connected only when it is done, a server connection delivers data only then.
  Connection(Event::Dispatcher& dispatcher, int fd, bool connecting,
             TransportSocketPtr transport = nullptr);
  ~Connection() override;

  // Creates a client connection to `to` (non-blocking connect). Returns nullptr on an immediate
  // failure (errno set).
  static std::unique_ptr<Connection> connect(Event::Dispatcher& dispatcher, const Address& to,
                                             TransportSocketPtr transport = nullptr);

  void setCallbacks(ConnectionCallbacks* cb) { callbacks_ = cb; }
  void setBufferLimits(uint32_t high_watermark) { high_watermark_ = high_watermark; }
  // Queues `data` (moved out) for sending.
  void write(Buffer::Instance& data);
  void write(absl::string_view data);
  enum class CloseType { FlushWrite, NoFlush };
  // Closes. With FlushWrite, queued output is sent first (then the fd is closed).
  void close(CloseType type);
  bool closed() const { return state_ == State::Closed; }
  bool closing() const { return state_ != State::Open; }
  void readDisable(bool disable);
  bool readDisabled() const { return read_disabled_ > 0; }
  size_t writeBufferLength() const { return write_buffer_.length(); }
  bool aboveHighWatermark() const { return above_high_; }
  const Address& peerAddress() const { return peer_; }
  void setPeerAddress(const Address& a) { peer_ = a; }
  Event::Dispatcher& dispatcher() { return dispatcher_; }
  int fd() const { return fd_; }
  uint64_t bytesRead() const { return bytes_read_; }
  uint64_t bytesWritten() const { return bytes_written_; }
  // Frees the empty buffers' memory entirely (idle connections).
  void releaseIdleMemory() {
    if (read_buffer_.empty()) read_buffer_.releaseMemory();
    if (write_buffer_.empty()) write_buffer_.releaseMemory();
    if (transport_ != nullptr) transport_->releaseIdleMemory();
  }
  // TLS details (after the handshake); null on a cleartext connection.
  const Tls::ConnectionInfo* ssl() const {
    return transport_ == nullptr ? nullptr : transport_->ssl();
  }
  // Closes the connection when the transport handshake has not finished by then (server side;
  // a client's connect timeout covers its handshake).
  void setHandshakeTimeout(std::chrono::milliseconds timeout);
  // Why the connection failed at the transport level (TLS), or "".
  const std::string& transportFailureReason() const;
  // Re-runs onData with what is buffered (after the reader paused processing).
  void resumeRead();

 private:
  enum class State { Open, Flushing, Closed };
  void onFileEvent(uint32_t events);
  void onReadReady();
  void onWriteReady();
  void scheduleFlush();
  void flush();
  void updateEvents();
  void closeSocket(ConnectionEvent event);
  void checkLowWatermark();
  void continueHandshake();
  void scheduleTransportRead();

  Event::Dispatcher& dispatcher_;
  int fd_;
  Event::FileEventPtr file_event_;
  TransportSocketPtr transport_;
  Event::TimerPtr handshake_timer_;
  ConnectionCallbacks* callbacks_ = nullptr;
  Buffer::OwnedImpl read_buffer_;
  Buffer::OwnedImpl write_buffer_;
  Address peer_;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  uint32_t high_watermark_ = 1024 * 1024;
  int read_disabled_ = 0;
  State state_ = State::Open;
  bool connecting_;
  const bool client_;
  bool flush_scheduled_ = false;
  bool write_blocked_ = false;
  bool above_high_ = false;
  bool read_eof_ = false;
  bool in_callback_ = false;
  bool dispatch_pending_ = false;
  bool handshaking_ = false;
  bool handshake_wants_write_ = false;
  bool transport_read_pending_ = false;
};
using ConnectionPtr = std::unique_ptr<Connection>;

}  // namespace Network
}  // namespace sluice
