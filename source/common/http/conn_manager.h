#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "source/common/access_log/access_log.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/codec.h"
#include "source/common/http/conn_manager_config.h"
#include "source/common/http/filter.h"
#include "source/common/http/http2/codec_impl.h"
#include "source/common/http/path.h"
#include "source/common/network/connection.h"
#include "source/common/router/config.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/cluster_manager.h"

namespace sluice {
namespace Http {

#define ALL_HTTP_COUNTERS(COUNTER)      \
  COUNTER(downstream_cx_total)          \
  COUNTER(downstream_rq_total)          \
  COUNTER(downstream_rq_protocol_error) \
  COUNTER(downstream_cx_header_timeout) \
  COUNTER(downstream_cx_idle_timeout)   \
  COUNTER(downstream_rq_timeout)        \
  COUNTER(downstream_rq_idle_timeout)   \
  COUNTER(downstream_rq_reset)          \
  COUNTER(downstream_cx_drain_close)

#define ALL_HTTP_GAUGES(GAUGE) \
  GAUGE(downstream_cx_active)  \
  GAUGE(downstream_rq_active)

struct HttpStats {
  ALL_HTTP_COUNTERS(SLUICE_DECLARE_COUNTER)
  ALL_HTTP_GAUGES(SLUICE_DECLARE_GAUGE)
  Stats::Counter* downstream_rq_class[6];
  Http2::CodecStats http2;
  static HttpStats create(Stats::Store& store);
};

class ConnectionManagerImpl;

// Where a connection finds its listener's current config (the worker's listener slot, updated
// on every config swap). Each new stream reads it once and keeps that version to its end.
class ConfigSource {
 public:
  virtual ~ConfigSource() = default;
  virtual const ConnectionManagerConfigConstSharedPtr& config() const = 0;
};
using ConfigSourceSharedPtr = std::shared_ptr<const ConfigSource>;

// What a worker gives the connections it owns. Worker-local.
class WorkerContext {
 public:
  WorkerContext(Event::Dispatcher& dispatcher, Upstream::ClusterManager& cm, const HttpStats& stats,
                uint64_t seed);
  Event::Dispatcher& dispatcher() { return dispatcher_; }
  Upstream::ClusterManager& clusterManager() { return cm_; }
  const HttpStats& stats() const { return stats_; }
  uint64_t random() { return rng_(); }
  // A fresh UUIDv4 string.
  std::string uuid();
  // IMF-fixdate for the Date header, recomputed at most once per second.
  const std::string& date();
  AccessLog::WorkerBuffer& accessLogBuffer() { return access_log_; }

  // Connection registry for the timeout sweep and draining.
  void add(ConnectionManagerImpl* c);
  void remove(ConnectionManagerImpl* c);
  size_t connectionCount() const { return connections_; }
  // Checks connection deadlines (called every 100 ms).
  void sweep();
  // Starts draining: idle connections close now, busy ones after their response.
  void drain();
  bool draining() const { return draining_; }
  // Drains only the connections accepted through `source` (a listener that was removed or
  // moved to another address); the rest keep serving.
  void drainListener(const ConfigSource* source);
  // Closes every connection still open (no flush), when the worker stops with connections the
  // drain did not finish: their streams are reset and they are deleted with the dispatcher's
  // deferred work.
  void closeAll();

 private:
  Event::Dispatcher& dispatcher_;
  Upstream::ClusterManager& cm_;
  const HttpStats& stats_;
  std::mt19937_64 rng_;
  std::string date_;
  int64_t date_second_ = -1;
  AccessLog::WorkerBuffer access_log_;
  ConnectionManagerImpl* head_ = nullptr;  // intrusive list
  size_t connections_ = 0;
  size_t peak_connections_ = 0;  // since the last malloc_trim()
  bool draining_ = false;
};

class ActiveStream;

// One downstream HTTP connection: its codec (any protocol, through the codec.h interfaces), its
// active streams (any number; HTTP/1 has one at a time), and its connection-level timeouts
// (request headers, idle without streams). Each stream has its own filter chain, deadlines and
// access-log entry. Worker-local.
class ConnectionManagerImpl : public Network::ConnectionCallbacks,
                              public ServerConnectionCallbacks,
                              public Event::DeferredDeletable {
 public:
  ConnectionManagerImpl(WorkerContext& ctx, ConfigSourceSharedPtr config,
                        Network::ConnectionPtr&& conn);
  ~ConnectionManagerImpl() override;

  // Network::ConnectionCallbacks
  void onData(Buffer::Instance& data, bool end_stream) override;
  void onEvent(Network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;
  // ServerConnectionCallbacks
  RequestDecoder& newStream(ResponseEncoder& encoder) override;
  void onCodecError(const CodecError& error) override;

  // Deadline sweep; returns false if the connection closed.
  void checkDeadline(std::chrono::steady_clock::time_point now);
  void onDrain();
  bool idle() const { return streams_ == nullptr; }
  size_t activeStreams() const { return stream_count_; }
  // The whole worker or just this connection's listener is draining.
  bool draining() const { return draining_ || ctx_.draining(); }

  Network::Connection& connection() { return *connection_; }
  WorkerContext& context() { return ctx_; }
  const std::string& clientIp() const { return client_ip_; }

 private:
  friend class ActiveStream;
  friend class WorkerContext;
  void onStreamDone(ActiveStream& stream);
  // The streams' owning intrusive list (no allocation per stream beyond the stream itself).
  void linkStream(std::unique_ptr<ActiveStream>&& stream);
  std::unique_ptr<ActiveStream> unlinkStream(ActiveStream& stream);
  void close(Network::Connection::CloseType type);
  // Resets every stream in flight with `flag`; true if there was one.
  bool resetStreams(ResponseFlag flag);
  void setIdleDeadline();
  // Answers with a JSON local reply when no stream exists (parse error, header timeout),
  // counts and access-logs it, and closes the connection after the write.
  void replyWithoutStreamAndClose(uint32_t status, absl::string_view message, ResponseFlag flag);
  void writeAccessLog(const ConnectionManagerConfig& config, const StreamInfo& info,
                      const RequestHeaderMap* headers, const Router::RouteEntry* route);

  WorkerContext& ctx_;
  ConfigSourceSharedPtr config_source_;
  ConnectionManagerConfigConstSharedPtr config_;  // refreshed at each new stream
  bool draining_ = false;
  Network::ConnectionPtr connection_;
  ServerConnectionPtr codec_;
  std::unique_ptr<ActiveStream> streams_;  // newest first; each owns the next
  size_t stream_count_ = 0;
  std::string client_ip_;
  // Connection deadline (the streams have their own): request headers, idle without streams.
  enum class Deadline : uint8_t { None, Headers, Idle };
  Deadline deadline_kind_ = Deadline::Idle;
  std::chrono::steady_clock::time_point deadline_;
  ConnectionManagerImpl* prev_ = nullptr;
  ConnectionManagerImpl* next_ = nullptr;
  bool closed_ = false;
  bool codec_error_ = false;
  bool pipeline_paused_ = false;  // reading paused: too many unparsed pipelined bytes
  // The codec is the initial HTTP/1 one until the first bytes (or TLS's ALPN) say which
  // protocol the connection speaks.
  bool protocol_pending_ = true;
  bool http2_ = false;
};

}  // namespace Http
}  // namespace sluice
