#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "source/common/buffer/buffer.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Http {

// Codec interfaces. They are shaped for multiplexed protocols: a connection carries streams, and
// each stream has its own decoder (peer -> us) and encoder (us -> peer). HTTP/1 has at most one
// active stream per connection; HTTP/2 (a later codec) will have many.

enum class StreamResetReason {
  // The connection to the peer failed or closed.
  ConnectionTermination,
  ConnectionFailure,
  // We reset the stream (timeout, local error).
  LocalReset,
  // The peer violated the protocol.
  ProtocolError,
  Overflow,
};

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
