#include "source/extensions/filters/http/grpc_stats/method_stats.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace Extensions {
namespace GrpcStats {
namespace {

// Protobuf identifiers, with '.' for the package: what a stat name can carry as it is.
bool isIdentifier(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.') return false;
  }
  return !s.empty() && s.front() != '.' && s.back() != '.';
}

}  // namespace

MethodStats::MethodStats(Stats::Store& store, std::string flat_prefix, Stats::Labels labels)
    : flat_prefix_(std::move(flat_prefix)),
      labels_(std::move(labels)),
      total_(&store.counter(flat_prefix_ + ".total", "grpc_requests_total", labels_)) {}

MethodStatsRegistry::MethodStatsRegistry(Stats::Store& store)
    : store_(store),
      caches_(new SlotCache[store.slots()]),
      other_(store, "grpc.other", {{"grpc_service", "other"}, {"grpc_method", ""}}) {}

MethodStats& MethodStatsRegistry::forPath(absl::string_view path, uint32_t max_methods) {
  absl::string_view service, method;
  if (!Grpc::parseServicePath(path, &service, &method) || !isIdentifier(service) ||
      !isIdentifier(method)) {
    return other_;
  }
  const absl::string_view key = path.substr(1);  // "<service>/<method>"
  SlotCache& cache = caches_[Stats::t_slot];
  auto hit = cache.methods.find(key);
  if (hit != cache.methods.end()) {
    return *hit->second;
  }
  MethodStats* found;
  {
    absl::MutexLock lock(&mu_);
    auto it = methods_.find(key);
    if (it != methods_.end()) {
      found = it->second.get();
    } else if (methods_.size() >= max_methods) {
      return other_;  // not cached: the cache holds at most the registry's names
    } else {
      auto made =
          std::make_unique<MethodStats>(store_, absl::StrCat("grpc.", service, ".", method),
                                        Stats::Labels{{"grpc_service", std::string(service)},
                                                      {"grpc_method", std::string(method)}});
      found = made.get();
      methods_.emplace(std::string(key), std::move(made));
    }
  }
  cache.methods.emplace(std::string(key), found);
  return *found;
}

void MethodStatsRegistry::chargeStatus(MethodStats& stats, uint32_t code) {
  if (code > Grpc::kMaxStatus) {
    code = static_cast<uint32_t>(Grpc::Status::Unknown);
  }
  Stats::Counter* counter = stats.status_[code].load(std::memory_order_acquire);
  if (counter == nullptr) {
    absl::MutexLock lock(&mu_);
    counter = stats.status_[code].load(std::memory_order_relaxed);
    if (counter == nullptr) {
      Stats::Labels labels = stats.labels_;
      labels.emplace_back("grpc_status", absl::StrCat(code));
      counter = &store_.counter(absl::StrCat(stats.flat_prefix_, ".status.", code),
                                "grpc_responses_total", labels);
      stats.status_[code].store(counter, std::memory_order_release);
    }
  }
  counter->inc();
}

size_t MethodStatsRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return methods_.size();
}

}  // namespace GrpcStats
}  // namespace Extensions
}  // namespace sluice
