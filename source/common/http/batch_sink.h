#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/async_client.h"
#include "source/common/http/filter.h"
#include "source/common/network/dns_resolver.h"
#include "source/common/stats/stats.h"

namespace sluice {
namespace Http {

// Makes the body of one request from a batch of entries (what the sink sends is the encoder's
// business: a JSON array of log entries, an OTLP ExportTraceServiceRequest, ...).
class BatchEncoder {
 public:
  virtual ~BatchEncoder() = default;
  // `entries`: 1 to queue_size of them, oldest first. Called on the sink's thread.
  virtual std::string encode(const std::vector<std::string>& entries) const = 0;
};
using BatchEncoderConstSharedPtr = std::shared_ptr<const BatchEncoder>;

// Entries that are JSON texts, sent as a JSON array. With `single_when_one` (Kong's http-log
// with queue_size 1), every batch holds one entry and is sent as that entry alone.
class JsonArrayBatchEncoder : public BatchEncoder {
 public:
  explicit JsonArrayBatchEncoder(bool single_when_one) : single_when_one_(single_when_one) {}
  std::string encode(const std::vector<std::string>& entries) const override;

 private:
  const bool single_when_one_;
};

struct BatchSinkSettings {
  HttpUri endpoint;
  std::string method = "POST";
  // Sent with every batch (lower-case names), content-type and authorization included.
  std::vector<std::pair<std::string, std::string>> headers;
  // One request (connect and TLS included).
  std::chrono::milliseconds timeout{10000};
  // An idle connection to the endpoint is kept this long (0: a connection per request).
  std::chrono::milliseconds keepalive{60000};
  // Entries wait at most this long for a batch to fill (from when the sink took the oldest).
  std::chrono::milliseconds flush_timeout{2000};
  // Entries per request.
  uint32_t queue_size = 1;
  // Tries of a failed batch after the first, `initial_retry_delay` apart, doubling up to
  // `max_retry_delay`; then its entries are dropped.
  uint32_t retry_count = 10;
  std::chrono::milliseconds initial_retry_delay{1000};
  std::chrono::milliseconds max_retry_delay{60000};
  // Entries held (queued, and the batch being sent) at most; beyond, the oldest queued ones
  // are dropped. And their bytes at most (0: no bound on bytes).
  uint32_t max_queued_entries = 10000;
  uint64_t max_queued_bytes = 64 * 1024 * 1024;
  // Equal for equal settings: the process-wide sink's key.
  std::string key() const;
};

#define ALL_BATCH_SINK_COUNTERS(COUNTER) \
  COUNTER(entries_sent)                  \
  COUNTER(batches_sent)                  \
  COUNTER(send_failures)                 \
  COUNTER(retries)                       \
  COUNTER(entries_dropped)

// A sink's counters. Written by the sink's thread (and by a worker whose hand-over queue is
// full) with Counter::incShared: several sinks may share a name.
struct BatchSinkStats {
#define SLUICE_BATCH_SINK_COUNTER(name) Stats::Counter* name = nullptr;
  ALL_BATCH_SINK_COUNTERS(SLUICE_BATCH_SINK_COUNTER)
#undef SLUICE_BATCH_SINK_COUNTER
  Stats::Gauge* queued_entries = nullptr;
  // Flat names "<prefix>.<name>.entries_sent", Prometheus "<prefix>_entries_sent_total" with
  // the label `sink="<name>"`.
  static BatchSinkStats create(Stats::Store& store, const std::string& prefix,
                               const std::string& name);
};

// Takes serialized entries from any thread and sends them in batches over HTTP(S) from a thread
// of its own, with its own dispatcher (never a worker, never the main loop): one process-wide
// sink per endpoint and settings (SingletonManager), shared across config versions.
//
// Workers hand entries over without a lock: each worker thread has its own single-producer
// queue per sink, which the sink's thread empties every few milliseconds (and at once when one
// fills up). The sink then batches (queue_size entries, or fewer once the oldest has waited
// flush_timeout), sends one batch at a time on a kept-alive connection, retries a failed batch
// (an error or a status >= 400) with exponential backoff, and drops the oldest entries beyond
// max_queued_entries while the endpoint is down, counting everything.
//
// Shutdown: drain (Drainable) sends everything queued so far, retries at most 200 ms apart,
// until the deadline; the destructor stops the thread and counts what is left as dropped.
class BatchSink : public Drainable {
 public:
  // Starts the thread. `stats` null: counters of the sink's own. `dns` (the bootstrap's
  // dns_resolvers) resolves a host name endpoint on the sink's thread.
  static absl::StatusOr<std::shared_ptr<BatchSink>> create(
      BatchSinkSettings settings, BatchEncoderConstSharedPtr encoder, Stats::Store* stats,
      const std::string& stat_prefix, Network::DnsResolverOptionsConstSharedPtr dns);
  ~BatchSink() override;

  // Any thread (a worker's hot path): hands one entry over. No lock, no syscall (but once
  // per ~2000 entries when the sink lags).
  void enqueue(std::string&& entry);

  // Drainable (main thread at shutdown).
  void startDrain() override;
  bool waitDrained(std::chrono::steady_clock::time_point deadline) override;

  const BatchSinkSettings& settings() const { return settings_; }
  const BatchSinkStats& stats() const { return stats_; }
  // Makes the sink's thread collect the workers' entries now (tests).
  void collectNow();

  // A worker thread's hand-over queue: one producer (that thread), one consumer (the sink).
  class WorkerQueue;

 private:
  BatchSink(BatchSinkSettings settings, BatchEncoderConstSharedPtr encoder);
  WorkerQueue* registerThisThread();
  void run(Network::DnsResolverOptionsConstSharedPtr dns);
  // Sink thread.
  void onTick();
  void collect();
  void maybeSend();
  void sendBatch();
  void onSent(absl::StatusOr<AsyncResponse> response);
  void dropOldest(size_t n);
  void publishIdle();
  size_t leftOver();

  const uint64_t id_;
  const BatchSinkSettings settings_;
  const BatchEncoderConstSharedPtr encoder_;
  std::unique_ptr<Stats::Store> own_stats_;
  BatchSinkStats stats_{};
  std::chrono::milliseconds tick_;

  absl::Mutex queues_mu_;
  std::vector<std::shared_ptr<WorkerQueue>> queues_ ABSL_GUARDED_BY(queues_mu_);
  std::atomic<bool> wake_posted_{false};

  // The sink's thread and what it alone touches.
  Event::DispatcherPtr dispatcher_;
  std::thread thread_;
  Network::DnsResolverPtr resolver_;
  std::unique_ptr<AsyncClient> client_;
  Event::TimerPtr tick_timer_;
  Event::TimerPtr retry_timer_;
  struct Entry {
    std::string data;
    std::chrono::steady_clock::time_point taken;
  };
  std::deque<Entry> queue_;
  uint64_t queued_bytes_ = 0;
  std::vector<std::string> batch_;  // being sent, or waiting to be tried again
  uint64_t batch_bytes_ = 0;
  uint32_t tries_ = 0;  // of the current batch
  bool in_flight_ = false;
  bool waiting_retry_ = false;
  bool draining_ = false;
  bool failing_ = false;          // the last try failed (logged once until one succeeds)
  bool dropping_logged_ = false;  // queue-full drops logged since the last success

  absl::Mutex state_mu_;
  // Draining, and nothing is left to send (what waitDrained() waits for).
  bool drained_ ABSL_GUARDED_BY(state_mu_) = false;
};
using BatchSinkSharedPtr = std::shared_ptr<BatchSink>;

}  // namespace Http
}  // namespace sluice
