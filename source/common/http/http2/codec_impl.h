#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "nghttp2/nghttp2.h"
#include "source/common/http/codec.h"
#include "source/common/network/connection.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Http {
namespace Http2 {

// HTTP/2 (RFC 9113) over libnghttp2, both directions. nghttp2 does the framing, HPACK, flow
// control accounting and the protocol's own checks (pseudo-headers, connection-specific
// headers, content-length against DATA); this layer maps streams to the codec.h interfaces,
// ties flow control to the consumers' watermarks, and adds the limits nghttp2 leaves to its
// user: decoded header-list size, premature resets (CVE-2023-44487), control-frame and
// empty-frame floods, outbound floods, and a lifetime cap of streams per connection.

#define ALL_HTTP2_COUNTERS(COUNTER)    \
  COUNTER(downstream_cx_http2_total)   \
  COUNTER(downstream_rq_http2_total)   \
  COUNTER(http2_premature_reset_close) \
  COUNTER(http2_header_overflow)       \
  COUNTER(http2_continuation_flood)    \
  COUNTER(http2_control_flood)         \
  COUNTER(http2_empty_data_flood)      \
  COUNTER(http2_outbound_flood)        \
  COUNTER(http2_refused_stream)        \
  COUNTER(http2_protocol_error)        \
  COUNTER(http2_goaway_sent)           \
  COUNTER(http2_rx_reset)              \
  COUNTER(http2_tx_reset)              \
  COUNTER(http2_max_requests_per_connection)

struct CodecStats {
#define SLUICE_HTTP2_DECLARE(name) Stats::Counter* name = nullptr;
  ALL_HTTP2_COUNTERS(SLUICE_HTTP2_DECLARE)
#undef SLUICE_HTTP2_DECLARE
  // Counters named "http2.<what>" (the field's name after "http2_"), downstream_* as they are.
  static CodecStats create(Stats::Store& store);
};

class ConnectionImpl;

// One stream, either direction. Owned by its connection; closed streams are deleted through
// the dispatcher (the connection manager or the router may still hold the encoder until then).
class StreamImpl : public Stream, public Event::DeferredDeletable {
 public:
  StreamImpl(ConnectionImpl& parent) : parent_(parent) {}

  // Stream
  void setCallbacks(StreamCallbacks* callbacks) override { callbacks_ = callbacks; }
  void resetStream(StreamResetReason reason) override;
  void readDisable(bool disable) override;

  // Body bytes queued for sending (moved to nghttp2 as its window allows).
  void queueData(Buffer::Instance& data, bool end_stream);
  // Raises / lowers this stream's write watermark state from its own buffer and the connection.
  void updateWatermark();
  // nghttp2 data source callbacks.
  ssize_t readData(uint8_t* buf, size_t length, uint32_t* flags);
  void submitTrailers(const HeaderMap& trailers);
  void runResetCallbacks(StreamResetReason reason);

  ConnectionImpl& parent_;
  int32_t id_ = -1;
  StreamCallbacks* callbacks_ = nullptr;
  Buffer::OwnedImpl pending_send_;  // our body, not yet framed
  Buffer::OwnedImpl recv_body_;     // the peer's body of the DATA frame being received
  uint64_t body_bytes_ = 0;         // received body bytes in all
  std::unique_ptr<HeaderMap> pending_trailers_;
  uint64_t unconsumed_ = 0;    // received body bytes not yet returned to the peer's window
  uint64_t header_bytes_ = 0;  // decoded size of the header block being received
  uint32_t header_count_ = 0;
  int read_disabled_ = 0;
  bool local_end_ = false;      // we sent (or queued) END_STREAM
  bool remote_end_ = false;     // the peer sent END_STREAM
  bool data_deferred_ = false;  // nghttp2 waits for resume_data
  bool data_provider_ = false;  // a data provider is attached (headers sent without end)
  bool reset_sent_ = false;
  bool answered_by_codec_ = false;  // the codec itself answered the request (413, 431...)
  bool header_overflow_ = false;
  bool closed_ = false;
  bool reset_notified_ = false;
  bool above_high_ = false;
  bool headers_done_ = false;  // the first (non-1xx) header block was delivered
  // The consumer is done with this stream (the response is complete, or it was reset): no
  // callbacks into it any more.
  bool detached_ = false;
  // The consumer will not call this stream any more (server: it ended the response or reset).
  // A stream nghttp2 closed before that is kept until then.
  bool consumer_done_ = true;
  // The consumer finished: frees the stream if nghttp2 had closed it already.
  void consumerDone();
};

// What both directions share: the nghttp2 session, the streams by id, sending, flow control
// and the flood limits. The Server/Client classes below add the codec.h interfaces.
class ConnectionImpl {
 public:
  ConnectionImpl(Network::Connection& connection, const CodecSettings& settings,
                 const CodecStats* stats);
  virtual ~ConnectionImpl();

  // Feeds the peer's bytes to nghttp2 (all of them are consumed).
  void dispatchFrames(Buffer::Instance& data);
  // The network connection's write buffer went above / below its watermarks.
  void connectionAboveHighWatermark();
  void connectionBelowLowWatermark();

  // Frames everything nghttp2 has queued into the connection's write buffer (unless the
  // connection is above its high watermark: then it resumes below the low one).
  void sendPendingFrames();
  // The same, batched: at the end of the current event-loop pass.
  void scheduleSend();
  Network::Connection& connection() { return connection_; }
  bool aboveHighWatermark() const { return connection_above_high_; }
  uint32_t streamBufferLimit() const { return stream_buffer_limit_; }
  nghttp2_session* session() { return session_; }
  // Sends GOAWAY with `error` and closes the connection after flushing (a fatal error).
  void terminate(uint32_t error, Stats::Counter* counter);

 protected:
  friend class StreamImpl;
  friend class ServerStreamImpl;
  friend class ClientStreamImpl;
  friend struct Callbacks;
  // nghttp2 callbacks.
  virtual int onBeginHeaders(const nghttp2_frame* frame) = 0;
  virtual int onHeader(const nghttp2_frame* frame, absl::string_view name,
                       absl::string_view value) = 0;
  virtual int onFrameReceived(const nghttp2_frame* frame) = 0;
  int onBeginFrame(const nghttp2_frame_hd* hd);
  int onDataChunk(int32_t stream_id, const uint8_t* data, size_t len);
  int onStreamClose(int32_t stream_id, uint32_t error_code);
  int onFrameSend(const nghttp2_frame* frame);
  int onInvalidFrame(const nghttp2_frame* frame, int lib_error);
  ssize_t onSend(const uint8_t* data, size_t length);
  int onSendData(nghttp2_frame* frame, const uint8_t* framehd, size_t length);
  // A stream closed (by either side, or the connection): the subclass may react.
  virtual void onStreamClosed(StreamImpl& stream, uint32_t error_code) = 0;
  // Our END_STREAM for `stream` went out.
  virtual void onLocalEndSent(StreamImpl&) {}
  // The peer sent GOAWAY.
  virtual void onGoAway(int32_t last_stream_id) {}

  StreamImpl* getStream(int32_t id);
  // Returns flow-control credit for `bytes` of `stream` received data (unless it is paused).
  void consume(StreamImpl& stream, uint64_t bytes);
  // Builds nghttp2's header list from `headers` (lower-case names; connection-specific fields
  // dropped), after the pseudo-headers already in `nva`.
  void buildHeaders(std::vector<nghttp2_nv>& nva, const HeaderMap& headers);
  static void addNv(std::vector<nghttp2_nv>& nva, absl::string_view name, absl::string_view value);
  // Control-frame budget: PING, SETTINGS, PRIORITY and WINDOW_UPDATE frames cost one each;
  // streams and DATA frames earn credit. A peer that only talks control is cut off.
  bool spendControlBudget();
  // False (counted) when `hd` is one frame without payload too many in a row.
  bool checkEmptyFrame(const nghttp2_frame_hd& hd);
  // Follows the frame headers of the peer's bytes before nghttp2 parses them; false when one
  // breaks a limit (counted).
  bool scanFrames(absl::string_view bytes);
  void earnControlBudget(int64_t n) {
    control_budget_ = std::min<int64_t>(control_budget_ + n, kMaxControlBudget);
  }
  void destroyStream(StreamImpl& stream);
  void reapZombie(StreamImpl& stream);

  static constexpr int64_t kMaxControlBudget = 1000;
  static constexpr uint32_t kMaxEmptyFrames = 1;  // consecutive frames without payload

  Network::Connection& connection_;
  const CodecSettings settings_;
  const CodecStats* stats_;
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_map<int32_t, std::unique_ptr<StreamImpl>> streams_;
  // Closed streams whose consumer has not finished with them yet (consumer_done_ false).
  std::vector<std::unique_ptr<StreamImpl>> zombies_;
  Buffer::OwnedImpl out_;  // frames being written (moved to the connection after a send)
  uint32_t stream_buffer_limit_;
  int64_t control_budget_ = 100;
  uint32_t consecutive_empty_frames_ = 0;
  uint32_t continuations_ = 0;  // CONTINUATION frames of the header block being received
  // scanFrames state: bytes of the current payload (or the client preface) to jump over, and
  // the frame header being read.
  uint64_t scan_skip_ = 0;
  uint8_t scan_header_[9];
  size_t scan_have_ = 0;
  uint64_t streams_opened_ = 0;
  uint64_t premature_resets_ = 0;
  bool connection_above_high_ = false;
  bool in_dispatch_ = false;
  bool in_send_ = false;
  bool send_pending_ = false;  // a send was skipped (above high watermark, or in dispatch)
  bool failed_ = false;
  bool fatal_counted_ = false;  // a callback failed on a limit of ours (counted already)
  bool goaway_received_ = false;
  bool goaway_sent_ = false;
  bool close_when_drained_ = false;  // GOAWAY sent: close once no stream is left
  Event::TimerPtr send_timer_;       // scheduleSend()
  bool send_scheduled_ = false;
};

// Server (downstream) side.
class ServerStreamImpl : public StreamImpl, public ResponseEncoder {
 public:
  using StreamImpl::StreamImpl;
  // ResponseEncoder
  void encode100Continue() override;
  void encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) override;
  void encodeData(Buffer::Instance& data, bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  Stream& getStream() override { return *this; }

  RequestDecoder* decoder_ = nullptr;
  RequestHeaderMapPtr headers_;
  HeaderMapPtr trailers_;
  bool response_started_ = false;
  bool invalid_ = false;  // Host differs from :authority
  bool is_head_ = false;
  bool headers_only_ = false;  // the response ended with its headers (no body allowed)
};

class ServerConnectionImpl : public ServerConnection, public ConnectionImpl {
 public:
  ServerConnectionImpl(Network::Connection& connection, ServerConnectionCallbacks& callbacks,
                       const CodecSettings& settings, const CodecStats* stats);

  // ServerConnection
  void dispatch(Buffer::Instance& data) override { dispatchFrames(data); }
  bool busy() const override { return !streams_.empty(); }
  Protocol protocol() const override { return Protocol::Http2; }
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override {
    connectionAboveHighWatermark();
  }
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override {
    connectionBelowLowWatermark();
  }
  void setCloseAfterResponse() override;
  bool closing() const override { return goaway_sent_ || failed_; }
  void sendStreamlessResponse(const ResponseHeaderMap& headers, absl::string_view body) override;

 private:
  friend class ServerStreamImpl;
  int onBeginHeaders(const nghttp2_frame* frame) override;
  int onHeader(const nghttp2_frame* frame, absl::string_view name,
               absl::string_view value) override;
  int onFrameReceived(const nghttp2_frame* frame) override;
  void onStreamClosed(StreamImpl& stream, uint32_t error_code) override;
  void onLocalEndSent(StreamImpl& stream) override;
  // Answers a request the codec itself refuses (headers too large, invalid), without a
  // connection-manager stream.
  void refuseRequest(ServerStreamImpl& stream, uint32_t status);
  // Finishes a request's header block and hands it to the connection manager.
  void onRequestHeaders(ServerStreamImpl& stream, bool end_stream);
  void closeIfDrained();
  // Sends GOAWAY(NO_ERROR) naming the last stream taken, once; false if it was sent already
  // (or the connection failed).
  bool goAwayGracefully();

  ServerConnectionCallbacks& callbacks_;
};

// Client (upstream) side.
class ClientStreamImpl : public StreamImpl, public RequestEncoder {
 public:
  using StreamImpl::StreamImpl;
  // RequestEncoder
  void encodeHeaders(const RequestHeaderMap& headers, bool end_stream) override;
  void encodeData(Buffer::Instance& data, bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  Stream& getStream() override { return *this; }

  ResponseDecoder* decoder_ = nullptr;
  ResponseHeaderMapPtr headers_;
  HeaderMapPtr trailers_;
};

class ClientConnectionImpl : public ClientConnection, public ConnectionImpl {
 public:
  // `secure`: the connection is TLS (:scheme https).
  ClientConnectionImpl(Network::Connection& connection, const CodecSettings& settings, bool secure);

  // ClientConnection
  void dispatch(Buffer::Instance& data) override { dispatchFrames(data); }
  bool busy() const override { return !streams_.empty() || !unsubmitted_.empty(); }
  Protocol protocol() const override { return Protocol::Http2; }
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override {
    connectionAboveHighWatermark();
  }
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override {
    connectionBelowLowWatermark();
  }
  RequestEncoder& newStream(ResponseDecoder& decoder) override;
  void onConnectionClose() override;
  bool reusable() const override { return !goaway_received_ && !failed_ && !closed_; }
  uint32_t maxConcurrentStreams() const override;
  bool peerSettingsKnown() const override { return settings_received_; }

 private:
  friend class ClientStreamImpl;
  int onBeginHeaders(const nghttp2_frame* frame) override;
  int onHeader(const nghttp2_frame* frame, absl::string_view name,
               absl::string_view value) override;
  int onFrameReceived(const nghttp2_frame* frame) override;
  void onStreamClosed(StreamImpl& stream, uint32_t error_code) override;
  void onGoAway(int32_t last_stream_id) override;

  // Streams created but not yet given an id by nghttp2 (headers not yet submitted).
  std::vector<std::unique_ptr<ClientStreamImpl>> unsubmitted_;
  const bool secure_;
  bool closed_ = false;
  int32_t goaway_last_stream_id_ = INT32_MAX;
  bool settings_received_ = false;
};

// The HTTP/2 connection preface a client sends first ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").
absl::string_view connectionPreface();

}  // namespace Http2
}  // namespace Http
}  // namespace sluice
