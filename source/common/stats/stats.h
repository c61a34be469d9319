#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace sluice {
namespace Stats {

// Each thread that writes stats has a slot: 0 for the main thread, 1..N for workers. A writer
// only touches its own cache-line-padded slot (no atomic read-modify-write, no sharing); readers
// (admin, main thread) sum the slots.
extern thread_local uint32_t t_slot;

using Labels = std::vector<std::pair<std::string, std::string>>;

struct StatName {
  // Flat, Envoy-style name shown by /stats: "cluster.users.upstream_rq_total".
  std::string flat;
  // Prometheus metric name without the "sluice_" prefix and its labels.
  std::string prom;
  Labels labels;
};

class Counter {
 public:
  Counter(StatName name, uint32_t slots) : name_(std::move(name)), slots_(new Slot[slots]) {}
  void inc(uint64_t n = 1) {
    auto& v = slots_[t_slot].v;
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // From a thread outside the slot model (a background sender, any number of them sharing the
  // counter): an atomic add to slot 0. Only for counters the main thread never inc()s.
  void incShared(uint64_t n = 1) { slots_[0].v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value(uint32_t slots) const;
  const StatName& name() const { return name_; }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> v{0};
  };
  StatName name_;
  std::unique_ptr<Slot[]> slots_;
};

class Gauge {
 public:
  Gauge(StatName name, uint32_t slots) : name_(std::move(name)), slots_(new Slot[slots]) {}
  void add(int64_t n) {
    auto& v = slots_[t_slot].v;
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void inc() { add(1); }
  void dec() { add(-1); }
  // As Counter::incShared.
  void addShared(int64_t n) { slots_[0].v.fetch_add(n, std::memory_order_relaxed); }
  int64_t value(uint32_t slots) const;
  const StatName& name() const { return name_; }

 private:
  struct alignas(64) Slot {
    std::atomic<int64_t> v{0};
  };
  StatName name_;
  std::unique_ptr<Slot[]> slots_;
};

// Latency histogram in milliseconds with Envoy's default bucket bounds.
class Histogram {
 public:
  static constexpr double kBounds[] = {0.5,   1,      5,      10,      25,     50,    100,
                                       250,   500,    1000,   2500,    5000,   10000, 30000,
                                       60000, 300000, 600000, 1800000, 3600000};
  static constexpr size_t kNumBuckets = sizeof(kBounds) / sizeof(kBounds[0]);

  Histogram(StatName name, uint32_t slots) : name_(std::move(name)), slots_(new Slot[slots]) {}
  void recordMicros(uint64_t us);
  const StatName& name() const { return name_; }

  struct Summary {
    uint64_t count = 0;
    double sum_ms = 0;
    uint64_t buckets[kNumBuckets] = {};  // non-cumulative
    // Estimated quantile (0..1) from the buckets, in ms.
    double quantile(double q) const;
  };
  Summary summarize(uint32_t slots) const;

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_us{0};
    std::atomic<uint64_t> buckets[kNumBuckets] = {};
  };
  StatName name_;
  std::unique_ptr<Slot[]> slots_;
};

// Owns every stat. Stats are created on the main thread (when config is compiled) and live as
// long as the process, so a config change never resets a counter.
class Store {
 public:
  explicit Store(uint32_t writer_slots) : slots_(writer_slots) {}
  uint32_t slots() const { return slots_; }

  // `flat` is the /stats name, `prom` the Prometheus name (without "sluice_") with `labels`.
  Counter& counter(const std::string& flat, const std::string& prom, const Labels& labels = {});
  Gauge& gauge(const std::string& flat, const std::string& prom, const Labels& labels = {});
  Histogram& histogram(const std::string& flat, const std::string& prom, const Labels& labels = {});

  std::string renderText() const;
  std::string renderJson() const;
  std::string renderPrometheus() const;
  // Value of a counter or gauge by flat name (tests, admin); -1 when unknown.
  int64_t valueOf(const std::string& flat) const;

 private:
  const uint32_t slots_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>> counters_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Gauge>> gauges_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Histogram>> histograms_ ABSL_GUARDED_BY(mu_);
};

}  // namespace Stats
}  // namespace sluice
