#pragma once

#include <chrono>
#include <memory>

#include "source/common/http/filter.h"
#include "source/common/router/config.h"
#include "source/common/upstream/cluster_manager.h"
#include "source/common/upstream/conn_pool.h"

namespace sluice {
namespace Extensions {
namespace Router {

// The terminal filter: direct responses and redirects, or forwards the request to an upstream
// endpoint picked by the cluster's load balancer, and streams the response back.
class RouterFilter : public Http::StreamDecoderFilter,
                     public Http::StreamCallbacks,
                     public Upstream::PoolCallbacks {
 public:
  RouterFilter() = default;
  ~RouterFilter() override;

  // StreamDecoderFilter
  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus decodeData(Buffer::Instance& data, bool end_stream) override;
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap& trailers) override;
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& cb) override {
    callbacks_ = &cb;
  }
  void onDestroy() override;

  // The upstream response (through response_sink_).
  void onUpstreamHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream);
  void onUpstreamData(Buffer::Instance& data, bool end_stream);
  void onUpstreamTrailers(Http::HeaderMapPtr&& trailers);

  // StreamCallbacks (upstream stream events)
  void onResetStream(Http::StreamResetReason reason) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  // PoolCallbacks
  void onPoolReady(Upstream::ActiveClient& client) override;
  void onPoolFailure(Upstream::PoolFailureReason reason) override;
  void onUpstreamAboveWriteBufferHighWatermark() override;
  void onUpstreamBelowWriteBufferLowWatermark() override;

 private:
  void startUpstream(bool force_new);
  void sendDirectResponse(const sluice::Router::RouteEntry& route);
  void sendRedirect(const sluice::Router::RouteEntry& route, const Http::RequestHeaderMap& h);
  void onTimeout();
  void upstreamFailed(uint32_t status, absl::string_view message, absl::string_view flag);
  void releaseUpstream(bool reusable);
  void finishUpstreamRequest();
  void pauseUpstreamRead(bool pause);

  // The client reads slowly -> pause reading the upstream.
  struct DownstreamWatermarks : public Http::DownstreamWatermarkCallbacks {
    explicit DownstreamWatermarks(RouterFilter& f) : parent(f) {}
    void onAboveWriteBufferHighWatermark() override { parent.pauseUpstreamRead(true); }
    void onBelowWriteBufferLowWatermark() override { parent.pauseUpstreamRead(false); }
    RouterFilter& parent;
  };
  DownstreamWatermarks downstream_watermarks_{*this};

  struct ResponseSink : public Http::ResponseDecoder {
    explicit ResponseSink(RouterFilter& f) : parent(f) {}
    void decodeHeaders(Http::ResponseHeaderMapPtr&& h, bool end) override {
      parent.onUpstreamHeaders(std::move(h), end);
    }
    void decodeData(Buffer::Instance& d, bool end) override { parent.onUpstreamData(d, end); }
    void decodeTrailers(Http::HeaderMapPtr&& t) override {
      parent.onUpstreamTrailers(std::move(t));
    }
    RouterFilter& parent;
  };
  ResponseSink response_sink_{*this};

  Http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  Http::RequestHeaderMap* request_headers_ = nullptr;
  Upstream::ThreadLocalClusterSharedPtr cluster_;
  int endpoint_ = -1;
  Upstream::ActiveClient* pending_ = nullptr;  // connecting
  Upstream::ActiveClient* client_ = nullptr;   // in use
  Http::RequestEncoder* encoder_ = nullptr;
  Buffer::OwnedImpl buffered_body_;  // body that arrived before the upstream was ready
  Http::HeaderMapPtr buffered_trailers_;
  Event::TimerPtr timer_;
  std::chrono::steady_clock::time_point upstream_start_;
  bool request_end_ = false;       // the whole request has been received from downstream
  bool request_sent_end_ = false;  // ... and sent upstream
  bool response_headers_seen_ = false;
  bool response_complete_ = false;
  bool retried_ = false;
  bool downstream_paused_ = false;  // we asked the HCM to stop reading the client
  bool upstream_read_paused_ = false;
  bool watermark_registered_ = false;
  bool destroyed_ = false;
  bool active_counted_ = false;
};

}  // namespace Router
}  // namespace Extensions
}  // namespace sluice
