#include "source/common/http/http2/codec_impl.h"

#include <algorithm>
#include <cstring>

#include "absl/container/inlined_vector.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace Http {
namespace Http2 {

namespace {

constexpr absl::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Premature resets: once this many streams were reset by the client before their response
// completed, and they are at least half of all its streams, the connection is closed (Envoy's
// premature-reset check; HAProxy counts the same as glitches).
constexpr uint64_t kPrematureResetMinStreams = 100;
// A header block this many times over the limit is an HPACK bomb, not a large cookie: the
// connection goes, not just the stream.
constexpr uint64_t kHeaderBombFactor = 4;
// Upstream response header block limits (as the HTTP/1 client's).
constexpr uint64_t kMaxResponseHeadersBytes = 96 * 1024;
constexpr uint32_t kMaxResponseHeadersCount = 200;
// Frames nghttp2 keeps for sending beyond what the peer reads (its outbound ack queue).
constexpr size_t kMaxOutboundAck = 1000;
// CONTINUATION frames one header block may take (a 64 KiB block needs 4 at the default frame
// size; CVE-2024-27316 sends endless ones).
constexpr uint32_t kMaxContinuations = 8;
// Streams a client connection carries at once, whatever the peer allows.
constexpr uint32_t kMaxClientConcurrentStreams = 1024;

// A fixed connection-specific header (RFC 9113 8.2.2), never sent on HTTP/2. `te` is allowed
// with "trailers" only and checked by the caller.
bool isConnectionSpecific(absl::string_view k) {
  return k == "connection" || k == "keep-alive" || k == "proxy-connection" ||
         k == "transfer-encoding" || k == "upgrade";
}

ConnectionImpl* connOf(void* user_data) { return static_cast<ConnectionImpl*>(user_data); }

}  // namespace

absl::string_view connectionPreface() { return kPreface; }

CodecStats CodecStats::create(Stats::Store& store) {
  CodecStats s;
  auto name = [](absl::string_view field) {
    if (absl::StartsWith(field, "http2_")) {
      return absl::StrCat("http2.", field.substr(6));
    }
    return std::string(field);
  };
#define SLUICE_HTTP2_CREATE(field)       \
  {                                      \
    const std::string n = name(#field);  \
    s.field = &store.counter(n, #field); \
  }
  ALL_HTTP2_COUNTERS(SLUICE_HTTP2_CREATE)
#undef SLUICE_HTTP2_CREATE
  return s;
}

// nghttp2's C callbacks into the connection.
struct Callbacks {
  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* ud) {
    return connOf(ud)->onSend(data, length);
  }
  static int sendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                      nghttp2_data_source*, void* ud) {
    return connOf(ud)->onSendData(frame, framehd, length);
  }
  static int beginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    return connOf(ud)->onBeginHeaders(frame);
  }
  static int header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    return connOf(ud)->onHeader(frame,
                                absl::string_view(reinterpret_cast<const char*>(name), namelen),
                                absl::string_view(reinterpret_cast<const char*>(value), valuelen));
  }
  static int frameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    return connOf(ud)->onFrameReceived(frame);
  }
  static int beginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* ud) {
    return connOf(ud)->onBeginFrame(hd);
  }
  static int dataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                       size_t len, void* ud) {
    return connOf(ud)->onDataChunk(stream_id, data, len);
  }
  static int streamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud) {
    return connOf(ud)->onStreamClose(stream_id, error_code);
  }
  static int frameSend(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    return connOf(ud)->onFrameSend(frame);
  }
  static int invalidFrame(nghttp2_session*, const nghttp2_frame* frame, int error, void* ud) {
    return connOf(ud)->onInvalidFrame(frame, error);
  }
  static ssize_t readData(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source* source, void*) {
    return static_cast<StreamImpl*>(source->ptr)->readData(buf, length, flags);
  }

  static nghttp2_session_callbacks* get() {
    static nghttp2_session_callbacks* cb = [] {
      nghttp2_session_callbacks* c;
      nghttp2_session_callbacks_new(&c);
      nghttp2_session_callbacks_set_send_callback(c, send);
      nghttp2_session_callbacks_set_send_data_callback(c, sendData);
      nghttp2_session_callbacks_set_on_begin_headers_callback(c, beginHeaders);
      nghttp2_session_callbacks_set_on_header_callback(c, header);
      nghttp2_session_callbacks_set_on_frame_recv_callback(c, frameRecv);
      nghttp2_session_callbacks_set_on_begin_frame_callback(c, beginFrame);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, dataChunk);
      nghttp2_session_callbacks_set_on_stream_close_callback(c, streamClose);
      nghttp2_session_callbacks_set_on_frame_send_callback(c, frameSend);
      nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(c, invalidFrame);
      return c;
    }();
    return cb;
  }

  static nghttp2_option* options(bool server) {
    nghttp2_option* o;
    nghttp2_option_new(&o);
    // Window updates follow what the consumer took (flow control tied to its watermarks).
    nghttp2_option_set_no_auto_window_update(o, 1);
    nghttp2_option_set_max_outbound_ack(o, kMaxOutboundAck);
    nghttp2_option_set_max_settings(o, 32);
    nghttp2_option_set_max_continuations(o, 2 * kMaxContinuations);
    if (server) {
      // nghttp2's own reset-rate limit stays on under ours (burst, then per second).
      nghttp2_option_set_stream_reset_rate_limit(o, 1000, 33);
    } else {
      // Until the peer's SETTINGS arrive, assume what RFC 9113 recommends as a minimum.
      nghttp2_option_set_peer_max_concurrent_streams(o, 100);
    }
    return o;
  }
};

// The end of a stream's body: the DATA received so far, then its trailers (or an empty end of
// stream when the trailer block was empty). `detach`: the response is complete (client side).
template <class Decoder>
void deliverTrailers(StreamImpl& s, Decoder& decoder, HeaderMapPtr& trailers, bool detach = false) {
  if (s.recv_body_.length() > 0) {
    decoder.decodeData(s.recv_body_, false);
    s.recv_body_.clear();
    if (s.detached_) return;
  }
  if (detach) s.detached_ = true;
  if (trailers == nullptr) {
    Buffer::OwnedImpl empty;
    decoder.decodeData(empty, true);
  } else {
    decoder.decodeTrailers(std::move(trailers));
  }
}

// ---------------------------------------------------------------------------------------------
// StreamImpl

void StreamImpl::consumerDone() {
  if (consumer_done_) return;
  consumer_done_ = true;
  if (closed_) parent_.reapZombie(*this);
}

void StreamImpl::resetStream(StreamResetReason reason) {
  consumerDone();
  if (closed_ || reset_sent_ || answered_by_codec_) {
    return;
  }
  reset_sent_ = true;
  detached_ = true;  // the consumer asked for it: no reset callback back to it
  const uint32_t code = reason == StreamResetReason::LocalReset ? NGHTTP2_INTERNAL_ERROR
                        : reason == StreamResetReason::Overflow ? NGHTTP2_FLOW_CONTROL_ERROR
                                                                : NGHTTP2_CANCEL;
  pending_send_.clear();
  if (id_ > 0) {
    nghttp2_submit_rst_stream(parent_.session_, NGHTTP2_FLAG_NONE, id_, code);
    parent_.scheduleSend();
  }
}

void StreamImpl::readDisable(bool disable) {
  if (disable) {
    ++read_disabled_;
    return;
  }
  if (read_disabled_ > 0 && --read_disabled_ == 0 && unconsumed_ > 0 && !closed_) {
    const uint64_t n = unconsumed_;
    unconsumed_ = 0;
    nghttp2_session_consume(parent_.session_, id_, n);
    parent_.scheduleSend();
  }
}

void StreamImpl::queueData(Buffer::Instance& data, bool end_stream) {
  pending_send_.move(data);
  if (end_stream) local_end_ = true;
  updateWatermark();
  if (data_deferred_ && id_ > 0) {
    data_deferred_ = false;
    nghttp2_session_resume_data(parent_.session_, id_);
  }
  parent_.scheduleSend();
}

void StreamImpl::updateWatermark() {
  const bool above = !closed_ && (pending_send_.length() > parent_.streamBufferLimit() ||
                                  (parent_.aboveHighWatermark() && !local_end_));
  if (above == above_high_) {
    return;
  }
  above_high_ = above;
  if (callbacks_ == nullptr || detached_) {
    return;
  }
  if (above) {
    callbacks_->onAboveWriteBufferHighWatermark();
  } else {
    callbacks_->onBelowWriteBufferLowWatermark();
  }
}

ssize_t StreamImpl::readData(uint8_t*, size_t length, uint32_t* flags) {
  const size_t n = std::min(length, pending_send_.length());
  if (n > 0) {
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  }
  if (n == pending_send_.length() && local_end_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (pending_trailers_ != nullptr) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      submitTrailers(*pending_trailers_);
      pending_trailers_.reset();
    }
    return static_cast<ssize_t>(n);
  }
  if (n == 0) {
    data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

void StreamImpl::submitTrailers(const HeaderMap& trailers) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(trailers.size());
  parent_.buildHeaders(nva, trailers);
  nghttp2_submit_trailer(parent_.session_, id_, nva.data(), nva.size());
}

void StreamImpl::runResetCallbacks(StreamResetReason reason) {
  if (reset_notified_ || detached_) {
    return;
  }
  reset_notified_ = true;
  detached_ = true;
  if (callbacks_ != nullptr) {
    callbacks_->onResetStream(reason);
  }
  consumerDone();
}

// ---------------------------------------------------------------------------------------------
// ConnectionImpl

ConnectionImpl::ConnectionImpl(Network::Connection& connection, const CodecSettings& settings,
                               const CodecStats* stats)
    : connection_(connection),
      settings_(settings),
      stats_(stats),
      stream_buffer_limit_(std::max<uint32_t>(settings.stream_buffer_limit, 16 * 1024)) {}

ConnectionImpl::~ConnectionImpl() {
  for (auto& [id, stream] : streams_) {
    stream->closed_ = true;
  }
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
  }
}

StreamImpl* ConnectionImpl::getStream(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void ConnectionImpl::dispatchFrames(Buffer::Instance& data) {
  if (failed_) {
    data.drain(data.length());
    return;
  }
  in_dispatch_ = true;
  Stats::Counter* flood = nullptr;
  ssize_t rc = 0;
  while (data.length() > 0) {
    const absl::string_view slice = data.frontSlice();
    if (!scanFrames(slice)) {
      // A limit of ours, on frames nghttp2 would not show us (DATA on a closed stream).
      in_dispatch_ = false;
      data.drain(data.length());
      terminate(NGHTTP2_ENHANCE_YOUR_CALM, nullptr);
      return;
    }
    rc = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(slice.data()),
                                  slice.size());
    if (rc < 0) {
      break;
    }
    data.drain(static_cast<size_t>(rc));
    if (failed_) {
      break;
    }
  }
  in_dispatch_ = false;
  if (failed_) {
    data.drain(data.length());
    return;
  }
  if (rc < 0) {
    data.drain(data.length());
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    switch (rc) {
      case NGHTTP2_ERR_FLOODED:
        flood = stats_ ? stats_->http2_outbound_flood : nullptr;
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        break;
      case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
        flood = stats_ ? stats_->http2_continuation_flood : nullptr;
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        break;
      case NGHTTP2_ERR_HEADER_COMP:
        code = NGHTTP2_COMPRESSION_ERROR;
        flood = stats_ ? stats_->http2_protocol_error : nullptr;
        break;
      case NGHTTP2_ERR_CALLBACK_FAILURE:
        if (fatal_counted_) {
          // A limit of ours (flood, header bomb), already counted.
          code = NGHTTP2_ENHANCE_YOUR_CALM;
          break;
        }
        flood = stats_ ? stats_->http2_protocol_error : nullptr;
        break;
      default:
        flood = stats_ ? stats_->http2_protocol_error : nullptr;
        break;
    }
    terminate(code, flood);
    return;
  }
  sendPendingFrames();
}

void ConnectionImpl::terminate(uint32_t error, Stats::Counter* counter) {
  if (failed_) {
    return;
  }
  failed_ = true;
  if (counter != nullptr) counter->inc();
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), error, nullptr, 0);
  // Whatever the watermarks say: the GOAWAY goes out before the close.
  connection_above_high_ = false;
  in_dispatch_ = false;
  sendPendingFrames();
  connection_.close(Network::Connection::CloseType::FlushWrite);
}

void ConnectionImpl::scheduleSend() {
  if (in_dispatch_ || in_send_) {
    send_pending_ = true;  // sent when the dispatch (or send) in progress ends
    return;
  }
  // Frames queued by the streams' encoders (responses arriving from many upstream connections
  // in one event-loop pass) go out together: one send per connection and pass, not one per
  // stream.
  if (send_timer_ == nullptr) {
    send_timer_ = connection_.dispatcher().createTimer([this]() {
      send_scheduled_ = false;
      sendPendingFrames();
    });
  }
  if (!send_scheduled_) {
    send_scheduled_ = true;
    send_timer_->enableTimer(std::chrono::milliseconds(0));
  }
}

void ConnectionImpl::sendPendingFrames() {
  if (in_dispatch_ || in_send_ || connection_.closing()) {
    send_pending_ = true;
    return;
  }
  if (connection_above_high_ && !failed_) {
    send_pending_ = true;
    return;
  }
  send_pending_ = false;
  in_send_ = true;
  const int rc = nghttp2_session_send(session_);
  in_send_ = false;
  if (out_.length() > 0) {
    connection_.write(out_);
  }
  if (rc != 0 && !failed_) {
    terminate(NGHTTP2_INTERNAL_ERROR,
              rc == NGHTTP2_ERR_FLOODED && stats_ ? stats_->http2_outbound_flood : nullptr);
    return;
  }
  if (close_when_drained_ && streams_.empty() && !failed_) {
    connection_.close(Network::Connection::CloseType::FlushWrite);
    return;
  }
  if (!failed_ && nghttp2_session_want_read(session_) == 0 &&
      nghttp2_session_want_write(session_) == 0) {
    // nghttp2 ended the session itself (it sent GOAWAY for a protocol error, or both sides
    // went away): flush and close.
    failed_ = true;
    connection_.close(Network::Connection::CloseType::FlushWrite);
  }
}

void ConnectionImpl::connectionAboveHighWatermark() {
  connection_above_high_ = true;
  for (auto& [id, s] : streams_) s->updateWatermark();
}

void ConnectionImpl::connectionBelowLowWatermark() {
  connection_above_high_ = false;
  // Streams may be erased by the callbacks: iterate over a snapshot of the ids.
  absl::InlinedVector<int32_t, 16> ids;
  for (auto& [id, s] : streams_) ids.push_back(id);
  for (int32_t id : ids) {
    if (StreamImpl* s = getStream(id)) s->updateWatermark();
  }
  if (send_pending_) sendPendingFrames();
}

ssize_t ConnectionImpl::onSend(const uint8_t* data, size_t length) {
  out_.add(data, length);
  return static_cast<ssize_t>(length);
}

int ConnectionImpl::onSendData(nghttp2_frame* frame, const uint8_t* framehd, size_t length) {
  StreamImpl* s = getStream(frame->hd.stream_id);
  out_.add(framehd, 9);
  if (frame->data.padlen > 0) {
    const uint8_t padlen = static_cast<uint8_t>(frame->data.padlen - 1);
    out_.add(&padlen, 1);
  }
  if (s != nullptr) {
    out_.move(s->pending_send_, std::min<size_t>(length, s->pending_send_.length()));
    s->updateWatermark();
  }
  if (frame->data.padlen > 1) {
    static const uint8_t kZeros[256] = {};
    out_.add(kZeros, frame->data.padlen - 1);
  }
  return 0;
}

int ConnectionImpl::onBeginFrame(const nghttp2_frame_hd* hd) {
  if (hd->type != NGHTTP2_DATA && !checkEmptyFrame(*hd)) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  if (hd->type == NGHTTP2_CONTINUATION) {
    // nghttp2 caps them too (higher): ours fires first, so it is counted.
    if (++continuations_ > kMaxContinuations) {
      if (stats_) stats_->http2_continuation_flood->inc();
      fatal_counted_ = true;
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  } else {
    continuations_ = 0;
  }
  switch (hd->type) {
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PRIORITY:
    case NGHTTP2_WINDOW_UPDATE:
    case NGHTTP2_RST_STREAM:
      if (!spendControlBudget()) {
        if (stats_) stats_->http2_control_flood->inc();
        fatal_counted_ = true;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    case NGHTTP2_DATA:
      if (hd->length > 0) earnControlBudget(1);
      break;
    default:
      break;
  }
  return 0;
}

bool ConnectionImpl::spendControlBudget() { return --control_budget_ >= 0; }

bool ConnectionImpl::scanFrames(absl::string_view bytes) {
  // Follows the frame headers in the byte stream (jumping over payloads), so every frame is
  // seen whatever nghttp2 does with it: it drops DATA for a stream it reset without a callback,
  // which would make an empty-DATA flood invisible.
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (scan_skip_ > 0) {
      const size_t n = std::min<uint64_t>(scan_skip_, bytes.size() - pos);
      scan_skip_ -= n;
      pos += n;
      continue;
    }
    const size_t n = std::min<size_t>(9 - scan_have_, bytes.size() - pos);
    memcpy(scan_header_ + scan_have_, bytes.data() + pos, n);
    scan_have_ += n;
    pos += n;
    if (scan_have_ < 9) break;
    scan_have_ = 0;
    nghttp2_frame_hd hd;
    hd.length = (static_cast<size_t>(scan_header_[0]) << 16) |
                (static_cast<size_t>(scan_header_[1]) << 8) | scan_header_[2];
    hd.type = scan_header_[3];
    hd.flags = scan_header_[4];
    hd.stream_id = 0;
    hd.reserved = 0;
    scan_skip_ = hd.length;
    if (hd.type == NGHTTP2_DATA && !checkEmptyFrame(hd)) {
      return false;
    }
  }
  return true;
}

bool ConnectionImpl::checkEmptyFrame(const nghttp2_frame_hd& hd) {
  // Frames without payload, one after another (empty DATA without END_STREAM, empty
  // HEADERS/CONTINUATION that don't end the block): nothing but work for us. DATA is checked
  // by scanFrames (nghttp2 does not announce DATA frames), the others when they begin.
  const bool empty =
      hd.length == 0 && ((hd.type == NGHTTP2_DATA && !(hd.flags & NGHTTP2_FLAG_END_STREAM)) ||
                         ((hd.type == NGHTTP2_HEADERS || hd.type == NGHTTP2_CONTINUATION) &&
                          !(hd.flags & (NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM))));
  if (empty) {
    if (++consecutive_empty_frames_ > kMaxEmptyFrames) {
      if (stats_) {
        (hd.type == NGHTTP2_DATA ? stats_->http2_empty_data_flood
                                 : stats_->http2_continuation_flood)
            ->inc();
      }
      fatal_counted_ = true;
      return false;
    }
  } else if (hd.length > 0 && (hd.type == NGHTTP2_DATA || hd.type == NGHTTP2_HEADERS)) {
    consecutive_empty_frames_ = 0;
  }
  return true;
}

int ConnectionImpl::onDataChunk(int32_t stream_id, const uint8_t* data, size_t len) {
  StreamImpl* s = getStream(stream_id);
  if (s == nullptr || s->detached_) {
    // Nobody takes these bytes (a stream we no longer track, or done with): give the window
    // back anyway.
    nghttp2_session_consume(session_, stream_id, len);
    return 0;
  }
  s->recv_body_.add(data, len);
  return 0;
}

void ConnectionImpl::consume(StreamImpl& stream, uint64_t bytes) {
  if (bytes == 0) return;
  if (stream.read_disabled_ > 0) {
    stream.unconsumed_ += bytes;
    return;
  }
  nghttp2_session_consume(session_, stream.id_, bytes);
}

int ConnectionImpl::onStreamClose(int32_t stream_id, uint32_t error_code) {
  StreamImpl* s = getStream(stream_id);
  if (s == nullptr) {
    return 0;
  }
  s->closed_ = true;
  onStreamClosed(*s, error_code);
  destroyStream(*s);
  return 0;
}

void ConnectionImpl::destroyStream(StreamImpl& stream) {
  auto it = streams_.find(stream.id_);
  if (it == streams_.end()) return;
  std::unique_ptr<StreamImpl> owned = std::move(it->second);
  streams_.erase(it);
  if (!owned->consumer_done_) {
    zombies_.push_back(std::move(owned));
    return;
  }
  connection_.dispatcher().deferredDelete(std::move(owned));
}

void ConnectionImpl::reapZombie(StreamImpl& stream) {
  for (auto it = zombies_.begin(); it != zombies_.end(); ++it) {
    if (it->get() == &stream) {
      connection_.dispatcher().deferredDelete(std::move(*it));
      zombies_.erase(it);
      return;
    }
  }
}

int ConnectionImpl::onFrameSend(const nghttp2_frame* frame) {
  switch (frame->hd.type) {
    case NGHTTP2_GOAWAY:
      goaway_sent_ = true;
      if (stats_) {
        stats_->http2_goaway_sent->inc();
        if (!failed_ && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
          // nghttp2 ended the session on a protocol violation it detected itself.
          stats_->http2_protocol_error->inc();
        }
      }
      break;
    case NGHTTP2_RST_STREAM:
      if (stats_) {
        stats_->http2_tx_reset->inc();
        if (frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM) {
          stats_->http2_refused_stream->inc();
        }
      }
      break;
    case NGHTTP2_DATA:
      earnControlBudget(1);
      break;
    default:
      break;
  }
  if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    if (StreamImpl* s = getStream(frame->hd.stream_id)) onLocalEndSent(*s);
  }
  return 0;
}

int ConnectionImpl::onInvalidFrame(const nghttp2_frame*, int) {
  if (stats_) stats_->http2_protocol_error->inc();
  return 0;
}

void ConnectionImpl::addNv(std::vector<nghttp2_nv>& nva, absl::string_view name,
                           absl::string_view value) {
  nva.push_back(nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                           const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                           name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
}

void ConnectionImpl::buildHeaders(std::vector<nghttp2_nv>& nva, const HeaderMap& headers) {
  for (const HeaderEntry& e : headers.entries()) {
    const absl::string_view k = e.key;
    if (k.empty() || k[0] == ':' || isConnectionSpecific(k)) {
      continue;
    }
    if (k == "te" && !absl::EqualsIgnoreCase(e.value, "trailers")) {
      continue;
    }
    addNv(nva, k, e.value);
  }
}

// ---------------------------------------------------------------------------------------------
// Server

ServerConnectionImpl::ServerConnectionImpl(Network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecSettings& settings, const CodecStats* stats)
    : ConnectionImpl(connection, settings, stats), callbacks_(callbacks) {
  scan_skip_ = connectionPreface().size();  // the client's preface precedes its frames
  nghttp2_option* opt = Callbacks::options(true);
  nghttp2_session_server_new2(&session_, Callbacks::get(), static_cast<ConnectionImpl*>(this), opt);
  nghttp2_option_del(opt);
  const Http2Settings& h2 = settings_.http2;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_stream_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2.max_header_list_size},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
  if (h2.initial_connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(h2.initial_connection_window_size));
  }
  if (stats_) stats_->downstream_cx_http2_total->inc();
  sendPendingFrames();
}

int ServerConnectionImpl::onBeginHeaders(const nghttp2_frame* frame) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    // Trailers (or an invalid second block, which nghttp2 rejects itself).
    if (StreamImpl* s = getStream(frame->hd.stream_id)) {
      s->header_bytes_ = 0;
      s->header_count_ = 0;
    }
    return 0;
  }
  auto stream = std::make_unique<ServerStreamImpl>(*this);
  stream->id_ = frame->hd.stream_id;
  stream->headers_ = std::make_unique<RequestHeaderMap>();
  stream->headers_->entries().reserve(16);
  stream->headers_->underscore_in_names = false;
  stream->headers_->http_major = 2;
  stream->headers_->http_minor = 0;
  streams_[stream->id_] = std::move(stream);
  ++streams_opened_;
  earnControlBudget(2);
  return 0;
}

int ServerConnectionImpl::onHeader(const nghttp2_frame* frame, absl::string_view name,
                                   absl::string_view value) {
  auto* s = static_cast<ServerStreamImpl*>(getStream(frame->hd.stream_id));
  if (s == nullptr) {
    return 0;
  }
  // RFC 7541 4.1 accounting: what the block decodes to, however small it was on the wire.
  s->header_bytes_ += name.size() + value.size() + 32;
  const uint64_t limit = settings_.http2.max_header_list_size;
  if (s->header_bytes_ > limit * kHeaderBombFactor) {
    if (stats_) stats_->http2_header_overflow->inc();
    fatal_counted_ = true;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  if (s->header_overflow_) {
    return 0;
  }
  if (s->header_bytes_ > limit || ++s->header_count_ > settings_.max_headers_count) {
    s->header_overflow_ = true;
    return 0;
  }
  const bool trailers = s->headers_done_;
  if (trailers) {
    if (!s->trailers_) s->trailers_ = std::make_unique<HeaderMap>();
    if (!isForbiddenTrailer(name)) s->trailers_->add(name, value);
    return 0;
  }
  RequestHeaderMap& h = *s->headers_;
  if (!name.empty() && name[0] == ':') {
    if (name == ":method") {
      h.method.assign(value.data(), value.size());
    } else if (name == ":path") {
      h.path.assign(value.data(), value.size());
    } else if (name == ":authority") {
      h.add("host", value);
    }
    // :scheme is the client's; X-Forwarded-Proto says what it really was.
    return 0;
  }
  if (name == "host") {
    // With :authority, Host must name the same; without, it is the authority.
    const HeaderEntry* authority = h.find("host");
    if (authority == nullptr) {
      h.add("host", value);
    } else if (authority->value != value) {
      s->invalid_ = true;
    }
    return 0;
  }
  if (name == "cookie") {
    // RFC 9113 8.2.3: split cookie fields are joined with "; " for HTTP/1.1.
    if (HeaderEntry* c = h.find("cookie")) {
      absl::StrAppend(&c->value, "; ", value);
      return 0;
    }
  }
  if (name.find('_') != absl::string_view::npos) {
    h.underscore_in_names = true;
  }
  h.add(name, value);
  return 0;
}

void ServerConnectionImpl::refuseRequest(ServerStreamImpl& stream, uint32_t status) {
  // The connection manager never saw this request (or is told it is reset): the codec answers.
  if (stream.decoder_ != nullptr) {
    stream.answered_by_codec_ = true;  // its resetStream() must not cancel our answer
    stream.runResetCallbacks(StreamResetReason::LocalReset);
  }
  stream.detached_ = true;
  ResponseHeaderMap headers;
  headers.status = status;
  headers.add("content-length", "0");
  std::vector<nghttp2_nv> nva;
  const std::string code = absl::StrCat(status);
  addNv(nva, ":status", code);
  buildHeaders(nva, headers);
  stream.local_end_ = true;
  stream.response_started_ = true;
  nghttp2_submit_response(session_, stream.id_, nva.data(), nva.size(), nullptr);
}

void ServerConnectionImpl::onRequestHeaders(ServerStreamImpl& stream, bool end_stream) {
  if (stream.header_overflow_) {
    if (stats_) stats_->http2_header_overflow->inc();
    refuseRequest(stream, 431);
    return;
  }
  RequestHeaderMap& h = *stream.headers_;
  if (stream.invalid_) {
    if (stats_) stats_->http2_protocol_error->inc();
    refuseRequest(stream, 400);
    return;
  }
  if (h.method == "CONNECT") {
    refuseRequest(stream, 405);
    return;
  }
  if (h.path.empty() || (h.path[0] != '/' && !(h.path == "*" && h.method == "OPTIONS"))) {
    refuseRequest(stream, 400);
    return;
  }
  const uint64_t max = settings_.http2.max_requests_per_connection;
  if (max > 0 && streams_opened_ >= max && !goaway_sent_) {
    // The last stream this connection takes: GOAWAY names it, the client opens a new one.
    if (stats_) stats_->http2_max_requests_per_connection->inc();
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, stream.id_, NGHTTP2_NO_ERROR, nullptr, 0);
  }
  if (stats_) stats_->downstream_rq_http2_total->inc();
  stream.is_head_ = h.method == "HEAD";
  stream.remote_end_ = end_stream;
  stream.headers_done_ = true;
  stream.consumer_done_ = false;
  stream.decoder_ = &callbacks_.newStream(stream);
  stream.decoder_->decodeHeaders(std::move(stream.headers_), end_stream);
}

int ServerConnectionImpl::onFrameReceived(const nghttp2_frame* frame) {
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      auto* s = static_cast<ServerStreamImpl*>(getStream(frame->hd.stream_id));
      if (s == nullptr) return 0;
      const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        onRequestHeaders(*s, end);
        return 0;
      }
      // Trailers (nghttp2 requires END_STREAM on them).
      s->remote_end_ = true;
      if (s->detached_ || s->decoder_ == nullptr) return 0;
      if (s->header_overflow_) {
        if (stats_) stats_->http2_header_overflow->inc();
        s->resetStream(StreamResetReason::LocalReset);
        return 0;
      }
      deliverTrailers(*s, *s->decoder_, s->trailers_);
      return 0;
    }
    case NGHTTP2_DATA: {
      auto* s = static_cast<ServerStreamImpl*>(getStream(frame->hd.stream_id));
      if (s == nullptr) return 0;
      const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      s->remote_end_ = s->remote_end_ || end;
      const size_t len = s->recv_body_.length();
      s->body_bytes_ += len;
      if (s->detached_ || s->decoder_ == nullptr) {
        s->recv_body_.clear();
        return 0;
      }
      if (settings_.max_request_body_bytes > 0 &&
          s->body_bytes_ > settings_.max_request_body_bytes) {
        s->recv_body_.clear();
        if (!s->response_started_) {
          refuseRequest(*s, 413);
        } else {
          s->runResetCallbacks(StreamResetReason::Overflow);
        }
        consume(*s, len);
        return 0;
      }
      if (len > 0 || end) {
        s->decoder_->decodeData(s->recv_body_, end);
        s->recv_body_.clear();
      }
      consume(*s, len);
      return 0;
    }
    case NGHTTP2_RST_STREAM:
      if (stats_) stats_->http2_rx_reset->inc();
      return 0;
    default:
      return 0;
  }
}

void ServerConnectionImpl::onStreamClosed(StreamImpl& base, uint32_t error_code) {
  auto& stream = static_cast<ServerStreamImpl&>(base);
  if (!stream.detached_ && stream.decoder_ != nullptr) {
    // Closed before our response ended: the client reset it (or the connection failed).
    ++premature_resets_;
    stream.runResetCallbacks(error_code == NGHTTP2_REFUSED_STREAM
                                 ? StreamResetReason::RemoteRefusedStreamReset
                                 : StreamResetReason::RemoteReset);
    if (!failed_ && premature_resets_ >= kPrematureResetMinStreams &&
        premature_resets_ * 2 >= streams_opened_) {
      terminate(NGHTTP2_ENHANCE_YOUR_CALM, stats_ ? stats_->http2_premature_reset_close : nullptr);
      return;
    }
  }
  closeIfDrained();
}

void ServerConnectionImpl::onLocalEndSent(StreamImpl& stream) {
  // A complete response before the complete request: the rest of the request is not wanted
  // (RFC 9113 8.1), so the client stops sending it.
  if (!stream.remote_end_ && !stream.closed_ && !stream.reset_sent_) {
    stream.reset_sent_ = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id_, NGHTTP2_NO_ERROR);
  }
}

void ServerConnectionImpl::closeIfDrained() {
  // After GOAWAY the connection closes once its last stream is gone (checked after each send:
  // the stream being closed is erased right after this call).
  if (goaway_sent_ && !failed_) close_when_drained_ = true;
}

bool ServerConnectionImpl::goAwayGracefully() {
  if (goaway_sent_ || failed_) {
    return false;
  }
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  goaway_sent_ = true;
  sendPendingFrames();
  return true;
}

void ServerConnectionImpl::setCloseAfterResponse() {
  if (goAwayGracefully() && streams_.empty()) {
    connection_.close(Network::Connection::CloseType::FlushWrite);
  }
}

void ServerConnectionImpl::sendStreamlessResponse(const ResponseHeaderMap&, absl::string_view) {
  // No stream to answer on: the connection ends with GOAWAY (the caller closes it).
  goAwayGracefully();
}

void ServerStreamImpl::encode100Continue() {
  if (response_started_ || closed_ || detached_) return;
  std::vector<nghttp2_nv> nva;
  ConnectionImpl::addNv(nva, ":status", "100");
  nghttp2_submit_headers(parent_.session_, NGHTTP2_FLAG_NONE, id_, nullptr, nva.data(), nva.size(),
                         nullptr);
  parent_.scheduleSend();
}

void ServerStreamImpl::encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) {
  if (closed_ || detached_) return;
  response_started_ = true;
  const bool no_body = is_head_ || headers.status == 204 || headers.status == 304;
  if (no_body && !end_stream) {
    // No DATA may follow (RFC 9110 9.3.2, 15.3.5, 15.4.5): the headers end the stream, and the
    // body or trailers the upstream still sends are dropped.
    end_stream = true;
    headers_only_ = true;
  }
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size() + 1);
  const std::string status = absl::StrCat(headers.status);
  ConnectionImpl::addNv(nva, ":status", status);
  parent_.buildHeaders(nva, headers);
  nghttp2_data_provider provider;
  provider.source.ptr = static_cast<StreamImpl*>(this);
  provider.read_callback = Callbacks::readData;
  if (end_stream) {
    local_end_ = true;
    detached_ = true;  // no more callbacks into the connection manager for this stream
  }
  nghttp2_submit_response(parent_.session_, id_, nva.data(), nva.size(),
                          end_stream ? nullptr : &provider);
  data_provider_ = !end_stream;
  if (end_stream && !headers_only_) consumerDone();
  parent_.scheduleSend();
}

void ServerStreamImpl::encodeData(Buffer::Instance& data, bool end_stream) {
  if (closed_ || detached_ || headers_only_) {
    data.drain(data.length());
    if (end_stream) consumerDone();
    return;
  }
  if (end_stream) detached_ = true;
  queueData(data, end_stream);
  if (end_stream) consumerDone();
}

void ServerStreamImpl::encodeTrailers(const HeaderMap& trailers) {
  if (closed_ || detached_ || headers_only_) {
    consumerDone();
    return;
  }
  pending_trailers_ = std::make_unique<HeaderMap>(trailers);
  detached_ = true;
  Buffer::OwnedImpl empty;
  queueData(empty, true);
  consumerDone();
}

// ---------------------------------------------------------------------------------------------
// Client

ClientConnectionImpl::ClientConnectionImpl(Network::Connection& connection,
                                           const CodecSettings& settings, bool secure)
    : ConnectionImpl(connection, settings, nullptr), secure_(secure) {
  nghttp2_option* opt = Callbacks::options(false);
  nghttp2_session_client_new2(&session_, Callbacks::get(), static_cast<ConnectionImpl*>(this), opt);
  nghttp2_option_del(opt);
  const Http2Settings& h2 = settings_.http2;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_stream_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kMaxResponseHeadersBytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
  if (h2.initial_connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(h2.initial_connection_window_size));
  }
  // The preface and SETTINGS wait in the connection's buffer until it is connected.
  sendPendingFrames();
}

uint32_t ClientConnectionImpl::maxConcurrentStreams() const {
  const uint32_t peer =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return std::max<uint32_t>(1, std::min(peer, kMaxClientConcurrentStreams));
}

RequestEncoder& ClientConnectionImpl::newStream(ResponseDecoder& decoder) {
  auto stream = std::make_unique<ClientStreamImpl>(*this);
  stream->decoder_ = &decoder;
  ClientStreamImpl& s = *stream;
  unsubmitted_.push_back(std::move(stream));
  return s;
}

void ClientStreamImpl::encodeHeaders(const RequestHeaderMap& headers, bool end_stream) {
  auto& conn = static_cast<ClientConnectionImpl&>(parent_);
  // Out of the not-yet-submitted list: from here the stream lives in the id map.
  std::unique_ptr<ClientStreamImpl> self;
  for (auto it = conn.unsubmitted_.begin(); it != conn.unsubmitted_.end(); ++it) {
    if (it->get() == this) {
      self = std::move(*it);
      conn.unsubmitted_.erase(it);
      break;
    }
  }
  if (self == nullptr) return;
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size() + 4);
  ConnectionImpl::addNv(nva, ":method", headers.method);
  ConnectionImpl::addNv(nva, ":scheme", conn.secure_ ? "https" : "http");
  ConnectionImpl::addNv(nva, ":authority", headers.host());
  ConnectionImpl::addNv(nva, ":path", headers.path);
  for (const HeaderEntry& e : headers.entries()) {
    const absl::string_view k = e.key;
    if (k == "host" || k.empty() || k[0] == ':' || isConnectionSpecific(k)) continue;
    if (k == "te" && !absl::EqualsIgnoreCase(e.value, "trailers")) continue;
    ConnectionImpl::addNv(nva, k, e.value);
  }
  nghttp2_data_provider provider;
  provider.source.ptr = static_cast<StreamImpl*>(this);
  provider.read_callback = Callbacks::readData;
  local_end_ = end_stream;
  const int32_t id = nghttp2_submit_request(conn.session_, nullptr, nva.data(), nva.size(),
                                            end_stream ? nullptr : &provider, this);
  if (id < 0) {
    // No stream ids left (or the session is going away): the request was not sent.
    closed_ = true;
    conn.connection().dispatcher().deferredDelete(std::move(self));
    runResetCallbacks(StreamResetReason::RemoteRefusedStreamReset);
    return;
  }
  id_ = id;
  data_provider_ = !end_stream;
  conn.streams_[id] = std::move(self);
  conn.scheduleSend();
}

void ClientStreamImpl::encodeData(Buffer::Instance& data, bool end_stream) {
  if (closed_ || detached_ || (local_end_ && !data_provider_)) {
    data.drain(data.length());
    return;
  }
  queueData(data, end_stream);
}

void ClientStreamImpl::encodeTrailers(const HeaderMap& trailers) {
  if (closed_ || detached_) return;
  pending_trailers_ = std::make_unique<HeaderMap>(trailers);
  Buffer::OwnedImpl empty;
  queueData(empty, true);
}

int ClientConnectionImpl::onBeginHeaders(const nghttp2_frame* frame) {
  if (StreamImpl* s = getStream(frame->hd.stream_id)) {
    auto* cs = static_cast<ClientStreamImpl*>(s);
    cs->header_bytes_ = 0;
    cs->header_count_ = 0;
    if (!cs->headers_done_) {
      cs->headers_ = std::make_unique<ResponseHeaderMap>();
    } else {
      cs->trailers_ = std::make_unique<HeaderMap>();
    }
  }
  return 0;
}

int ClientConnectionImpl::onHeader(const nghttp2_frame* frame, absl::string_view name,
                                   absl::string_view value) {
  auto* s = static_cast<ClientStreamImpl*>(getStream(frame->hd.stream_id));
  if (s == nullptr) return 0;
  s->header_bytes_ += name.size() + value.size() + 32;
  if (s->header_bytes_ > kMaxResponseHeadersBytes ||
      ++s->header_count_ > kMaxResponseHeadersCount) {
    s->header_overflow_ = true;
    return 0;
  }
  if (s->headers_done_) {
    if (s->trailers_ && !isForbiddenTrailer(name)) s->trailers_->add(name, value);
    return 0;
  }
  if (name == ":status") {
    uint32_t status = 0;
    if (absl::SimpleAtoi(value, &status)) s->headers_->status = status;
    return 0;
  }
  if (!name.empty() && name[0] == ':') return 0;
  s->headers_->add(name, value);
  return 0;
}

int ClientConnectionImpl::onFrameReceived(const nghttp2_frame* frame) {
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      auto* s = static_cast<ClientStreamImpl*>(getStream(frame->hd.stream_id));
      if (s == nullptr || s->detached_) return 0;
      const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      if (s->header_overflow_) {
        // Treated like an invalid response: the request may go elsewhere.
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id_, NGHTTP2_INTERNAL_ERROR);
        s->runResetCallbacks(StreamResetReason::ProtocolError);
        return 0;
      }
      if (!s->headers_done_) {
        if (s->headers_ == nullptr) return 0;
        const uint32_t status = s->headers_->status;
        if (status >= 100 && status < 200) {
          // Interim responses are not forwarded (the HTTP/1 client drops them too).
          s->headers_.reset();
          return 0;
        }
        s->headers_done_ = true;
        s->remote_end_ = end;
        s->decoder_->decodeHeaders(std::move(s->headers_), end);
        if (end) s->detached_ = true;
        return 0;
      }
      // Trailers.
      s->remote_end_ = true;
      deliverTrailers(*s, *s->decoder_, s->trailers_, /*detach=*/true);
      return 0;
    }
    case NGHTTP2_DATA: {
      auto* s = static_cast<ClientStreamImpl*>(getStream(frame->hd.stream_id));
      if (s == nullptr) return 0;
      const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      const size_t len = s->recv_body_.length();
      if (s->detached_ || !s->headers_done_) {
        s->recv_body_.clear();
        nghttp2_session_consume(session_, s->id_, len);
        return 0;
      }
      s->remote_end_ = s->remote_end_ || end;
      if (end) s->detached_ = true;
      if (len > 0 || end) {
        s->decoder_->decodeData(s->recv_body_, end);
        s->recv_body_.clear();
      }
      consume(*s, len);
      return 0;
    }
    case NGHTTP2_GOAWAY:
      onGoAway(frame->goaway.last_stream_id);
      return 0;
    case NGHTTP2_SETTINGS:
      if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) settings_received_ = true;
      return 0;
    default:
      return 0;
  }
}

void ClientConnectionImpl::onGoAway(int32_t last_stream_id) {
  // No new streams on this connection; nghttp2 closes the ones above last_stream_id with
  // REFUSED_STREAM (they are sent again elsewhere), the others finish.
  goaway_received_ = true;
  goaway_last_stream_id_ = std::min(goaway_last_stream_id_, last_stream_id);
}

void ClientConnectionImpl::onStreamClosed(StreamImpl& base, uint32_t error_code) {
  auto& stream = static_cast<ClientStreamImpl&>(base);
  if (stream.detached_) return;
  StreamResetReason reason = StreamResetReason::RemoteReset;
  if (error_code == NGHTTP2_REFUSED_STREAM) {
    reason = StreamResetReason::RemoteRefusedStreamReset;
  } else if (failed_ || closed_) {
    reason = StreamResetReason::ConnectionTermination;
  } else if (error_code == NGHTTP2_NO_ERROR && stream.headers_done_) {
    // Closed cleanly without END_STREAM on our side of the response: a truncated response.
    reason = StreamResetReason::RemoteReset;
  }
  stream.runResetCallbacks(reason);
}

void ClientConnectionImpl::onConnectionClose() {
  if (closed_) return;
  closed_ = true;
  // Every stream still open ends: those the peer never saw may go elsewhere.
  absl::InlinedVector<int32_t, 16> ids;
  for (auto& [id, s] : streams_) ids.push_back(id);
  for (int32_t id : ids) {
    StreamImpl* s = getStream(id);
    if (s == nullptr) continue;
    s->closed_ = true;
    // Above a GOAWAY's last stream: the peer never acted on it.
    const bool unseen = goaway_received_ && id > goaway_last_stream_id_ &&
                        !static_cast<ClientStreamImpl*>(s)->headers_done_;
    s->runResetCallbacks(unseen ? StreamResetReason::RemoteRefusedStreamReset
                                : StreamResetReason::ConnectionTermination);
    destroyStream(*s);
  }
  for (auto& s : unsubmitted_) {
    s->closed_ = true;
    s->runResetCallbacks(StreamResetReason::ConnectionTermination);
    connection_.dispatcher().deferredDelete(std::move(s));
  }
  unsubmitted_.clear();
}

}  // namespace Http2
}  // namespace Http
}  // namespace sluice
