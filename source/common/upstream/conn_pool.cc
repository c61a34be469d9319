#include "source/common/upstream/conn_pool.h"

#include <algorithm>

#include "source/common/http/codec_factory.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Upstream {

namespace {
// Deferred deletion wrapper for an ActiveClient removed from its pool.
struct DeadClient : public Event::DeferredDeletable {
  explicit DeadClient(std::unique_ptr<ActiveClient>&& c) : client(std::move(c)) {}
  std::unique_ptr<ActiveClient> client;
};
}  // namespace

ActiveClient::ActiveClient(ConnPool& pool, Network::ConnectionPtr&& conn)
    : pool_(&pool), connection_(std::move(conn)) {
  connection_->setCallbacks(this);
  connection_->setBufferLimits(pool.buffer_limit_);
  // The request using this connection releases it (ConnPool::release) when its response ends.
  multiplexed_ = pool.cluster_.http2();
  codec_ = Http::createClientConnection(
      *connection_, multiplexed_ ? Http::Protocol::Http2 : Http::Protocol::Http11);
}

ActiveClient::~ActiveClient() {
  if (connection_ && !connection_->closed()) {
    connection_->setCallbacks(nullptr);
    connection_->close(Network::Connection::CloseType::NoFlush);
  }
}

void ActiveClient::onData(Buffer::Instance& data, bool end_stream) {
  if (idle_ && !multiplexed_) {
    // An idle keep-alive connection got bytes or EOF: the upstream closed it (or misbehaves).
    data.drain(data.length());
    connection_->close(Network::Connection::CloseType::NoFlush);
    return;
  }
  codec_->dispatch(data);
  if (multiplexed_ && connected_ && !settings_known_ && codec_->peerSettingsKnown() &&
      !connection_->closing()) {
    // The peer's limits are known: the waiters get their streams now.
    settings_known_ = true;
    timer_->disableTimer();
    pool_->serveWaiters(*this);
  }
  if (end_stream && !connection_->closed()) {
    codec_->onConnectionClose();
    connection_->close(Network::Connection::CloseType::NoFlush);
  }
}

void ActiveClient::onEvent(Network::ConnectionEvent event) { pool_->onClientEvent(*this, event); }

void ActiveClient::onAboveWriteBufferHighWatermark() {
  if (multiplexed_) {
    codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();  // to each stream
  } else if (owner_) {
    owner_->onUpstreamAboveWriteBufferHighWatermark();
  }
}

void ActiveClient::onBelowWriteBufferLowWatermark() {
  if (multiplexed_) {
    codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
  } else if (owner_) {
    owner_->onUpstreamBelowWriteBufferLowWatermark();
  }
}

ConnPool::ConnPool(Event::Dispatcher& dispatcher, const ClusterInfo& cluster,
                   const Endpoint& endpoint, uint32_t buffer_limit)
    : dispatcher_(dispatcher),
      cluster_(cluster),
      endpoint_(endpoint),
      buffer_limit_(buffer_limit) {}

ConnPool::~ConnPool() {
  for (auto& c : clients_) {
    releasePending(*c);
    for (size_t i = 0; i < c->waiters_.size(); ++i) {
      ClusterState::release(cluster_.state().rq_pending);
    }
    c->waiters_.clear();
    ClusterState::release(cluster_.state().cx_active);
    c->waiting_ = nullptr;
    c->owner_ = nullptr;
    if (c->connection_ && !c->connection_->closed()) {
      c->connection_->setCallbacks(nullptr);
      c->connection_->close(Network::Connection::CloseType::NoFlush);
    }
    dispatcher_.deferredDelete(std::make_unique<DeadClient>(std::move(c)));
  }
}

ActiveClient* ConnPool::newStream(PoolCallbacks& cb, bool force_new) {
  if (cluster_.http2()) {
    return newMultiplexedStream(cb, force_new);
  }
  while (!force_new && !idle_.empty()) {
    ActiveClient* c = idle_.back();
    idle_.pop_back();
    c->idle_ = false;
    if (!c->hasCapacity()) {
      continue;  // at its stream limit: back in idle_ when a stream is released
    }
    if (c->connection_->closed() || !c->codec_->reusable()) {
      c->connection_->close(Network::Connection::CloseType::NoFlush);
      continue;
    }
    c->timer_->disableTimer();
    c->owner_ = &cb;
    c->requests_++;
    c->active_streams_++;
    cluster_.stats().upstream_cx_reused->inc();
    cb.onPoolReady(*c);
    return nullptr;
  }
  // Circuit breakers, shared by every worker: requests waiting for a connection, connections.
  ClusterState& state = cluster_.state();
  const CircuitBreakerConfig& limits = cluster_.circuitBreakers();
  if (!ClusterState::tryAcquire(state.rq_pending, limits.max_pending_requests)) {
    cluster_.stats().upstream_rq_pending_overflow->inc();
    cb.onPoolFailure(PoolFailureReason::Overflow, "");
    return nullptr;
  }
  ActiveClient* raw = connect(cb);
  if (raw == nullptr) return nullptr;
  raw->waiting_ = &cb;
  raw->pending_counted_ = true;
  return raw;
}

ActiveClient* ConnPool::connect(PoolCallbacks& cb) {
  ClusterState& state = cluster_.state();
  if (!ClusterState::tryAcquire(state.cx_active, cluster_.circuitBreakers().max_connections)) {
    ClusterState::release(state.rq_pending);
    cluster_.stats().upstream_cx_overflow->inc();
    cb.onPoolFailure(PoolFailureReason::Overflow, "");
    return nullptr;
  }
  auto conn = Network::Connection::connect(
      dispatcher_, endpoint_.address,
      cluster_.tls() != nullptr ? cluster_.tls()->newSocket() : nullptr);
  if (conn == nullptr) {
    ClusterState::release(state.cx_active);
    ClusterState::release(state.rq_pending);
    cluster_.stats().upstream_cx_connect_fail->inc();
    endpoint_.stats.connect_fail->inc();
    cb.onPoolFailure(PoolFailureReason::ConnectFailure, "");
    return nullptr;
  }
  cluster_.stats().upstream_cx_total->inc();
  cluster_.stats().upstream_cx_active->inc();
  auto client = std::make_unique<ActiveClient>(*this, std::move(conn));
  ActiveClient* raw = client.get();
  raw->timer_ = makeTimer(raw);
  raw->timer_->enableTimer(cluster_.connectTimeout());
  clients_.push_back(std::move(client));
  raw->self_ = std::prev(clients_.end());
  return raw;
}

ActiveClient* ConnPool::newMultiplexedStream(PoolCallbacks& cb, bool force_new) {
  ClusterState& state = cluster_.state();
  const CircuitBreakerConfig& limits = cluster_.circuitBreakers();
  if (!force_new) {
    // A connected connection with room (the first found: few connections per endpoint).
    for (auto& c : clients_) {
      if (c->settings_known_ && c->hasCapacity() && c->codec_->reusable() &&
          !c->connection_->closing()) {
        c->timer_->disableTimer();
        c->idle_ = false;
        c->requests_++;
        c->active_streams_++;
        if (c->requests_ > 1) cluster_.stats().upstream_cx_reused->inc();
        cb.onPoolReady(*c);
        return nullptr;
      }
    }
  }
  if (!ClusterState::tryAcquire(state.rq_pending, limits.max_pending_requests)) {
    cluster_.stats().upstream_rq_pending_overflow->inc();
    cb.onPoolFailure(PoolFailureReason::Overflow, "");
    return nullptr;
  }
  if (!force_new) {
    // One still connecting, with room for one more once it is up.
    for (auto& c : clients_) {
      if (!c->settings_known_ && !c->connection_->closing() &&
          c->waiters_.size() < c->codec_->maxConcurrentStreams()) {
        c->waiters_.push_back(&cb);
        return c.get();
      }
    }
  }
  ActiveClient* raw = connect(cb);
  if (raw == nullptr) return nullptr;
  raw->waiters_.push_back(&cb);
  return raw;
}

void ConnPool::serveWaiters(ActiveClient& client) {
  for (PoolCallbacks* w : takeWaiters(client)) {
    ClusterState::release(cluster_.state().rq_pending);
    if (!client.hasCapacity() || !client.codec_->reusable() || client.connection_->closing()) {
      // More waited than the peer takes at once: another connection (or a new one) for them.
      newMultiplexedStream(*w, false);
      continue;
    }
    client.requests_++;
    client.active_streams_++;
    if (client.requests_ > 1) cluster_.stats().upstream_cx_reused->inc();
    w->onPoolReady(client);
  }
  if (client.active_streams_ == 0) {
    releaseMultiplexed(client);  // everybody left meanwhile: idle
  }
}

std::vector<PoolCallbacks*> ConnPool::takeWaiters(ActiveClient& client) {
  std::vector<PoolCallbacks*> waiters = std::move(client.waiters_);
  client.waiters_.clear();
  return waiters;
}

void ConnPool::failWaiters(std::vector<PoolCallbacks*> waiters, PoolFailureReason reason,
                           const std::string& details) {
  for (PoolCallbacks* w : waiters) {
    ClusterState::release(cluster_.state().rq_pending);
    w->onPoolFailure(reason, details);
  }
}

void ConnPool::releaseMultiplexed(ActiveClient& client) {
  if (client.connection_->closed()) return;
  if (!client.codec_->reusable() || client.connection_->closing()) {
    // GOAWAY received (or closing): no new streams; it goes once the last one ends.
    if (client.active_streams_ == 0 && client.waiters_.empty()) {
      client.connection_->close(Network::Connection::CloseType::NoFlush);
    }
    return;
  }
  if (client.active_streams_ == 0) {
    client.idle_ = true;
    if (cluster_.idleTimeout().count() > 0) {
      client.timer_->enableTimer(cluster_.idleTimeout());
    }
  }
}

Event::TimerPtr ConnPool::makeTimer(ActiveClient* raw) {
  return dispatcher_.createTimer([this, raw]() {
    if (!raw->connected_ || (raw->multiplexed_ && !raw->settings_known_)) {
      cluster_.stats().upstream_cx_connect_timeout->inc();
      cluster_.stats().upstream_cx_connect_fail->inc();
      endpoint_.stats.connect_fail->inc();
      PoolCallbacks* w = raw->waiting_;
      raw->waiting_ = nullptr;
      releasePending(*raw);
      failWaiters(takeWaiters(*raw), PoolFailureReason::Timeout, "");
      raw->connection_->close(Network::Connection::CloseType::NoFlush);
      if (w) w->onPoolFailure(PoolFailureReason::Timeout, "");
    } else if (raw->idle_ && raw->active_streams_ == 0) {
      raw->connection_->close(Network::Connection::CloseType::NoFlush);
    }
  });
}

void ConnPool::adoptIdle(ConnPool& from) {
  if (&from.cluster_.state() != &cluster_.state() || from.endpoint_.name != endpoint_.name) {
    return;
  }
  std::vector<ActiveClient*> left;
  for (ActiveClient* c : from.idle_) {
    if (idle_.size() >= cluster_.maxIdlePerEndpoint() || c->connection_->closed()) {
      left.push_back(c);  // closes with `from`
      continue;
    }
    // std::list::splice keeps c->self_ valid; it now points into this pool's list.
    clients_.splice(clients_.end(), from.clients_, c->self_);
    c->pool_ = this;
    c->timer_ = makeTimer(c);
    if (cluster_.idleTimeout().count() > 0) {
      c->timer_->enableTimer(cluster_.idleTimeout());
    }
    idle_.push_back(c);
  }
  from.idle_ = std::move(left);
}

void ConnPool::releasePending(ActiveClient& client) {
  if (client.pending_counted_) {
    client.pending_counted_ = false;
    ClusterState::release(cluster_.state().rq_pending);
  }
}

void ConnPool::cancel(ActiveClient& client, PoolCallbacks& cb) {
  if (cluster_.http2()) {
    // `client` is not touched: the handle may name a connection the request has left.
    // Others may wait for the same connection: only this request leaves (the connection
    // stays, and is idle once up if nobody else needs it). The request may have moved to
    // another connection meanwhile (serveWaiters): it is looked for on every one.
    for (auto& c : clients_) {
      auto it = std::find(c->waiters_.begin(), c->waiters_.end(), &cb);
      if (it != c->waiters_.end()) {
        c->waiters_.erase(it);
        ClusterState::release(cluster_.state().rq_pending);
        return;
      }
    }
    return;
  }
  client.waiting_ = nullptr;
  releasePending(client);
  client.connection_->close(Network::Connection::CloseType::NoFlush);
}

void ConnPool::release(ActiveClient& client, bool reusable) {
  client.owner_ = nullptr;
  if (client.active_streams_ > 0) {
    client.active_streams_--;
  }
  if (client.multiplexed_) {
    // The stream ended (or was reset by the request): the connection itself stays.
    releaseMultiplexed(client);
    return;
  }
  if (!reusable || !client.codec_->reusable() || client.connection_->closed() ||
      idle_.size() >= cluster_.maxIdlePerEndpoint() || client.connection_->readDisabled()) {
    if (!client.connection_->closed()) {
      client.connection_->close(Network::Connection::CloseType::NoFlush);
    }
    return;
  }
  client.idle_ = true;
  idle_.push_back(&client);
  if (cluster_.idleTimeout().count() > 0) {
    client.timer_->enableTimer(cluster_.idleTimeout());
  }
}

void ConnPool::onClientEvent(ActiveClient& client, Network::ConnectionEvent event) {
  switch (event) {
    case Network::ConnectionEvent::Connected: {
      client.connected_ = true;
      if (client.multiplexed_) {
        // Ready once the peer's SETTINGS say how many streams it takes (the connect timeout
        // keeps running until then).
        return;
      }
      client.timer_->disableTimer();
      releasePending(client);
      PoolCallbacks* w = client.waiting_;
      client.waiting_ = nullptr;
      if (w != nullptr) {
        client.owner_ = w;
        client.requests_++;
        client.active_streams_++;
        w->onPoolReady(client);
      } else {
        // Nobody waits any more: keep it as an idle connection.
        release(client, true);
      }
      return;
    }
    case Network::ConnectionEvent::ConnectFailed: {
      cluster_.stats().upstream_cx_connect_fail->inc();
      endpoint_.stats.connect_fail->inc();
      PoolCallbacks* w = client.waiting_;
      client.waiting_ = nullptr;
      // Copied: destroy() frees the connection.
      const std::string tls_failure = client.connection_->transportFailureReason();
      if (!tls_failure.empty()) logTlsFailure(tls_failure);
      const PoolFailureReason reason =
          tls_failure.empty() ? PoolFailureReason::ConnectFailure : PoolFailureReason::TlsFailure;
      std::vector<PoolCallbacks*> waiters = takeWaiters(client);
      destroy(client);
      failWaiters(std::move(waiters), reason, tls_failure);
      if (w != nullptr) w->onPoolFailure(reason, tls_failure);
      return;
    }
    case Network::ConnectionEvent::RemoteClose:
    case Network::ConnectionEvent::LocalClose: {
      PoolCallbacks* owner = client.owner_;
      PoolCallbacks* w = client.waiting_;
      client.owner_ = nullptr;
      client.waiting_ = nullptr;
      if (owner != nullptr || client.multiplexed_) {
        // Completes a close-delimited response, or resets the streams in flight.
        client.codec_->onConnectionClose();
      }
      std::vector<PoolCallbacks*> waiters = takeWaiters(client);
      destroy(client);
      failWaiters(std::move(waiters), PoolFailureReason::ConnectFailure, "");
      if (w != nullptr) w->onPoolFailure(PoolFailureReason::ConnectFailure, "");
      return;
    }
  }
}

void ConnPool::logTlsFailure(const std::string& why) {
  cluster_.stats().upstream_cx_tls_fail->inc();
  // At most one line a second per endpoint and worker: a bad certificate fails every attempt.
  const auto now = dispatcher_.now();
  if (now - last_tls_log_ < std::chrono::seconds(1)) return;
  last_tls_log_ = now;
  spdlog::warn("cluster \"{}\" endpoint {}: TLS: {}", cluster_.name(), endpoint_.name, why);
}

void ConnPool::destroy(ActiveClient& client) {
  auto it = std::find(idle_.begin(), idle_.end(), &client);
  if (it != idle_.end()) {
    idle_.erase(it);
  }
  releasePending(client);
  ClusterState::release(cluster_.state().cx_active);
  cluster_.stats().upstream_cx_active->dec();
  if (client.timer_) client.timer_->disableTimer();
  std::unique_ptr<ActiveClient> owned = std::move(*client.self_);
  clients_.erase(client.self_);
  dispatcher_.deferredDelete(std::make_unique<DeadClient>(std::move(owned)));
}

}  // namespace Upstream
}  // namespace sluice
