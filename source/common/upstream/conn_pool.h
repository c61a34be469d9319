#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/common/http/codec.h"
#include "source/common/network/connection.h"
#include "source/common/upstream/cluster.h"

namespace sluice {
namespace Upstream {

class ConnPool;

// Why the pool could not give a request a connection. Nothing of the request was sent in any
// case; retriable() says whether trying again (another endpoint, after a backoff) makes sense.
enum class PoolFailureReason : uint8_t {
  // Connecting failed (refused, unreachable, closed before ready). Upstream; retriable.
  ConnectFailure,
  // Connecting took longer than the cluster's connect_timeout. Upstream; retriable.
  Timeout,
  // The TLS handshake failed, or the endpoint's certificate did not verify (the details say
  // why). Upstream; retriable (another endpoint may have a good certificate).
  TlsFailure,
  // A circuit breaker (max_connections, max_pending_requests) refused a new connection. Local;
  // not retriable: the request waits in the slot queue instead.
  Overflow,
};

constexpr bool retriable(PoolFailureReason reason) {
  return reason == PoolFailureReason::ConnectFailure || reason == PoolFailureReason::Timeout ||
         reason == PoolFailureReason::TlsFailure;
}

// A name for logs.
constexpr absl::string_view failureReasonName(PoolFailureReason reason) {
  switch (reason) {
    case PoolFailureReason::ConnectFailure:
      return "connect failure";
    case PoolFailureReason::Timeout:
      return "connect timeout";
    case PoolFailureReason::TlsFailure:
      return "TLS failure";
    case PoolFailureReason::Overflow:
      return "overflow";
  }
  return "unknown";
}

class PoolCallbacks;

// One upstream connection with its codec (any protocol: the pool and the router see only
// Http::ClientConnection). Owned by its pool.
class ActiveClient : public Network::ConnectionCallbacks {
 public:
  ActiveClient(ConnPool& pool, Network::ConnectionPtr&& conn);
  ~ActiveClient() override;

  Http::ClientConnection& codec() { return *codec_; }
  Network::Connection& connection() { return *connection_; }
  bool reused() const { return requests_ > 1; }
  // Can the connection carry one more stream now (HTTP/1: only when it has none)?
  bool hasCapacity() const { return active_streams_ < codec_->maxConcurrentStreams(); }
  // A multiplexing (HTTP/2) connection: many requests share it, each its own stream.
  bool multiplexed() const { return multiplexed_; }

  // Network::ConnectionCallbacks
  void onData(Buffer::Instance& data, bool end_stream) override;
  void onEvent(Network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

 private:
  friend class ConnPool;
  ConnPool* pool_;  // changes when a rebuilt cluster adopts the connection (adoptIdle)
  Network::ConnectionPtr connection_;
  Http::ClientConnectionPtr codec_;
  Event::TimerPtr timer_;             // connect timeout, then idle timeout
  PoolCallbacks* waiting_ = nullptr;  // HTTP/1: request waiting for this connection to connect
  PoolCallbacks* owner_ = nullptr;    // HTTP/1: request using this connection
  // HTTP/2: requests waiting for this connection to connect (each holds a pending unit).
  std::vector<PoolCallbacks*> waiters_;
  bool multiplexed_ = false;
  bool settings_known_ = false;  // HTTP/2: the peer's SETTINGS arrived (ready for streams)
  std::list<std::unique_ptr<ActiveClient>>::iterator self_;
  uint64_t requests_ = 0;
  uint32_t active_streams_ = 0;  // handed out and not yet released
  bool connected_ = false;
  bool idle_ = false;
  bool pending_counted_ = false;  // holds one unit of the cluster's max_pending_requests
};

class PoolCallbacks {
 public:
  virtual ~PoolCallbacks() = default;
  virtual void onPoolReady(ActiveClient& client) = 0;
  // `details`: why, when known (the TLS failure: "certificate expired", ...).
  virtual void onPoolFailure(PoolFailureReason reason, absl::string_view details) = 0;
  // Write-buffer watermarks of the connection carrying the request body.
  virtual void onUpstreamAboveWriteBufferHighWatermark() = 0;
  virtual void onUpstreamBelowWriteBufferLowWatermark() = 0;
};

// Per worker, per cluster endpoint: keep-alive connections to one endpoint. A request gets a
// connection with room for one more stream (ActiveClient::hasCapacity()). HTTP/1: an idle one,
// and the request's watermark callbacks are per connection (owner_). HTTP/2 (the cluster's
// `protocol`): any connection below the peer's SETTINGS_MAX_CONCURRENT_STREAMS, or one still
// connecting with room, or a new one; the codec relays watermarks per stream; a connection
// that received GOAWAY takes no new stream and closes when its last one ends.
class ConnPool {
 public:
  ConnPool(Event::Dispatcher& dispatcher, const ClusterInfo& cluster, const Endpoint& endpoint,
           uint32_t buffer_limit);
  ~ConnPool();

  // Gets a connection for `cb`: an idle one right away (onPoolReady before returning), or a new
  // one (onPoolReady/onPoolFailure later). Returns a handle for cancel(), or nullptr if `cb` was
  // already called.
  ActiveClient* newStream(PoolCallbacks& cb, bool force_new);
  // The waiting request `cb` gave up before the connection was ready. HTTP/2: `client` is only
  // a hint (the request may have moved to another connection; it is found by `cb`).
  void cancel(ActiveClient& client, PoolCallbacks& cb);
  // The request is done with the connection. `reusable`: the exchange completed cleanly.
  void release(ActiveClient& client, bool reusable);
  // The request stops hearing from the connection (no watermark callbacks) before it releases
  // it later, e.g. from outside the codec callback it is in.
  void detach(ActiveClient& client) { client.owner_ = nullptr; }

  const Endpoint& endpoint() const { return endpoint_; }
  size_t idleCount() const { return idle_.size(); }

  // Takes over the idle keep-alive connections of `from`, a pool of the previous version of this
  // cluster to the same endpoint (same address, same process-wide cluster state), so a config
  // change that rebuilds the cluster (an endpoint added or removed, a weight changed) keeps the
  // connections to the endpoints that stay. Connections still busy stay with `from`.
  void adoptIdle(ConnPool& from);

 private:
  friend class ActiveClient;
  void onClientEvent(ActiveClient& client, Network::ConnectionEvent event);
  ActiveClient* newMultiplexedStream(PoolCallbacks& cb, bool force_new);
  // Creates a connection to the endpoint for `cb`, which holds a unit of rq_pending: null when
  // max_connections refuses it or connecting fails at once (counted; the unit is released and
  // `cb` told).
  ActiveClient* connect(PoolCallbacks& cb);
  void releaseMultiplexed(ActiveClient& client);
  // HTTP/2: the connection is up; its waiters get their streams.
  void serveWaiters(ActiveClient& client);
  // HTTP/2: the requests waiting for `client` to connect, taken from it (so that it can be
  // destroyed before they are told).
  static std::vector<PoolCallbacks*> takeWaiters(ActiveClient& client);
  // Gives each waiter's rq_pending unit back and tells it the connection failed.
  void failWaiters(std::vector<PoolCallbacks*> waiters, PoolFailureReason reason,
                   const std::string& details);
  void destroy(ActiveClient& client);
  void logTlsFailure(const std::string& why);
  void releasePending(ActiveClient& client);
  // Connect timeout, then idle timeout.
  Event::TimerPtr makeTimer(ActiveClient* client);

  Event::Dispatcher& dispatcher_;
  const ClusterInfo& cluster_;
  const Endpoint& endpoint_;
  const uint32_t buffer_limit_;
  std::list<std::unique_ptr<ActiveClient>> clients_;
  std::vector<ActiveClient*> idle_;  // most recently used last
  std::chrono::steady_clock::time_point last_tls_log_{};
};

}  // namespace Upstream
}  // namespace sluice
