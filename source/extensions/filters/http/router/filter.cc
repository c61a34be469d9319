#include "source/extensions/filters/http/router/filter.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "source/common/grpc/common.h"

namespace sluice {
namespace Extensions {
namespace Router {

using sluice::Router::ActionType;
using sluice::Router::RouteEntry;

namespace {

bool isIdempotent(absl::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

Upstream::Outcome outcomeOf(uint32_t status) {
  if (status >= 502 && status <= 504) return Upstream::Outcome::GatewayError;
  if (status >= 500) return Upstream::Outcome::Http5xx;
  return Upstream::Outcome::Success;
}

// A gRPC request's route timeout: its grpc-timeout, capped by the route's max_grpc_timeout
// (0 = no cap) or, when that is unset, by the route timeout. Without a valid grpc-timeout, the
// cap itself (0 = none).
std::chrono::milliseconds grpcTimeout(const RouteEntry& route,
                                      const Http::RequestHeaderMap& headers) {
  const std::chrono::milliseconds cap = route.maxGrpcTimeout().value_or(route.timeout());
  const Http::HeaderEntry* header = headers.find(Grpc::kGrpcTimeout);
  const absl::optional<std::chrono::milliseconds> client =
      header == nullptr ? absl::nullopt : Grpc::parseTimeout(header->value);
  if (!client.has_value()) {
    return cap;
  }
  return cap.count() == 0 ? *client : std::min(*client, cap);
}

// Full-jitter exponential backoff (Envoy's): uniform in [0, min(base * 2^(n-1), max)].
std::chrono::milliseconds backoff(const sluice::Router::RetryPolicy& p, uint32_t retry) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t ceiling = static_cast<uint64_t>(p.base_interval.count()) << std::min(retry - 1, 20u);
  ceiling = std::min<uint64_t>(ceiling, p.max_interval.count());
  return std::chrono::milliseconds(rng() % (ceiling + 1));
}

}  // namespace

RouterFilter::~RouterFilter() { onDestroy(); }

Http::FilterHeadersStatus RouterFilter::decodeHeaders(Http::RequestHeaderMap& headers,
                                                      bool end_stream) {
  request_headers_ = &headers;
  request_end_ = end_stream;
  const RouteEntry* route = callbacks_->route();
  if (route == nullptr) {
    callbacks_->sendLocalReply(404, "no route matched", Http::ResponseFlag::NoRouteFound, nullptr,
                               Http::GatewayResponseType::ResourceNotFound);
    return Http::FilterHeadersStatus::StopIteration;
  }
  switch (route->type()) {
    case ActionType::DirectResponse:
      sendDirectResponse(*route);
      return Http::FilterHeadersStatus::StopIteration;
    case ActionType::Redirect:
      sendRedirect(*route, headers);
      return Http::FilterHeadersStatus::StopIteration;
    default:
      break;
  }
  Http::StreamInfo& info = callbacks_->streamInfo();
  const std::string& cluster_name =
      route->type() == ActionType::WeightedClusters
          ? route->selectCluster(headers, callbacks_->downstreamAddress())
          : route->cluster();
  info.upstream_cluster = cluster_name;
  cluster_ = callbacks_->clusterManager().getShared(cluster_name);
  if (cluster_ == nullptr) {
    callbacks_->sendLocalReply(503, absl::StrCat("cluster \"", cluster_name, "\" not found"),
                               Http::ResponseFlag::NoClusterFound, nullptr,
                               Http::GatewayResponseType::IntegrationFailure);
    return Http::FilterHeadersStatus::StopIteration;
  }
  info.cluster_rq_time = cluster_->info().stats().rq_time;
  info.cluster_gateway_time = cluster_->info().stats().gateway_time;
  retry_policy_ = route->retryPolicy();
  grpc_ = Grpc::isGrpcRequest(headers);
  route_timeout_ = grpc_ ? grpcTimeout(*route, headers) : route->timeout();
  if (grpc_ && route->maxGrpcTimeout().has_value() && route_timeout_.count() > 0) {
    // As Envoy does with max_grpc_timeout: the server learns the deadline we enforce.
    headers.set(Grpc::kGrpcTimeout, Grpc::formatTimeout(route_timeout_));
  }
  if (retry_policy_ != nullptr) {
    idempotent_ = isIdempotent(headers.method);
    // A gRPC call (a POST) is retried on the gRPC conditions, which say the server refused it.
    grpc_retry_ = grpc_ && retry_policy_->retriesGrpc();
    track_body_ = (idempotent_ || grpc_retry_) && !end_stream;
  }
  // An HTTP/2 upstream may refuse a stream unprocessed (REFUSED_STREAM, or a GOAWAY that came
  // after it was sent): such a stream is sent again, body included (up to kRetryBufferLimit).
  track_body_ = track_body_ || (cluster_->info().http2() && !end_stream);

  // A filter that replaced the path (request_transformer's replace.uri) said what goes upstream.
  std::string rewritten =
      callbacks_->streamInfo().path_replaced ? std::string() : route->rewrittenPath(headers);
  if (!rewritten.empty()) {
    headers.path = std::move(rewritten);
  }
  if (!route->hostRewrite().empty()) {
    headers.set("host", route->hostRewrite());
  } else if (headers.host().empty()) {
    // HTTP/1.0 without Host: the upstream is sent one (an HTTP/1.1 request must carry it):
    // the cluster's name, or its first endpoint's address when the name is no host name.
    const auto& endpoints = cluster_->info().endpoints();
    if (Http::isValidAuthority(cluster_name)) {
      headers.set("host", cluster_name);
    } else {
      headers.set("host", endpoints.empty() ? "localhost" : endpoints[0].name);
    }
  }
  upstream_start_ = callbacks_->dispatcher().now();
  callbacks_->addDownstreamWatermarkCallbacks(downstream_watermarks_);
  watermark_registered_ = true;
  if (end_stream && route_timeout_.count() > 0) {
    route_deadline_ = upstream_start_ + route_timeout_;  // armed by startAttempt()
  }
  callbacks_->sendContinueIfExpected();
  buffer_bytes_ = end_stream ? 0 : callbacks_->requestBufferBytes();
  if (buffer_bytes_ > 0) {
    // Request buffering: the body (up to buffer_bytes_) arrives before an upstream connection
    // or breaker slot is taken.
    waiting_for_body_ = true;
    return Http::FilterHeadersStatus::StopIteration;
  }
  startAttempt();
  return Http::FilterHeadersStatus::StopIteration;
}

void RouterFilter::startAttempt() {
  const Upstream::ClusterInfo& cluster = cluster_->info();
  const Upstream::CircuitBreakerConfig& cb = cluster.circuitBreakers();
  Upstream::ClusterState& state = cluster.state();
  // max_requests: one unit per try in flight, shared by every worker. Over it, the request
  // queues for a slot (bounded in number and time) instead of failing a legitimate burst.
  if (!Upstream::ClusterState::tryAcquire(state.rq_active, cb.max_requests)) {
    if (joinQueue()) {
      return;
    }
    cluster.stats().upstream_rq_overflow->inc();
    if (cb.max_queued_requests > 0) cluster.stats().upstream_rq_queue_overflow->inc();
    upstreamFailed(503, "upstream overloaded: too many requests to the cluster",
                   Http::ResponseFlag::UpstreamOverflow, true);
    return;
  }
  startAttemptWithSlot();
}

bool RouterFilter::joinQueue(bool again) {
  const Upstream::ClusterInfo& cluster = cluster_->info();
  const Upstream::CircuitBreakerConfig& cb = cluster.circuitBreakers();
  if (cb.max_queued_requests == 0 ||
      !Upstream::ClusterState::tryAcquire(cluster.state().rq_queued, cb.max_queued_requests)) {
    return false;
  }
  if (!again) {
    cluster.stats().upstream_rq_queued->inc();
  }
  queued_ = true;
  cluster_->enqueue(*this, again);
  if (queue_deadline_ == kNever) {
    queue_deadline_ = callbacks_->dispatcher().now() + cb.queue_timeout;
  }
  armTimer();
  return true;
}

void RouterFilter::onSlot() {
  queued_ = false;
  Upstream::ClusterState::release(cluster_->info().state().rq_queued);
  served_by_queue_ = true;
  startAttemptWithSlot();
  served_by_queue_ = false;
  if (!queued_) {
    queue_deadline_ = kNever;  // (a connection-limit overflow may have queued it again)
  }
}

void RouterFilter::leaveQueue() {
  if (queued_) {
    queued_ = false;
    cluster_->dequeue(*this);
    Upstream::ClusterState::release(cluster_->info().state().rq_queued);
  }
  queue_deadline_ = kNever;
}

void RouterFilter::startAttemptWithSlot() {
  const Upstream::ClusterInfo& cluster = cluster_->info();
  Upstream::LbContext lb_ctx;
  lb_ctx.headers = request_headers_;
  lb_ctx.client_ip = callbacks_->downstreamAddress();
  lb_ctx.exclude = absl::MakeConstSpan(tried_.data(), tried_.size());
  endpoint_ = cluster_->chooseEndpoint(lb_ctx);
  if (endpoint_ < 0) {
    Upstream::ClusterState::release(cluster.state().rq_active);
    cluster_->slotReleased();
    upstreamFailed(503, "no healthy upstream", Http::ResponseFlag::NoHealthyUpstream);
    return;
  }
  tried_.push_back(endpoint_);
  const Upstream::Endpoint& ep = cluster.endpoints()[endpoint_];
  callbacks_->streamInfo().upstream_host = ep.name;
  const Upstream::ClusterStats& cs = cluster.stats();
  cs.upstream_rq_total->inc();
  cs.upstream_rq_active->inc();
  ep.stats.rq_total->inc();
  ep.stats.rq_active->inc();
  cluster_->requestStarted(endpoint_);
  active_counted_ = true;
  outcome_reported_ = false;
  response_headers_seen_ = false;
  request_sent_end_ = false;
  if (attempt_sent_) {
    // The earlier try sent (part of) the body: this one sends all of it again.
    attempt_sent_ = false;
    buffered_body_.clear();
    retry_body_.forEachSlice([this](absl::string_view d) { buffered_body_.add(d); });
    buffered_trailers_ =
        retry_trailers_ ? std::make_unique<Http::HeaderMap>(*retry_trailers_) : nullptr;
  }
  if (request_end_) {
    startPerTryDeadline();
  }
  armTimer();
  startUpstream(false);
}

void RouterFilter::startUpstream(bool force_new) {
  Upstream::ConnPool& pool = cluster_->pool(endpoint_);
  pending_ = pool.newStream(*this, force_new);
}

void RouterFilter::startPerTryDeadline() {
  if (retry_policy_ != nullptr && retry_policy_->per_try_timeout.count() > 0 && active_counted_ &&
      try_deadline_ == kNever) {
    try_deadline_ = callbacks_->dispatcher().now() + retry_policy_->per_try_timeout;
  }
}

void RouterFilter::armTimer() {
  const TimePoint next = std::min({route_deadline_, try_deadline_, retry_at_, queue_deadline_});
  if (next == kNever) {
    if (timer_ != nullptr) timer_->disableTimer();
    return;
  }
  if (timer_ == nullptr) {
    timer_ = callbacks_->dispatcher().createTimer([this]() { onTimer(); });
  }
  const TimePoint now = callbacks_->dispatcher().now();
  timer_->enableTimer(next <= now ? std::chrono::milliseconds(0)
                                  : std::chrono::ceil<std::chrono::milliseconds>(next - now));
}

void RouterFilter::onTimer() {
  const TimePoint now = callbacks_->dispatcher().now();
  if (route_deadline_ <= now) {
    onTimeout();
    return;
  }
  if (try_deadline_ <= now) {
    try_deadline_ = kNever;
    onPerTryTimeout();
    return;
  }
  if (queue_deadline_ <= now) {
    // upstreamFailed() takes the request out of the queue.
    cluster_->info().stats().upstream_rq_queue_timeout->inc();
    upstreamFailed(503, "upstream overloaded: no request slot within queue_timeout",
                   Http::ResponseFlag::UpstreamOverflow, true);
    return;
  }
  if (retry_at_ <= now) {
    retry_at_ = kNever;
    startAttempt();
    return;
  }
  armTimer();  // woke up early (a deadline was dropped meanwhile)
}

void RouterFilter::endAttempt(bool wake_queue) {
  try_deadline_ = kNever;  // the timer, if armed for it, finds nothing due and re-arms
  if (!active_counted_) {
    return;
  }
  active_counted_ = false;
  const Upstream::ClusterInfo& cluster = cluster_->info();
  const Upstream::Endpoint& ep = cluster.endpoints()[endpoint_];
  cluster.stats().upstream_rq_active->dec();
  ep.stats.rq_active->dec();
  cluster_->requestFinished(endpoint_);
  Upstream::ClusterState::release(cluster.state().rq_active);
  if (wake_queue) cluster_->slotReleased();
}

void RouterFilter::reportOutcome(Upstream::Outcome outcome) {
  if (outcome_reported_ || !active_counted_) {
    return;
  }
  outcome_reported_ = true;
  const Upstream::ClusterInfo& cluster = cluster_->info();
  if (cluster.outlier().enabled) {
    cluster.state().reportOutcome(cluster.endpoints()[endpoint_].state, outcome, cluster.outlier());
  }
}

bool RouterFilter::tryRetry(bool sent, bool refused) {
  if (retry_policy_ == nullptr || retries_ >= retry_policy_->num_retries || destroyed_ ||
      callbacks_->responseStarted()) {
    return false;
  }
  if (sent && (!(idempotent_ || refused) || body_not_retriable_)) {
    // The upstream may have acted on it: only requests that are safe to repeat, with the whole
    // body still at hand, go again.
    return false;
  }
  if (!retry_counted_) {
    const Upstream::ClusterInfo& cluster = cluster_->info();
    const Upstream::CircuitBreakerConfig& cb = cluster.circuitBreakers();
    Upstream::ClusterState& state = cluster.state();
    uint32_t max = cb.max_retries;
    if (cb.retry_budget) {
      const uint64_t active = state.rq_active.load(std::memory_order_relaxed);
      max = std::max<uint64_t>(cb.min_retry_concurrency, active * cb.budget_percent / 100);
    }
    if (!Upstream::ClusterState::tryAcquire(state.retries_active, max)) {
      cluster.stats().upstream_rq_retry_overflow->inc();
      return false;
    }
    retry_counted_ = true;
  }
  return true;
}

void RouterFilter::releaseRetry() {
  if (retry_counted_) {
    retry_counted_ = false;
    Upstream::ClusterState::release(cluster_->info().state().retries_active);
  }
}

void RouterFilter::scheduleRetry() {
  ++retries_;
  cluster_->info().stats().upstream_rq_retry->inc();
  retry_at_ = callbacks_->dispatcher().now() + backoff(*retry_policy_, retries_);
  armTimer();
}

void RouterFilter::abandonAttempt(bool response_complete) {
  endAttempt();
  Upstream::ActiveClient* c = client_;
  Http::RequestEncoder* encoder = encoder_;
  client_ = nullptr;
  encoder_ = nullptr;
  if (c == nullptr) {
    return;
  }
  if (upstream_read_paused_) {
    upstream_read_paused_ = false;
    encoder->getStream().readDisable(false);
  }
  const bool reusable = response_complete && request_sent_end_;
  if (!reusable) {
    // The rest of this response is read and dropped by the codec.
    encoder->getStream().resetStream(Http::StreamResetReason::LocalReset);
  }
  Upstream::ConnPool& pool = cluster_->pool(endpoint_);
  pool.detach(*c);
  // We are inside the connection's codec callback: closing it now would free the buffer the
  // codec is parsing. Released once the callback has returned (before anything is deleted).
  callbacks_->dispatcher().deferred(
      [cluster = cluster_, &pool, c, reusable]() { pool.release(*c, reusable); });
}

void RouterFilter::onPoolReady(Upstream::ActiveClient& client) {
  pending_ = nullptr;
  client_ = &client;
  attempt_sent_ = true;
  encoder_ = &client.codec().newStream(response_sink_);
  encoder_->getStream().setCallbacks(this);
  const bool has_body = buffered_body_.length() > 0 || buffered_trailers_ != nullptr;
  encoder_->encodeHeaders(*request_headers_, request_end_ && !has_body);
  if (destroyed_ || client_ == nullptr) return;
  if (buffered_body_.length() > 0 || (request_end_ && has_body && !buffered_trailers_)) {
    encoder_->encodeData(buffered_body_, request_end_ && !buffered_trailers_);
  }
  if (buffered_trailers_ && client_ != nullptr) {
    encoder_->encodeTrailers(*buffered_trailers_);
    buffered_trailers_.reset();
  }
  request_sent_end_ = request_end_;
  if (downstream_paused_ && client_ != nullptr && !client_->connection().aboveHighWatermark()) {
    downstream_paused_ = false;
    callbacks_->onDecoderFilterBelowWriteBufferLowWatermark();
  }
}

void RouterFilter::onPoolFailure(Upstream::PoolFailureReason reason, absl::string_view details) {
  pending_ = nullptr;
  if (reason == Upstream::PoolFailureReason::Overflow) {
    // max_connections / max_pending_requests: wait in the slot queue for a connection to free
    // (the slot goes back without waking the queue, or it would spin on the same limit).
    endAttempt(false);
    if (served_by_queue_) {
      cluster_->connectionLimitReached();
    }
    if (!joinQueue(served_by_queue_)) {
      upstreamFailed(503, "upstream overloaded: circuit breaker open",
                     Http::ResponseFlag::UpstreamOverflow, true);
    }
    return;
  }
  reportOutcome(Upstream::Outcome::LocalFailure);
  if (Upstream::retriable(reason) && retry_policy_ != nullptr &&
      retry_policy_->retriesConnectFailure() && tryRetry(false)) {
    endAttempt();
    scheduleRetry();
    return;
  }
  if (reason == Upstream::PoolFailureReason::TlsFailure) {
    upstreamFailed(503, absl::StrCat("upstream connect error: TLS: ", details),
                   Http::ResponseFlag::UpstreamConnectionFailure);
    return;
  }
  upstreamFailed(503,
                 reason == Upstream::PoolFailureReason::Timeout ? "upstream connect timeout"
                                                                : "upstream connect error",
                 Http::ResponseFlag::UpstreamConnectionFailure);
}

Http::FilterDataStatus RouterFilter::decodeData(Buffer::Instance& data, bool end_stream) {
  if (end_stream) {
    request_end_ = true;
    if (route_timeout_.count() > 0) {
      route_deadline_ = callbacks_->dispatcher().now() + route_timeout_;
    }
    startPerTryDeadline();
    armTimer();
  }
  if (track_body_) {
    if (retry_body_.length() + data.length() <= kRetryBufferLimit) {
      data.forEachSlice([this](absl::string_view d) { retry_body_.add(d); });
    } else {
      track_body_ = false;
      body_not_retriable_ = true;
      retry_body_.clear();
    }
  }
  if (encoder_ != nullptr && client_ != nullptr) {
    encoder_->encodeData(data, end_stream);
    request_sent_end_ = end_stream;
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  // Not connected yet (or between tries): hold the body, bounded.
  buffered_body_.move(data);
  if (waiting_for_body_) {
    if (end_stream || buffered_body_.length() >= buffer_bytes_) {
      waiting_for_body_ = false;
      startAttempt();
    }
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  if (!downstream_paused_ && buffered_body_.length() > callbacks_->bufferLimit()) {
    downstream_paused_ = true;
    callbacks_->onDecoderFilterAboveWriteBufferHighWatermark();
  }
  return Http::FilterDataStatus::StopIterationNoBuffer;
}

Http::FilterTrailersStatus RouterFilter::decodeTrailers(Http::HeaderMap& trailers) {
  request_end_ = true;
  if (route_timeout_.count() > 0) {
    route_deadline_ = callbacks_->dispatcher().now() + route_timeout_;
  }
  startPerTryDeadline();
  armTimer();
  if (track_body_) {
    retry_trailers_ = std::make_unique<Http::HeaderMap>(trailers);
  }
  if (encoder_ != nullptr && client_ != nullptr) {
    encoder_->encodeTrailers(trailers);
    request_sent_end_ = true;
  } else {
    buffered_trailers_ = std::make_unique<Http::HeaderMap>(trailers);
    if (waiting_for_body_) {
      waiting_for_body_ = false;
      startAttempt();
    }
  }
  return Http::FilterTrailersStatus::StopIteration;
}

void RouterFilter::onUpstreamHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) {
  response_headers_seen_ = true;
  const uint32_t status = headers->status;
  const uint32_t cls = status / 100;
  const Upstream::ClusterInfo& cluster = cluster_->info();
  if (cls >= 1 && cls <= 5) {
    cluster.stats().upstream_rq_class[cls]->inc();
  }
  reportOutcome(outcomeOf(status));
  // gRPC conditions: a trailers-only response (grpc-status in the headers).
  const Http::HeaderEntry* grpc_status = grpc_retry_ ? headers->find(Grpc::kGrpcStatus) : nullptr;
  const absl::optional<uint32_t> grpc_code =
      grpc_status == nullptr ? absl::nullopt : Grpc::parseStatus(grpc_status->value);
  const bool grpc_refused = grpc_code.has_value() && retry_policy_->retriableGrpcStatus(*grpc_code);
  if (retry_policy_ != nullptr && (retry_policy_->retriableStatus(status) || grpc_refused) &&
      tryRetry(true, grpc_refused)) {
    // This response is dropped; the request goes again (to another endpoint if there is one).
    abandonAttempt(end_stream);
    scheduleRetry();
    return;
  }
  if (retries_ > 0 && status < 500) {
    cluster.stats().upstream_rq_retry_success->inc();
  }
  releaseRetry();
  Http::removeHopByHopHeaders(*headers);
  if (end_stream) {
    finishUpstreamRequest();
  }
  callbacks_->encodeHeaders(std::move(headers), end_stream);
}

void RouterFilter::onUpstreamData(Buffer::Instance& data, bool end_stream) {
  if (end_stream) {
    finishUpstreamRequest();
  }
  callbacks_->encodeData(data, end_stream);
}

void RouterFilter::onUpstreamTrailers(Http::HeaderMapPtr&& trailers) {
  finishUpstreamRequest();
  callbacks_->encodeTrailers(std::move(trailers));
}

void RouterFilter::finishUpstreamRequest() {
  if (response_complete_) {
    return;
  }
  response_complete_ = true;
  stopTimer();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      callbacks_->dispatcher().now() - upstream_start_)
                      .count();
  cluster_->info().stats().upstream_rq_time->recordMicros(us);
  callbacks_->streamInfo().upstream_time_us = us;
  // The codec finished the exchange: the connection may go back to the pool.
  releaseUpstream(request_sent_end_);
}

void RouterFilter::releaseUpstream(bool reusable) {
  leaveQueue();
  releaseRetry();
  retry_at_ = kNever;
  dropConnection(reusable);
}

void RouterFilter::dropConnection(bool reusable) {
  endAttempt();
  if (pending_ != nullptr) {
    Upstream::ActiveClient* p = pending_;
    pending_ = nullptr;
    cluster_->pool(endpoint_).cancel(*p, *this);
  }
  if (client_ != nullptr) {
    Upstream::ActiveClient* c = client_;
    Http::Stream& stream = encoder_->getStream();
    client_ = nullptr;
    encoder_ = nullptr;
    if (upstream_read_paused_) {
      upstream_read_paused_ = false;
      stream.readDisable(false);
    }
    if (!reusable) {
      stream.resetStream(Http::StreamResetReason::LocalReset);
    }
    cluster_->pool(endpoint_).release(*c, reusable);
  }
}

void RouterFilter::onResetStream(Http::StreamResetReason reason) {
  if (destroyed_ || response_complete_) {
    return;
  }
  Upstream::ActiveClient* c = client_;
  const bool reused = c != nullptr && c->reused();
  client_ = nullptr;
  encoder_ = nullptr;
  if (c != nullptr) {
    cluster_->pool(endpoint_).release(*c, false);
  }
  // A kept-alive connection the upstream had already closed, or a stream the upstream refused
  // unprocessed (HTTP/2 REFUSED_STREAM, or above a GOAWAY's last stream): retry once on another
  // stream when nothing of the request body has been streamed away.
  if (reason == Http::StreamResetReason::ConnectionTermination && reused && !retried_ &&
      !response_headers_seen_ && request_end_ && buffered_body_.empty() &&
      request_headers_ != nullptr && callbacks_->streamInfo().bytes_received == 0) {
    retried_ = true;
    cluster_->info().stats().upstream_rq_retry_stale_connection->inc();
    startUpstream(true);
    return;
  }
  // Refused unprocessed: safe to send again whatever the method, when the whole body is still
  // at hand. Bounded (an upstream that refuses everything gets its 502 soon).
  if (reason == Http::StreamResetReason::RemoteRefusedStreamReset &&
      refused_retries_ < kMaxRefusedRetries && !response_headers_seen_ &&
      request_headers_ != nullptr &&
      (callbacks_->streamInfo().bytes_received == 0 || (track_body_ && request_end_))) {
    ++refused_retries_;
    cluster_->info().stats().upstream_rq_retry_refused_stream->inc();
    if (callbacks_->streamInfo().bytes_received > 0) {
      buffered_body_.clear();
      retry_body_.forEachSlice([this](absl::string_view d) { buffered_body_.add(d); });
      buffered_trailers_ =
          retry_trailers_ ? std::make_unique<Http::HeaderMap>(*retry_trailers_) : nullptr;
    }
    // Another connection already up may take it (the refusing one takes no new streams).
    startUpstream(false);
    return;
  }
  if (!response_headers_seen_) {
    reportOutcome(Upstream::Outcome::LocalFailure);
    if (Http::retriable(reason) && retry_policy_ != nullptr && retry_policy_->retriesReset() &&
        tryRetry(true)) {
      endAttempt();
      scheduleRetry();
      return;
    }
  }
  cluster_->info().stats().upstream_rq_reset->inc();
  if (reason == Http::StreamResetReason::ProtocolError) {
    upstreamFailed(502, "invalid response from upstream",
                   Http::ResponseFlag::UpstreamProtocolError);
  } else {
    upstreamFailed(502, "upstream connection closed before response",
                   Http::ResponseFlag::UpstreamConnectionTermination);
  }
}

void RouterFilter::upstreamFailed(uint32_t status, absl::string_view message,
                                  Http::ResponseFlag flag, bool overloaded) {
  response_complete_ = true;
  stopTimer();
  releaseUpstream(false);
  if (callbacks_->responseStarted()) {
    callbacks_->streamInfo().addFlag(flag);
    callbacks_->resetStream();
  } else {
    // 502/503: the upstream could not be used; 504: it did not answer in time.
    const Http::GatewayResponseType type = status == 504
                                               ? Http::GatewayResponseType::IntegrationTimeout
                                               : Http::GatewayResponseType::IntegrationFailure;
    std::function<void(Http::ResponseHeaderMap&)> modify;
    if (overloaded) {
      modify = [](Http::ResponseHeaderMap& h) { h.add("x-sluice-overloaded", "true"); };
    }
    callbacks_->sendLocalReply(status, message, flag, std::move(modify), type);
  }
}

void RouterFilter::onTimeout() {
  cluster_->info().stats().upstream_rq_timeout->inc();
  reportOutcome(Upstream::Outcome::LocalFailure);
  upstreamFailed(504, "upstream request timeout", Http::ResponseFlag::UpstreamRequestTimeout);
}

void RouterFilter::onPerTryTimeout() {
  cluster_->info().stats().upstream_rq_per_try_timeout->inc();
  reportOutcome(Upstream::Outcome::LocalFailure);
  if (!response_headers_seen_ && retry_policy_->retriesReset() && tryRetry(attempt_sent_)) {
    // From a timer, not a codec callback: the connection can be closed right away. The retry
    // just granted keeps its budget slot.
    dropConnection(false);
    scheduleRetry();
    return;
  }
  upstreamFailed(504, "upstream request timeout", Http::ResponseFlag::UpstreamRequestTimeout);
}

// The upstream stream's own buffer (HTTP/2: the endpoint's window is closed, or its connection
// is above its watermark): the same as a full HTTP/1 connection.
void RouterFilter::onAboveWriteBufferHighWatermark() { onUpstreamAboveWriteBufferHighWatermark(); }
void RouterFilter::onBelowWriteBufferLowWatermark() { onUpstreamBelowWriteBufferLowWatermark(); }

void RouterFilter::onUpstreamAboveWriteBufferHighWatermark() {
  if (!downstream_paused_) {
    downstream_paused_ = true;
    callbacks_->onDecoderFilterAboveWriteBufferHighWatermark();
  }
}

void RouterFilter::onUpstreamBelowWriteBufferLowWatermark() {
  if (downstream_paused_) {
    downstream_paused_ = false;
    callbacks_->onDecoderFilterBelowWriteBufferLowWatermark();
  }
}

void RouterFilter::pauseUpstreamRead(bool pause) {
  if (client_ == nullptr || pause == upstream_read_paused_) {
    return;
  }
  upstream_read_paused_ = pause;
  encoder_->getStream().readDisable(pause);
}

void RouterFilter::sendDirectResponse(const RouteEntry& route) {
  auto headers = std::make_unique<Http::ResponseHeaderMap>();
  headers->status = route.directStatus();
  const std::string& body = route.directBody();
  if (!body.empty()) {
    headers->add("content-type", route.directContentType());
  }
  headers->add("content-length", absl::StrCat(body.size()));
  Buffer::OwnedImpl data(body);
  callbacks_->encodeHeaders(std::move(headers), body.empty());
  if (!body.empty()) {
    callbacks_->encodeData(data, true);
  }
}

void RouterFilter::sendRedirect(const RouteEntry& route, const Http::RequestHeaderMap& h) {
  auto headers = std::make_unique<Http::ResponseHeaderMap>();
  headers->status = route.redirectCode();
  absl::string_view scheme = h.get("x-forwarded-proto");
  headers->add("location", route.redirectLocation(h, scheme.empty() ? "http" : scheme));
  headers->add("content-length", "0");
  callbacks_->encodeHeaders(std::move(headers), true);
}

void RouterFilter::onDestroy() {
  if (destroyed_) {
    return;
  }
  destroyed_ = true;
  stopTimer();
  if (watermark_registered_ && callbacks_ != nullptr) {
    watermark_registered_ = false;
    callbacks_->removeDownstreamWatermarkCallbacks(downstream_watermarks_);
  }
  if (cluster_ != nullptr) {
    // The exchange did not finish: the upstream connection can't be reused.
    releaseUpstream(response_complete_ && request_sent_end_);
  }
}

}  // namespace Router
}  // namespace Extensions
}  // namespace sluice
