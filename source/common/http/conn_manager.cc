#include "source/common/http/conn_manager.h"

#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <cstddef>
#include <new>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "source/common/common/json.h"
#include "source/common/grpc/common.h"
#include "source/common/http/codec_factory.h"
#include "source/common/http/gateway_response.h"
#include "source/common/http/gateway_response_config.h"
#include "source/common/http/redaction.h"
#include "source/common/tls/connection_info.h"
#include "source/common/tracing/trace_context.h"

namespace sluice {
namespace Http {

HttpStats HttpStats::create(Stats::Store& store) {
  HttpStats s;
#define SLUICE_HTTP_COUNTER(name) s.name = &store.counter(#name, #name);
#define SLUICE_HTTP_GAUGE(name) s.name = &store.gauge(#name, #name);
  ALL_HTTP_COUNTERS(SLUICE_HTTP_COUNTER)
  ALL_HTTP_GAUGES(SLUICE_HTTP_GAUGE)
  for (int c = 1; c <= 5; ++c) {
    s.downstream_rq_class[c] =
        &store.counter(absl::StrCat("downstream_rq_", c, "xx"), "downstream_rq_xx_total",
                       {{"code_class", absl::StrCat(c, "xx")}});
  }
  s.downstream_rq_class[0] = s.downstream_rq_class[5];
  s.http2 = Http2::CodecStats::create(store);
  return s;
}

namespace {

// Envoy's x-forwarded-client-cert element for a verified client certificate:
// By=<our URI SAN>;Hash=<SHA-256>;Cert="<URL-encoded PEM>";Subject="<subject>";URI=<URI SAN>;
// DNS=<each DNS SAN>.
std::string clientCertDetails(const Tls::ConnectionInfo& ssl,
                              const ConnectionManagerConfig::ClientCertDetails& details) {
  std::vector<std::string> parts;
  for (const std::string& by : ssl.uriSansLocalCertificate()) parts.push_back("By=" + by);
  parts.push_back("Hash=" + ssl.sha256PeerCertificateDigest());
  if (details.cert)
    parts.push_back(absl::StrCat("Cert=\"", ssl.urlEncodedPemPeerCertificate(), "\""));
  if (details.subject) {
    parts.push_back(absl::StrCat("Subject=\"", ssl.subjectPeerCertificate(), "\""));
  }
  if (details.uri) {
    const auto& uris = ssl.uriSansPeerCertificate();
    parts.push_back(absl::StrCat("URI=", uris.empty() ? "" : uris.front()));
  }
  if (details.dns) {
    for (const std::string& dns : ssl.dnsSansPeerCertificate()) parts.push_back("DNS=" + dns);
  }
  return absl::StrJoin(parts, ";");
}

bool validRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

std::string localReplyBody(absl::string_view message, absl::string_view request_id) {
  std::string body = "{\"message\":";
  Json::appendString(body, message);
  body += ",\"request_id\":";
  Json::appendString(body, request_id);
  body += "}\n";
  return body;
}

// A local reply reshaped by a configured gateway response: its status, its body and content
// type (else the built-in body), the gateway's own headers (`modify`), then the configured
// headers, which replace those of the same name. Returns the body.
std::string gatewayReply(const CompiledGatewayResponse& r, absl::string_view message,
                         absl::string_view request_id, absl::string_view route,
                         const std::string& date,
                         const std::function<void(ResponseHeaderMap&)>& modify,
                         ResponseHeaderMap& headers) {
  headers.status = r.statusFor(headers.status);
  const GatewayResponseVars vars{request_id, headers.status, message, route};
  std::string body;
  if (r.has_body) {
    r.renderBody(vars, body);
    if (!body.empty()) headers.add("content-type", r.content_type);
  } else {
    body = localReplyBody(message, request_id);
    headers.add("content-type", "application/json");
  }
  headers.add("content-length", absl::StrCat(body.size()));
  headers.add("date", date);
  if (modify) {
    modify(headers);
  }
  r.applyHeaders(vars, headers);
  return body;
}

}  // namespace

// -------------------------------------------------------------------------------------------
// WorkerContext

WorkerContext::WorkerContext(Event::Dispatcher& dispatcher, Upstream::ClusterManager& cm,
                             const HttpStats& stats, uint64_t seed)
    : dispatcher_(dispatcher), cm_(cm), stats_(stats), rng_(seed) {}

std::string WorkerContext::uuid() {
  const uint64_t a = rng_();
  const uint64_t b = rng_();
  uint8_t bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(a >> (i * 8));
    bytes[8 + i] = static_cast<uint8_t>(b >> (i * 8));
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;  // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0xf];
  }
  return out;
}

const std::string& WorkerContext::date() {
  const time_t now = time(nullptr);  // vDSO
  if (now != date_second_) {
    date_second_ = now;
    struct tm tm;
    gmtime_r(&now, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    date_ = buf;
  }
  return date_;
}

void WorkerContext::add(ConnectionManagerImpl* c) {
  c->next_ = head_;
  c->prev_ = nullptr;
  if (head_) head_->prev_ = c;
  head_ = c;
  ++connections_;
}

void WorkerContext::remove(ConnectionManagerImpl* c) {
  if (c->prev_) c->prev_->next_ = c->next_;
  if (c->next_) c->next_->prev_ = c->prev_;
  if (head_ == c) head_ = c->next_;
  c->prev_ = c->next_ = nullptr;
  --connections_;
}

void WorkerContext::sweep() {
  // After a crowd of connections went away (a burst, slow clients), give the memory they
  // used back to the system instead of keeping it for the process's whole life. Rare: only
  // when the count fell by half and by at least 256 since its peak.
  peak_connections_ = std::max(peak_connections_, connections_);
  if (peak_connections_ >= connections_ + 256 && connections_ <= peak_connections_ / 2) {
    malloc_trim(0);
    peak_connections_ = connections_;
  }
  const auto now = dispatcher_.now();
  for (ConnectionManagerImpl* c = head_; c != nullptr;) {
    ConnectionManagerImpl* next = c->next_;
    c->checkDeadline(now);
    c = next;
  }
}

void WorkerContext::drain() {
  draining_ = true;
  for (ConnectionManagerImpl* c = head_; c != nullptr;) {
    ConnectionManagerImpl* next = c->next_;
    c->onDrain();
    c = next;
  }
}

void WorkerContext::closeAll() {
  while (head_ != nullptr) {
    ConnectionManagerImpl* c = head_;
    c->close(Network::Connection::CloseType::NoFlush);
    if (head_ == c) {
      // Not unlinked by the close event (already closing): unlink it ourselves.
      remove(c);
    }
  }
}

void WorkerContext::drainListener(const ConfigSource* source) {
  for (ConnectionManagerImpl* c = head_; c != nullptr;) {
    ConnectionManagerImpl* next = c->next_;
    if (c->config_source_.get() == source) c->onDrain();
    c = next;
  }
}

// -------------------------------------------------------------------------------------------
// ActiveStream: one request/response and its filter chain.

class ActiveStream;

struct ActiveDecoderFilter : public StreamDecoderFilterCallbacks {
  ActiveDecoderFilter(ActiveStream& s, StreamDecoderFilterSharedPtr f, size_t i)
      : stream(s), filter(std::move(f)), index(i) {}
  Event::Dispatcher& dispatcher() override;
  StreamInfo& streamInfo() override;
  const Router::RouteEntry* route() override;
  Upstream::ClusterManager& clusterManager() override;
  absl::string_view downstreamAddress() override;
  const Tls::ConnectionInfo* downstreamSsl() override;
  void resetStream() override;
  uint32_t bufferLimit() override;
  const ResponseHeaderMap* responseHeaders() override;
  void continueDecoding() override;
  void sendLocalReply(uint32_t status, absl::string_view message, absl::optional<ResponseFlag> flag,
                      std::function<void(ResponseHeaderMap&)> modify,
                      absl::optional<GatewayResponseType> type) override;
  void encodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) override;
  void encodeData(Buffer::Instance& data, bool end_stream) override;
  void encodeTrailers(HeaderMapPtr&& trailers) override;
  bool responseStarted() const override;
  void onDecoderFilterAboveWriteBufferHighWatermark() override;
  void onDecoderFilterBelowWriteBufferLowWatermark() override;
  void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) override;
  void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) override;
  RequestHeaderMap& requestHeaders() override;
  void sendContinueIfExpected() override;
  uint32_t requestBufferBytes() override;
  void addDecodedData(Buffer::Instance& data) override;

  ActiveStream& stream;
  StreamDecoderFilterSharedPtr filter;
  size_t index;
};

struct ActiveEncoderFilter : public StreamEncoderFilterCallbacks {
  ActiveEncoderFilter(ActiveStream& s, StreamEncoderFilterSharedPtr f, size_t i)
      : stream(s), filter(std::move(f)), index(i) {}
  Event::Dispatcher& dispatcher() override;
  StreamInfo& streamInfo() override;
  const Router::RouteEntry* route() override;
  Upstream::ClusterManager& clusterManager() override;
  absl::string_view downstreamAddress() override;
  const Tls::ConnectionInfo* downstreamSsl() override;
  void resetStream() override;
  uint32_t bufferLimit() override;
  const ResponseHeaderMap* responseHeaders() override;
  void continueEncoding() override;
  void addEncodedData(Buffer::Instance& data) override;

  ActiveStream& stream;
  StreamEncoderFilterSharedPtr filter;
  size_t index;
};

class ActiveStream : public RequestDecoder,
                     public StreamCallbacks,
                     public FilterChainFactoryCallbacks,
                     public Event::DeferredDeletable {
 public:
  ActiveStream(ConnectionManagerImpl& conn, ResponseEncoder& encoder,
               ConnectionManagerConfigConstSharedPtr config)
      : conn_(conn), encoder_(encoder), config_(std::move(config)) {
    info_.start = conn.ctx_.dispatcher().now();
    info_.start_wall = std::chrono::system_clock::now();
    encoder_.getStream().setCallbacks(this);
    touchIdle();
    conn_.ctx_.stats().downstream_rq_total->inc();
    conn_.ctx_.stats().downstream_rq_active->inc();
    if (config_->request_timeout.count() > 0) {
      request_timer_ = conn.ctx_.dispatcher().createTimer([this]() { onRequestTimeout(); });
      request_timer_->enableTimer(config_->request_timeout);
    }
  }

  // Destroyed through the dispatcher, possibly after its connection manager: touch nothing of
  // conn_ here (bookkeeping happens in completeResponse()).
  ~ActiveStream() override = default;

  // The filter chain's callback objects live in one block per stream (`wrapper_slab_`), sized
  // for one decoder and one encoder per factory, instead of an allocation each: a chain of four
  // filters costs one allocation instead of up to eight. A factory that adds more gets the rest
  // from the heap. WrapperDelete runs the destructor, and frees only what the heap gave.
  struct WrapperDelete {
    bool in_slab = false;
    template <class T>
    void operator()(T* p) const {
      if (in_slab) {
        p->~T();
      } else {
        delete p;
      }
    }
  };
  template <class T>
  using WrapperPtr = std::unique_ptr<T, WrapperDelete>;
  static constexpr size_t kWrapperAlign = alignof(std::max_align_t);
  template <class T>
  static constexpr size_t slotSize() {
    return (sizeof(T) + kWrapperAlign - 1) & ~(kWrapperAlign - 1);
  }
  void reserveWrappers(size_t factories) {
    wrapper_slab_size_ =
        factories * (slotSize<ActiveDecoderFilter>() + slotSize<ActiveEncoderFilter>());
    wrapper_slab_.reset(new unsigned char[wrapper_slab_size_]);
  }
  template <class T, class... Args>
  WrapperPtr<T> makeWrapper(Args&&... args) {
    static_assert(alignof(T) <= kWrapperAlign, "slab slots are max_align_t aligned");
    if (wrapper_slab_used_ + slotSize<T>() <= wrapper_slab_size_) {
      void* slot = wrapper_slab_.get() + wrapper_slab_used_;
      wrapper_slab_used_ += slotSize<T>();
      return WrapperPtr<T>(new (slot) T(std::forward<Args>(args)...), WrapperDelete{true});
    }
    return WrapperPtr<T>(new T(std::forward<Args>(args)...), WrapperDelete{false});
  }

  // FilterChainFactoryCallbacks
  void addStreamDecoderFilter(StreamDecoderFilterSharedPtr f) override {
    decoders_.push_back(makeWrapper<ActiveDecoderFilter>(*this, f, decoders_.size()));
    f->setDecoderFilterCallbacks(*decoders_.back());
  }
  void addStreamEncoderFilter(StreamEncoderFilterSharedPtr f) override {
    // Encoders run in reverse config order: prepend.
    encoders_.insert(encoders_.begin(), makeWrapper<ActiveEncoderFilter>(*this, f, 0));
    for (size_t i = 0; i < encoders_.size(); ++i) encoders_[i]->index = i;
    f->setEncoderFilterCallbacks(*encoders_.front());
  }
  void addStreamFilter(StreamFilterSharedPtr f) override {
    addStreamDecoderFilter(f);
    addStreamEncoderFilter(f);
  }

  // RequestDecoder (from the codec)
  void decodeHeaders(RequestHeaderMapPtr&& headers, bool end_stream) override;
  void decodeData(Buffer::Instance& data, bool end_stream) override;
  void decodeTrailers(HeaderMapPtr&& trailers) override;

  // StreamCallbacks (codec -> us)
  void onResetStream(StreamResetReason) override {
    onDownstreamReset(ResponseFlag::DownstreamConnectionTermination);
  }
  void onAboveWriteBufferHighWatermark() override {
    for (auto* cb : watermark_callbacks_) cb->onAboveWriteBufferHighWatermark();
    above_high_ = true;
  }
  void onBelowWriteBufferLowWatermark() override {
    above_high_ = false;
    for (auto* cb : watermark_callbacks_) cb->onBelowWriteBufferLowWatermark();
  }

  // Filter manager.
  // Host, method and header-name checks before anything else sees the request; false when
  // the request was answered locally.
  bool checkRequestHeaders(RequestHeaderMap& h);
  void decodeHeadersFrom(size_t start);
  void decodeDataFrom(size_t start, Buffer::Instance& data, bool end_stream);
  void decodeTrailersFrom(size_t start);
  void addDecodedData(size_t index, Buffer::Instance& data);
  void addEncodedData(size_t index, Buffer::Instance& data);
  void flushDecodeBuffer();
  // Filters that see body and trailers: up to the one that holds the headers, included.
  size_t decodeLimit() const {
    return decode_headers_stopped_ ? decode_headers_pos_ + 1 : decoders_.size();
  }
  size_t encodeLimit() const {
    return encode_headers_stopped_ ? encode_headers_pos_ + 1 : encoders_.size();
  }
  void holdDecodeData(size_t pos, Buffer::Instance& data, bool end_stream);
  void continueDecoding(size_t index);
  void encodeHeadersFrom(size_t start, ResponseHeaderMapPtr&& headers, bool end_stream);
  void encodeDataFrom(size_t start, Buffer::Instance& data, bool end_stream);
  void encodeTrailersFrom(size_t start, HeaderMapPtr&& trailers);
  void holdEncodeData(size_t pos, Buffer::Instance& data, bool end_stream);
  void flushEncodeBuffer();
  void continueEncoding(size_t index);
  void sendLocalReply(uint32_t status, absl::string_view message, absl::optional<ResponseFlag> flag,
                      const std::function<void(ResponseHeaderMap&)>& modify,
                      absl::optional<GatewayResponseType> type = absl::nullopt);
  // The gateway response configured for a local reply (listener's and virtual host's
  // `gateway_responses`); null, without a lookup, when none are configured.
  const CompiledGatewayResponse* gatewayResponse(uint32_t status,
                                                 absl::optional<GatewayResponseType> type);
  // sendLocalReply() to a gRPC or gRPC-Web request; false for other requests.
  bool sendGrpcLocalReply(ResponseHeaderMapPtr& headers, uint32_t status, absl::string_view message,
                          const std::function<void(ResponseHeaderMap&)>& modify);
  void sendContinueIfExpected() {
    if (expect_continue_ && !response_started_) {
      expect_continue_ = false;
      encoder_.encode100Continue();
    }
  }
  // The downstream went away or the stream must be aborted.
  void onDownstreamReset(ResponseFlag flag);
  void resetStream() {
    if (!response_complete_) {
      info_.addFlag(ResponseFlag::LocalReset);
      completeResponse(true);
    }
  }
  void onRequestTimeout() {
    conn_.ctx_.stats().downstream_rq_timeout->inc();
    if (!response_started_) {
      sendLocalReply(request_complete_ ? 504 : 408, "request timeout", ResponseFlag::RequestTimeout,
                     nullptr);
    } else {
      resetStream();
    }
  }
  void onUpstreamWatermark(bool above) {
    if (above) {
      if (upstream_paused_++ == 0) encoder_.getStream().readDisable(true);
    } else if (upstream_paused_ > 0 && --upstream_paused_ == 0) {
      encoder_.getStream().readDisable(false);
    }
  }

  // Final bookkeeping once the response is done (or the stream reset).
  void completeResponse(bool reset);
  // Stats recorded when the stream ends: per route (and consumer), per cluster.
  void recordStats(uint64_t us);
  void writeAccessLog();
  // W3C Trace Context: continues the request's traceparent or starts a trace, and sends
  // Sluice's span as the upstream's parent (listener `tracing`).
  void startTrace(RequestHeaderMap& h);
  void exportSpan(uint64_t us);
  // The stream saw activity (bytes from or to the client): push its idle deadline out.
  void touchIdle() {
    if (config_->stream_idle_timeout.count() > 0) {
      idle_deadline_ = conn_.ctx_.dispatcher().now() + config_->stream_idle_timeout;
    }
  }
  // Bytes arrived from the client: an armed idle deadline moves out (one that fired stays off).
  void touchIdleIfArmed(std::chrono::steady_clock::time_point now) {
    if (idle_deadline_ != kNoDeadline) {
      idle_deadline_ = now + config_->stream_idle_timeout;
    }
  }
  // The deadline sweep for this stream (body timeout, stream idle timeout).
  void checkDeadlines(std::chrono::steady_clock::time_point now);

  ConnectionManagerImpl& conn_;
  ResponseEncoder& encoder_;
  ConnectionManagerConfigConstSharedPtr config_;
  RequestHeaderMapPtr request_headers_;
  ResponseHeaderMapPtr response_headers_;
  const Router::RouteEntry* route_ = nullptr;
  // The virtual host the request's host selected (also when no route of it matched); for
  // gateway responses.
  const Router::VirtualHostImpl* vhost_ = nullptr;
  StreamInfo info_;
  // Sluice's span of a traced request (startTrace).
  struct Trace {
    char span_id[16];
    char parent_span_id[16];
    bool active = false;
    bool has_parent = false;
    bool sampled = false;
  };
  Trace trace_;
  // Declared before the filter lists: the wrappers in it are destroyed first.
  std::unique_ptr<unsigned char[]> wrapper_slab_;
  size_t wrapper_slab_size_ = 0;
  size_t wrapper_slab_used_ = 0;
  absl::InlinedVector<WrapperPtr<ActiveDecoderFilter>, 4> decoders_;
  absl::InlinedVector<WrapperPtr<ActiveEncoderFilter>, 4> encoders_;
  absl::InlinedVector<DownstreamWatermarkCallbacks*, 2> watermark_callbacks_;
  Event::TimerPtr request_timer_;
  // The connection's list of streams (owning: each stream owns the next).
  std::unique_ptr<ActiveStream> next_;
  ActiveStream* prev_ = nullptr;
  static constexpr std::chrono::steady_clock::time_point kNoDeadline =
      std::chrono::steady_clock::time_point::max();
  // stream_idle_timeout: no bytes from or to the client until then. Checked by the connection's
  // deadline sweep; max() = none (not configured, or fired).
  std::chrono::steady_clock::time_point idle_deadline_ = kNoDeadline;
  // With request buffering: the body must be complete (or buffered up to the bound) by then.
  // Checked by the connection's deadline sweep; max() = none.
  std::chrono::steady_clock::time_point body_deadline_ =
      std::chrono::steady_clock::time_point::max();
  // Decode iteration state.
  size_t decode_headers_pos_ = 0;  // next filter to see the request headers
  bool decode_headers_stopped_ = false;
  bool request_end_at_headers_ = false;
  Buffer::OwnedImpl decode_buffer_;  // body held while iteration is stopped
  bool decode_buffer_end_ = false;
  size_t decode_buffer_pos_ = 0;  // filter the held data goes to next
  bool decode_data_stopped_ = false;
  HeaderMapPtr request_trailers_;
  size_t decode_trailers_pos_ = 0;  // next filter to see the request trailers
  bool decode_trailers_stopped_ = false;
  // Encode iteration state (as for decode).
  size_t encode_headers_pos_ = 0;
  bool encode_headers_stopped_ = false;
  bool response_end_at_headers_ = false;
  Buffer::OwnedImpl encode_buffer_;  // body held while iteration is stopped
  bool encode_buffer_end_ = false;
  size_t encode_buffer_pos_ = 0;  // filter the held data goes to next
  bool encode_data_stopped_ = false;
  HeaderMapPtr response_trailers_;
  bool encode_trailers_pending_ = false;  // trailers received, not yet sent
  size_t encode_trailers_pos_ = 0;
  bool encode_trailers_stopped_ = false;

  int upstream_paused_ = 0;
  bool above_high_ = false;
  bool expect_continue_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool local_reply_ = false;
  bool done_ = false;
  bool buffer_request_ = false;  // request buffering applies (not for gRPC)
};

void ActiveStream::decodeHeaders(RequestHeaderMapPtr&& headers, bool end_stream) {
  request_headers_ = std::move(headers);
  request_end_at_headers_ = end_stream;
  request_complete_ = end_stream;
  RequestHeaderMap& h = *request_headers_;
  WorkerContext& ctx = conn_.ctx_;

  // Request id: keep a valid one from the client, else mint one.
  HeaderEntry* rid = h.find("x-request-id");
  if (rid != nullptr && validRequestId(rid->value)) {
    info_.request_id = rid->value;
  } else {
    info_.request_id = ctx.uuid();
    h.set("x-request-id", info_.request_id);
  }
  if (config_->tracing != nullptr) startTrace(h);
  if (h.http_minor >= 1 || h.http_major == 2) {
    const HeaderEntry* expect = h.find("expect");
    if (expect != nullptr && absl::EqualsIgnoreCase(expect->value, "100-continue")) {
      expect_continue_ = !end_stream;
      h.remove("expect");
    }
  }
  if (config_->access_log || config_->keep_original_path || trace_.active) {
    info_.original_path = h.path;  // as received: normalisation and rewrites change it
  }
  if (!checkRequestHeaders(h)) {
    return;  // answered locally
  }
  // TE is hop-by-hop, but "trailers" in it says the client takes trailers (gRPC needs that
  // upstream): it is passed on as exactly `te: trailers` (HTTP/2 upstreams; HTTP/1 drops it).
  // The same pass finds whether the request is gRPC (or gRPC-Web): such bodies are message
  // streams that request buffering must not hold (bidi calls wait for a reply first).
  bool te_trailers = false;
  bool content_type_seen = false;
  bool grpc = false;
  for (const HeaderEntry& e : h.entries()) {
    const absl::string_view k = e.key;
    if (k.size() == 2 && k == "te") {
      for (absl::string_view t : absl::StrSplit(e.value, ',')) {
        t = absl::StripAsciiWhitespace(t.substr(0, t.find(';')));
        te_trailers |= absl::EqualsIgnoreCase(t, "trailers");
      }
    } else if (k.size() == 12 && k == "content-type" && !content_type_seen) {
      content_type_seen = true;
      grpc = Grpc::isGrpcContentType(e.value) || Grpc::isGrpcWebContentType(e.value);
    }
  }
  removeHopByHopHeaders(h);
  if (te_trailers) h.add("te", "trailers");

  // X-Forwarded-For: the client's address goes last, in one header, so the entry a backend
  // trusting one hop reads is ours, whatever the client sent (in one header or several).
  constexpr absl::string_view kXff = "x-forwarded-for";
  HeaderEntry* xff = nullptr;
  bool several_xff = false;
  for (HeaderEntry& e : h.entries()) {
    if (absl::string_view(e.key) == kXff) {
      several_xff |= xff != nullptr;
      if (xff == nullptr) xff = &e;
    }
  }
  if (several_xff) {
    std::string chain;
    for (const HeaderEntry& e : h.entries()) {
      if (absl::string_view(e.key) == kXff) {
        if (!chain.empty()) chain += ", ";
        chain += e.value;
      }
    }
    h.set(kXff, chain);
    xff = h.find(kXff);
  }
  if (xff == nullptr) {
    h.add(kXff, conn_.client_ip_);
  } else if (xff->value.empty()) {
    xff->value = conn_.client_ip_;
  } else {
    absl::StrAppend(&xff->value, ", ", conn_.client_ip_);
  }
  const Tls::ConnectionInfo* ssl = conn_.connection().ssl();
  h.set("x-forwarded-proto", ssl != nullptr ? absl::string_view("https") : config_->scheme);
  // Only the gateway speaks for the client certificate: a client's own XFCC never passes.
  h.remove("x-forwarded-client-cert");
  if (ssl != nullptr && config_->client_cert_details.set && ssl->peerCertificateValidated()) {
    h.add("x-forwarded-client-cert", clientCertDetails(*ssl, config_->client_cert_details));
  }
  if (!h.host().empty()) {
    h.set("x-forwarded-host", h.host());
  } else {
    h.remove("x-forwarded-host");
  }

  // The path is normalised before routing, and the normalised path is what goes upstream.
  absl::string_view path_error;
  switch (Path::normalize(h.path, config_->path, path_error)) {
    case Path::Result::Unchanged:
    case Path::Result::Changed:
      break;
    case Path::Result::Reject:
      sendLocalReply(400, path_error, ResponseFlag::DownstreamProtocolError, nullptr,
                     GatewayResponseType::BadRequestParameters);
      return;
    case Path::Result::Redirect: {
      std::string location = h.path;
      sendLocalReply(307, "path redirected", absl::nullopt,
                     [&location](ResponseHeaderMap& r) { r.add("location", location); });
      return;
    }
  }

  route_ = config_->route_table ? config_->route_table->route(h, vhost_) : nullptr;
  buffer_request_ = config_->request_buffering && !grpc;
  if (!request_end_at_headers_ && buffer_request_ && config_->request_body_timeout.count() > 0) {
    body_deadline_ = info_.start + config_->request_body_timeout;
  }

  // The filter chain for this stream.
  reserveWrappers(config_->filter_factories.size());
  for (const FilterFactoryCb& f : config_->filter_factories) {
    f(*this);
  }
  decodeHeadersFrom(0);
}

bool ActiveStream::checkRequestHeaders(RequestHeaderMap& h) {
  // Host: one valid authority (the codec refused a second one). A request without one (HTTP/1.0)
  // gets the upstream's from the router.
  absl::string_view host = h.host();
  if (!host.empty() && !isValidAuthority(host)) {
    sendLocalReply(400, "invalid host header", ResponseFlag::DownstreamProtocolError, nullptr);
    return false;
  }
  if (h.method == "TRACE" && !config_->allow_trace) {
    sendLocalReply(405, "TRACE is not allowed", absl::nullopt, [](ResponseHeaderMap& r) {
      r.add("allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    });
    return false;
  }
  if (config_->underscores != UnderscoreHeadersAction::Allow && h.underscore_in_names) {
    const size_t removed =
        h.removeIf([](const HeaderEntry& e) { return e.key.find('_') != std::string::npos; });
    if (removed > 0 && config_->underscores == UnderscoreHeadersAction::Reject) {
      sendLocalReply(400, "header name with an underscore", ResponseFlag::DownstreamProtocolError,
                     nullptr);
      return false;
    }
  }
  return true;
}

void ActiveStream::decodeHeadersFrom(size_t start) {
  for (size_t i = start; i < decoders_.size(); ++i) {
    decode_headers_pos_ = i;
    FilterHeadersStatus st =
        decoders_[i]->filter->decodeHeaders(*request_headers_, request_end_at_headers_);
    if (local_reply_ || done_) {
      return;
    }
    if (st == FilterHeadersStatus::StopIteration) {
      decode_headers_stopped_ = true;
      break;
    }
  }
  if (!decode_headers_stopped_) {
    decode_headers_pos_ = decoders_.size();
  }
  // Body that arrived while the headers were held goes on now (as far as iteration allows).
  flushDecodeBuffer();
}

void ActiveStream::flushDecodeBuffer() {
  if (decode_data_stopped_ || local_reply_ || done_) {
    return;
  }
  if (decode_buffer_.length() > 0 || decode_buffer_end_) {
    Buffer::OwnedImpl data;
    data.move(decode_buffer_);
    const bool end = decode_buffer_end_ && !request_trailers_;
    decode_buffer_end_ = false;
    decodeDataFrom(decode_buffer_pos_, data, end);
  }
  if (request_trailers_ && !decode_trailers_stopped_ && !decode_data_stopped_ &&
      decode_buffer_.empty() && !local_reply_ && !done_) {
    decodeTrailersFrom(decode_trailers_pos_);
  }
}

void ActiveStream::decodeData(Buffer::Instance& data, bool end_stream) {
  info_.bytes_received += data.length();
  if (end_stream) {
    request_complete_ = true;
  }
  if (end_stream || info_.bytes_received >= config_->request_buffer_bytes) {
    body_deadline_ = std::chrono::steady_clock::time_point::max();
  }
  if (local_reply_ || done_) {
    data.drain(data.length());
    return;
  }
  decodeDataFrom(0, data, end_stream);
}

void ActiveStream::holdDecodeData(size_t pos, Buffer::Instance& data, bool end_stream) {
  decode_buffer_pos_ = pos;
  decode_buffer_.move(data);
  decode_buffer_end_ = decode_buffer_end_ || end_stream;
  if (decode_buffer_.length() > config_->buffer_limit) {
    sendLocalReply(413, "request body too large", absl::nullopt, nullptr);
  }
}

void ActiveStream::decodeDataFrom(size_t start, Buffer::Instance& data, bool end_stream) {
  // Data goes as far as the headers went: to the filter that stopped them, included. The bound
  // is read again after each filter: one that buffered the body (a transformer) may resume the
  // headers from its decodeData() and then let this data follow them.
  for (size_t i = start; i < decodeLimit(); ++i) {
    FilterDataStatus st = decoders_[i]->filter->decodeData(data, end_stream);
    if (local_reply_ || done_) {
      return;
    }
    if (st == FilterDataStatus::StopIterationNoBuffer) {
      return;
    }
    if (st == FilterDataStatus::StopIterationAndBuffer) {
      decode_data_stopped_ = true;
      holdDecodeData(i + 1, data, end_stream);
      return;
    }
  }
  if (decodeLimit() < decoders_.size() && (data.length() > 0 || end_stream)) {
    holdDecodeData(decodeLimit(), data, end_stream);
  }
}

void ActiveStream::decodeTrailers(HeaderMapPtr&& trailers) {
  request_complete_ = true;
  body_deadline_ = std::chrono::steady_clock::time_point::max();
  if (local_reply_ || done_) {
    return;
  }
  request_trailers_ = std::move(trailers);
  flushDecodeBuffer();
}

void ActiveStream::decodeTrailersFrom(size_t start) {
  // Like data, trailers reach the filters that have seen the headers, up to one that stopped.
  for (size_t i = start; i < decodeLimit(); ++i) {
    decode_trailers_pos_ = i + 1;
    FilterTrailersStatus st = decoders_[i]->filter->decodeTrailers(*request_trailers_);
    if (local_reply_ || done_ || decode_trailers_pos_ != i + 1) {
      return;  // answered, or the filter resumed iteration itself (addDecodedData)
    }
    if (st == FilterTrailersStatus::StopIteration) {
      decode_trailers_stopped_ = true;
      return;
    }
  }
  decode_trailers_pos_ = decodeLimit();
}

void ActiveStream::addDecodedData(size_t index, Buffer::Instance& data) {
  // From decodeTrailers() of filter `index`: the data goes on ahead of the trailers. Held at the
  // next filter; it moves on when the trailers do (or when the filter resumes the headers).
  decode_buffer_pos_ = index + 1;
  decode_buffer_.move(data);
}

void ActiveStream::addEncodedData(size_t index, Buffer::Instance& data) {
  if (encode_headers_stopped_ && encode_headers_pos_ == index) {
    // From encodeTrailers() of the filter that holds the headers (a body transformer handing on
    // what it kept, which it bounded itself): held at the next filter, not counted against the
    // buffer limit; it moves on when the filter resumes the headers, ahead of the trailers.
    encode_buffer_pos_ = index + 1;
    encode_buffer_.move(data);
    return;
  }
  // The headers went on (grpc_web's trailer frame): the data follows them now.
  encodeDataFrom(index + 1, data, false);
}

void ActiveStream::continueDecoding(size_t index) {
  if (local_reply_ || done_) {
    return;
  }
  if (decode_headers_stopped_ && decode_headers_pos_ == index) {
    decode_headers_stopped_ = false;
    decodeHeadersFrom(index + 1);
    return;
  }
  if (decode_data_stopped_ && decode_buffer_pos_ == index + 1) {
    decode_data_stopped_ = false;
    flushDecodeBuffer();
    return;
  }
  if (decode_trailers_stopped_ && decode_trailers_pos_ == index + 1) {
    decode_trailers_stopped_ = false;
    decodeTrailersFrom(index + 1);
  }
}

void ActiveStream::encodeHeadersFrom(size_t start, ResponseHeaderMapPtr&& headers,
                                     bool end_stream) {
  if (start == 0) {
    // A new response (a local reply after a filter held the upstream's headers) replaces
    // whatever of the old one was held.
    encode_headers_stopped_ = false;
    encode_data_stopped_ = false;
    encode_trailers_stopped_ = false;
    encode_trailers_pending_ = false;
    encode_buffer_.drain(encode_buffer_.length());
    encode_buffer_end_ = false;
  }
  response_headers_ = std::move(headers);
  response_end_at_headers_ = end_stream;
  for (size_t i = start; i < encoders_.size(); ++i) {
    encode_headers_pos_ = i;
    FilterHeadersStatus st = encoders_[i]->filter->encodeHeaders(*response_headers_, end_stream);
    if (done_) return;
    if (st == FilterHeadersStatus::StopIteration) {
      encode_headers_stopped_ = true;
      return;
    }
  }
  encode_headers_pos_ = encoders_.size();
  ResponseHeaderMap& h = *response_headers_;
  info_.status = h.status;
  if (!h.has("x-request-id")) {
    h.add("x-request-id", info_.request_id);
  }
  if (!h.has("date")) {
    // RFC 9110 6.6.1: a recipient with a clock adds Date when forwarding a response without one.
    h.add("date", conn_.ctx_.date());
  }
  response_started_ = true;
  expect_continue_ = false;
  touchIdle();
  encoder_.encodeHeaders(h, end_stream);
  if (end_stream) {
    completeResponse(false);
    return;
  }
  // Body (and trailers) that arrived while the headers were held go on now.
  flushEncodeBuffer();
}

void ActiveStream::holdEncodeData(size_t pos, Buffer::Instance& data, bool end_stream) {
  encode_buffer_pos_ = pos;
  encode_buffer_.move(data);
  encode_buffer_end_ = encode_buffer_end_ || end_stream;
  if (encode_buffer_.length() > config_->buffer_limit) {
    resetStream();
  }
}

void ActiveStream::flushEncodeBuffer() {
  if (encode_data_stopped_ || done_) {
    return;
  }
  if (encode_buffer_.length() > 0 || encode_buffer_end_) {
    Buffer::OwnedImpl data;
    data.move(encode_buffer_);
    const bool end = encode_buffer_end_ && !encode_trailers_pending_;
    encode_buffer_end_ = false;
    encodeDataFrom(encode_buffer_pos_, data, end);
  }
  if (encode_trailers_pending_ && !encode_trailers_stopped_ && !encode_data_stopped_ &&
      encode_buffer_.empty() && !done_) {
    encodeTrailersFrom(encode_trailers_pos_, nullptr);
  }
}

void ActiveStream::encodeDataFrom(size_t start, Buffer::Instance& data, bool end_stream) {
  // As on the request path: data goes as far as the headers went (to the filter that holds
  // them, included), the bound read again after each filter.
  for (size_t i = start; i < encodeLimit(); ++i) {
    FilterDataStatus st = encoders_[i]->filter->encodeData(data, end_stream);
    if (done_) return;
    if (st == FilterDataStatus::StopIterationNoBuffer) {
      return;
    }
    if (st == FilterDataStatus::StopIterationAndBuffer) {
      encode_data_stopped_ = true;
      holdEncodeData(i + 1, data, end_stream);
      return;
    }
  }
  if (encode_headers_stopped_) {
    // The headers are held (by the last encoder filter too, when encodeLimit() is the end of the
    // chain): nothing may reach the codec ahead of them.
    if (data.length() > 0 || end_stream) holdEncodeData(encodeLimit(), data, end_stream);
    return;
  }
  info_.bytes_sent += data.length();
  touchIdle();
  encoder_.encodeData(data, end_stream);
  if (end_stream) {
    completeResponse(false);
  }
}

void ActiveStream::encodeTrailersFrom(size_t start, HeaderMapPtr&& trailers) {
  if (trailers != nullptr) {
    response_trailers_ = std::move(trailers);
    encode_trailers_pending_ = true;
  }
  if (encode_buffer_.length() > 0 || encode_data_stopped_) {
    // Body is held ahead of them: the trailers follow it when it moves on.
    encode_trailers_pos_ = std::min(start, encode_buffer_pos_);
    return;
  }
  for (size_t i = start; i < encodeLimit(); ++i) {
    encode_trailers_pos_ = i + 1;
    const FilterTrailersStatus st = encoders_[i]->filter->encodeTrailers(*response_trailers_);
    if (done_ || encode_trailers_pos_ != i + 1) {
      return;  // reset, or the filter resumed iteration itself
    }
    if (st == FilterTrailersStatus::StopIteration) {
      encode_trailers_stopped_ = true;
      return;
    }
    if (response_trailers_->size() == 0) {
      // The filter moved the trailers into the body (addEncodedData): end with the data.
      encode_trailers_pending_ = false;
      Buffer::OwnedImpl end;
      encodeDataFrom(i + 1, end, true);
      return;
    }
  }
  encode_trailers_pos_ = encodeLimit();
  if (encode_headers_stopped_) {
    return;  // held with the headers
  }
  encode_trailers_pending_ = false;
  encoder_.encodeTrailers(*response_trailers_);
  completeResponse(false);
}

void ActiveStream::continueEncoding(size_t index) {
  if (done_) return;
  if (encode_headers_stopped_ && encode_headers_pos_ == index) {
    encode_headers_stopped_ = false;
    // A headers-only response stays one, unless the filter added a body meanwhile.
    const bool end = response_end_at_headers_ && encode_buffer_.empty() && !encode_buffer_end_ &&
                     !encode_trailers_pending_;
    encodeHeadersFrom(index + 1, std::move(response_headers_), end);
    return;
  }
  if (encode_data_stopped_ && encode_buffer_pos_ == index + 1) {
    encode_data_stopped_ = false;
    flushEncodeBuffer();
    return;
  }
  if (encode_trailers_stopped_ && encode_trailers_pos_ == index + 1) {
    encode_trailers_stopped_ = false;
    encodeTrailersFrom(index + 1, nullptr);
  }
}

void ActiveStream::sendLocalReply(uint32_t status, absl::string_view message,
                                  absl::optional<ResponseFlag> flag,
                                  const std::function<void(ResponseHeaderMap&)>& modify,
                                  absl::optional<GatewayResponseType> type) {
  if (done_) {
    return;
  }
  if (flag.has_value()) {
    info_.addFlag(*flag);
  }
  if (response_started_) {
    // Too late for a clean error: abort the response.
    resetStream();
    return;
  }
  local_reply_ = true;
  auto headers = std::make_unique<ResponseHeaderMap>();
  headers->status = status;
  if (sendGrpcLocalReply(headers, status, message, modify)) {
    return;
  }
  std::string body;
  if (const CompiledGatewayResponse* custom = gatewayResponse(status, type); custom != nullptr) {
    body = gatewayReply(*custom, message, info_.request_id,
                        route_ != nullptr ? absl::string_view(route_->name()) : absl::string_view(),
                        conn_.ctx_.date(), modify, *headers);
  } else {
    body = localReplyBody(message, info_.request_id);
    headers->add("content-type", "application/json");
    headers->add("content-length", absl::StrCat(body.size()));
    headers->add("date", conn_.ctx_.date());
    if (modify) {
      modify(*headers);
    }
  }
  const bool end_at_headers = body.empty();
  Buffer::OwnedImpl data(body);
  encodeHeadersFrom(0, std::move(headers), end_at_headers);
  if (!done_ && !end_at_headers) {
    encodeDataFrom(0, data, true);
  }
}

const CompiledGatewayResponse* ActiveStream::gatewayResponse(
    uint32_t status, absl::optional<GatewayResponseType> type) {
  const GatewayResponses* listener = config_->gateway_responses.get();
  const Router::RouteTableImpl* table = config_->route_table.get();
  const bool vhosts = table != nullptr && table->hasGatewayResponses();
  if (listener == nullptr && !vhosts) {
    return nullptr;  // nothing configured: the built-in reply
  }
  if (!type.has_value()) {
    type = inferGatewayResponseType(status, info_.response_flags);
    if (!type.has_value()) {
      return nullptr;
    }
  }
  if (vhosts && vhost_ == nullptr && request_headers_ != nullptr) {
    // Answered before routing (a refused path): the virtual host the (valid) host selects.
    const absl::string_view host = request_headers_->host();
    if (host.empty() || isValidAuthority(host)) {
      vhost_ = table->virtualHost(host);
    }
  }
  return selectGatewayResponse(*type, status,
                               vhost_ != nullptr ? vhost_->gatewayResponses() : nullptr, listener);
}

bool ActiveStream::sendGrpcLocalReply(ResponseHeaderMapPtr& headers, uint32_t status,
                                      absl::string_view message,
                                      const std::function<void(ResponseHeaderMap&)>& modify) {
  // A gRPC client gets a trailers-only gRPC response (HTTP 200, grpc-status, grpc-message) it
  // can read as a status, not a JSON body; a gRPC-Web one gets it with its own content-type.
  const absl::string_view type =
      request_headers_ == nullptr ? absl::string_view() : request_headers_->get("content-type");
  const bool grpc = Grpc::isGrpcContentType(type);
  if (!grpc && !Grpc::isGrpcWebContentType(type)) {
    return false;
  }
  headers->add("date", conn_.ctx_.date());
  if (modify) {
    modify(*headers);
  }
  Grpc::setTrailersOnlyReply(*headers, status, info_.response_flags, message,
                             grpc ? Grpc::kContentTypeGrpc : Grpc::mediaType(type));
  encodeHeadersFrom(0, std::move(headers), true);
  return true;
}

void ActiveStream::onDownstreamReset(ResponseFlag flag) {
  if (done_) {
    return;
  }
  info_.addFlag(flag);
  conn_.ctx_.stats().downstream_rq_reset->inc();
  completeResponse(true);
}

void ActiveStream::completeResponse(bool reset) {
  if (done_) {
    return;
  }
  done_ = true;
  response_complete_ = true;
  conn_.ctx_.stats().downstream_rq_active->dec();
  if (request_timer_) request_timer_->disableTimer();
  for (auto& d : decoders_) d->filter->onDestroy();
  for (auto& e : encoders_) {
    // A StreamFilter is in both lists; onDestroy twice is harmless by contract but avoid it.
    bool also_decoder = false;
    for (auto& d : decoders_) {
      if (static_cast<StreamFilterBase*>(d->filter.get()) ==
          static_cast<StreamFilterBase*>(e->filter.get())) {
        also_decoder = true;
      }
    }
    if (!also_decoder) e->filter->onDestroy();
  }
  const auto elapsed = conn_.ctx_.dispatcher().now() - info_.start;
  const uint64_t us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  recordStats(us);
  if (trace_.sampled && config_->tracing->exporter != nullptr) exportSpan(us);
  if (config_->access_log) {
    writeAccessLog();
  }
  if (reset) {
    encoder_.getStream().resetStream(StreamResetReason::LocalReset);
  }
  conn_.onStreamDone(*this);
}

void ActiveStream::recordStats(uint64_t us) {
  const uint32_t cls = info_.status / 100;
  const bool has_class = cls >= 1 && cls <= 5;
  if (has_class) conn_.ctx_.stats().downstream_rq_class[cls]->inc();
  // The gateway's own time: everything but the final upstream try (all of it without one).
  const int64_t upstream_us = info_.upstream_time_us;
  const uint64_t gateway_us =
      upstream_us >= 0 && static_cast<uint64_t>(upstream_us) <= us ? us - upstream_us : us;
  if (info_.cluster_rq_time != nullptr) {
    info_.cluster_rq_time->recordMicros(us);
    info_.cluster_gateway_time->recordMicros(gateway_us);
  }
  if (route_ == nullptr || route_->stats().rq_total == nullptr) return;
  const Router::RouteStats& rs = route_->stats();
  rs.rq_total->inc();
  rs.rq_time->recordMicros(us);
  rs.gateway_time->recordMicros(gateway_us);
  if (upstream_us >= 0) rs.upstream_rq_time->recordMicros(upstream_us);
  if (has_class) rs.rq_class[cls]->inc();
  rs.bytes_received->inc(info_.bytes_received);
  rs.bytes_sent->inc(info_.bytes_sent);
  if (config_->consumer_stats != nullptr) {
    const absl::string_view consumer = info_.filter_state.getString(FilterStateNames::kConsumer);
    if (!consumer.empty()) {
      Stats::ConsumerStats::Counters& c =
          config_->consumer_stats->get(route_->name(), consumer, config_->max_consumers);
      if (has_class) c.rq_class[cls]->inc();
      c.bytes_received->inc(info_.bytes_received);
      c.bytes_sent->inc(info_.bytes_sent);
    }
  }
}

void ActiveStream::startTrace(RequestHeaderMap& h) {
  // Exactly one valid traceparent continues a trace; none, several or an invalid one start a
  // new trace, and the tracestate that went with it is dropped (Trace Context 4.3).
  const HeaderEntry* incoming = nullptr;
  bool several = false;
  for (const HeaderEntry& e : h.entries()) {
    if (e.key.size() == 11 && absl::string_view(e.key) == "traceparent") {
      several |= incoming != nullptr;
      incoming = &e;
    }
  }
  absl::optional<Tracing::TraceParent> parent;
  if (incoming != nullptr && !several) parent = Tracing::parseTraceParent(incoming->value);
  Tracing::TraceParent out;
  WorkerContext& ctx = conn_.ctx_;
  auto rng = [&ctx]() { return ctx.random(); };
  if (parent.has_value()) {
    out.trace_id = parent->trace_id;
    out.flags = parent->flags;
    std::copy(parent->span_id.begin(), parent->span_id.end(), trace_.parent_span_id);
    trace_.has_parent = true;
  } else {
    Tracing::randomHexId(rng, out.trace_id.data(), out.trace_id.size());
    const double rate = config_->tracing->sample_rate;
    // 53 random bits as a uniform double in [0, 1).
    const bool sampled =
        rate >= 1.0 || (rate > 0.0 && static_cast<double>(ctx.random() >> 11) * 0x1.0p-53 < rate);
    out.flags = sampled ? 1 : 0;
    h.remove("tracestate");
  }
  Tracing::randomHexId(rng, out.span_id.data(), out.span_id.size());
  std::copy(out.span_id.begin(), out.span_id.end(), trace_.span_id);
  trace_.active = true;
  trace_.sampled = out.sampled();
  info_.trace_id.assign(out.trace_id.data(), out.trace_id.size());
  h.set("traceparent", out.format());
}

void ActiveStream::exportSpan(uint64_t us) {
  const RequestHeaderMap* h = request_headers_.get();
  const uint64_t start_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(info_.start_wall.time_since_epoch())
          .count();
  absl::string_view method = h != nullptr ? absl::string_view(h->method) : absl::string_view();
  std::string name(method);
  if (route_ != nullptr) absl::StrAppend(&name, " ", route_->name());
  Tracing::SpanWriter span(
      info_.trace_id, absl::string_view(trace_.span_id, 16),
      trace_.has_parent ? absl::string_view(trace_.parent_span_id, 16) : absl::string_view(), name,
      start_ns, start_ns + us * 1000);
  span.attribute("http.request.method", method);
  // The path without its query: query strings carry credentials (api keys, tokens).
  absl::string_view path = info_.original_path;
  path = path.substr(0, path.find('?'));
  span.attribute("url.path", path);
  span.attribute("url.scheme", conn_.connection().ssl() != nullptr
                                   ? absl::string_view("https")
                                   : absl::string_view(config_->scheme));
  if (h != nullptr && !h->host().empty()) span.attribute("server.address", h->host());
  span.attribute("client.address", conn_.client_ip_);
  if (h != nullptr) {
    span.attribute("network.protocol.version", h->http_major == 2   ? "2"
                                               : h->http_minor == 0 ? "1.0"
                                                                    : "1.1");
    const absl::string_view ua = h->get("user-agent");
    if (!ua.empty()) span.attribute("user_agent.original", ua);
  }
  if (info_.status != 0) span.attribute("http.response.status_code", int64_t{info_.status});
  if (route_ != nullptr) span.attribute("sluice.route", route_->name());
  if (!info_.upstream_cluster.empty())
    span.attribute("sluice.upstream.cluster", info_.upstream_cluster);
  if (!info_.upstream_host.empty()) span.attribute("sluice.upstream.address", info_.upstream_host);
  span.attribute("sluice.request_id", info_.request_id);
  if (!info_.response_flags.empty()) {
    std::string flags;
    info_.response_flags.appendTo(flags);
    span.attribute("sluice.response_flags", flags);
  }
  const absl::string_view consumer = info_.filter_state.getString(FilterStateNames::kConsumer);
  if (!consumer.empty()) span.attribute("sluice.consumer", consumer);
  config_->tracing->exporter->exportSpan(span.finish(info_.status == 0 || info_.status >= 500));
}

void ActiveStream::writeAccessLog() {
  conn_.writeAccessLog(*config_, info_, request_headers_.get(), route_);
}

void ActiveStream::checkDeadlines(std::chrono::steady_clock::time_point now) {
  if (done_) {
    return;
  }
  WorkerContext& ctx = conn_.ctx_;
  if (now >= body_deadline_) {
    body_deadline_ = kNoDeadline;
    if (!request_complete_ && !response_started_) {
      ctx.stats().downstream_rq_timeout->inc();
      // HTTP/1: the unread rest of the body makes the connection unusable. HTTP/2: only this
      // stream ends.
      if (!conn_.http2_) conn_.codec_->setCloseAfterResponse();
      sendLocalReply(408, "request body not received in time", ResponseFlag::RequestTimeout,
                     nullptr);
      return;
    }
  }
  if (now >= idle_deadline_) {
    idle_deadline_ = kNoDeadline;
    ctx.stats().downstream_rq_idle_timeout->inc();
    if (!conn_.http2_) conn_.codec_->setCloseAfterResponse();
    if (!response_started_) {
      sendLocalReply(408, "request idle timeout", ResponseFlag::StreamIdleTimeout, nullptr);
    } else {
      resetStream();
    }
  }
}

// Filter callback plumbing.
Event::Dispatcher& ActiveDecoderFilter::dispatcher() { return stream.conn_.context().dispatcher(); }
StreamInfo& ActiveDecoderFilter::streamInfo() { return stream.info_; }
const Router::RouteEntry* ActiveDecoderFilter::route() { return stream.route_; }
Upstream::ClusterManager& ActiveDecoderFilter::clusterManager() {
  return stream.conn_.context().clusterManager();
}
absl::string_view ActiveDecoderFilter::downstreamAddress() { return stream.conn_.clientIp(); }
const Tls::ConnectionInfo* ActiveDecoderFilter::downstreamSsl() {
  return stream.conn_.connection().ssl();
}
void ActiveDecoderFilter::resetStream() { stream.resetStream(); }
uint32_t ActiveDecoderFilter::bufferLimit() { return stream.config_->buffer_limit; }
const ResponseHeaderMap* ActiveDecoderFilter::responseHeaders() {
  return stream.response_headers_.get();
}
void ActiveDecoderFilter::continueDecoding() { stream.continueDecoding(index); }
void ActiveDecoderFilter::sendLocalReply(uint32_t status, absl::string_view message,
                                         absl::optional<ResponseFlag> flag,
                                         std::function<void(ResponseHeaderMap&)> modify,
                                         absl::optional<GatewayResponseType> type) {
  stream.sendLocalReply(status, message, flag, modify, type);
}
void ActiveDecoderFilter::encodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) {
  stream.encodeHeadersFrom(0, std::move(headers), end_stream);
}
void ActiveDecoderFilter::encodeData(Buffer::Instance& data, bool end_stream) {
  stream.encodeDataFrom(0, data, end_stream);
}
void ActiveDecoderFilter::encodeTrailers(HeaderMapPtr&& trailers) {
  stream.encodeTrailersFrom(0, std::move(trailers));
}
bool ActiveDecoderFilter::responseStarted() const { return stream.response_started_; }
void ActiveDecoderFilter::onDecoderFilterAboveWriteBufferHighWatermark() {
  stream.onUpstreamWatermark(true);
}
void ActiveDecoderFilter::onDecoderFilterBelowWriteBufferLowWatermark() {
  stream.onUpstreamWatermark(false);
}
void ActiveDecoderFilter::addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) {
  stream.watermark_callbacks_.push_back(&cb);
  if (stream.above_high_) cb.onAboveWriteBufferHighWatermark();
}
void ActiveDecoderFilter::removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) {
  auto& v = stream.watermark_callbacks_;
  v.erase(std::remove(v.begin(), v.end(), &cb), v.end());
}
RequestHeaderMap& ActiveDecoderFilter::requestHeaders() { return *stream.request_headers_; }
void ActiveDecoderFilter::sendContinueIfExpected() { stream.sendContinueIfExpected(); }
uint32_t ActiveDecoderFilter::requestBufferBytes() {
  return stream.buffer_request_ ? stream.config_->request_buffer_bytes : 0;
}

Event::Dispatcher& ActiveEncoderFilter::dispatcher() { return stream.conn_.context().dispatcher(); }
StreamInfo& ActiveEncoderFilter::streamInfo() { return stream.info_; }
const Router::RouteEntry* ActiveEncoderFilter::route() { return stream.route_; }
Upstream::ClusterManager& ActiveEncoderFilter::clusterManager() {
  return stream.conn_.context().clusterManager();
}
absl::string_view ActiveEncoderFilter::downstreamAddress() { return stream.conn_.clientIp(); }
const Tls::ConnectionInfo* ActiveEncoderFilter::downstreamSsl() {
  return stream.conn_.connection().ssl();
}
void ActiveEncoderFilter::resetStream() { stream.resetStream(); }
uint32_t ActiveEncoderFilter::bufferLimit() { return stream.config_->buffer_limit; }
const ResponseHeaderMap* ActiveEncoderFilter::responseHeaders() {
  return stream.response_headers_.get();
}
void ActiveEncoderFilter::continueEncoding() { stream.continueEncoding(index); }
void ActiveEncoderFilter::addEncodedData(Buffer::Instance& data) {
  stream.addEncodedData(index, data);
}
void ActiveDecoderFilter::addDecodedData(Buffer::Instance& data) {
  stream.addDecodedData(index, data);
}

// -------------------------------------------------------------------------------------------
// ConnectionManagerImpl

ConnectionManagerImpl::ConnectionManagerImpl(WorkerContext& ctx, ConfigSourceSharedPtr config,
                                             Network::ConnectionPtr&& conn)
    : ctx_(ctx), config_source_(std::move(config)), connection_(std::move(conn)) {
  config_ = config_source_->config();
  connection_->setCallbacks(this);
  connection_->setBufferLimits(config_->buffer_limit);
  if (config_->codec_factory) {
    codec_ = config_->codec_factory(*connection_, *this, config_->codec);
    protocol_pending_ = false;
  } else {
    codec_ = createServerConnection(*connection_, *this, config_->codec);
  }
  client_ip_ = connection_->peerAddress().ip();
  ctx_.add(this);
  ctx_.stats().downstream_cx_total->inc();
  ctx_.stats().downstream_cx_active->inc();
  setIdleDeadline();
}

ConnectionManagerImpl::~ConnectionManagerImpl() {
  if (!closed_) {
    ctx_.remove(this);
    ctx_.stats().downstream_cx_active->dec();
  }
}

void ConnectionManagerImpl::linkStream(std::unique_ptr<ActiveStream>&& stream) {
  ActiveStream& s = *stream;
  s.next_ = std::move(streams_);
  if (s.next_ != nullptr) s.next_->prev_ = &s;
  streams_ = std::move(stream);
  ++stream_count_;
}

std::unique_ptr<ActiveStream> ConnectionManagerImpl::unlinkStream(ActiveStream& s) {
  std::unique_ptr<ActiveStream>& owner = s.prev_ != nullptr ? s.prev_->next_ : streams_;
  std::unique_ptr<ActiveStream> owned = std::move(owner);
  if (s.next_ != nullptr) s.next_->prev_ = s.prev_;
  owner = std::move(s.next_);
  s.prev_ = nullptr;
  --stream_count_;
  return owned;
}

void ConnectionManagerImpl::writeAccessLog(const ConnectionManagerConfig& config,
                                           const StreamInfo& info, const RequestHeaderMap* h,
                                           const Router::RouteEntry* route) {
  if (!config.access_log) {
    return;
  }
  const auto elapsed = ctx_.dispatcher().now() - info.start;
  const double ms = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() / 1000.0;
  char ts[64];
  const time_t secs = std::chrono::system_clock::to_time_t(info.start_wall);
  struct tm tm;
  gmtime_r(&secs, &tm);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(info.start_wall.time_since_epoch())
          .count() %
      1000;
  size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof(ts) - n, ".%03dZ", static_cast<int>(millis));
  auto orDash = [](absl::string_view v) { return v.empty() ? absl::string_view("-") : v; };
  Json::Writer w;
  w.beginObject();
  w.field("start_time", ts);
  w.field("method", h ? absl::string_view(h->method) : absl::string_view("-"));
  absl::string_view logged_path = !info.original_path.empty()
                                      ? absl::string_view(info.original_path)
                                  : h ? absl::string_view(h->path)
                                      : absl::string_view("-");
  std::string redacted;
  if (!config.redact_query_params.empty() && logged_path.find('?') != absl::string_view::npos) {
    redacted = redactQuery(logged_path, config.redact_query_params);
    logged_path = redacted;
  }
  w.field("path", logged_path);
  w.field("protocol", h == nullptr         ? "-"
                      : h->http_major == 2 ? "HTTP/2"
                      : h->http_minor == 0 ? "HTTP/1.0"
                                           : "HTTP/1.1");
  w.field("status", info.status);
  w.field("bytes_received", info.bytes_received);
  w.field("bytes_sent", info.bytes_sent);
  w.field("duration_ms", ms);
  w.field("upstream_host", orDash(info.upstream_host));
  w.field("upstream_cluster", orDash(info.upstream_cluster));
  w.field("route", route ? absl::string_view(route->name()) : absl::string_view("-"));
  w.field("request_id", orDash(info.request_id));
  if (!info.trace_id.empty()) w.field("trace_id", info.trace_id);
  std::string flags;  // short: no allocation
  info.response_flags.appendTo(flags);
  w.field("response_flags", orDash(flags));
  w.field("client_ip", client_ip_);
  w.field("user_agent", h ? orDash(h->get("user-agent")) : absl::string_view("-"));
  if (const Tls::ConnectionInfo* ssl = connection_->ssl(); ssl != nullptr) {
    w.field("tls_version", ssl->tlsVersion());
    w.field("tls_sni", orDash(ssl->sni()));
    if (ssl->peerCertificateValidated()) {
      w.field("client_cert_subject", ssl->subjectPeerCertificate());
      w.field("client_cert_sans", absl::StrJoin(ssl->sansPeerCertificate(), ","));
    }
  }
  w.endObject();
  std::string line = w.take();
  line += '\n';
  ctx_.accessLogBuffer().append(config.access_log, line);
}

void ConnectionManagerImpl::setIdleDeadline() {
  deadline_kind_ = Deadline::Idle;
  deadline_ = ctx_.dispatcher().now() + config_->idle_timeout;
  if (config_->idle_timeout.count() == 0) {
    deadline_kind_ = Deadline::None;
  }
}

void ConnectionManagerImpl::onData(Buffer::Instance& data, bool end_stream) {
  if (closed_) {
    data.drain(data.length());
    return;
  }
  if (protocol_pending_ && data.length() > 0) {
    switch (detectServerProtocol(*connection_, data, config_->codec)) {
      case Detected::NeedMoreData:
        if (!end_stream) {
          if (deadline_kind_ != Deadline::Headers) {
            deadline_kind_ = Deadline::Headers;
            deadline_ = ctx_.dispatcher().now() + config_->request_headers_timeout;
          }
          return;  // a prefix of the HTTP/2 preface: wait for the rest
        }
        protocol_pending_ = false;
        break;
      case Detected::Http2:
        protocol_pending_ = false;
        http2_ = true;
        codec_ = createServerConnection(*connection_, *this, config_->codec, Protocol::Http2,
                                        &ctx_.stats().http2);
        setIdleDeadline();
        if (draining()) codec_->setCloseAfterResponse();
        break;
      case Detected::Http1:
        protocol_pending_ = false;
        break;
    }
  }
  if (http2_) {
    // HTTP/2: control frames are not requests; the idle deadline alone covers a connection
    // without streams, and streams have their own deadlines.
  } else if (streams_ == nullptr) {
    if (deadline_kind_ != Deadline::Headers && data.length() > 0) {
      // First bytes of a new request: the headers must arrive in time.
      deadline_kind_ = Deadline::Headers;
      deadline_ = ctx_.dispatcher().now() + config_->request_headers_timeout;
    }
  } else {
    // Bytes from the client count as activity of the streams in flight.
    const auto now = ctx_.dispatcher().now();
    for (ActiveStream* s = streams_.get(); s != nullptr; s = s->next_.get()) {
      s->touchIdleIfArmed(now);
    }
  }
  codec_->dispatch(data);
  if (closed_) {
    return;
  }
  // Pipelined requests wait unparsed while a response is in progress; bound how much of them
  // we read ahead (a client can't make us buffer without limit), and read on once they drain.
  const bool too_much = data.length() > config_->buffer_limit;
  if (too_much != pipeline_paused_) {
    pipeline_paused_ = too_much;
    connection_->readDisable(too_much);
  }
  if (end_stream) {
    // Like Envoy and nginx, a client's FIN means it is gone: an in-flight request is reset
    // (response flag DC) rather than answered into a half-closed socket.
    if (resetStreams(ResponseFlag::DownstreamConnectionTermination)) {
      close(Network::Connection::CloseType::NoFlush);
    } else {
      close(Network::Connection::CloseType::FlushWrite);
    }
  }
}

bool ConnectionManagerImpl::resetStreams(ResponseFlag flag) {
  bool any = false;
  for (ActiveStream* s = streams_.get(); s != nullptr;) {
    // Resetting unlinks the stream (it stays alive until the deferred deletion): step first.
    ActiveStream* next = s->next_.get();
    if (!s->done_) {
      any = true;
      s->onDownstreamReset(flag);
    }
    s = next;
  }
  return any;
}

RequestDecoder& ConnectionManagerImpl::newStream(ResponseEncoder& encoder) {
  config_ = config_source_->config();  // pin the newest listener config for this stream
  deadline_kind_ = Deadline::None;
  if (draining()) {
    codec_->setCloseAfterResponse();
  }
  auto stream = std::make_unique<ActiveStream>(*this, encoder, config_);
  ActiveStream& s = *stream;
  linkStream(std::move(stream));
  return s;
}

void ConnectionManagerImpl::onCodecError(const CodecError& error) {
  codec_error_ = true;
  ctx_.stats().downstream_rq_protocol_error->inc();
  bool any = false;
  for (ActiveStream* s = streams_.get(); s != nullptr;) {
    ActiveStream* next = s->next_.get();
    if (!s->done_) {
      any = true;
      if (!s->response_started_) {
        s->sendLocalReply(error.status, error.details, ResponseFlag::DownstreamProtocolError,
                          nullptr);
      } else {
        s->onDownstreamReset(ResponseFlag::DownstreamProtocolError);
      }
    }
    s = next;
  }
  if (any) {
    close(Network::Connection::CloseType::FlushWrite);
    return;
  }
  // No stream yet (bad request line or headers): answer directly.
  replyWithoutStreamAndClose(error.status, error.details, ResponseFlag::DownstreamProtocolError);
}

void ConnectionManagerImpl::replyWithoutStreamAndClose(uint32_t status, absl::string_view message,
                                                       ResponseFlag flag) {
  const std::string request_id = ctx_.uuid();
  ResponseHeaderMap headers;
  headers.status = status;
  // Only the listener's gateway responses apply: no request, so no virtual host or route.
  const CompiledGatewayResponse* custom = nullptr;
  if (config_->gateway_responses != nullptr) {
    ResponseFlags flags;
    flags.set(flag);
    if (auto type = inferGatewayResponseType(status, flags); type.has_value()) {
      custom = selectGatewayResponse(*type, status, nullptr, config_->gateway_responses.get());
    }
  }
  std::string body;
  if (custom != nullptr) {
    body = gatewayReply(*custom, message, request_id, "", ctx_.date(), nullptr, headers);
  } else {
    body = localReplyBody(message, request_id);
    headers.add("content-type", "application/json");
    headers.add("content-length", absl::StrCat(body.size()));
    headers.add("date", ctx_.date());
  }
  headers.add("x-request-id", request_id);
  codec_->sendStreamlessResponse(headers, body);
  ctx_.stats().downstream_rq_total->inc();
  ctx_.stats().downstream_rq_class[headers.status / 100]->inc();
  StreamInfo info;
  info.start = ctx_.dispatcher().now();
  info.start_wall = std::chrono::system_clock::now();
  info.status = headers.status;
  info.request_id = request_id;
  info.bytes_sent = body.size();
  info.addFlag(flag);
  writeAccessLog(*config_, info, nullptr, nullptr);
  close(Network::Connection::CloseType::FlushWrite);
}

void ConnectionManagerImpl::onStreamDone(ActiveStream& stream) {
  if (stream.prev_ == nullptr && streams_.get() != &stream) {
    return;  // not (any more) in the list
  }
  ctx_.dispatcher().deferredDelete(unlinkStream(stream));
  if (closed_) {
    return;
  }
  if (codec_->closing() || codec_error_) {
    return;  // the codec is closing the connection after the response
  }
  if (streams_ != nullptr) {
    return;  // other streams still in flight
  }
  if (draining()) {
    // Counted in onDrain() when the drain began with this stream in flight.
    close(Network::Connection::CloseType::FlushWrite);
    return;
  }
  setIdleDeadline();
}

void ConnectionManagerImpl::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::RemoteClose ||
      event == Network::ConnectionEvent::LocalClose) {
    resetStreams(ResponseFlag::DownstreamConnectionTermination);
    if (!closed_) {
      closed_ = true;
      ctx_.remove(this);
      ctx_.stats().downstream_cx_active->dec();
      ctx_.dispatcher().deferredDelete(
          std::unique_ptr<Event::DeferredDeletable>(static_cast<Event::DeferredDeletable*>(this)));
    }
  }
}

void ConnectionManagerImpl::close(Network::Connection::CloseType type) {
  if (closed_) {
    return;
  }
  connection_->close(type);  // LocalClose event follows once the socket is closed
}

void ConnectionManagerImpl::onAboveWriteBufferHighWatermark() {
  if (http2_) {
    codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();  // relayed per stream
    return;
  }
  for (ActiveStream* s = streams_.get(); s != nullptr; s = s->next_.get()) {
    s->onAboveWriteBufferHighWatermark();
  }
}

void ConnectionManagerImpl::onBelowWriteBufferLowWatermark() {
  if (http2_) {
    codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
    return;
  }
  for (ActiveStream* s = streams_.get(); s != nullptr; s = s->next_.get()) {
    s->onBelowWriteBufferLowWatermark();
  }
}

void ConnectionManagerImpl::checkDeadline(std::chrono::steady_clock::time_point now) {
  if (closed_) {
    return;
  }
  if (streams_ == nullptr && deadline_kind_ == Deadline::Idle) {
    // Idle keep-alive connection: give its buffers' memory back (at most 100 ms after the last
    // response, so a busy connection keeps reusing them).
    connection_->releaseIdleMemory();
  }
  for (ActiveStream* s = streams_.get(); s != nullptr;) {
    ActiveStream* next = s->next_.get();
    s->checkDeadlines(now);
    if (closed_) {
      return;
    }
    s = next;
  }
  if (deadline_kind_ == Deadline::None || now < deadline_) {
    return;
  }
  if (deadline_kind_ == Deadline::Headers) {
    ctx_.stats().downstream_cx_header_timeout->inc();
    deadline_kind_ = Deadline::None;
    replyWithoutStreamAndClose(408, "request headers not received in time",
                               ResponseFlag::RequestTimeout);
  } else {
    ctx_.stats().downstream_cx_idle_timeout->inc();
    close(Network::Connection::CloseType::NoFlush);
  }
}

void ConnectionManagerImpl::onDrain() {
  if (closed_ || draining_) {
    return;
  }
  draining_ = true;
  ctx_.stats().downstream_cx_drain_close->inc();
  if (http2_) {
    // GOAWAY; the codec closes the connection once the streams in flight are done.
    codec_->setCloseAfterResponse();
    return;
  }
  if (streams_ == nullptr && deadline_kind_ != Deadline::Headers) {
    close(Network::Connection::CloseType::NoFlush);
  } else {
    // Busy: no new streams; the connection closes once the responses in flight are done
    // (HTTP/1: the response says `connection: close`).
    codec_->setCloseAfterResponse();
  }
}

}  // namespace Http
}  // namespace sluice
