#include "source/extensions/filters/http/router/filter.h"

#include "absl/strings/str_cat.h"

namespace sluice {
namespace Extensions {
namespace Router {

using sluice::Router::ActionType;
using sluice::Router::RouteEntry;

RouterFilter::~RouterFilter() { onDestroy(); }

Http::FilterHeadersStatus RouterFilter::decodeHeaders(Http::RequestHeaderMap& headers,
                                                      bool end_stream) {
  request_headers_ = &headers;
  request_end_ = end_stream;
  const RouteEntry* route = callbacks_->route();
  if (route == nullptr) {
    callbacks_->sendLocalReply(404, "no route matched", "NR");
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
          ? route->pickCluster(callbacks_->dispatcher().now().time_since_epoch().count() ^
                               reinterpret_cast<uintptr_t>(this) * 0x9e3779b97f4a7c15ULL)
          : route->cluster();
  info.upstream_cluster = cluster_name;
  cluster_ = callbacks_->clusterManager().getShared(cluster_name);
  if (cluster_ == nullptr) {
    callbacks_->sendLocalReply(503, absl::StrCat("cluster \"", cluster_name, "\" not found"), "NC");
    return Http::FilterHeadersStatus::StopIteration;
  }
  Upstream::LbContext lb_ctx;
  lb_ctx.headers = &headers;
  lb_ctx.client_ip = callbacks_->downstreamAddress();
  endpoint_ = cluster_->chooseEndpoint(lb_ctx);
  if (endpoint_ < 0) {
    callbacks_->sendLocalReply(503, "no healthy upstream", "UH");
    return Http::FilterHeadersStatus::StopIteration;
  }
  const Upstream::Endpoint& ep = cluster_->info().endpoints()[endpoint_];
  info.upstream_host = ep.name;

  std::string rewritten = route->rewrittenPath(headers);
  if (!rewritten.empty()) {
    headers.path = std::move(rewritten);
  }
  if (!route->hostRewrite().empty()) {
    headers.set("host", route->hostRewrite());
  }
  const Upstream::ClusterStats& cs = cluster_->info().stats();
  cs.upstream_rq_total->inc();
  cs.upstream_rq_active->inc();
  ep.stats.rq_total->inc();
  ep.stats.rq_active->inc();
  cluster_->requestStarted(endpoint_);
  active_counted_ = true;
  upstream_start_ = callbacks_->dispatcher().now();
  callbacks_->addDownstreamWatermarkCallbacks(downstream_watermarks_);
  watermark_registered_ = true;
  if (route->timeout().count() > 0) {
    timer_ = callbacks_->dispatcher().createTimer([this]() { onTimeout(); });
    if (end_stream) {
      timer_->enableTimer(route->timeout());
    }
  }
  callbacks_->sendContinueIfExpected();
  startUpstream(false);
  return Http::FilterHeadersStatus::StopIteration;
}

void RouterFilter::startUpstream(bool force_new) {
  Upstream::ConnPool& pool = cluster_->pool(endpoint_);
  pending_ = pool.newStream(*this, force_new);
}

void RouterFilter::onPoolReady(Upstream::ActiveClient& client) {
  pending_ = nullptr;
  client_ = &client;
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

void RouterFilter::onPoolFailure(Upstream::PoolFailureReason reason) {
  pending_ = nullptr;
  if (reason == Upstream::PoolFailureReason::Timeout) {
    upstreamFailed(503, "upstream connect timeout", "UF");
  } else {
    upstreamFailed(503, "upstream connect error", "UF");
  }
}

Http::FilterDataStatus RouterFilter::decodeData(Buffer::Instance& data, bool end_stream) {
  if (end_stream) {
    request_end_ = true;
    if (timer_ && !timer_->enabled()) {
      timer_->enableTimer(callbacks_->route()->timeout());
    }
  }
  if (encoder_ != nullptr && client_ != nullptr) {
    encoder_->encodeData(data, end_stream);
    request_sent_end_ = end_stream;
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  // Not connected yet: hold the body, bounded.
  buffered_body_.move(data);
  if (!downstream_paused_ && buffered_body_.length() > callbacks_->bufferLimit()) {
    downstream_paused_ = true;
    callbacks_->onDecoderFilterAboveWriteBufferHighWatermark();
  }
  return Http::FilterDataStatus::StopIterationNoBuffer;
}

Http::FilterTrailersStatus RouterFilter::decodeTrailers(Http::HeaderMap& trailers) {
  request_end_ = true;
  if (timer_ && !timer_->enabled()) {
    timer_->enableTimer(callbacks_->route()->timeout());
  }
  if (encoder_ != nullptr && client_ != nullptr) {
    encoder_->encodeTrailers(trailers);
    request_sent_end_ = true;
  } else {
    buffered_trailers_ = std::make_unique<Http::HeaderMap>(trailers);
  }
  return Http::FilterTrailersStatus::StopIteration;
}

void RouterFilter::onUpstreamHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) {
  response_headers_seen_ = true;
  const uint32_t cls = headers->status / 100;
  if (cls >= 1 && cls <= 5) {
    cluster_->info().stats().upstream_rq_class[cls]->inc();
  }
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
  if (timer_) timer_->disableTimer();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      callbacks_->dispatcher().now() - upstream_start_)
                      .count();
  cluster_->info().stats().upstream_rq_time->recordMicros(us);
  // The codec finished the exchange: the connection may go back to the pool. Deferred so the
  // codec's own stack unwinds first.
  releaseUpstream(request_sent_end_);
}

void RouterFilter::releaseUpstream(bool reusable) {
  if (active_counted_) {
    active_counted_ = false;
    const Upstream::Endpoint& ep = cluster_->info().endpoints()[endpoint_];
    cluster_->info().stats().upstream_rq_active->dec();
    ep.stats.rq_active->dec();
    cluster_->requestFinished(endpoint_);
  }
  if (pending_ != nullptr) {
    Upstream::ActiveClient* p = pending_;
    pending_ = nullptr;
    cluster_->pool(endpoint_).cancel(*p);
  }
  if (client_ != nullptr) {
    Upstream::ActiveClient* c = client_;
    client_ = nullptr;
    encoder_ = nullptr;
    if (upstream_read_paused_) {
      upstream_read_paused_ = false;
      c->codec().readDisable(false);
    }
    if (!reusable) {
      c->codec().resetStream(Http::StreamResetReason::LocalReset);
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
  // A kept-alive connection the upstream had already closed: retry once on a fresh one when
  // nothing of the request body has been streamed away.
  if (reason == Http::StreamResetReason::ConnectionTermination && reused && !retried_ &&
      !response_headers_seen_ && request_end_ && buffered_body_.empty() &&
      request_headers_ != nullptr && callbacks_->streamInfo().bytes_received == 0) {
    retried_ = true;
    cluster_->info().stats().upstream_rq_retry_stale_connection->inc();
    startUpstream(true);
    return;
  }
  cluster_->info().stats().upstream_rq_reset->inc();
  if (reason == Http::StreamResetReason::ProtocolError) {
    upstreamFailed(502, "invalid response from upstream", "UPE");
  } else {
    upstreamFailed(502, "upstream connection closed before response", "UC");
  }
}

void RouterFilter::upstreamFailed(uint32_t status, absl::string_view message,
                                  absl::string_view flag) {
  response_complete_ = true;
  if (timer_) timer_->disableTimer();
  releaseUpstream(false);
  if (callbacks_->responseStarted()) {
    callbacks_->streamInfo().addFlag(flag);
    callbacks_->resetStream();
  } else {
    callbacks_->sendLocalReply(status, message, flag);
  }
}

void RouterFilter::onTimeout() {
  cluster_->info().stats().upstream_rq_timeout->inc();
  upstreamFailed(504, "upstream request timeout", "UT");
}

void RouterFilter::onAboveWriteBufferHighWatermark() {}
void RouterFilter::onBelowWriteBufferLowWatermark() {}

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
  client_->codec().readDisable(pause);
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
  if (timer_) timer_->disableTimer();
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
