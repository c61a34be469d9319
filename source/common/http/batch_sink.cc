#include "source/common/http/batch_sink.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Http {

std::string JsonArrayBatchEncoder::encode(const std::vector<std::string>& entries) const {
  if (single_when_one_ && entries.size() == 1) return entries.front();
  size_t size = 2;
  for (const std::string& e : entries) size += e.size() + 1;
  std::string out;
  out.reserve(size);
  out += '[';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ',';
    out += entries[i];
  }
  out += ']';
  return out;
}

std::string BatchSinkSettings::key() const {
  std::string k = absl::StrCat(
      endpoint.https ? "https://" : "http://", endpoint.userinfo, "@", endpoint.host_header,
      endpoint.path, "|", method, "|", timeout.count(), "|", keepalive.count(), "|",
      flush_timeout.count(), "|", queue_size, "|", retry_count, "|", initial_retry_delay.count(),
      "|", max_retry_delay.count(), "|", max_queued_entries, "|", max_queued_bytes);
  for (const auto& [name, value] : headers) absl::StrAppend(&k, "|", name, ":", value);
  return k;
}

BatchSinkStats BatchSinkStats::create(Stats::Store& store, const std::string& prefix,
                                      const std::string& name) {
  BatchSinkStats s;
  const Stats::Labels labels = {{"sink", name}};
#define SLUICE_BATCH_SINK_MAKE(stat) \
  s.stat = &store.counter(absl::StrCat(prefix, ".", name, "." #stat), prefix + "_" #stat, labels);
  ALL_BATCH_SINK_COUNTERS(SLUICE_BATCH_SINK_MAKE)
#undef SLUICE_BATCH_SINK_MAKE
  s.queued_entries = &store.gauge(absl::StrCat(prefix, ".", name, ".queued_entries"),
                                  prefix + "_queued_entries", labels);
  return s;
}

// ---------------------------------------------------------------------------------------------

class BatchSink::WorkerQueue {
 public:
  static constexpr uint64_t kCapacity = 4096;

  WorkerQueue() : slots_(new std::string[kCapacity]) {}

  // Producer only. The queue's size after the push (at least), or 0 when it is full.
  uint64_t push(std::string&& entry) {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - cached_head_ >= kCapacity) {
      cached_head_ = head_.load(std::memory_order_acquire);
      if (tail - cached_head_ >= kCapacity) return 0;
    }
    slots_[tail & (kCapacity - 1)] = std::move(entry);
    tail_.store(tail + 1, std::memory_order_release);
    uint64_t size = tail + 1 - cached_head_;
    if (size >= kCapacity / 2) {
      cached_head_ = head_.load(std::memory_order_acquire);
      size = tail + 1 - cached_head_;
    }
    return size;
  }

  // Consumer only: moves every entry out, oldest first.
  template <class F>
  size_t drain(F&& f) {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    const uint64_t tail = tail_.load(std::memory_order_acquire);
    for (uint64_t i = head; i < tail; ++i) f(std::move(slots_[i & (kCapacity - 1)]));
    head_.store(tail, std::memory_order_release);
    return tail - head;
  }

  bool empty() const {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  std::unique_ptr<std::string[]> slots_;
  alignas(64) std::atomic<uint64_t> head_{0};  // next to consume (the sink's)
  alignas(64) std::atomic<uint64_t> tail_{0};  // next to fill (the worker's)
  uint64_t cached_head_ = 0;                   // the producer's last look at head_
};

namespace {

std::atomic<uint64_t> g_next_sink_id{1};

// This thread's hand-over queue of each sink it gave entries to (a worker has one per sink it
// logs to: a linear scan of one or two entries).
struct LocalQueue {
  uint64_t sink;
  std::shared_ptr<BatchSink::WorkerQueue> queue;
};
thread_local std::vector<LocalQueue> t_queues;

constexpr std::chrono::milliseconds kDrainRetryDelay{200};
constexpr size_t kMaxResponseBytes = 1024 * 1024;

}  // namespace

absl::StatusOr<std::shared_ptr<BatchSink>> BatchSink::create(
    BatchSinkSettings settings, BatchEncoderConstSharedPtr encoder, Stats::Store* stats,
    const std::string& stat_prefix, Network::DnsResolverOptionsConstSharedPtr dns) {
  if (settings.queue_size == 0 || settings.max_queued_entries < settings.queue_size) {
    return absl::InvalidArgumentError("queue_size must be >= 1 and <= max_queued_entries");
  }
  if (encoder == nullptr) return absl::InvalidArgumentError("no batch encoder");
  std::shared_ptr<BatchSink> sink(new BatchSink(std::move(settings), std::move(encoder)));
  if (stats == nullptr) {
    sink->own_stats_ = std::make_unique<Stats::Store>(1);
    stats = sink->own_stats_.get();
  }
  const HttpUri& uri = sink->settings_.endpoint;
  std::string name = uri.host_header + uri.path.substr(0, uri.path.find('?'));
  sink->stats_ = BatchSinkStats::create(*stats, stat_prefix, name);
  BatchSink* raw = sink.get();
  sink->thread_ = std::thread([raw, dns]() { raw->run(dns); });
  return sink;
}

BatchSink::BatchSink(BatchSinkSettings settings, BatchEncoderConstSharedPtr encoder)
    : id_(g_next_sink_id.fetch_add(1)),
      settings_(std::move(settings)),
      encoder_(std::move(encoder)),
      dispatcher_(Event::createLibeventDispatcher()) {
  tick_ = std::clamp(settings_.flush_timeout / 4, std::chrono::milliseconds(5),
                     std::chrono::milliseconds(50));
}

BatchSink::~BatchSink() {
  if (thread_.joinable()) {
    dispatcher_->post([this]() { dispatcher_->exit(); });
    thread_.join();
  }
  const size_t left = leftOver();
  if (left > 0) {
    stats_.entries_dropped->incShared(left);
    spdlog::warn("log sink {}: {} entries not sent (stopped)", settings_.endpoint.displayName(),
                 left);
  }
}

void BatchSink::run(Network::DnsResolverOptionsConstSharedPtr dns) {
  if (!settings_.endpoint.host_name.empty()) {
    auto r = Network::createDnsResolver(*dispatcher_,
                                        dns != nullptr ? *dns : Network::DnsResolverOptions{});
    if (r.ok()) {
      resolver_ = std::move(*r);
    } else {
      spdlog::error("log sink {}: no DNS resolver: {}", settings_.endpoint.displayName(),
                    std::string(r.status().message()));
    }
  }
  AsyncClient::Options options;
  options.timeout = settings_.timeout;
  options.keepalive = settings_.keepalive;
  options.max_response_bytes = kMaxResponseBytes;
  client_ =
      std::make_unique<AsyncClient>(*dispatcher_, settings_.endpoint, options, resolver_.get());
  tick_timer_ = dispatcher_->createTimer([this]() {
    onTick();
    tick_timer_->enableTimer(tick_);
  });
  retry_timer_ = dispatcher_->createTimer([this]() {
    waiting_retry_ = false;
    sendBatch();
  });
  tick_timer_->enableTimer(tick_);
  dispatcher_->run();
  retry_timer_.reset();
  tick_timer_.reset();
  client_.reset();
  dispatcher_->runDeferredNow();
  resolver_.reset();
}

void BatchSink::enqueue(std::string&& entry) {
  WorkerQueue* q = nullptr;
  for (const LocalQueue& l : t_queues) {
    if (l.sink == id_) {
      q = l.queue.get();
      break;
    }
  }
  if (q == nullptr) q = registerThisThread();
  const uint64_t size = q->push(std::move(entry));
  if (size == 0) {
    stats_.entries_dropped->incShared();  // the sink's thread is far behind: drop the newest
    return;
  }
  if (size >= WorkerQueue::kCapacity / 2 && !wake_posted_.exchange(true)) {
    dispatcher_->post([this]() { onTick(); });  // collect before the tick: this one fills up
  }
}

BatchSink::WorkerQueue* BatchSink::registerThisThread() {
  auto q = std::make_shared<WorkerQueue>();
  {
    absl::MutexLock lock(&queues_mu_);
    queues_.push_back(q);
  }
  t_queues.push_back(LocalQueue{id_, q});
  return q.get();
}

void BatchSink::collectNow() {
  dispatcher_->post([this]() { onTick(); });
}

void BatchSink::onTick() {
  wake_posted_.store(false);
  collect();
  maybeSend();
  publishIdle();
}

void BatchSink::collect() {
  std::vector<std::shared_ptr<WorkerQueue>> queues;
  {
    absl::MutexLock lock(&queues_mu_);
    // A queue only the sink holds belongs to a thread that exited: dropped once emptied.
    queues = queues_;
    queues_.erase(std::remove_if(queues_.begin(), queues_.end(),
                                 [](const std::shared_ptr<WorkerQueue>& q) {
                                   return q.use_count() == 2 && q->empty();  // + `queues`
                                 }),
                  queues_.end());
  }
  const auto now = dispatcher_->now();
  size_t taken = 0;
  for (const auto& q : queues) {
    taken += q->drain([this, now](std::string&& e) {
      queued_bytes_ += e.size();
      queue_.push_back(Entry{std::move(e), now});
    });
  }
  size_t over = 0;
  while (over < queue_.size() &&
         (queue_.size() - over + batch_.size() > settings_.max_queued_entries ||
          (settings_.max_queued_bytes > 0 &&
           queued_bytes_ + batch_bytes_ > settings_.max_queued_bytes))) {
    queued_bytes_ -= queue_[over].data.size();
    ++over;
  }
  if (over > 0) dropOldest(over);
  stats_.queued_entries->addShared(static_cast<int64_t>(taken) - static_cast<int64_t>(over));
}

void BatchSink::dropOldest(size_t n) {
  // queued_bytes_ is already reduced by the caller.
  queue_.erase(queue_.begin(), queue_.begin() + n);
  stats_.entries_dropped->incShared(n);
  if (!dropping_logged_) {
    dropping_logged_ = true;
    spdlog::warn("log sink {}: queue full ({} entries): dropping the oldest",
                 settings_.endpoint.displayName(), settings_.max_queued_entries);
  }
}

void BatchSink::maybeSend() {
  if (in_flight_ || waiting_retry_ || queue_.empty()) return;
  const bool full = queue_.size() >= settings_.queue_size;
  const bool waited = dispatcher_->now() - queue_.front().taken >= settings_.flush_timeout;
  if (!full && !waited && !draining_) return;
  const size_t n = std::min<size_t>(queue_.size(), settings_.queue_size);
  batch_.clear();
  batch_.reserve(n);
  batch_bytes_ = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string& e = queue_.front().data;
    batch_bytes_ += e.size();
    queued_bytes_ -= e.size();
    batch_.push_back(std::move(e));
    queue_.pop_front();
  }
  tries_ = 0;
  sendBatch();
}

void BatchSink::sendBatch() {
  ++tries_;
  AsyncRequest request;
  request.method = settings_.method;
  request.headers = settings_.headers;
  request.body = encoder_->encode(batch_);
  in_flight_ = true;
  client_->send(std::move(request),
                [this](absl::StatusOr<AsyncResponse> response) { onSent(std::move(response)); });
}

void BatchSink::onSent(absl::StatusOr<AsyncResponse> response) {
  in_flight_ = false;
  const size_t n = batch_.size();
  if (response.ok() && response->status < 400) {
    stats_.entries_sent->incShared(n);
    stats_.batches_sent->incShared();
    stats_.queued_entries->addShared(-static_cast<int64_t>(n));
    if (failing_) {
      spdlog::info("log sink {}: sending again", settings_.endpoint.displayName());
    }
    failing_ = false;
    dropping_logged_ = false;
    batch_.clear();
    batch_bytes_ = 0;
    tries_ = 0;
  } else {
    stats_.send_failures->incShared();
    const std::string why = response.ok() ? absl::StrCat("HTTP status ", response->status)
                                          : std::string(response.status().message());
    if (tries_ <= settings_.retry_count) {
      stats_.retries->incShared();
      std::chrono::milliseconds delay = settings_.initial_retry_delay;
      for (uint32_t i = 1; i < tries_ && delay < settings_.max_retry_delay; ++i) delay *= 2;
      delay = std::min(delay, settings_.max_retry_delay);
      if (draining_) delay = std::min(delay, kDrainRetryDelay);
      if (!failing_) {
        spdlog::warn("log sink {}: sending {} entries failed ({}); retrying, {} ms apart and more",
                     settings_.endpoint.displayName(), n, why, delay.count());
      }
      failing_ = true;
      waiting_retry_ = true;
      retry_timer_->enableTimer(delay);
    } else {
      stats_.entries_dropped->incShared(n);
      stats_.queued_entries->addShared(-static_cast<int64_t>(n));
      spdlog::error("log sink {}: {} entries dropped after {} tries (last: {})",
                    settings_.endpoint.displayName(), n, tries_, why);
      batch_.clear();
      batch_bytes_ = 0;
      tries_ = 0;
    }
  }
  maybeSend();
  publishIdle();
}

void BatchSink::startDrain() {
  dispatcher_->post([this]() {
    draining_ = true;
    if (waiting_retry_) retry_timer_->enableTimer(std::chrono::milliseconds(0));
    collect();
    maybeSend();
    publishIdle();
  });
}

bool BatchSink::waitDrained(std::chrono::steady_clock::time_point deadline) {
  absl::MutexLock lock(&state_mu_);
  const auto left = deadline - std::chrono::steady_clock::now();
  return state_mu_.AwaitWithTimeout(absl::Condition(&drained_),
                                    absl::FromChrono(std::max(left, left.zero())));
}

void BatchSink::publishIdle() {
  bool workers_empty = true;
  {
    absl::MutexLock lock(&queues_mu_);
    for (const auto& q : queues_) workers_empty = workers_empty && q->empty();
  }
  const bool idle = workers_empty && queue_.empty() && batch_.empty() && !in_flight_;
  absl::MutexLock lock(&state_mu_);
  drained_ = draining_ && idle;
}

size_t BatchSink::leftOver() {
  size_t n = queue_.size() + batch_.size();
  absl::MutexLock lock(&queues_mu_);
  for (const auto& q : queues_) n += q->drain([](std::string&&) {});
  return n;
}

}  // namespace Http
}  // namespace sluice
