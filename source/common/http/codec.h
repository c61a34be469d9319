#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "source/common/buffer/buffer.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Http {

// Codec interfaces. They are shaped for multiplexed protocols: a connection carries streams, and
// each stream has its own decoder (peer -> us) and encoder (us -> peer). HTTP/1 has at most one
// active stream per connection; HTTP/2 (a later codec) will have many.

// Why a stream ended before its exchange completed. Each says where it came from and whether the
// request may be sent again (retriable()); the router's retry decision reads it.
enum class StreamResetReason : uint8_t {
  // The connection to the peer closed (the peer went away, or a kept-alive connection it had
  // already closed). Retriable.
  ConnectionTermination,
  // The connection to the peer could not be set up. Retriable.
  ConnectionFailure,
  // We reset the stream (timeout, local error). Not retriable: we gave up on it.
  LocalReset,
  // The peer violated the protocol (an invalid response). Retriable: another try (another
  // endpoint) may answer properly.
  ProtocolError,
  // A limit of ours was exceeded (buffers). Not retriable.
  Overflow,
};

// May a request whose stream was reset this way, before any response, be sent again (if the
// route's retry policy retries resets)?
constexpr bool retriable(StreamResetReason reason) {
  switch (reason) {
    case StreamResetReason::ConnectionTermination:
    case StreamResetReason::ConnectionFailure:
    case StreamResetReason::ProtocolError:
      return true;
    case StreamResetReason::LocalReset:
    case StreamResetReason::Overflow:
      return false;
  }
  return false;
}

// A name for logs ("connection termination").
constexpr absl::string_view resetReasonName(StreamResetReason reason) {
  switch (reason) {
    case StreamResetReason::ConnectionTermination:
      return "connection termination";
    case StreamResetReason::ConnectionFailure:
      return "connection failure";
    case StreamResetReason::LocalReset:
      return "local reset";
    case StreamResetReason::ProtocolError:
      return "protocol error";
    case StreamResetReason::Overflow:
      return "overflow";
  }
  return "unknown";
}

class StreamCallbacks {
 public:
  virtual ~StreamCallbacks() = default;
  virtual void onResetStream(StreamResetReason reason) = 0;
  // The stream's outgoing buffer went above / below its watermarks: the producer should pause /
  // resume.
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

class Stream {
 public:
  virtual ~Stream() = default;
  virtual void setCallbacks(StreamCallbacks* callbacks) = 0;
  virtual void resetStream(StreamResetReason reason) = 0;
  // Stops / resumes reading the peer's data for this stream (flow control).
  virtual void readDisable(bool disable) = 0;
};

// Server side: what the codec calls as a request arrives.
class RequestDecoder {
 public:
  virtual ~RequestDecoder() = default;
  virtual void decodeHeaders(RequestHeaderMapPtr&& headers, bool end_stream) = 0;
  virtual void decodeData(Buffer::Instance& data, bool end_stream) = 0;
  virtual void decodeTrailers(HeaderMapPtr&& trailers) = 0;
};

// Server side: how a response is sent.
class ResponseEncoder {
 public:
  virtual ~ResponseEncoder() = default;
  virtual void encode100Continue() = 0;
  virtual void encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) = 0;
  virtual void encodeData(Buffer::Instance& data, bool end_stream) = 0;
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  virtual Stream& getStream() = 0;
};

// Client side.
class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  virtual void decodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) = 0;
  virtual void decodeData(Buffer::Instance& data, bool end_stream) = 0;
  virtual void decodeTrailers(HeaderMapPtr&& trailers) = 0;
};

class RequestEncoder {
 public:
  virtual ~RequestEncoder() = default;
  virtual void encodeHeaders(const RequestHeaderMap& headers, bool end_stream) = 0;
  virtual void encodeData(Buffer::Instance& data, bool end_stream) = 0;
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  virtual Stream& getStream() = 0;
};

// Codec error with the HTTP status a server should answer with.
struct CodecError {
  uint32_t status = 400;
  std::string details;
};

class ServerConnectionCallbacks {
 public:
  virtual ~ServerConnectionCallbacks() = default;
  // A new request stream. The returned decoder receives its headers and body.
  virtual RequestDecoder& newStream(ResponseEncoder& encoder) = 0;
  // The peer sent something the codec can't accept (before or during a request). The connection
  // must be answered with error.status (if nothing was sent yet) and closed.
  virtual void onCodecError(const CodecError& error) = 0;
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Feeds bytes read from the network. Consumes what it can; leaves the rest (e.g. a pipelined
  // request waiting for the current response) in `data`.
  virtual void dispatch(Buffer::Instance& data) = 0;
  // True while a request is being received or answered (not idle).
  virtual bool busy() const = 0;
};

}  // namespace Http
}  // namespace sluice
