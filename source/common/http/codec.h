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
// active stream per connection; HTTP/2 has many.

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
  // The peer reset the stream (HTTP/2 RST_STREAM). Retriable.
  RemoteReset,
  // The peer refused the stream before processing it (HTTP/2 REFUSED_STREAM, or a stream above
  // the last one a GOAWAY accepted): nothing of the request was acted on, so it is always safe
  // to send again.
  RemoteRefusedStreamReset,
};

// May a request whose stream was reset this way, before any response, be sent again (if the
// route's retry policy retries resets)?
constexpr bool retriable(StreamResetReason reason) {
  switch (reason) {
    case StreamResetReason::ConnectionTermination:
    case StreamResetReason::ConnectionFailure:
    case StreamResetReason::ProtocolError:
    case StreamResetReason::RemoteReset:
    case StreamResetReason::RemoteRefusedStreamReset:
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
    case StreamResetReason::RemoteReset:
      return "remote reset";
    case StreamResetReason::RemoteRefusedStreamReset:
      return "remote refused stream";
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

// The protocol a connection speaks (for an HTTP/1 server connection: its latest request's).
enum class Protocol : uint8_t { Http10, Http11, Http2 };

// HTTP/2 settings and limits (the listener's `http2`; upstream codecs use the defaults).
struct Http2Settings {
  bool enabled = true;
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_stream_window_size = 256 * 1024;
  uint32_t initial_connection_window_size = 1024 * 1024;
  uint32_t max_header_list_size = 64 * 1024;
  uint64_t max_requests_per_connection = 0;  // 0 = unlimited
};

// Limits a server codec enforces on what the peer sends.
struct CodecSettings {
  uint32_t max_request_headers_bytes = 60 * 1024;
  uint32_t max_headers_count = 100;
  uint64_t max_request_body_bytes = 0;  // 0 = unlimited
  // Bytes an HTTP/2 stream buffers for sending (its peer's window closed) before it asks its
  // producer to pause (the listener's buffer_limit_bytes; upstream: the cluster's 1 MiB).
  uint32_t stream_buffer_limit = 1024 * 1024;
  Http2Settings http2;
};

class ServerConnectionCallbacks {
 public:
  virtual ~ServerConnectionCallbacks() = default;
  // A new request stream. The returned decoder receives its headers and body. A multiplexing
  // codec calls this for every stream the peer opens; HTTP/1 for one request at a time.
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
  // True while a stream is being received or answered (not idle).
  virtual bool busy() const = 0;
  virtual Protocol protocol() const = 0;
  // The network connection's write buffer went above / below its watermarks. A multiplexing
  // codec relays them to its streams (StreamCallbacks); HTTP/1's owner handles them itself.
  virtual void onUnderlyingConnectionAboveWriteBufferHighWatermark() {}
  virtual void onUnderlyingConnectionBelowWriteBufferLowWatermark() {}
};

// The server side of a downstream connection: everything the connection manager asks of a codec.
class ServerConnection : public Connection {
 public:
  // No new streams after the ones in flight, and the connection closes once their responses are
  // done (draining, or a timeout that left a request unread). HTTP/1: the current or next
  // response says `connection: close`; HTTP/2: GOAWAY.
  virtual void setCloseAfterResponse() = 0;
  // True once the codec closes the connection itself when the responses in flight are done (the
  // request or response asked for it, a protocol error, a reset): the connection manager then
  // neither arms its idle timeout nor closes the connection.
  virtual bool closing() const = 0;
  // Answers the peer when there is no stream to answer on (the request's headers were invalid
  // or never arrived): writes `headers` (status and fields, in order) and `body`, telling the
  // peer the connection closes. The caller closes it after the write.
  virtual void sendStreamlessResponse(const ResponseHeaderMap& headers, absl::string_view body) = 0;
};
using ServerConnectionPtr = std::unique_ptr<ServerConnection>;

// The client side of an upstream connection: what the connection pool and the router use.
class ClientConnection : public Connection {
 public:
  // Starts a request stream; `decoder` receives its response. Only while the connection has room
  // for one more stream (maxConcurrentStreams()).
  virtual RequestEncoder& newStream(ResponseDecoder& decoder) = 0;
  // The network connection closed (peer FIN or failure): completes close-delimited responses and
  // resets the other streams (ConnectionTermination).
  virtual void onConnectionClose() = 0;
  // May the connection carry new streams once the current ones end (keep-alive, no error)?
  virtual bool reusable() const = 0;
  // Streams the connection carries at once: 1 for HTTP/1 (no pipelining upstream); a
  // multiplexing codec, what the peer allows.
  virtual uint32_t maxConcurrentStreams() const = 0;
  // The peer's settings are known (HTTP/2: its first SETTINGS frame arrived), so
  // maxConcurrentStreams() is the peer's own limit. HTTP/1: from the start.
  virtual bool peerSettingsKnown() const { return true; }
};
using ClientConnectionPtr = std::unique_ptr<ClientConnection>;

}  // namespace Http
}  // namespace sluice
