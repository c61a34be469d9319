#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "source/common/buffer/buffer.h"
#include "source/common/event/dispatcher.h"

namespace sluice {
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
  Connection(Event::Dispatcher& dispatcher, int fd, bool connecting);
  ~Connection() override;

  // Creates a client connection to `to` (non-blocking connect). Returns nullptr on an immediate
  // failure (errno set).
  static std::unique_ptr<Connection> connect(Event::Dispatcher& dispatcher, const Address& to);

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
  }
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

  Event::Dispatcher& dispatcher_;
  int fd_;
  Event::FileEventPtr file_event_;
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
  bool flush_scheduled_ = false;
  bool write_blocked_ = false;
  bool above_high_ = false;
  bool read_eof_ = false;
  bool in_callback_ = false;
  bool dispatch_pending_ = false;
};
using ConnectionPtr = std::unique_ptr<Connection>;

}  // namespace Network
}  // namespace sluice
