#include "source/extensions/filters/http/rate_limit/local_store.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

int64_t WindowCounter::advance(int64_t k, uint32_t older) {
  if (last == kNever || k - last > static_cast<int64_t>(older)) {
    counts.fill(0);
    total = 0;
    last = k;
    return k;
  }
  if (k <= last) {
    return last;
  }
  for (int64_t j = last + 1; j <= k; ++j) {
    uint32_t& c = counts[j % (older + 1)];
    total -= c;
    c = 0;
  }
  last = k;
  return k;
}

int64_t decide(const std::vector<WindowSpec>& windows, WindowCounter* state, int64_t now_ms,
               Decision& out) {
  out.allowed = true;
  out.retry_after_ms = 0;
  out.windows.clear();
  absl::InlinedVector<int64_t, 4> current;
  absl::InlinedVector<uint64_t, 4> counted;
  for (const WindowSpec& w : windows) {
    WindowCounter& c = state[w.kind];
    const int64_t k = c.advance(w.bucketOf(now_ms), w.older_buckets);
    const uint64_t n = c.sum();
    if (n >= w.limit) {
      out.allowed = false;
      // The oldest buckets leave first: find the one whose departure leaves room for one.
      // Capped at the window: a sliding window counts up to one bucket more than a window, so
      // the exact wait can reach W + W/10; no header says more than W (docs/decisions.md).
      const uint64_t need = n - w.limit + 1;
      uint64_t freed = 0;
      for (int64_t j = k - w.older_buckets; j <= k; ++j) {
        freed += c.at(j, w.older_buckets);
        if (freed >= need) {
          out.retry_after_ms = std::max(
              out.retry_after_ms, std::min(w.length_ms, w.bucketEnd(j + w.older_buckets) - now_ms));
          break;
        }
      }
    }
    current.push_back(k);
    counted.push_back(n);
  }
  int64_t expires = 0;
  for (size_t i = 0; i < windows.size(); ++i) {
    const WindowSpec& w = windows[i];
    WindowCounter& c = state[w.kind];
    const int64_t k = current[i];
    uint64_t n = counted[i];
    if (out.allowed) {
      c.add(k, w.older_buckets);
      ++n;
      expires = std::max(expires, w.bucketEnd(k + w.older_buckets));
    }
    WindowStatus st;
    st.limit = w.limit;
    st.remaining = n >= w.limit ? 0 : w.limit - n;
    st.reset_ms = w.bucketEnd(k + w.older_buckets) - now_ms;
    for (int64_t j = k - w.older_buckets; j <= k; ++j) {
      if (c.at(j, w.older_buckets) != 0) {
        st.reset_ms = w.bucketEnd(j + w.older_buckets) - now_ms;
        break;
      }
    }
    st.reset_ms = std::min(st.reset_ms, w.length_ms);
    out.windows.push_back(st);
  }
  return expires;
}

LocalStore::LocalStore(Stats::Store* stats) : shards_(std::make_unique<Shard[]>(kShards)) {
  if (stats != nullptr) {
    keys_ = &stats->gauge("rate_limit.local_keys", "rate_limit_local_keys");
  }
}

void LocalStore::consume(const CompiledPolicy& policy, absl::string_view identity, int64_t now_ms,
                         Decision& d) {
  // Worker-local scratch: no allocation per request for the lookup key.
  thread_local std::string key;
  key.assign(policy.key_prefix);
  key.append(identity.data(), identity.size());
  const size_t hash = absl::Hash<absl::string_view>{}(key);
  Shard& shard = shards_[(hash >> 20) % kShards];
  SpinLockHolder lock(shard.mu);
  if (now_ms - shard.last_sweep_ms >= 1000) {
    sweepLocked(shard, now_ms);
  }
  auto it = shard.entries.find(absl::string_view(key));
  if (it == shard.entries.end()) {
    it = shard.entries.emplace(key, Entry{}).first;
    if (keys_ != nullptr) keys_->inc();
  }
  const int64_t expires = decide(policy.windows, it->second.windows.data(), now_ms, d);
  it->second.expires_ms = std::max(it->second.expires_ms, expires);
}

void LocalStore::sweepLocked(Shard& shard, int64_t now_ms) {
  shard.last_sweep_ms = now_ms;
  for (auto it = shard.entries.begin(); it != shard.entries.end();) {
    if (it->second.expires_ms <= now_ms) {
      shard.entries.erase(it++);
      if (keys_ != nullptr) keys_->dec();
    } else {
      ++it;
    }
  }
}

size_t LocalStore::size() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    SpinLockHolder lock(shards_[i].mu);
    n += shards_[i].entries.size();
  }
  return n;
}

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
