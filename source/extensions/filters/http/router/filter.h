#pragma once

#include <chrono>
#include <memory>

#include "absl/container/inlined_vector.h"
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
                     public Upstream::PoolCallbacks,
                     public Upstream::SlotWaiter {
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
  void onPoolFailure(Upstream::PoolFailureReason reason, absl::string_view details) override;
  void onUpstreamAboveWriteBufferHighWatermark() override;
  void onUpstreamBelowWriteBufferLowWatermark() override;

  // SlotWaiter: a queued request got its max_requests slot.
  void onSlot() override;

 private:
  // Bodies of retriable requests are copied up to this size so a retry can send them again;
  // a longer body makes the request not retriable once its first try has sent anything.
  static constexpr size_t kRetryBufferLimit = 64 * 1024;

  // One try: circuit breaker, endpoint pick (avoiding the endpoints already tried), pool.
  void startAttempt();
  // The rest of a try once it holds a max_requests slot.
  void startAttemptWithSlot();
  // Leaves the slot queue (if in it), giving back its queue unit.
  void leaveQueue();
  void startUpstream(bool force_new);
  // Undoes the per-try accounting (active requests, breaker unit, per-try timer).
  // `wake_queue`: hand the freed max_requests slot to a queued request right away.
  void endAttempt(bool wake_queue = true);
  // Puts the request in the cluster's slot queue; false when the queue is full or disabled.
  // `again`: it was served from the queue and found the connection limit reached: back to the
  // head of the queue, not counted as a new queued request.
  bool joinQueue(bool again = false);
  // Reports the current try's outcome to outlier detection (once per try).
  void reportOutcome(Upstream::Outcome outcome);
  // A failed try may be retried: policy, retries left, method and body, retry breaker/budget.
  // `sent`: the try may have reached the upstream (anything but a connect failure).
  // `refused`: the upstream said it did not act on the request (a gRPC retry condition), so
  // a non-idempotent request may go again too.
  bool tryRetry(bool sent, bool refused = false);
  void scheduleRetry();
  // Drops the current try's upstream connection from inside its codec callback (deferred).
  void abandonAttempt(bool response_complete);
  // One timer serves the route timeout, the per-try timeout and the retry backoff: it is armed
  // for the earliest deadline, so a retry policy adds no timer work to a request.
  void armTimer();
  void onTimer();
  void stopTimer() {
    route_deadline_ = try_deadline_ = retry_at_ = kNever;
    if (timer_ != nullptr) timer_->disableTimer();
  }
  void startPerTryDeadline();
  void onPerTryTimeout();
  void sendDirectResponse(const sluice::Router::RouteEntry& route);
  void sendRedirect(const sluice::Router::RouteEntry& route, const Http::RequestHeaderMap& h);
  void onTimeout();
  void upstreamFailed(uint32_t status, absl::string_view message, Http::ResponseFlag flag,
                      bool overloaded = false);
  // Ends the request's upstream part: releases its retry slot and what dropConnection() does.
  void releaseUpstream(bool reusable);
  // Ends the attempt and cancels the connection being set up, or gives the connected one back
  // to its pool (reset unless `reusable`). Retry state is left as it is.
  void dropConnection(bool reusable);
  void releaseRetry();
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
  const sluice::Router::RetryPolicy* retry_policy_ = nullptr;
  int endpoint_ = -1;
  absl::InlinedVector<int, 4> tried_;          // endpoints of earlier tries
  Upstream::ActiveClient* pending_ = nullptr;  // connecting
  Upstream::ActiveClient* client_ = nullptr;   // in use
  Http::RequestEncoder* encoder_ = nullptr;
  Buffer::OwnedImpl buffered_body_;  // body not yet sent on the current try
  Http::HeaderMapPtr buffered_trailers_;
  Buffer::OwnedImpl retry_body_;  // the whole body received so far, to send again on a retry
  Http::HeaderMapPtr retry_trailers_;
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr TimePoint kNever = TimePoint::max();
  Event::TimerPtr timer_;
  TimePoint route_deadline_ = kNever;  // route timeout: all tries
  TimePoint try_deadline_ = kNever;    // retry_policy.per_try_timeout
  TimePoint retry_at_ = kNever;        // end of the backoff before the next try
  TimePoint queue_deadline_ = kNever;  // circuit_breakers.queue_timeout while queued
  std::chrono::steady_clock::time_point upstream_start_;
  uint32_t retries_ = 0;
  // The route timeout of this request (for gRPC, from grpc-timeout and max_grpc_timeout).
  std::chrono::milliseconds route_timeout_{0};
  // Request buffering: body bytes to hold before the first try starts (0 = started).
  uint32_t buffer_bytes_ = 0;
  bool waiting_for_body_ = false;
  bool queued_ = false;            // in the cluster's slot queue
  bool served_by_queue_ = false;   // the current try's slot came from the queue
  bool request_end_ = false;       // the whole request has been received from downstream
  bool request_sent_end_ = false;  // ... and sent upstream on the current try
  bool response_headers_seen_ = false;
  bool response_complete_ = false;
  bool retried_ = false;            // the stale keep-alive connection retry happened
  // Streams an HTTP/2 upstream refused unprocessed, sent again (at most kMaxRefusedRetries).
  static constexpr uint32_t kMaxRefusedRetries = 5;
  uint32_t refused_retries_ = 0;
  bool downstream_paused_ = false;  // we asked the HCM to stop reading the client
  bool upstream_read_paused_ = false;
  bool watermark_registered_ = false;
  bool destroyed_ = false;
  bool active_counted_ = false;    // the current try is counted as active (stats, breaker)
  bool outcome_reported_ = false;  // the current try's outcome went to outlier detection
  bool attempt_sent_ = false;      // the current try got a connection (and sent something)
  bool idempotent_ = false;
  bool grpc_ = false;                // content-type application/grpc*
  bool grpc_retry_ = false;          // ... and the retry policy has gRPC conditions
  bool track_body_ = false;          // copying the body into retry_body_
  bool body_not_retriable_ = false;  // the body outgrew kRetryBufferLimit
  bool retry_counted_ = false;       // holds one unit of the cluster's retry breaker
};

}  // namespace Router
}  // namespace Extensions
}  // namespace sluice
