#include "source/common/stats/consumer_stats.h"

#include "absl/strings/str_cat.h"

namespace sluice {
namespace Stats {

ConsumerStats::Counters& ConsumerStats::get(absl::string_view route, absl::string_view consumer,
                                            uint32_t max_consumers) {
  // The lookup key is built in a reused thread-local string: no allocation on a hit.
  thread_local std::string key;
  key.assign(route.data(), route.size());
  key += '\0';
  key.append(consumer.data(), consumer.size());
  Cache& cache = caches_[t_slot];
  auto it = cache.map.find(key);
  if (it != cache.map.end()) return *it->second;
  bool own = false;
  Counters& c = create(route, consumer, max_consumers, &own);
  if (!own && ++cache.others > kMaxRememberedOthers) {
    // Consumers over the cap are remembered too (so their next request takes no lock), but
    // only so many: their number is not ours to bound. Start again.
    cache.map.clear();
    cache.others = 1;
  }
  cache.map.emplace(key, &c);
  return c;
}

ConsumerStats::Counters& ConsumerStats::create(absl::string_view route, absl::string_view consumer,
                                               uint32_t max_consumers, bool* own) {
  absl::MutexLock lock(&mu_);
  absl::string_view who = consumer;
  *own = true;
  if (!consumers_.contains(consumer)) {
    if (consumers_.size() >= max_consumers) {
      who = "other";
      *own = false;
    } else {
      consumers_.emplace(consumer);
    }
  }
  const std::string key = absl::StrCat(route, absl::string_view("\0", 1), who);
  auto it = all_.find(key);
  if (it != all_.end()) return *it->second;
  auto c = std::make_unique<Counters>();
  const Labels labels{{"route", std::string(route)}, {"consumer", std::string(who)}};
  const std::string prefix = absl::StrCat("route.", route, ".consumer.", who, ".");
  for (int cls = 1; cls <= 5; ++cls) {
    Labels l = labels;
    l.emplace_back("code_class", absl::StrCat(cls, "xx"));
    c->rq_class[cls] =
        &store_.counter(absl::StrCat(prefix, "rq_", cls, "xx"), "route_consumer_rq_xx_total", l);
  }
  c->bytes_received =
      &store_.counter(prefix + "bytes_received", "route_consumer_bytes_received_total", labels);
  c->bytes_sent = &store_.counter(prefix + "bytes_sent", "route_consumer_bytes_sent_total", labels);
  return *all_.emplace(key, std::move(c)).first->second;
}

size_t ConsumerStats::consumers() const {
  absl::MutexLock lock(&mu_);
  return consumers_.size();
}

}  // namespace Stats
}  // namespace sluice
