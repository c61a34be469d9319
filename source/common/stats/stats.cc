#include "source/common/stats/stats.h"

#include <algorithm>
#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "source/common/common/json.h"

namespace sluice {
namespace Stats {

thread_local uint32_t t_slot = 0;

constexpr double Histogram::kBounds[];

uint64_t Counter::value(uint32_t slots) const {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < slots; ++i) {
    sum += slots_[i].v.load(std::memory_order_relaxed);
  }
  return sum;
}

int64_t Gauge::value(uint32_t slots) const {
  int64_t sum = 0;
  for (uint32_t i = 0; i < slots; ++i) {
    sum += slots_[i].v.load(std::memory_order_relaxed);
  }
  return sum;
}

void Histogram::recordMicros(uint64_t us) {
  // kBounds in microseconds, as integers: the search is a few integer compares (most requests
  // land in the first buckets).
  static constexpr auto kBoundsUs = []() {
    std::array<uint64_t, kNumBuckets> out{};
    for (size_t i = 0; i < kNumBuckets; ++i) out[i] = static_cast<uint64_t>(kBounds[i] * 1000);
    return out;
  }();
  Slot& s = slots_[t_slot];
  size_t b = 0;
  while (b < kNumBuckets && us > kBoundsUs[b]) {
    ++b;
  }
  auto bump = [](std::atomic<uint64_t>& v, uint64_t n) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  };
  bump(s.count, 1);
  bump(s.sum_us, us);
  if (b < kNumBuckets) {
    bump(s.buckets[b], 1);
  }
}

Histogram::Summary Histogram::summarize(uint32_t slots) const {
  Summary out;
  uint64_t sum_us = 0;
  for (uint32_t i = 0; i < slots; ++i) {
    out.count += slots_[i].count.load(std::memory_order_relaxed);
    sum_us += slots_[i].sum_us.load(std::memory_order_relaxed);
    for (size_t b = 0; b < kNumBuckets; ++b) {
      out.buckets[b] += slots_[i].buckets[b].load(std::memory_order_relaxed);
    }
  }
  out.sum_ms = sum_us / 1000.0;
  return out;
}

double Histogram::Summary::quantile(double q) const {
  if (count == 0) {
    return 0;
  }
  const double target = q * count;
  uint64_t seen = 0;
  for (size_t b = 0; b < kNumBuckets; ++b) {
    if (seen + buckets[b] >= target && buckets[b] > 0) {
      const double lo = b == 0 ? 0 : kBounds[b - 1];
      const double frac = (target - seen) / buckets[b];
      return lo + (kBounds[b] - lo) * frac;
    }
    seen += buckets[b];
  }
  return kBounds[kNumBuckets - 1];
}

namespace {
std::string key(const std::string& prom, const Labels& labels) {
  std::string k = prom;
  for (const auto& [a, b] : labels) {
    absl::StrAppend(&k, "|", a, "=", b);
  }
  return k;
}

std::string promLabels(const Labels& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) {
    return "";
  }
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) {
    std::string escaped;
    for (char c : v) {
      if (c == '\\' || c == '"') {
        escaped += '\\';
      }
      if (c == '\n') {
        escaped += "\\n";
        continue;
      }
      escaped += c;
    }
    parts.push_back(absl::StrCat(k, "=\"", escaped, "\""));
  }
  if (!extra.empty()) {
    parts.push_back(extra);
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string fmtDouble(double v) { return absl::StrFormat("%.10g", v); }

// Prometheus counters end in "_total".
std::string promCounterName(const std::string& prom) {
  return absl::EndsWith(prom, "_total") ? prom : prom + "_total";
}
}  // namespace

Counter& Store::counter(const std::string& flat, const std::string& prom, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = counters_[key(prom, labels)];
  if (!slot) {
    slot = std::make_unique<Counter>(StatName{flat, prom, labels}, slots_);
  }
  return *slot;
}

Gauge& Store::gauge(const std::string& flat, const std::string& prom, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = gauges_[key(prom, labels)];
  if (!slot) {
    slot = std::make_unique<Gauge>(StatName{flat, prom, labels}, slots_);
  }
  return *slot;
}

Histogram& Store::histogram(const std::string& flat, const std::string& prom,
                            const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = histograms_[key(prom, labels)];
  if (!slot) {
    slot = std::make_unique<Histogram>(StatName{flat, prom, labels}, slots_);
  }
  return *slot;
}

int64_t Store::valueOf(const std::string& flat) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [k, c] : counters_) {
    if (c->name().flat == flat) return c->value(slots_);
  }
  for (const auto& [k, g] : gauges_) {
    if (g->name().flat == flat) return g->value(slots_);
  }
  return -1;
}

std::string Store::renderText() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> lines;
  for (const auto& [k, c] : counters_) {
    lines.push_back(absl::StrCat(c->name().flat, ": ", c->value(slots_)));
  }
  for (const auto& [k, g] : gauges_) {
    lines.push_back(absl::StrCat(g->name().flat, ": ", g->value(slots_)));
  }
  for (const auto& [k, h] : histograms_) {
    Histogram::Summary s = h->summarize(slots_);
    lines.push_back(absl::StrFormat("%s: count=%d sum_ms=%g p50=%g p90=%g p99=%g", h->name().flat,
                                    s.count, s.sum_ms, s.quantile(0.5), s.quantile(0.9),
                                    s.quantile(0.99)));
  }
  std::sort(lines.begin(), lines.end());
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

std::string Store::renderJson() const {
  absl::MutexLock lock(&mu_);
  Json::Writer w;
  w.beginObject();
  w.key("stats");
  w.beginArray();
  for (const auto& [k, c] : counters_) {
    w.beginObject();
    w.field("name", c->name().flat);
    w.field("value", c->value(slots_));
    w.endObject();
  }
  for (const auto& [k, g] : gauges_) {
    w.beginObject();
    w.field("name", g->name().flat);
    w.field("value", g->value(slots_));
    w.endObject();
  }
  w.endArray();
  w.key("histograms");
  w.beginArray();
  for (const auto& [k, h] : histograms_) {
    Histogram::Summary s = h->summarize(slots_);
    w.beginObject();
    w.field("name", h->name().flat);
    w.field("count", s.count);
    w.field("sum", s.sum_ms);
    w.field("p50", s.quantile(0.5));
    w.field("p99", s.quantile(0.99));
    w.key("buckets");
    w.beginArray();
    uint64_t cumulative = 0;
    for (size_t b = 0; b < Histogram::kNumBuckets; ++b) {
      cumulative += s.buckets[b];
      w.beginObject();
      w.field("le", Histogram::kBounds[b]);
      w.field("count", cumulative);
      w.endObject();
    }
    w.endArray();
    w.endObject();
  }
  w.endArray();
  w.endObject();
  return w.take();
}

std::string Store::renderPrometheus() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  // Group samples by metric name so each gets one TYPE line.
  std::map<std::string, std::vector<std::string>> counters, gauges;
  for (const auto& [k, c] : counters_) {
    const std::string name = promCounterName(c->name().prom);
    counters[name].push_back(
        absl::StrCat("sluice_", name, promLabels(c->name().labels), " ", c->value(slots_)));
  }
  for (const auto& [k, g] : gauges_) {
    gauges[g->name().prom].push_back(absl::StrCat(
        "sluice_", g->name().prom, promLabels(g->name().labels), " ", g->value(slots_)));
  }
  for (const auto& [name, samples] : counters) {
    absl::StrAppend(&out, "# TYPE sluice_", name, " counter\n");
    for (const auto& s : samples) absl::StrAppend(&out, s, "\n");
  }
  for (const auto& [name, samples] : gauges) {
    absl::StrAppend(&out, "# TYPE sluice_", name, " gauge\n");
    for (const auto& s : samples) absl::StrAppend(&out, s, "\n");
  }
  // One TYPE line per metric: group the histograms by metric name first.
  std::map<std::string, std::vector<const Histogram*>> by_metric;
  for (const auto& [k, h] : histograms_) {
    by_metric[h->name().prom].push_back(h.get());
  }
  for (const auto& [prom, group] : by_metric) {
    const std::string metric = absl::StrCat("sluice_", prom, "_ms");
    absl::StrAppend(&out, "# TYPE ", metric, " histogram\n");
    for (const Histogram* h : group) {
      const StatName& n = h->name();
      Histogram::Summary s = h->summarize(slots_);
      uint64_t cumulative = 0;
      for (size_t b = 0; b < Histogram::kNumBuckets; ++b) {
        cumulative += s.buckets[b];
        absl::StrAppend(
            &out, metric, "_bucket",
            promLabels(n.labels, absl::StrCat("le=\"", fmtDouble(Histogram::kBounds[b]), "\"")),
            " ", cumulative, "\n");
      }
      absl::StrAppend(&out, metric, "_bucket", promLabels(n.labels, "le=\"+Inf\""), " ", s.count,
                      "\n");
      absl::StrAppend(&out, metric, "_sum", promLabels(n.labels), " ", fmtDouble(s.sum_ms), "\n");
      absl::StrAppend(&out, metric, "_count", promLabels(n.labels), " ", s.count, "\n");
    }
  }
  return out;
}

}  // namespace Stats
}  // namespace sluice
